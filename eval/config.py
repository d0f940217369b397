"""The eval stage's one config (``weam eval --config configs/eval/*.yaml --set key=value``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from weam.config import StrictModel
from weam.tracking import TrackingConfig


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


class EvalConfig(StrictModel):
    """Zero-shot XTREME-R evaluation: fine-tune on English, select on English dev, predict each language."""

    tasks: list[str] = ["tatoeba"]
    """XTREME-R task ids (xnli, xcopa, udpos, panx, xquad, mlqa, tydiqa, mewslix, lareqa, tatoeba)."""
    langs: list[str] | None = None
    """Target languages; None: each task's XTREME-R languages (a task skips languages it lacks)."""
    data_dir: Path | None = None
    """Root of XTREME's download layout (what scripts/download_data.sh builds: xnli/, panx/, tatoeba/ …)."""
    hf_datasets: dict[str, str] = {}
    """Task (or task.split) → Hugging Face dataset 'id[:config]' ({lang} in config) or a local
    .jsonl/.json/.parquet/.csv pattern with {lang}/{split}; read with datasets.load_dataset instead of
    from data_dir (eval.data lists the columns each task kind needs)."""
    hf_columns: dict[str, dict[str, str]] = {}
    """Task → {our column: the dataset's column}, e.g. xnli: {sentence1: premise, sentence2: hypothesis}."""
    split: str = "test"
    """Target-language split to evaluate: test or dev. (XTREME's download strips most test labels:
    unlabeled files still get predictions, scored later with `weam eval score`.)"""
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
    """Tatoeba: index into hidden_states (0 = embeddings). None: round(2/3 × layers), which is
    XTREME's layer 8 for 12-layer models."""
    tatoeba_after_squad: bool = False
    """Tatoeba as XTREME-R runs it (run_tatoeba.sh): embed with the encoder after SQuAD v1.1 fine-tuning
    (xquad's data and settings, one run per seed). False: the pre-trained encoder itself (XTREME)."""
    eval_every_epoch: bool = True
    """Model selection: evaluate on English dev after each epoch and keep the best (XTREME protocol)."""
    device: str = "auto"
    """auto | cpu | cuda."""
    out_dir: Path = Path("eval-out")
    """Results: <out_dir>/<task>/results.json, cells <out_dir>/<task>/seed<k>/<lang>.json."""
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    """MLflow: each (model, task, seed) is a run nested under the given parent."""

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, tasks: list[str]) -> list[str]:
        from eval.tasks import get_task
        from weam.errors import WeamError

        try:
            return [get_task(t).name for t in tasks]
        except WeamError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("split")
    @classmethod
    def _split(cls, split: str) -> str:
        if split not in ("test", "dev"):
            raise ValueError("split must be 'test' or 'dev'")
        return split
