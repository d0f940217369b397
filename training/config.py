"""The pre-training stage's typed config, one component per concern (torchtitan style), the
table of objectives every other module reads, and the rendezvous of one process.

:class:`PretrainConfig` holds the run's identity (``model``, ``tokenizer``, ``seed``,
``out_dir``) and six components, each handed to the function that needs it:

=============  =========================  ==================================================
key            class                      read by
=============  =========================  ==================================================
``data``       :class:`DataConfig`        training/data.py (pairs, batches, packing, budget)
``objective``  :class:`ObjectiveConfig`   training/objectives.py (masking, losses)
``optim``      :class:`OptimConfig`       training/distributed.py (AdamW, schedule, steps)
``parallel``   :class:`ParallelConfig`    training/distributed.py (ZeRO, precision, micro-batch)
``checkpoint`` :class:`CheckpointConfig`  training/api.py (save cadence)
``logging``    :class:`LoggingConfig`     training/api.py (train log, MLflow, MFU)
=============  =========================  ==================================================

Every component validates itself on construction and raises; nothing warns. Fields that do
not change the trained model are marked ``Field(..., json_schema_extra={"affects_result":
False})`` and left out of :meth:`PretrainConfig.fingerprint_config`.

Defaults follow WEAM (Yang et al. 2021, arXiv 2106.01732) as this project cites it: mask
probability 0.3, λ = 1, lr 5e-5, batch 32. Every choice a source leaves open is a field here,
documented where it is declared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from weam.core.config import StrictModel, not_result, result_config
from weam.core.languages import get_language
from weam.core.ports import free_port
from weam.core.tracking import TrackingConfig

Objective = Literal["mlm", "tlm", "word_aligned", "weam", "partner_id_prediction"]


@dataclass(frozen=True)
class ObjectiveSpec:
    """One row of the objective table: what the data path, the loss and the meter need to know."""

    name: str
    input: Literal["single", "pair", "option"]
    """``single``: one side per sequence; ``pair``: ``[CLS] src [SEP] tgt [SEP]``; ``option``:
    ``objective.weam.input`` decides."""
    needs_alignments: bool
    """Every pair must name its word alignment."""
    links: Literal["subwords", "last_subword_one_to_one"]
    """How word links become token links: every subword of one word × every subword of the other,
    or (Cao et al.) only one-to-one word links, between the words' last subwords."""
    aux_losses: tuple[str, ...]
    """Loss terms besides L_mlm, as keys of the model's output and metrics ``train/loss_<key>``."""
    source: str
    """The method's primary source."""
    output_passes: int = 1
    """Times the MLM output layer runs at each masked position (FLOPs, MFU): 2 for ``weam``, whose
    L_cp predicts every masked token again from its exchanged state (objectives.weam_exchange_loss)."""


OBJECTIVES: dict[str, ObjectiveSpec] = {
    "mlm": ObjectiveSpec("mlm", "single", False, "subwords", (), "Devlin et al. 2019 (BERT MLM), each side alone"),
    "tlm": ObjectiveSpec("tlm", "pair", False, "subwords", (), "Conneau & Lample 2019 (XLM TLM)"),
    "word_aligned": ObjectiveSpec("word_aligned", "single", True, "last_subword_one_to_one", ("align", "reg"),
                                  "Cao, Kitaev & Klein 2020 (ICLR), multilingual alignment of contextual vectors"),
    "weam": ObjectiveSpec("weam", "pair", True, "subwords", ("cross",),
                          "Yang et al. 2021 (arXiv 2106.01732), Figure 1: L_mp + λ·L_cp on the word-exchanged pair",
                          output_passes=2),
    "partner_id_prediction": ObjectiveSpec(
        "partner_id_prediction", "option", True, "subwords", ("cross",),
        "ablation (this project's earlier reading of WEAM): each masked token's own state predicts its aligned "
        "partner's ids"),
}
"""The objectives, declared once; config validation, the data path, the loss and the meter read it."""


