"""The eval stage's one config (``weam eval --config configs/eval/*.yaml --set key=value``)."""

from __future__ import annotations

from pathlib import Path

from typing import Literal

from pydantic import Field, field_validator

from weam.core.config import StrictModel, not_result
from weam.core.tracking import TrackingConfig


class HyperParams(StrictModel):
    """Per-task overrides of XTREME-R's recommended fine-tuning (unset keys keep the registry's)."""

    learning_rate: float | None = None
    """Peak learning rate (AdamW, linear decay)."""
    epochs: float | None = None
    """Passes over the English training data."""
    batch_size: int | None = None
    """Effective training batch size."""
    max_seq_len: int | None = None
    """Maximum tokens per input."""
    warmup_steps: int | None = None
    """Linear warm-up steps."""
    weight_decay: float | None = None
    """AdamW weight decay."""
    max_steps: int | None = None
    """Stop after this many optimizer steps (tests and smoke runs); None: run the epochs."""
    max_train_examples: int | None = None
    """Use only the first N English training examples; None: all."""
    save_steps: int | None = None
    """English-dev model selection every this many optimizer steps (tasks whose XTREME script keeps the
    best checkpoint); None: the train script's --save_steps (registry)."""


class EvalConfig(StrictModel):
    """Zero-shot XTREME-R evaluation: fine-tune on English, select on English dev, predict each language."""

    tasks: list[str] = ["tatoeba"]
    """XTREME-R task ids (xnli, xcopa, udpos, panx, xquad, mlqa, tydiqa, mewslix, lareqa, tatoeba)."""
    langs: list[str] | None = None
    """Target languages; None: each task's XTREME-R languages (a task skips languages it lacks)."""
    data_dir: Path | None = None
    """Root of XTREME's download layout (what scripts/download_data.sh builds: xnli/, panx/, tatoeba/ …)."""
    hf_datasets: dict[str, str] = {}
    """Task (or task.split) → 'hf' (the registry's Hugging Face dataset, e.g. facebook/xnli), a hub
    'id[:config]' ({lang}/{code} in config), or a local .jsonl/.json/.parquet/.csv pattern with
    {lang}/{split} in the dataset's own schema; read with datasets.load_dataset instead of data_dir."""
    hf_columns: dict[str, dict[str, str]] = {}
    """Task → {our column: the dataset's column}; default: the registry's schema of the task's dataset."""
    split: str = "labelled"
    """Target-language split: 'labelled' (per task the first of test, dev whose gold labels cover the
    languages — what a study scores), 'test' (the leaderboard split: predictions for `weam eval score`),
    or 'dev'. A split the download carries no labels for is predicted, never scored."""
    labels_dir: Path | None = None
    """Gold labels in the leaderboard layout (<task>/test-<lang>.<ext>, as evaluate.py reads them): test
    cells with a label file here are scored against it."""
    seeds: list[int] = Field(default=[1], min_length=1)
    """Fine-tuning seeds; each (task, seed) is one MLflow run. Tasks without fine-tuning use the first."""
    hyperparams: dict[str, HyperParams] = {}
    """Task → overrides of the registry's fine-tuning settings."""
    train_batch_size: int | None = None
    """Per-step batch size on the device (gradient accumulation makes up the effective batch)."""
    eval_batch_size: int = 64
    """Batch size for prediction and embedding."""
    max_seq_len: int | None = None
    """Caps every task's max sequence length (None: the registry's per-task value)."""
    retrieval_layer: int | None = None
    """Tatoeba: index into hidden_states (0 = embeddings, -1 = last layer). None: XTREME's rule
    (run_tatoeba.sh): hidden_states[8] of a 12-layer model, [14] of a 24-layer one, else round(2/3 × layers)."""
    retrieval_pooling: Literal["mean", "cls"] = "mean"
    """Tatoeba sentence vector: mean over all tokens incl. [CLS]/[SEP] (evaluate_retrieval.py's default),
    or the first token. multilingual-e5: retrieval_layer=-1 with mean."""
    tatoeba_encoder: Literal["squad", "pretrained"] = "squad"
    """Tatoeba's encoder: 'squad' = XTREME-R (run_tatoeba.sh embeds with the SQuAD v1.1 fine-tuned
    model; xquad's data and settings, one run per seed); 'pretrained' = zero-shot, no fine-tuning (XTREME)."""
    dual_encoder_pooling: Literal["pooler", "cls", "mean"] = "pooler"
    """Mewsli-X/LAReQA vector: the pooler output (XTREME's BertForRetrieval), the raw [CLS] vector, or
    the attention-masked mean of the last layer; L2-normalised, logits scaled by a learnable factor
    initialised at 100."""
    device: str = "auto"
    """auto | cpu | cuda."""
    out_dir: Path = not_result(Path("eval-out"))
    """Results: <out_dir>/<task>/results.json, cells <out_dir>/<task>/seed<k>/<lang>.json."""
    tracking: TrackingConfig = not_result(default_factory=TrackingConfig)
    """MLflow: each (model, task, seed) is a run nested under the given parent."""

    def require_labelled(self, langs: list[str], task: str | None = None) -> str:
        """The split ``task`` (default: the first of ``tasks``; a study names its primary endpoint's) is
        scored on for ``langs``; a WeamError naming task, split and languages when the data carry no
        gold labels for some of them."""
        from weam.eval.tasks import get_task, labelled_split

        primary = get_task(task or self.tasks[0])
        hf = any(f"{primary.name}{suffix}" in self.hf_datasets for suffix in ("", ".test", ".dev"))
        return labelled_split(primary.name, self.split, langs, self.labels_dir, hf=hf)

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, tasks: list[str]) -> list[str]:
        from weam.eval.tasks import get_task
        from weam.core.errors import WeamError

        try:
            return [get_task(t).name for t in tasks]
        except WeamError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("split")
    @classmethod
    def _split(cls, split: str) -> str:
        if split not in ("labelled", "test", "dev"):
            raise ValueError("split must be 'labelled', 'test' or 'dev'")
        return split
