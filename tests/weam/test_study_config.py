import pytest

from weam.core.config import load_config
from weam.core.errors import ConfigError
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
        "n_families": 2, "n_genera": 2, "family_entropy_bits": 1.0, "max_family_share": 0.5,
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


def test_a_condition_named_base_is_refused_naming_the_file(tmp_path):
    """'base' is the base model's pseudo-condition (BASE_CONDITION): a condition of that name would
    share its steps' runs and result cells."""
    path = write(tmp_path, VALID.replace("name: single", "name: base"))
    with pytest.raises(ConfigError, match=r"(?s)study\.yaml.*key 'conditions\.1\.name': .*'base' is reserved") as error:
        load_config(StudyConfig, path)
    assert str(path) in str(error.value)


def test_power_cost_is_device_hours_and_the_old_gpu_hours_key_still_reads(tmp_path):
    """The assumed cost stands in for measured device-hours (wall time × processes); a resolved study
    written before the rename (reproduce --check reads those) says gpu_hours_per_run."""
    from weam.core.config import dump_config

    study = load_config(StudyConfig, write(tmp_path, VALID + "power: {device_hours_per_run: 2.5}\n"))
    assert study.power.device_hours_per_run == 2.5
    old = load_config(StudyConfig, write(tmp_path, VALID + "power: {gpu_hours_per_run: 2.5}\n"))
    assert old.power.device_hours_per_run == 2.5
    assert "device_hours_per_run: 2.5" in dump_config(old) and "gpu_hours" not in dump_config(old)
    with pytest.raises(ConfigError, match="power"):
        load_config(StudyConfig, write(tmp_path, VALID + "power: {gpu_hours_per_run: 1, device_hours_per_run: 2}\n"))


def test_unknown_language_in_a_condition(tmp_path):
    text = VALID.replace("[de, fr]", "[de, xx]")
    with pytest.raises(ConfigError, match=r"unknown language code 'xx'"):
        load_config(StudyConfig, write(tmp_path, text))


DRAWN = """
name: t
design_seed: 7
conditions:
  - name: diverse
    role: treatment
    draw: {pool: [fi, et, hu, tr, kk, az, id, ms, ar, he, vi, ka], k: 3, rule: distinct_families, n_sets: 4}
  - name: single
    role: control
    draw:
      pool: [de, fr, es, ru, it, pt, tr, kk, az, ky, fi, et, hu]
      k: 3
      rule: one_family
      n_sets: 3
      families: [Indo-European, Turkic, Uralic]
held_out: [sw, mr]
token_budget: 1000
"""


def test_drawn_sets_follow_their_rule_are_distinct_and_reproducible(tmp_path):
    study = load_config(StudyConfig, write(tmp_path, DRAWN))
    diverse = study.language_sets("diverse")
    single = study.language_sets("single")
    assert [s.set_id for s in diverse] == ["s1", "s2", "s3", "s4"] and len(single) == 3
    assert len({s.languages for s in diverse}) == 4
    for item in diverse:
        assert len(item.languages) == 3 and len(item.families) == 3
    # Single-family controls from three different families, not only Indo-European.
    assert [s.families for s in single] == [["Indo-European"], ["Turkic"], ["Uralic"]]
    again = load_config(StudyConfig, write(tmp_path, DRAWN))
    assert again.language_sets() == study.language_sets()
    other = load_config(StudyConfig, write(tmp_path, DRAWN.replace("design_seed: 7", "design_seed: 8")))
    assert other.language_sets() != study.language_sets()
    assert len(study.runs()) == 7 * 3  # every set × the three default seeds


def test_draw_constraints_and_impossible_draws_fail_clearly(tmp_path):
    text = DRAWN.replace("rule: distinct_families, n_sets: 4}", "rule: distinct_families, n_sets: 2, scripts: [Latn], resource: [high]}")
    study = load_config(StudyConfig, write(tmp_path, text))
    from weam.core.languages import get_language
    for item in study.language_sets("diverse"):
        assert all(get_language(c).script == "Latn" and get_language(c).resource_level == "high" for c in item.languages)
    too_many = DRAWN.replace("n_sets: 4}", "n_sets: 400}")
    with pytest.raises(ConfigError, match=r"condition 'diverse': the pool yields only \d+ distinct sets"):
        load_config(StudyConfig, write(tmp_path, too_many))
    short = DRAWN.replace("families: [Indo-European, Turkic, Uralic]", "families: [Indo-European, Austronesian]")
    with pytest.raises(ConfigError, match=r"one_family needs ≥ k=3 eligible pool languages per family; Austronesian \(0\)"):
        load_config(StudyConfig, write(tmp_path, short))
    leak = DRAWN.replace("held_out: [sw, mr]", "held_out: [sw, mr, kk]")
    with pytest.raises(ConfigError, match=r"held-out language kk is in the pre-training data of condition 'diverse' \(pool\)"):
        load_config(StudyConfig, write(tmp_path, leak))


