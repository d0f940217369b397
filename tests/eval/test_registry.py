"""The registry against XTREME-R's own definitions (google-research/xtreme evaluate.py, paper Table 1)."""

from __future__ import annotations

import pytest

from weam.eval.runners import default_layer
from weam.eval.tasks import all_tasks, get_task
from weam.core.languages import get_language, xtreme_r_languages

# evaluate.py XTREME_R_TASK2LANGS, verbatim (LAReQA's entry there is empty: XQuAD-R's 11 languages).
EVALUATE_PY = {
    "xnli": "ar,bg,de,el,en,es,fr,hi,ru,sw,th,tr,ur,vi,zh",
    "panx": "ar,he,vi,id,jv,ms,tl,eu,ml,ta,te,af,nl,en,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,bg,ru,ja,ka,ko,th,sw,yo,my,"
            "zh,kk,tr,et,fi,hu,qu,pl,uk,az,lt,pa,gu,ro",
    "udpos": "af,ar,bg,de,el,en,es,et,eu,fa,fi,fr,he,hi,hu,id,it,ja,kk,ko,mr,nl,pt,ru,ta,te,th,tl,tr,ur,vi,yo,zh,lt,"
             "pl,uk,wo,ro",
    "tatoeba": "ar,he,vi,id,jv,tl,eu,ml,ta,te,af,nl,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,bg,ru,ja,ka,ko,th,sw,zh,kk,tr,et,"
               "fi,hu,az,lt,pl,uk,ro",
    "xcopa": "et,ht,id,it,qu,sw,ta,th,tr,vi,zh",
    "lareqa": "ar,de,el,en,es,hi,ru,th,tr,vi,zh",
    "mewslix": "ar,de,en,es,fa,ja,pl,ro,ta,tr,uk",
    "xquad": "en,es,de,el,ru,tr,ar,vi,th,zh,hi,ro",
    "mlqa": "en,es,de,ar,hi,vi,zh",
    "tydiqa": "en,ar,bn,fi,id,ko,ru,sw,te",
}


def test_ten_tasks_with_xtreme_r_language_lists():
    tasks = all_tasks()
    assert set(tasks) == set(EVALUATE_PY)
    for name, langs in EVALUATE_PY.items():
        assert list(tasks[name].languages) == langs.split(","), name


def test_union_is_the_fifty_xtreme_r_languages():
    union = {get_language(code).code for spec in all_tasks().values() for code in spec.languages}
    assert union == {language.code for language in xtreme_r_languages()}
    assert len(union) == 50


def test_metrics_and_scores_follow_evaluate_py():
    assert get_task("xquad").score_of({"exact_match": 40.0, "f1": 60.0}) == 50.0
    assert get_task("panx").score == "f1" and get_task("udpos").score == "f1"
    assert get_task("mewslix").score == "map@20" and get_task("lareqa").score == "map@20"
    assert get_task("tatoeba").score == "accuracy" and get_task("xcopa").score == "accuracy"
    assert get_task("wikiann").name == "panx"


def test_tatoeba_codes_and_layer_rule():
    spec = get_task("tatoeba")
    assert spec.file_code("fa") == "pes" and spec.file_code("sw") == "swh" and spec.file_code("zh") == "cmn"
    assert all(lang in spec.lang_codes for lang in spec.languages)
    assert default_layer(12) == 8  # run_tatoeba.sh: layer 7 of the last 12 hidden states
    assert default_layer(24) == 14  # run_tatoeba.sh: LAYER=13 of NLAYER=24 for xlm-roberta-large
    assert default_layer(2) == 1 and default_layer(4) == 3


@pytest.mark.parametrize("name", sorted(EVALUATE_PY))
def test_every_task_names_its_files_and_data(name):
    spec = get_task(name)
    assert "test" in spec.splits and spec.train_data and spec.input_format
    assert (spec.finetune is None) == (name == "tatoeba")
    assert spec.hf is not None and "/" in spec.hf.id and spec.hf.id != "google/xtreme"  # namespaced, not v1


# What utils_preprocess.py leaves labelled (True) or strips (False), per task and split.
LABEL_FACTS = {
    "xnli": {"dev": True, "test": False}, "xcopa": {"dev": True, "test": False},
    "udpos": {"dev": True, "test": False}, "panx": {"dev": True, "test": False},
    "xquad": {"test": False}, "mlqa": {"dev": True, "test": False}, "tydiqa": {"test": False},
    "mewslix": {"dev": True, "test": False}, "lareqa": {"test": True}, "tatoeba": {"test": False},
}


def test_label_facts_are_data():
    for name, facts in LABEL_FACTS.items():
        spec = get_task(name)
        assert {split: info.labelled for split, info in spec.splits.items()} == facts, name
        assert all(info.why for info in spec.splits.values())
    assert set(get_task("udpos").splits["dev"].missing) == {"kk", "th", "tl", "yo"}
    assert set(get_task("xquad").splits["test"].missing) == {"ro"}  # download_xquad fetches 11 languages