class PairData(StrictModel):
    """One language pair: a Moses pair of files (words separated by spaces) and its alignment."""

    src: str
    """Source language code (the pivot, usually ``en``)."""
    tgt: str
    """Target language code."""
    src_file: Path = not_result()
    """Source side, one sentence per line, words separated by single spaces. (The three paths are
    left out of the fingerprint: the files' contents are inputs, by hash.)"""
    tgt_file: Path = not_result()
    """Target side, line-parallel with ``src_file``."""
    alignment: Path | None = not_result(None)
    """Pharaoh ``i-j`` word links, one line per pair (the align stage's ``alignment.txt``). Needed
    by ``word_aligned`` and ``weam``; checked against the corpus (line count, indices in range)
    before training starts."""

    @field_validator("src", "tgt")
    @classmethod
    def _known_language(cls, value: str) -> str:
        return get_language(value).code  # UnknownLanguageError (a ValueError) names close matches

    @property
    def name(self) -> str:
        return f"{self.src}-{self.tgt}"


class SamplingConfig(StrictModel):
    """How the next sentence pair's language pair is drawn."""

    rule: Literal["proportional", "temperature", "uniform"] = "proportional"
    """``proportional``: p(pair) ∝ its sentence count; ``temperature``: p ∝ count^alpha (XLM's
    rule; alpha < 1 up-samples small pairs); ``uniform``: every pair equally often (equal token
    budget per pair, up to sentence-length differences)."""
    alpha: float = Field(0.5, gt=0, le=1)
    """Exponent of the ``temperature`` rule."""


class DataConfig(StrictModel):
    """Which sentence pairs are read and how they become batches (training/data.py)."""

    pairs: list[PairData] = []
    """Training data, one entry per language pair."""
    token_budget: int | None = Field(None, gt=0)
    """Total training tokens (non-padding, special tokens included). The last step is filled only
    with the sentence pairs that still fit, so training ends under the budget by less than one
    pair; the per-pair counts land in manifest.json."""
    budget_unit: Literal["tokens", "content"] = "tokens"
    """What token_budget counts: ``tokens``, every non-padding token of the rows ([CLS]/[SEP]
    included); ``content``, only the two sides' subword tokens (what a study matches across runs)."""
    sampling: SamplingConfig = SamplingConfig()
    """How language pairs are mixed."""
    batch_size: int = Field(32, gt=0)
    """Sequences per optimizer step, over all ranks. Single-side input: rows come in twos (a pair's
    source side, then its target side), so 32 rows hold 16 pairs without packing."""
    max_seq_len: int = Field(128, ge=16)
    """Longest sequence; longer sentences are truncated. Batches are padded only to their longest
    row (rounded up to a multiple of 8)."""
    packing: bool = False
    """False (default): one unit per row, as XLM's TLM and Cao et al. train: a pair (pair input)
    or one side of a pair (single input). True: several whole units share a row up to max_seq_len,
    for throughput (best fit over the batch's rows, training/data.py RowPacker; over 90 % of the
    row slots hold tokens on the demo's and the benchmark's data); each unit's positions start at
    0 and a block-diagonal mask keeps each unit's attention inside the unit, as HF's
    DataCollatorWithFlattening does with varlen attention."""
    positions: Literal["reset", "continue"] = "reset"
    """Pair input: ``reset`` (XLM, ``concat_batches(..., reset_positions=True)``): the target side's
    positions restart, its first token gets position 1 as a sentence's first token does after
    [CLS]; ``continue``: positions run on across the pair, as in BERT's sentence-pair input."""
    language_input: Literal["token_type", "none"] = "token_type"
    """Pair input: how the encoder learns which side is which language. XLM adds a language
    embedding per token; BERT-style models (mBERT) have none, so ``token_type`` stands in: the
    pivot side gets segment 0, the other side segment 1 (it marks the side, not which of the
    languages; needs ``type_vocab_size`` ≥ 2, XLM-R has 1). ``none``: every token segment 0.
    Single-side rows always have segment 0, as downstream tasks feed them."""

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        names = [p.name for p in self.pairs]
        if len(set(names)) != len(names):
            raise ValueError(f"language pairs repeat: {names}")
        return self