def test_explicit_sets_and_exactly_one_source(tmp_path):
    text = VALID.replace("languages: [de, fr], families: [Indo-European]",
                         "sets: [[de, fr], [es, it]], families: [Indo-European]")
    study = load_config(StudyConfig, write(tmp_path, text))
    assert [s.languages for s in study.language_sets("single")] == [("de", "fr"), ("es", "it")]
    wrong = VALID.replace("languages: [de, fr], families: [Indo-European]",
                          "sets: [[de, fr], [es, tr]], families: [Indo-European]")
    with pytest.raises(ConfigError, match=r"\(tr is Turkic\)"):
        load_config(StudyConfig, write(tmp_path, wrong))
    both = VALID.replace("languages: [de, fr], families", "languages: [de, fr], sets: [[es]], families")
    with pytest.raises(ConfigError, match="exactly one of languages, sets or draw"):
        load_config(StudyConfig, write(tmp_path, both))


def test_primary_endpoint_group_is_validated(tmp_path):
    text = VALID + "analysis: {primary: {task: tatoeba, metric: accuracy, group: everything}}\n"
    with pytest.raises(ConfigError, match="group 'everything'"):
        load_config(StudyConfig, write(tmp_path, text))


def test_realised_family_shares_weight_the_entropy():
    assert diversity(["fi", "tr"], {"fi": 900, "tr": 100}) == pytest.approx(
        {"n_families": 2, "n_genera": 2, "family_entropy_bits": 0.469, "max_family_share": 0.9}, abs=1e-3)


def test_plan_has_one_pretraining_run_per_set_and_seed_with_its_own_folder():
    from weam.study.run import load_study

    study, steps = load_study("configs/demo.yaml")
    pretrain = [s for s in steps if s.kind == "pretrain"]
    assert len(pretrain) == len(study.language_sets()) * len(study.seeds) == 12
    assert len({s.out_dir for s in pretrain}) == 12
    for step in pretrain:
        item = next(i for i in study.language_sets(step.condition) if i.set_id == step.language_set)
        assert [p.tgt for p in step.config.data.pairs] == list(item.languages)
        assert step.out_dir.parts[-4:] == ("pretrain", step.condition, step.language_set, f"seed{step.seed}")
        assert step.config.data.sampling.rule == "uniform" and step.config.data.budget_unit == "content"
    evals = [s for s in steps if s.kind == "eval"]
    assert [s.condition for s in evals].count("base") == 1 and len(evals) == 13
    # Every model: held-out targets and the high-resource check; a run also its own set's languages
    # (positive control), the base model every set's (their reference).
    common = set(study.held_out) | {"ja", "zh"}
    assert set(evals[0].config.langs) == common | set(study.condition_languages())
    for step in evals[1:]:
        item = next(i for i in study.language_sets(step.condition) if i.set_id == step.language_set)
        assert set(step.config.langs) == common | set(item.languages)


def test_unknown_corpora_pair_and_eval_langs_are_refused_not_ignored(tmp_path):
    """Issue 26, item 8: a typo in a corpora key fell back to demo data; eval.langs was overwritten."""
    corpus = "corpora:\n  en-de: {src: a.en, tgt: a.de}\n"
    assert "en-de" in load_config(StudyConfig, write(tmp_path, VALID + corpus)).corpora
    with pytest.raises(ConfigError, match=r"corpora: 'en-dee' is no pair of this study \(did you mean 'en-de'\?\)"):
        load_config(StudyConfig, write(tmp_path, VALID + corpus.replace("en-de:", "en-dee:")))
    with pytest.raises(ConfigError, match=r"eval.langs is set by the study"):
        load_config(StudyConfig, write(tmp_path, VALID), ["eval.langs=[sw, fi]"])
    assert load_config(StudyConfig, write(tmp_path, VALID), ["eval.langs=null"]).eval == {"langs": None}


@pytest.mark.parametrize("override, named", [
    ("analysis.primary.metric=acuracy", "is not a metric of task tatoeba (its metrics: accuracy, mrr, "
                                        "accuracy_no_shared_word, score)"),
    ("analysis.primary.task=panx", "analysis.primary.task 'panx' is not among eval.tasks ['tatoeba']"),
    ("analysis.primary.task=xnil", "unknown task 'xnil'"),
])
def test_a_primary_endpoint_the_study_does_not_evaluate_is_refused_at_load(tmp_path, override, named):
    with pytest.raises(ConfigError, match="analysis.primary") as refused:
        load_config(StudyConfig, write(tmp_path, VALID), [override])
    assert named in str(refused.value)


def test_study_config_lists_every_stage_key_with_default_and_the_studys_value():
    """`weam study config configs/demo.yaml`: the stage blocks' nested keys are listed (not
    ``pretrain = {}``), with their defaults, and the value this study sets."""
    from pathlib import Path

    from typer.testing import CliRunner

    from weam.cli import app

    demo = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
    listed = CliRunner().invoke(app, ["study", "config", str(demo)])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert "pretrain.optim.lr = 5e-05   (this study: 0.0001)" in lines
    assert "base.pretrain.optim.lr = 5e-05   (this study: 0.005)" in lines
    assert "eval.retrieval_layer = None   (this study: -1)" in lines
    assert not [line for line in lines if line.startswith(("pretrain = ", "eval = ", "align = ", "data = "))]
    bare = CliRunner().invoke(app, ["study", "config"])
    assert "align.engine = " in bare.output and "(this study" not in bare.output
