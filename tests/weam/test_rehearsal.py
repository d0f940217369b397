"""The dress rehearsal (configs/studies/rehearsal.yaml) and the study's input checks: a study refuses,
before any costly step, while a pool language's cleaned corpus pair is missing (naming the pairs and
the fetch config) or a task has no gold labels for a held-out language (naming task, split, languages)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from weam.cli import app
from weam.core.config import load_config, read_yaml
from weam.core.errors import WeamError
from weam.data.config import FetchConfig
from weam.study.plan import check_inputs, load_study, pool_languages

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "configs/studies/family-diversity-mbert.yaml"
REHEARSAL = ROOT / "configs/studies/rehearsal.yaml"

SIZES = {"n_sets", "token_budget", "seeds", "n_bootstrap", "shards", "batch_size", "max_seq_len",
         "precision", "train_batch_size", "eval_batch_size"}
"""Keys the rehearsal may shrink (precision: bf16 needs a GPU)."""
PATHS = {"name", "work_dir", "model", "corpora_fetch", "corpora_clean", "src", "tgt", "xtreme_data_dir", "labels_dir", "ray_address"}


def _differences(a, b, path=()):
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a.keys() | b.keys():
            yield from _differences(a.get(key), b.get(key), (*path, key))
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and any(isinstance(x, dict) for x in a):
        for i, (x, y) in enumerate(zip(a, b)):
            yield from _differences(x, y, (*path, i))
    elif a != b:
        yield path


def test_the_rehearsal_is_the_template_with_only_sizes_and_paths_changed():
    template, rehearsal = read_yaml(TEMPLATE), read_yaml(REHEARSAL)
    changed = list(_differences(template, rehearsal))
    assert changed, "the rehearsal shrinks nothing"
    odd = [".".join(map(str, p)) for p in changed if str(p[-1]) not in SIZES | PATHS]
    assert not odd, f"the rehearsal changes more than sizes and paths: {odd}"
    assert rehearsal["eval"]["seeds"] == [1] and template["eval"]["seeds"] == [1, 2, 3]
    # Every stage of the real study, in its order: the same step kinds, fewer of them.
    _, real_steps = load_study(TEMPLATE)
    study, steps = load_study(REHEARSAL)
    kinds = lambda plan: list(dict.fromkeys(step.stage for step in plan))  # noqa: E731
    assert kinds(steps) == kinds(real_steps)
    assert [s.stage for s in steps].count("pretrain") == 2
    evals = [s for s in steps if s.stage == "eval"]
    assert len(evals[0].config.tasks) == 10 and study.analysis.primary.task == "panx"


def test_the_fetch_configs_list_every_pool_pair():
    for study_file, fetch_file in ((TEMPLATE, "configs/fetch/opus.yaml"), (REHEARSAL, "configs/fetch/rehearsal.yaml")):
        study, _ = load_study(study_file)
        assert str(study.corpora_fetch) == fetch_file
        fetch = load_config(FetchConfig, ROOT / fetch_file)
        assert set(pool_languages(study)) <= set(fetch.languages)
        assert set(pool_languages(study)) == {key.split("-", 1)[1] for key in study.corpora}
    real, rehearsal = load_config(FetchConfig, ROOT / "configs/fetch/opus.yaml"), \
        load_config(FetchConfig, ROOT / "configs/fetch/rehearsal.yaml")
    assert real.languages == rehearsal.languages
    assert [(s.kind, s.name, s.languages) for s in real.sources] == [(s.kind, s.name, s.languages) for s in rehearsal.sources]


def test_plan_refuses_the_template_without_its_corpora_naming_the_pairs_and_fetch_config(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, ["study", "plan", str(TEMPLATE.relative_to(ROOT))])
    assert isinstance(result.exception, WeamError), result.output  # `weam` prints it and exits 2
    text = str(result.exception)
    assert "language sets" not in result.output  # refused before the design is printed
    assert "38 of the pools' 38 language pairs have no fetched and cleaned corpus" in text, text
    for pair in ("en-fi", "en-ug", "en-tl", "en-de"):
        assert f"  {pair}: no file /work/corpora/clean/{pair}/train.en" in text
    assert "weam data fetch --config configs/fetch/opus.yaml && weam data clean --config configs/clean/opus.yaml" in text
    assert "xtreme_data_dir /work/xtreme/download: no such folder" in text
    assert "task tydiqa, split labelled: no gold labels for language(s) sw, te" in text  # labels_dir is empty too


def _corpora(tmp_path: Path, codes: list[str]) -> list[str]:
    """--set overrides pointing every pair at a one-line file (missing ones simply absent)."""
    sets = []
    for code in codes:
        folder = tmp_path / f"en-{code}"
        folder.mkdir(parents=True, exist_ok=True)
        for side in ("en", code):
            (folder / f"train.{side}").write_text("a b\n", encoding="utf-8")
        sets.append(f"corpora.en-{code}={{src: {folder}/train.en, tgt: {folder}/train.{code}}}")
    return sets


def test_a_fetch_config_listing_fewer_pairs_than_the_pools_need_is_refused(tmp_path):
    study, _ = load_study(REHEARSAL)
    pools = pool_languages(study)
    short = read_yaml(ROOT / "configs/fetch/rehearsal.yaml")
    short["languages"] = [code for code in short["languages"] if code not in ("ug", "tk")]
    for source in short["sources"]:
        source["languages"] = [code for code in source["languages"] if code not in ("ug", "tk")]
    fetch = tmp_path / "fetch.yaml"
    fetch.write_text(yaml.safe_dump(short), encoding="utf-8")
    overrides = [f"corpora_fetch={fetch}", "xtreme_data_dir=null", *_corpora(tmp_path / "c", pools)]
    study, steps = load_study(REHEARSAL, overrides)
    with pytest.raises(WeamError) as caught:
        check_inputs(study, steps, "rehearsal.yaml")
    message = str(caught.value)
    assert f"rehearsal.yaml: its fetch config {fetch} lists no en-tk, en-ug (2 of the 38 pairs the pools need)" \
        in message, message
    assert "have no fetched and cleaned corpus" not in message  # every pair is on disk here
    assert f"produce them: weam data fetch --config {fetch} && weam data clean --config configs/clean/rehearsal.yaml" \
        in message
    # The same study whose fetch config lists them all passes the corpus check.
    study, steps = load_study(REHEARSAL, [o for o in overrides if not o.startswith("corpora_fetch")])
    check_inputs(study, steps, "rehearsal.yaml")


def test_a_missing_pair_on_disk_is_named_with_its_file(tmp_path):
    study, _ = load_study(REHEARSAL)
    pools = [code for code in pool_languages(study) if code != "kk"]
    absent = tmp_path / "absent"
    study, steps = load_study(REHEARSAL, ["xtreme_data_dir=null", *_corpora(tmp_path, pools),
                                          f"corpora.en-kk={{src: {absent}/train.en, tgt: {absent}/train.kk}}"])
    with pytest.raises(WeamError) as caught:
        check_inputs(study, steps, "rehearsal.yaml")
    message = str(caught.value)
    assert "1 of the pools' 38 language pairs have no fetched and cleaned corpus: en-kk" in message
    assert f"en-kk: no file {absent}/train.en nor {absent}/train.kk" in message
    assert "weam data fetch --config configs/fetch/rehearsal.yaml && weam data clean --config configs/clean/rehearsal.yaml" in message


def test_a_task_without_gold_for_a_held_out_language_is_refused_naming_task_split_and_file(tmp_path):
    from tests.eval.conftest import write_xtreme

    study, _ = load_study(REHEARSAL)
    download = write_xtreme(tmp_path / "download", {"panx": ["en", "sw", "yo"], "xnli": ["en", "sw"]})
    overrides = [f"xtreme_data_dir={download}", "eval.tasks=[panx, xnli]",
                 *_corpora(tmp_path / "c", pool_languages(study))]
    study, steps = load_study(REHEARSAL, overrides)
    with pytest.raises(WeamError) as caught:
        check_inputs(study, steps, "rehearsal.yaml")
    message = str(caught.value)
    panx = [code for code in study.held_out if code not in ("sw", "yo")]
    from weam.eval.tasks import get_task

    panx = [code for code in panx if code in get_task("panx").languages]
    assert f"task panx, split dev: no file for language(s) {', '.join(panx)}" in message, message
    assert str(download / f"panx/dev-{panx[0]}.tsv") in message
    assert "task xnli, split dev: no file" not in message  # XNLI's held-out languages here: sw only, which it has
    assert "task xnli, split dev: eval reads language(s) " in message  # but a set's own languages have no file


SMALL_POOLS = {"diverse": ["fi", "tr", "id", "ar"], "single": ["de", "fr", "es"]}
"""The small rehearsal's pools: 2 languages per set (k: 6 in the template), distinct families vs Indo-European."""


