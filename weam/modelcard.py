"""Hugging Face model cards for every model weam exports (``README.md`` beside the weights).

A card says what a person loading ``pretrain/<condition>/seed<k>/model`` needs to know: the base model,
the objective and its settings, the languages and their families, the token budget and what was
trained, the alignment engine, the study/condition/run ids, and evaluation results once known. The
metadata block holds ``model-index`` (one entry per task average and per language), so the hub and
``huggingface_hub.ModelCard`` read the results; weam's own facts sit under the ``weam`` key, from
which the text is rendered again whenever results are added (:func:`record_eval_results`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from weam.core.manifest import atomic_write_text

CARD_NAME = "README.md"
def _alignment_engine(alignment: Path | None) -> str | None:
    """The engine the align stage recorded in its manifest beside the alignment file."""
    if alignment is None:
        return None
    manifest = Path(alignment).parent / "manifest.json"
    try:
        config = json.loads(manifest.read_text(encoding="utf-8")).get("config", {})
    except (OSError, json.JSONDecodeError):
        return "unknown (no align manifest beside the alignment file)"
    engine = config.get("resolved_engine") or config.get("engine")
    symmetrize = config.get("symmetrize") or config.get("symmetrization")
    return f"{engine} ({symmetrize})" if engine and isinstance(symmetrize, str) else engine


def training_facts(config, counts: dict[str, Any], run_id: str | None = None,
                   parent_run_id: str | None = None) -> dict[str, Any]:
    """What the card records about a pre-training run (``config``: a weam.training.config.PretrainConfig)."""
    from weam.core.languages import get_language
    from weam.core.tracking import TAG_CONDITION, TAG_SEED, TAG_STUDY

    data, objective, optim, parallel, logging = (config.data, config.objective, config.optim, config.parallel,
                                                 config.logging)
    languages: list[str] = []
    for pair in data.pairs:
        for code in (pair.src, pair.tgt):
            if code not in languages:
                languages.append(code)
    families = {}
    for code in languages:
        try:
            families[code] = get_language(code).family
        except Exception:  # a code outside the registry still gets a card
            families[code] = "unknown"
    # the objective's own options only (weam's for weam, word_aligned's for word_aligned)
    settings = objective.model_dump(mode="json", include={"mask_prob", "masking", objective.name})
    return {
        "base_model": config.model, "tokenizer": config.tokenizer, "objective": objective.name,
        "objective_settings": settings,
        "optimisation": {"lr": optim.lr, "weight_decay": optim.weight_decay, "warmup_ratio": optim.warmup_ratio,
                         "batch_size": data.batch_size, "max_seq_len": data.max_seq_len,
                         "precision": parallel.precision, "zero_stage": parallel.zero_stage, "seed": config.seed},
        "sampling": data.sampling.model_dump(mode="json"),
        "pairs": [{"pair": f"{p.src}-{p.tgt}", "src_file": str(p.src_file), "tgt_file": str(p.tgt_file),
                   "alignment_engine": _alignment_engine(p.alignment)} for p in data.pairs],
        "languages": languages, "families": families,
        "token_budget": data.token_budget, "max_steps": optim.max_steps,
        "trained": {key: counts.get(key) for key in ("steps", "tokens", "tokens_per_pair", "examples", "world_size")},
        "study": logging.tags.get(TAG_STUDY), "condition": logging.tags.get(TAG_CONDITION),
        "seed_tag": logging.tags.get(TAG_SEED), "run_name": logging.run_name,
        "mlflow_run_id": run_id, "mlflow_parent_run_id": parent_run_id,
    }


def write_model_card(model_dir: str | Path, config, counts: dict[str, Any], run_id: str | None = None,
                     parent_run_id: str | None = None) -> Path:
    """Write ``<model_dir>/README.md`` for a finished pre-training run (results added later by eval)."""
    facts = training_facts(config, counts, run_id, parent_run_id)
    return _save(Path(model_dir), facts, results=[])


def record_eval_results(model_dir: str | Path, spec, result: dict[str, Any]) -> bool:
    """Add (or replace) one XTREME-R task's results in a weam model card; False when there is none.

    ``spec``: the task's :class:`weam.eval.tasks.TaskSpec`; ``result``: what ``weam.eval.api.combine`` returns.
    """
    card_path = Path(model_dir) / CARD_NAME
    if not card_path.is_file():
        return False
    from huggingface_hub import ModelCard

    try:
        card = ModelCard.load(card_path)
    except Exception:  # a README that is not a model card: not ours to rewrite
        return False
    facts = card.data.to_dict().get("weam")
    if not isinstance(facts, dict):
        return False  # a card someone else wrote: leave it alone
    results = [r for r in facts.get("results", []) if r["task"] != spec.name]
    metric = spec.score
    rows = [{"task": spec.name, "title": spec.title, "kind": spec.kind.name, "dataset": spec.hf.id if getattr(spec, "hf", None) else "google/xtreme",
             "config": "avg", "split": result.get("split", "test"), "metric": metric, "value": result.get("avg")}]
    for lang, metrics in sorted(result.get("per_language", {}).items()):
        rows.append({**rows[0], "config": lang, "value": spec.score_of(metrics)})
    results.extend(row for row in rows if row["value"] is not None)
    _save(Path(model_dir), facts, results)
    return True


def _task_type(kind: str) -> str:
    """A results row's kind as a Hugging Face task type (model-index ``task.type``)."""
    from weam.eval.kinds import KINDS

    return getattr(KINDS.get(kind), "hf_task_type", "other")