class MaskingConfig(StrictModel):
    """Which tokens are masked and how they are corrupted (BERT's 80/10/10 rule)."""

    alignment_aware: bool = False
    """Mask aligned tokens preferentially (an unaligned token has weight 1, an aligned one
    ``aligned_weight``); the number masked per sequence stays mask_prob × its tokens."""
    aligned_weight: float = Field(3.0, ge=1)
    """Sampling weight of aligned tokens under alignment-aware masking."""
    replace_mask: float = Field(0.8, ge=0, le=1)
    """Share of masked tokens replaced by [MASK]."""
    replace_random: float = Field(0.1, ge=0, le=1)
    """Share replaced by a random token (the rest stay unchanged)."""

    @model_validator(mode="after")
    def _check(self) -> MaskingConfig:
        if self.replace_mask + self.replace_random > 1:
            raise ValueError(f"replace_mask + replace_random = {self.replace_mask + self.replace_random} exceeds 1")
        return self


class WeamOptions(StrictModel):
    """WEAM's cross-lingual term. ``cross_weight`` (λ) serves both ``weam`` (Figure 1, spec in
    weam.training.objectives.weam_exchange_loss) and the ablation ``partner_id_prediction``; the
    other four fields are options of the ablation alone (spec in
    weam.training.objectives.partner_id_loss) and are refused with ``weam``."""

    cross_weight: float = Field(1.0, ge=0)
    """λ in L_mp + λ·L_cp (WEAM: 1)."""
    input: Literal["single", "pair"] = "single"
    """``single``: the model sees one side at a time and predicts, for each masked token, its own
    token and its aligned word in the other (unseen) language. ``pair``: both sides in one
    sequence as in TLM; aligned counterparts of masked tokens are masked too (whole alignment
    groups), so the cross-lingual prediction cannot copy a visible translation."""
    multi_token: Literal["all", "first"] = "all"
    """Targets of a masked token aligned to a word of several subword tokens (or to several words):
    ``all``: the mean cross-entropy over every aligned token (a uniform soft target over the
    aligned word's subwords); ``first``: only the first subword of each aligned word."""
    unaligned: Literal["skip", "self"] = "skip"
    """A masked token with no alignment: ``skip`` leaves it out of L_cross (it still counts in
    L_mlm); ``self`` uses its own token as the cross-lingual target."""
    normalise: Literal["masked", "targeted"] = "masked"
    """Denominator of L_cross. ``masked`` (default): the number of masked tokens, the same as
    L_mlm's, so both are per-masked-token losses on one scale and λ weighs one cross-lingual
    target against one own-token target whatever share of tokens is aligned (alignment coverage
    differs by language, so this keeps λ comparable across conditions). ``targeted``: the number
    of masked tokens that have cross-lingual targets (a mean over those tokens only)."""


class WordAlignedOptions(StrictModel):
    """Cao, Kitaev & Klein 2020: L_align + reg_weight·R (+ mlm_weight·L_mlm)."""

    reg_weight: float = Field(1.0, ge=0)
    """Weight of R, which keeps the trained model's pivot-side (English) word vectors at the frozen
    copy's (Cao et al.: λ = 1)."""
    mlm_weight: float = Field(0.0, ge=0)
    """Weight of an added MLM term (Cao et al.: none, 0). Above 0, inputs are masked and masked
    words drop out of L_align and R."""


