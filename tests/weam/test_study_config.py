import pytest

from weam.config import load_config
from weam.errors import ConfigError
from weam.study.config import StudyConfig, diversity

VALID = """
name: t
conditions:
  - {name: diverse, role: treatment, languages: [fi, tr], families: [Uralic, Turkic]}
  - {name: single, role: control, languages: [de, fr], families: [Indo-European]}
held_out: [sw]
token_budget: 1000
"""


def write(tmp_path, text):
    path = tmp_path / "study.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_study_loads_and_measures_diversity(tmp_path):
    study = load_config(StudyConfig, write(tmp_path, VALID))
    assert study.condition("treatment").languages == ["fi", "tr"]
    assert diversity(study.condition("treatment").languages) == {
        "n_families": 2, "n_genera": 2, "family_entropy_bits": 1.0,
    }
    assert diversity(study.condition("control").languages)["n_families"] == 1


def test_leaked_held_out_language_is_refused_naming_language_and_condition(tmp_path):
    text = VALID.replace("held_out: [sw]", "held_out: [sw, fr]")
    with pytest.raises(ConfigError, match=r"held-out language fr is in the pre-training data of condition 'single'"):
        load_config(StudyConfig, write(tmp_path, text))


def test_held_out_locale_form_is_normalised_before_the_leak_check(tmp_path):
    text = VALID.replace("held_out: [sw]", "held_out: [tur]")
    with pytest.raises(ConfigError, match=r"held-out language tr .* condition 'diverse'"):
        load_config(StudyConfig, write(tmp_path, text))


def test_wrong_family_label_is_refused_naming_language_and_condition(tmp_path):
    text = VALID.replace("families: [Uralic, Turkic]", "families: [Uralic, Indo-European]")
    with pytest.raises(ConfigError, match=r"condition 'diverse' declares families .*\(tr is Turkic\)"):
        load_config(StudyConfig, write(tmp_path, text))


def test_roles_must_be_one_treatment_and_one_control(tmp_path):
    text = VALID.replace("role: control", "role: treatment")
    with pytest.raises(ConfigError, match="exactly one treatment and one control"):
        load_config(StudyConfig, write(tmp_path, text))


def test_unknown_language_in_a_condition(tmp_path):
    text = VALID.replace("[de, fr]", "[de, xx]")
    with pytest.raises(ConfigError, match=r"unknown language code 'xx'"):
        load_config(StudyConfig, write(tmp_path, text))
