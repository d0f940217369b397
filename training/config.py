"""The pre-training stage's typed config (:class:`PretrainConfig`) and the rendezvous of one
process (:class:`DistributedEnv`).

Defaults follow WEAM (Yang et al. 2021, arXiv 2106.01732): mask probability 0.3, λ = 1,
lr 5e-5, batch 32. Every choice the paper leaves open is a field here, documented where it is
declared.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from weam.config import StrictModel
from weam.tracking import TrackingConfig

Objective = Literal["mlm", "tlm", "word_aligned", "weam"]


class PairData(StrictModel):
    """One language pair: a Moses pair of files (words separated by spaces) and its alignment."""

    src: str
    """Source language code (the pivot, usually ``en``)."""
    tgt: str
    """Target language code."""
    src_file: Path
    """Source side, one sentence per line, words separated by single spaces."""
    tgt_file: Path
    """Target side, line-parallel with ``src_file``."""
    alignment: Path | None = None
    """Pharaoh ``i-j`` word links, one line per pair (the align stage's ``alignment.txt``). Needed
    by ``word_aligned`` and ``weam``; checked against the corpus (line count, indices in range)
    before training starts."""

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


class WeamOptions(StrictModel):
    """How WEAM's cross-lingual prediction is built (the choices the paper leaves to the code)."""

    input: Literal["single", "pair"] = "single"
    """``single``: the model sees one side at a time and predicts, for each masked token, its own
    token and its aligned word in the other (unseen) language: the paper's set-up, where the
    alignment is prior knowledge rather than visible context. ``pair``: the two sides are
    concatenated as in TLM and masked jointly."""
    multi_token: Literal["all", "first"] = "all"
    """Targets of a masked token aligned to a word of several subword tokens (or to several words):
    ``all``: the cross-lingual loss averages cross-entropy over every aligned token (a uniform soft
    target); ``first``: only the first subword of each aligned word."""
    unaligned: Literal["skip", "self"] = "skip"
    """A masked token with no alignment: ``skip`` leaves it out of L_cross (it still counts in
    L_mlm); ``self`` uses its own token as the cross-lingual target."""


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


class PretrainConfig(StrictModel):
    """Intermediate pre-training of an encoder on (aligned) parallel data under DeepSpeed."""

    model: str = "bert-base-multilingual-cased"
    """Starting encoder: an HF directory or hub id, or ``preset:tiny`` / ``preset:small`` /
    ``preset:mbert-base`` to build a fresh one from weam.modeling (needs ``tokenizer``)."""
    tokenizer: str | None = None
    """HF tokenizer directory or id; None: the model's own."""
    objective: Objective = "weam"
    """``mlm``: masked LM on each side alone; ``tlm``: the pair concatenated and masked jointly
    (XLM); ``word_aligned``: MLM plus a contextual word-alignment loss pulling each aligned target
    token's representation to its source token's (Cao et al. 2020; the source side, the pivot, is
    the detached anchor instead of a frozen copy of the model); ``weam``: L_mlm + λ·L_cross."""
    pairs: list[PairData] = []
    """Training data, one entry per language pair."""
    token_budget: int | None = Field(None, gt=0)
    """Total training tokens (non-padding, special tokens included). The last step is filled only
    with the sentence pairs that still fit, so training ends under the budget by less than one
    pair; the per-pair counts land in manifest.json."""
    max_steps: int | None = Field(None, gt=0)
    """Stop after this many optimizer steps (whichever of budget and steps comes first)."""
    sampling: SamplingConfig = SamplingConfig()
    """How language pairs are mixed."""
    mask_prob: float = Field(0.3, gt=0, lt=1)
    """Share of (non-special) tokens masked (WEAM: 0.3)."""
    cross_weight: float = Field(1.0, ge=0)
    """λ: weight of WEAM's cross-lingual loss, or of the word-alignment loss of ``word_aligned``."""
    weam: WeamOptions = WeamOptions()
    """WEAM's cross-lingual prediction options."""
    masking: MaskingConfig = MaskingConfig()
    """Masking options shared by every objective."""
    lr: float = Field(5e-5, gt=0)
    """Peak learning rate (AdamW)."""
    weight_decay: float = Field(0.01, ge=0)
    """AdamW weight decay."""
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    """Share of the planned steps with linear warm-up; the rate then decays linearly to 0 at the
    planned end (max_steps, or the budget divided by the tokens the first 8 batches pack)."""
    batch_size: int = Field(32, gt=0)
    """Sequences (packed rows of max_seq_len) per optimizer step, over all ranks."""
    micro_batch_size: int | None = Field(None, gt=0)
    """Sequences per rank per forward pass; None: batch_size / world size (no accumulation).
    Gradient accumulation = batch_size / (micro_batch_size × world size)."""
    max_seq_len: int = Field(128, ge=16)
    """Packed sequence length; longer sentences are truncated."""
    seed: int = 0
    """Seeds initialisation (presets), pair sampling, masking and dropout."""
    zero_stage: Literal[0, 1, 2, 3] = 1
    """DeepSpeed ZeRO stage."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """Training precision (bf16 on recent GPUs; fp32 is the CPU default)."""
    gradient_clipping: float = Field(1.0, ge=0)
    """Clip the global gradient norm (0: off)."""
    activation_checkpointing: bool = False
    """Recompute activations in the backward pass (HF gradient checkpointing): less memory, ~30 %
    more compute."""
    checkpoint_every: int = Field(500, gt=0)
    """Save a DeepSpeed checkpoint every N steps (and at the end)."""
    keep_checkpoints: int = Field(2, ge=1)
    """Checkpoints kept on disk (older ones are deleted after a newer one is complete)."""
    log_every: int = Field(10, gt=0)
    """Log metrics every N steps."""
    cpu_peak_flops: float = Field(1e11, gt=0)
    """Peak FLOP/s of one CPU process, for MFU on CPU (GPUs use a table of bf16 peaks)."""
    out_dir: Path = Path("pretrain-out")
    """Output: ``model/`` (HF export), ``checkpoints/``, ``manifest.json``."""
    deepspeed_overrides: dict[str, Any] = {}
    """Raw DeepSpeed config keys merged over the generated config (nested mappings merge)."""
    tracking: TrackingConfig = TrackingConfig()
    """MLflow. With uri None the run goes to the nearest ``mlflow.db`` in out_dir or its parents
    (a study's work directory holds one), else to ``<out_dir>/mlflow.db``."""
    run_name: str | None = None
    """MLflow run name; None: ``pretrain-<objective>-<out_dir name>``."""
    parent_run_id: str | None = None
    """MLflow parent run (the study's condition run); the pretrain() argument wins."""
    tags: dict[str, str] = {}
    """Extra MLflow tags; merged under the pretrain() argument's."""

    @model_validator(mode="after")
    def _check(self) -> PretrainConfig:
        if self.model.startswith("preset:") and not self.tokenizer:
            raise ValueError(f"model {self.model!r} is built from a preset and needs 'tokenizer'")
        if self.objective in ("word_aligned", "weam"):
            missing = [p.name for p in self.pairs if p.alignment is None]
            if missing:
                raise ValueError(f"objective {self.objective!r} needs 'alignment' for pairs {', '.join(missing)}")
        if self.token_budget is None and self.max_steps is None:
            raise ValueError("set token_budget or max_steps (or both)")
        names = [p.name for p in self.pairs]
        if len(set(names)) != len(names):
            raise ValueError(f"language pairs repeat: {names}")
        return self

    def input_mode(self) -> Literal["single", "pair"]:
        """Whether the model sees one side at a time or the concatenated pair."""
        if self.objective == "tlm":
            return "pair"
        if self.objective == "weam":
            return self.weam.input
        return "single"

    def fingerprint_config(self) -> dict[str, Any]:
        """What decides whether a finished run is still up to date (not tracking or naming)."""
        data = self.model_dump(mode="json", exclude={"tracking", "run_name", "parent_run_id", "tags", "log_every"})
        return data


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