class ObjectiveConfig(StrictModel):
    """What is trained: the objective, its masking and its options (training/objectives.py)."""

    name: Objective = "weam"
    """``mlm``: masked LM on each side alone; ``tlm``: XLM's translation LM, one pair per sequence,
    target positions reset, language identity as token types (see data.language_input);
    ``word_aligned``: Cao et al. 2020, non-pivot word vectors pulled to a frozen copy's pivot
    vectors, with a regulariser on the pivot side; ``weam``: Yang et al. 2021 as their Figure 1 draws
    it, L_mp + λ·L_cp on the pair with aligned words' representations exchanged;
    ``partner_id_prediction``: the ablation, L_mlm + λ·(each masked token's own state predicting its
    aligned partner's ids)."""
    mask_prob: float = Field(0.3, gt=0, lt=1)
    """Share of (non-special) tokens masked (WEAM: 0.3; BERT and XLM use 0.15)."""
    masking: MaskingConfig = MaskingConfig()
    """Masking options shared by every objective that masks."""
    weam: WeamOptions = WeamOptions()
    """WEAM's options."""
    word_aligned: WordAlignedOptions = WordAlignedOptions()
    """Cao et al.'s options."""

    @property
    def spec(self) -> ObjectiveSpec:
        return OBJECTIVES[self.name]

    def input_mode(self) -> Literal["single", "pair"]:
        """Whether the model sees one side at a time or the concatenated pair."""
        return self.weam.input if self.spec.input == "option" else self.spec.input

    def masks_inputs(self) -> bool:
        """Cao et al. train on unmasked sentences; every other objective masks."""
        return self.name != "word_aligned" or self.word_aligned.mlm_weight > 0

    def co_masks(self) -> bool:
        """The partner-id ablation with pair input masks whole alignment groups (no visible
        counterpart to copy); Figure 1's WEAM masks the two sides independently."""
        return self.name == "partner_id_prediction" and self.input_mode() == "pair"

    @model_validator(mode="after")
    def _weam_options(self) -> ObjectiveConfig:
        defaults = WeamOptions()
        ablation_only = [key for key in ("input", "multi_token", "unaligned", "normalise")
                         if getattr(self.weam, key) != getattr(defaults, key)]
        if self.name == "weam" and ablation_only:
            keys = ", ".join(f"objective.weam.{key}" for key in ablation_only)
            raise ValueError(f"{keys}: options of the ablation 'partner_id_prediction', not of 'weam' "
                             "(Figure 1: pair input, independent masking, every masked token predicted)")
        return self


class OptimConfig(StrictModel):
    """AdamW, its learning-rate schedule and the step limit (training/distributed.py)."""

    lr: float = Field(5e-5, gt=0)
    """Peak learning rate (AdamW)."""
    weight_decay: float = Field(0.01, ge=0)
    """AdamW weight decay."""
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    """Share of the planned steps with linear warm-up; the rate then decays linearly to 0 at the
    planned end (max_steps, or the budget divided by the tokens the first 64 batches hold)."""
    gradient_clipping: float = Field(1.0, ge=0)
    """Clip the global gradient norm (0: off)."""
    max_steps: int | None = Field(None, gt=0)
    """Stop after this many optimizer steps (whichever of data.token_budget and steps comes first)."""
    plateau_window: int | None = Field(None, ge=2)
    """Stop on a plateau (None: off): after each step, once 2 × window steps are logged, stop when
    the mean loss of the last ``plateau_window`` steps is lower than that of the window before by
    less than ``plateau_min_delta`` of it (relative). The token budget or max_steps still caps the
    run; the manifest says which ended it (``stopped``). For warming up a new MLM head until it
    stops improving."""
    plateau_min_delta: float = Field(0.01, gt=0, lt=1)
    """Smallest relative improvement between two consecutive windows that keeps training."""
    freeze_layers: int = Field(0, ge=0)
    """Freeze the embeddings and the lowest N transformer layers (0: train everything); e.g. to
    warm up a new MLM head on a converted encoder without moving its lower layers."""


