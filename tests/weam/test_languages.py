import pytest

from weam.core.languages import (
    all_languages,
    UnknownLanguageError,
    families_of,
    get_language,
    low_resource_languages,
    xtreme_r_languages,
)


@pytest.mark.parametrize("code", ["pt", "por", "pt_BR", "pt-BR", "PT", "Portuguese"])
def test_code_forms_resolve_to_one_language(code):
    assert get_language(code).code == "pt"


def test_locale_with_script_and_three_letter_codes():
    assert get_language("zh_Hans").family == "Sino-Tibetan"
    assert get_language("swa").code == "sw"
    assert get_language("sw").genus == "Bantoid"


def test_unknown_code_fails_clearly():
    with pytest.raises(UnknownLanguageError, match=r"unknown language code 'xx'"):
        get_language("xx")
    with pytest.raises(UnknownLanguageError, match="did you mean"):
        get_language("fii")


def test_xtreme_r_has_fifty_languages_and_a_low_resource_group():
    codes = [language.code for language in xtreme_r_languages()]
    assert len(codes) == 50
    low = low_resource_languages(codes)
    assert {"sw", "yo", "wo", "qu", "my"} <= set(low)
    assert not {"en", "de", "fi", "tr"} & set(low)


def test_families_group_codes():
    groups = families_of(["de", "fr", "fi", "et", "sw"])
    assert groups == {"Indo-European": ["de", "fr"], "Uralic": ["fi", "et"], "Atlantic-Congo": ["sw"]}


# Registry languages URIEL (lang2vec) cannot check: Glottolog isolates have no family node there,
# and URIEL lists no classification for Ido.
URIEL_UNCLASSIFIED = {"eu": "Isolate", "io": "Constructed"}


def test_registry_families_agree_with_uriel_glottolog_classification():
    from weam.study.covariates import uriel_family

    disagree = {}
    for language in all_languages():
        expected = uriel_family(language.code)
        if expected is None:
            assert URIEL_UNCLASSIFIED.get(language.code) == language.family, (
                f"{language.code}: URIEL has no classification; add it to URIEL_UNCLASSIFIED if that is right")
            continue
        if expected != language.family:
            disagree[language.code] = (language.family, expected)
    assert disagree == {}, f"registry vs URIEL/Glottolog (registry, URIEL): {disagree}"


def test_haitian_creole_is_indo_european_as_glottolog_classifies_it():
    from weam.study.covariates import classification, shared_depth

    assert get_language("ht").family == "Indo-European"
    assert classification("ht")[:2] == ["Indo-European", "Italic"]
    # French and Haitian share far more of the tree than French and Hindi (both Indo-European).
    assert shared_depth("fr", "ht") > shared_depth("fr", "hi") >= 1
    assert shared_depth("fi", "sw") == 0