def _eval_results(results: list[dict[str, Any]], model_name: str):
    from huggingface_hub import EvalResult

    return [EvalResult(task_type=_task_type(r["kind"]), task_name=f"{r['title']} (zero-shot)",
                       dataset_type=r["dataset"], dataset_name=f"XTREME-R {r['title']}", dataset_config=r["config"],
                       dataset_split=r.get("split", "test"), metric_type=r["metric"],
                       metric_name=f"{r['metric']} ({r['config']})",
                       metric_value=round(float(r["value"]), 4)) for r in results]


def _save(model_dir: Path, facts: dict[str, Any], results: list[dict[str, Any]]) -> Path:
    from huggingface_hub import ModelCard, ModelCardData

    facts = {**facts, "results": results}
    name = _model_name(facts)
    base = facts["base_model"]
    data = ModelCardData(
        # a copy: a list shared with the `weam` block would be written as a YAML anchor (&id001)
        model_name=name, language=list(facts["languages"]), library_name="transformers", pipeline_tag="fill-mask",
        # base_model must be a hub id; a preset or a local folder is named in the text only
        base_model=base if _is_hub_id(base) else None,
        tags=["weam", "intermediate-pretraining", f"objective:{facts['objective']}", "xtreme-r",
              *sorted({f"family:{family}" for family in facts["families"].values()})],
        eval_results=_eval_results(results, name) or None, weam=facts,
    )
    metadata = data.to_yaml()
    if not results:  # the model-index is there from the start; eval fills it in
        metadata += f"\nmodel-index:\n- name: {json.dumps(name)}\n  results: []"
    card = ModelCard(f"---\n{metadata}\n---\n\n{_body(facts, results)}")
    path = model_dir / CARD_NAME
    atomic_write_text(path, str(card))
    return path


def _is_hub_id(model: str) -> bool:
    return not model.startswith("preset:") and not Path(model).exists() and model.count("/") <= 1


def _model_name(facts: dict[str, Any]) -> str:
    parts = [facts.get("study") or "weam", facts.get("condition"), facts["objective"],
             f"seed{facts['optimisation']['seed']}"]
    return "-".join(str(part) for part in parts if part)


def _body(facts: dict[str, Any], results: list[dict[str, Any]]) -> str:
    trained = facts["trained"]
    families = ", ".join(f"{code} ({family})" for code, family in facts["families"].items())
    lines = [
        f"# {_model_name(facts)}",
        "",
        f"`{facts['base_model']}` after intermediate pre-training with the **{facts['objective']}** objective "
        f"on English–X parallel data ({', '.join(p['pair'] for p in facts['pairs'])}), made by weam for "
        "zero-shot cross-lingual transfer to XTREME-R.",
        "",
        "## Training",
        "",
        f"- Base model: `{facts['base_model']}`" + (f" (tokenizer `{facts['tokenizer']}`)" if facts["tokenizer"] else ""),
        f"- Objective: `{facts['objective']}`, settings: `{json.dumps(facts['objective_settings'], sort_keys=True)}`",
        f"- Optimisation: `{json.dumps(facts['optimisation'], sort_keys=True)}`; pair sampling "
        f"`{json.dumps(facts['sampling'], sort_keys=True)}`",
        f"- Languages and families: {families}",
        f"- Token budget: {_number(facts['token_budget'])} training tokens (both sides counted)"
        + (f", step limit {facts['max_steps']}" if facts["max_steps"] else ""),
        f"- Trained: {_number(trained.get('steps'))} steps, {_number(trained.get('tokens'))} tokens, "
        f"{_number(trained.get('examples'))} examples on {_number(trained.get('world_size'))} process(es); "
        f"tokens per pair `{json.dumps(trained.get('tokens_per_pair'), sort_keys=True)}`",
        "",
        "| pair | alignment engine | source file | target file |",
        "|---|---|---|---|",
        *(f"| {p['pair']} | {p['alignment_engine'] or 'none (no alignments)'} | `{p['src_file']}` | `{p['tgt_file']}` |"
          for p in facts["pairs"]),
        "",
        "## Provenance",
        "",
        f"- Study: {facts.get('study') or 'none'}; condition: {facts.get('condition') or 'none'}; "
        f"run name: {facts.get('run_name') or 'none'}",
        f"- MLflow run id: {facts.get('mlflow_run_id') or 'none'}; parent run id: "
        f"{facts.get('mlflow_parent_run_id') or 'none'}",
        "",
        "## Evaluation",
        "",
    ]
    if results:
        lines += ["| task | split | language | metric | value |", "|---|---|---|---|---|",
                  *(f"| {r['title']} | {r.get('split', 'test')} | {r['config']} | {r['metric']} | {float(r['value']):.2f} |"
                    for r in results)]
    else:
        lines.append("Not evaluated yet (`weam eval` adds the results here and to the model-index).")
    lines += ["", "## Use", "", "```python", "from transformers import AutoModelForMaskedLM, AutoTokenizer",
              'model = AutoModelForMaskedLM.from_pretrained("path/to/this/folder")', "```", ""]
    return "\n".join(lines)


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else ("none" if value is None else str(value))