def _small_rehearsal(tmp_path: Path) -> Path:
    """configs/studies/rehearsal.yaml resolved, with two tasks (PAN-X the primary, XNLI), one set of two
    languages per condition from small pools, and every input path under tmp_path; its fetch and clean
    configs beside it, resolved from the rehearsal's with the same languages and sources."""
    inputs = tmp_path / "inputs"
    study = read_yaml(REHEARSAL)
    codes = [code for pool in SMALL_POOLS.values() for code in pool]
    for condition in study["conditions"]:
        condition["draw"].update(pool=SMALL_POOLS[condition["name"]], k=2, n_sets=1)
        if condition["draw"].get("families"):
            condition["draw"]["families"] = ["Indo-European"]
    fetch = read_yaml(ROOT / "configs/fetch/rehearsal.yaml")
    fetch.update(languages=codes, out_dir=str(inputs / "opus"))
    for source in fetch["sources"]:
        source["languages"] = [code for code in source["languages"] if code in codes] or None
        source.update({"dataset": str(inputs / "opus-100")} if source["kind"] == "hf" else
                      {"download_dir": str(inputs / "opus-downloads")})
    fetch["sources"] = [s for s in fetch["sources"] if s["languages"]]
    clean = read_yaml(ROOT / "configs/clean/rehearsal.yaml")
    clean.update(in_dir=str(inputs / "opus"), out_dir=str(inputs / "clean"), xtreme_data_dir=str(inputs / "download"))
    for name, data in (("fetch.yaml", fetch), ("clean.yaml", clean)):
        (tmp_path / name).write_text(yaml.safe_dump(data), encoding="utf-8")
    study.update(
        work_dir=str(tmp_path / "study"), token_budget=2000, corpora_fetch=str(tmp_path / "fetch.yaml"),
        corpora_clean=str(tmp_path / "clean.yaml"), xtreme_data_dir=str(inputs / "download"),
        base={"model": str(inputs / "tiny-mbert")},
        corpora={f"en-{c}": {"src": str(inputs / f"clean/en-{c}/train.en"), "tgt": str(inputs / f"clean/en-{c}/train.{c}")}
                 for c in codes})
    study["analysis"]["n_bootstrap"] = 100
    study["held_out"] = ["sw", "yo", "my", "qu"]  # 12 in the template: fewer targets, fewer evaluations
    study["eval"].update(tasks=["panx", "xnli"], labels_dir=str(inputs / "download/labels"))
    path = tmp_path / "rehearsal-small.yaml"
    path.write_text(yaml.safe_dump(study, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.e2e
def test_a_small_rehearsal_runs_from_files_in_the_real_formats_to_a_panx_report(tmp_path, monkeypatch):
    """inputs → weam data fetch → weam data clean → weam study run → a report with a PAN-X primary endpoint,
    a row per task and the held-out cells without gold named (two tasks, one set per condition)."""
    from benchmarks.rehearsal_inputs import main as make_inputs

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    study_file = _small_rehearsal(tmp_path)
    assert make_inputs(["--study", str(study_file), "--pairs", "120", "--vocab-size", "1500"]) == 0
    runner = CliRunner()
    plan = runner.invoke(app, ["study", "plan", str(study_file)])  # no corpora yet: refused, naming them
    assert isinstance(plan.exception, WeamError) and "7 of the pools' 7 language pairs" in str(plan.exception)
    for command in (["data", "fetch", "--config", str(tmp_path / "fetch.yaml")],
                    ["data", "clean", "--config", str(tmp_path / "clean.yaml")],
                    ["study", "run", str(study_file)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, (command, result.output, result.exception)
    contamination = (tmp_path / "inputs/clean/contamination.tsv").read_text(encoding="utf-8").splitlines()
    planted = [line.split("\t") for line in contamination if line.startswith("en-fi\ten\ttatoeba\t")]
    assert planted and all(row[6] == "1" for row in planted)  # the planted Tatoeba copy was removed
    report = (tmp_path / "study/report/report.md").read_text(encoding="utf-8")
    assert "Pre-declared in the study config: task **panx**, metric **f1**, group **all held-out**" in report
    tasks = report.split("\n## Tasks\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in tasks.splitlines() if line.startswith("| panx") or line.startswith("| xnli")]
    assert len(rows) == 2 and "| primary |" in rows[0], tasks
    # XNLI has sw only among the targets (described: fewer than 4); every other target is named, with the reason.
    assert "| described | 1 | yo, my, qu |" in rows[1], rows[1]
    assert "- yo: not among XTREME-R's xnli languages" in report
    assert "## panx — f1 per language" in report and "## xnli — accuracy per language" in report