class ParallelConfig(StrictModel):
    """How the model is spread over devices (training/distributed.py, the only DeepSpeed module)."""

    zero_stage: Literal[0, 1, 2, 3] = 1
    """DeepSpeed ZeRO stage."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """Training precision (bf16 on recent GPUs; fp32 is the CPU default). word_aligned's frozen
    copy is kept in this dtype."""
    micro_batch_size: int | None = Field(None, gt=0)
    """Sequences per rank per forward pass; None: batch_size / world size (no accumulation).
    Gradient accumulation = batch_size / (micro_batch_size × world size). Even with single-side
    input (a pair's two rows stay in one micro-batch)."""
    activation_checkpointing: bool = False
    """Recompute activations in the backward pass (HF gradient checkpointing): less memory, ~30 %
    more compute."""
    deepspeed_overrides: dict[str, Any] = {}
    """Raw DeepSpeed config keys merged over the generated config (nested mappings merge)."""
    nodes: int = Field(1, ge=1, json_schema_extra={"affects_result": False})
    """Machines the run asks for. Above one process in all (``nodes`` × ``gpus_per_node``), a study on
    Ray (``weam study run --ray-address``) launches the run as a Kubeflow Trainer TrainJob
    (weam.training.trainjob) instead of one Ray task; ``weam pretrain run`` itself takes its world
    size from torchrun. Not in the fingerprint, like the world size today: the global batch is
    ``data.batch_size`` whatever the number of ranks."""
    gpus_per_node: int = Field(1, ge=1, json_schema_extra={"affects_result": False})
    """GPUs (= training processes) per machine: the TrainJob's ``numProcPerNode``."""


class CheckpointConfig(StrictModel):
    """When DeepSpeed checkpoints are written (resume is exact, so the cadence changes no result)."""

    every: int = Field(500, gt=0, json_schema_extra={"affects_result": False})
    """Save a DeepSpeed checkpoint every N steps (and at the end)."""
    keep: int = Field(2, ge=1, json_schema_extra={"affects_result": False})
    """Checkpoints kept on disk (older ones are deleted after a newer one is complete)."""


class LoggingConfig(StrictModel):
    """Where progress goes: train_log.jsonl every step, MLflow every log_every steps."""

    log_every: int = Field(10, gt=0, json_schema_extra={"affects_result": False})
    """Log metrics to MLflow every N steps."""
    cpu_peak_flops: float = Field(1e11, gt=0, json_schema_extra={"affects_result": False})
    """Peak FLOP/s of one CPU process, for MFU on CPU (GPUs use a table of bf16 peaks)."""
    tracking: TrackingConfig = Field(TrackingConfig(), json_schema_extra={"affects_result": False})
    """MLflow. With uri None the run goes to the nearest ``mlflow.db`` in out_dir or its parents
    (a study's work directory holds one), else to ``<out_dir>/mlflow.db``."""
    run_name: str | None = Field(None, json_schema_extra={"affects_result": False})
    """MLflow run name; None: ``pretrain-<objective>-<out_dir name>``."""
    tags: dict[str, str] = Field({}, json_schema_extra={"affects_result": False})
    """Extra MLflow tags of the run; the stage's own (weam.stage, weam.objective, a study's weam.condition,
    weam.seed …) win. The parent run is the study's, or WEAM_PARENT_RUN_ID's for a cluster job."""


# Keys of the flat config (before the split) → where they live now; an old YAML fails naming both.
MOVED = {
    "pairs": "data.pairs", "token_budget": "data.token_budget", "sampling": "data.sampling",
    "batch_size": "data.batch_size", "max_seq_len": "data.max_seq_len", "mask_prob": "objective.mask_prob",
    "masking": "objective.masking", "weam": "objective.weam", "cross_weight": "objective.weam.cross_weight",
    "lr": "optim.lr", "weight_decay": "optim.weight_decay", "warmup_ratio": "optim.warmup_ratio",
    "gradient_clipping": "optim.gradient_clipping", "max_steps": "optim.max_steps",
    "zero_stage": "parallel.zero_stage", "precision": "parallel.precision",
    "micro_batch_size": "parallel.micro_batch_size", "activation_checkpointing": "parallel.activation_checkpointing",
    "deepspeed_overrides": "parallel.deepspeed_overrides", "checkpoint_every": "checkpoint.every",
    "keep_checkpoints": "checkpoint.keep", "log_every": "logging.log_every",
    "cpu_peak_flops": "logging.cpu_peak_flops", "tracking": "logging.tracking", "run_name": "logging.run_name",
    "tags": "logging.tags",
}


class PretrainConfig(StrictModel):
    """Intermediate pre-training of an encoder on (aligned) parallel data under DeepSpeed."""

    model: str = "bert-base-multilingual-cased"
    """Starting encoder: an HF directory or hub id, or ``preset:tiny`` / ``preset:small`` /
    ``preset:mbert-base`` to build a fresh one from weam.modeling (needs ``tokenizer``)."""
    tokenizer: str | None = None
    """HF tokenizer directory or id; None: the model's own."""
    seed: int = 0
    """Seeds initialisation (presets), pair sampling, masking and dropout."""
    out_dir: Path = not_result(Path("pretrain-out"))
    """Output: ``model/`` (HF export), ``checkpoints/``, ``train_log.jsonl``, ``manifest.json``. Not part
    of the fingerprint: where a result goes does not change it."""
    data: DataConfig = DataConfig()
    """Pairs, batches, budget."""
    objective: ObjectiveConfig = ObjectiveConfig()
    """The objective and its masking."""
    optim: OptimConfig = OptimConfig()
    """Optimiser, schedule, step limit."""
    parallel: ParallelConfig = ParallelConfig()
    """ZeRO, precision, micro-batches."""
    checkpoint: CheckpointConfig = CheckpointConfig()
    """Checkpoint cadence."""
    logging: LoggingConfig = LoggingConfig()
    """Train log and MLflow."""

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            old = [key for key in data if key in MOVED]
            if old:
                where = ", ".join(f"{key} → {MOVED[key]}" for key in old)
                raise ValueError(f"flat keys of the old PretrainConfig; they moved: {where}")
            if isinstance(data.get("objective"), str):
                raise ValueError(f"objective is a section now: objective: {{name: {data['objective']}}}")
        return data

    @model_validator(mode="after")
    def _check(self) -> PretrainConfig:
        if self.model.startswith("preset:") and not self.tokenizer:
            raise ValueError(f"model {self.model!r} is built from a preset and needs 'tokenizer'")
        spec = self.objective.spec
        if spec.needs_alignments:
            missing = [p.name for p in self.data.pairs if p.alignment is None]
            if missing:
                raise ValueError(f"objective {spec.name!r} needs 'alignment' for pairs {', '.join(missing)}")
        if self.data.token_budget is None and self.optim.max_steps is None:
            raise ValueError("set data.token_budget or optim.max_steps (or both)")
        single = self.objective.input_mode() == "single"
        if single and self.data.batch_size % 2:
            raise ValueError(f"data.batch_size {self.data.batch_size} must be even with single-side input")
        if single and self.parallel.micro_batch_size and self.parallel.micro_batch_size % 2:
            raise ValueError(f"parallel.micro_batch_size {self.parallel.micro_batch_size} must be even with "
                             "single-side input (a pair's two rows stay in one micro-batch)")
        micro = self.parallel.micro_batch_size
        if micro and self.data.batch_size % micro:
            raise ValueError(f"data.batch_size {self.data.batch_size} is not a multiple of parallel.micro_batch_size "
                             f"{micro} (DeepSpeed needs batch = micro × accumulation × ranks)")
        return self

    def input_mode(self) -> Literal["single", "pair"]:
        return self.objective.input_mode()

    def fingerprint_config(self) -> dict[str, Any]:
        """What decides whether a finished run is still up to date: every field not marked
        ``affects_result: False`` (logging, tracking, checkpoint cadence, paths of files whose content
        is an input); a local model or tokenizer directory counts by its files' content
        (weam.training.inputs.stage_inputs), not by its path."""
        data = result_affecting(self)
        for name in ("model", "tokenizer"):
            source = getattr(self, name)
            if source and not source.startswith("preset:") and Path(source).is_dir():
                data[name] = "local directory"
        return data


def result_affecting(model: BaseModel) -> dict[str, Any]:
    """``model_dump(mode="json")`` without the fields marked ``affects_result: False``, at any depth
    (lists of models included): :func:`weam.core.config.result_config`, the one rule of every stage."""
    return result_config(model)


@dataclass(frozen=True)
class DistributedEnv:
    """Rendezvous of this process. The CLI fills it from torchrun's / the deepspeed launcher's /
    a Kubernetes pod's environment; library code receives it and never reads the environment."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 0
    """0: pick a free port (single process only)."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> DistributedEnv:
        world = int(environ.get("WORLD_SIZE", "1"))
        port = int(environ.get("MASTER_PORT", "0"))
        if world > 1 and not port:
            raise ValueError("WORLD_SIZE > 1 needs MASTER_PORT (and MASTER_ADDR) for the rendezvous")
        return cls(
            rank=int(environ.get("RANK", "0")),
            world_size=world,
            local_rank=int(environ.get("LOCAL_RANK", environ.get("RANK", "0"))),
            master_addr=environ.get("MASTER_ADDR", "127.0.0.1"),
            master_port=port,
        )

    def resolved(self) -> DistributedEnv:
        """With a concrete port (a free one when none was given)."""
        if self.master_port:
            return self
        return DistributedEnv(self.rank, self.world_size, self.local_rank, self.master_addr, free_port())

    @property
    def is_main(self) -> bool:
        return self.rank == 0
