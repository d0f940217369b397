import pytest

from weam.languages import (
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
