"""Everything that touches DeepSpeed or torch.distributed, in one place.

The rendezvous arrives as a :class:`~weam.training.config.DistributedEnv` (filled by the CLI from
torchrun's, the deepspeed launcher's or a pod's variables). DeepSpeed reads the rendezvous from
the process environment, so :func:`session` writes the dataclass's values there and
initialises the process group (gloo on CPU, NCCL on CUDA); on exit it destroys the group, so
``pretrain`` can run again in the same process (the study runs conditions × seeds in-process).
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from weam.training.config import DistributedEnv, OptimConfig, ParallelConfig
from weam.core.config import deep_merge
from weam.core.errors import ConfigError, WeamError, writing_to
from weam.core.manifest import atomic_directory, atomic_write_text, file_sha256

LATEST = "latest"


@contextlib.contextmanager
def session(env: DistributedEnv) -> Iterator[DistributedEnv]:
    """An initialised process group for the duration of the block (reuses one that exists)."""
    import deepspeed
    import torch.distributed as torch_dist

    env = env.resolved()
    owned = not torch_dist.is_initialized()
    # init_process_group wraps sys.excepthook to prefix "[rank0]: "; a study runs many stages in one
    # process, and without restoring it a traceback carries one prefix per pre-training run.
    excepthook = sys.excepthook
    rendezvous = dict(RANK=str(env.rank), WORLD_SIZE=str(env.world_size), LOCAL_RANK=str(env.local_rank),
                      MASTER_ADDR=env.master_addr, MASTER_PORT=str(env.master_port))
    # Restored afterwards: a process that runs several sessions, or starts a child (a test, a study
    # step), must not hand a finished session's port on: the child's rendezvous would try to listen
    # on a port that may be taken by then (seen as EADDRINUSE in CI).
    environ_before = {key: os.environ.get(key) for key in rendezvous}
    if owned:
        os.environ.update(rendezvous)
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "gloo":
            skip_cpu_inference_op()
        deepspeed.init_distributed(dist_backend=backend, auto_mpi_discovery=False, verbose=False)
        if torch.cuda.is_available():
            torch.cuda.set_device(env.local_rank)
    try:
        yield env
    finally:
        if owned and torch_dist.is_initialized():
            deepspeed.comm.destroy_process_group()
        if owned:
            sys.excepthook = excepthook
            for key, value in environ_before.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        gc.collect()


def skip_cpu_inference_op() -> None:
    """On CPU, DeepSpeed's process group JIT-compiles a shared-memory all-reduce op (minutes of g++
    in a fresh environment: 170 CPU-s in CI) that only inference_all_reduce uses, which training
    never calls. Call before anything initialises DeepSpeed's communication (ours, or the HF
    Trainer's through accelerate)."""
    import deepspeed

    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


def deepspeed_config(optim: OptimConfig, parallel: ParallelConfig, batch_size: int, world_size: int,
                     planned_steps: int) -> dict[str, Any]:
    """The DeepSpeed config generated from the typed parts; ``parallel.deepspeed_overrides`` merge last."""
    micro = parallel.micro_batch_size or max(1, batch_size // world_size)
    if batch_size % (micro * world_size):
        raise ValueError(
            f"data.batch_size {batch_size} is not a multiple of parallel.micro_batch_size {micro} × world size "
            f"{world_size}"
        )
    warmup = int(planned_steps * optim.warmup_ratio)
    generated: dict[str, Any] = {
        "train_batch_size": batch_size,
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": batch_size // (micro * world_size),
        "gradient_clipping": optim.gradient_clipping,
        "zero_optimization": {"stage": parallel.zero_stage},
        "bf16": {"enabled": parallel.precision == "bf16"},
        "fp16": {"enabled": parallel.precision == "fp16", "initial_scale_power": 16},
        "optimizer": {
            "type": "AdamW",
            "params": {"lr": optim.lr, "weight_decay": optim.weight_decay, "betas": [0.9, 0.999], "eps": 1e-8,
                       "torch_adam": True},
        },
        "scheduler": {
            "type": "WarmupDecayLR",
            "params": {"warmup_min_lr": 0.0, "warmup_max_lr": optim.lr, "warmup_num_steps": max(warmup, 1),
                       "total_num_steps": max(planned_steps, warmup + 1), "warmup_type": "linear"},
        },
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    if torch.cuda.is_available():
        generated["optimizer"]["params"].pop("torch_adam")
    return deep_merge(generated, parallel.deepspeed_overrides)


def compute_dtype(ds_config: dict[str, Any]) -> torch.dtype:
    if ds_config.get("bf16", {}).get("enabled"):
        return torch.bfloat16
    if ds_config.get("fp16", {}).get("enabled"):
        return torch.float16
    return torch.float32


def check_config(parallel: ParallelConfig, optim: OptimConfig, batch_size: int, world_size: int) -> None:
    """Refuse, before any data or model is loaded, a batch layout or ``parallel.deepspeed_overrides``
    that DeepSpeed would reject only once started (or accept and fail on mid-run, e.g. a string
    where it does arithmetic)."""
    import copy

    from deepspeed.runtime.config import DeepSpeedConfig

    overrides = parallel.deepspeed_overrides
    try:
        generated = deepspeed_config(optim, parallel.model_copy(update={"deepspeed_overrides": {}}), batch_size,
                                     world_size, 1)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    _check_override_types(generated, overrides, "parallel.deepspeed_overrides")
    merged = copy.deepcopy(deep_merge(generated, overrides))
    if isinstance(merged.get("train_batch_size"), int) and merged["train_batch_size"] % world_size == 0:
        merged["train_batch_size"] //= world_size  # validated here without a process group: as one rank
    try:
        DeepSpeedConfig(merged)
    except (ValueError, TypeError, AssertionError, KeyError) as exc:
        raise ConfigError(f"parallel.deepspeed_overrides: DeepSpeed rejects the resulting config: {exc}") from None


def _check_override_types(generated: dict[str, Any], overrides: dict[str, Any], where: str) -> None:
    kinds = ((bool, "true or false"), ((int, float), "a number"), (str, "a string"), (list, "a list"),
             (dict, "a mapping"))
    for key, value in overrides.items():
        if key not in generated:
            continue
        base = generated[key]
        for kind, name in kinds:
            if isinstance(base, kind):
                if not isinstance(value, kind) or (kind != bool and isinstance(value, bool)):
                    raise ConfigError(f"{where}.{key}: expected {name} (like the generated {base!r}), got {value!r}")
                break
        if isinstance(base, dict):
            _check_override_types(base, value, f"{where}.{key}")


def initialize(model: torch.nn.Module, ds_config: dict[str, Any]):
    """The DeepSpeed engine over the trainable parameters.

    A frozen copy (``model.frozen``, word_aligned) is not part of the engine: it goes to the
    engine's device in the compute dtype and is replicated on every rank, ZeRO-3 included (it has
    no gradients or optimizer state to shard, and a replica costs 2 bytes per parameter in bf16,
    0.36 GB for mBERT, against an all-gather per layer per step if it were partitioned)."""
    import deepspeed

    trainable = [param for param in model.parameters() if param.requires_grad]
    if not torch.cuda.is_available():
        ds_config = cpu_bucket_sizes(ds_config, sum(param.numel() for param in trainable))
    engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=trainable, config=ds_config)
    frozen = getattr(model, "frozen", None)
    if frozen is not None:
        frozen.to(device=engine.device, dtype=compute_dtype(ds_config))
    return engine


ZERO_BUCKETS = ("reduce_bucket_size", "allgather_bucket_size")


def cpu_bucket_sizes(ds_config: dict[str, Any], trainable_numel: int) -> dict[str, Any]:
    """ZeRO's gradient buckets capped at the trainable parameter count, unless the config sets them.

    ZeRO-1/2 allocates its reduce bucket afresh at every step (``torch.empty(reduce_bucket_size)``,
    DeepSpeed's default 5e8 elements: 2 GB in fp32). A GPU's caching allocator hands that back at
    no cost; on CPU it is 2 GB of fresh pages a step, about 5 s of system time for the tiny preset.
    A bucket larger than every trainable parameter together holds nothing more."""
    zero = dict(ds_config.get("zero_optimization", {}))
    for key in ZERO_BUCKETS:
        zero.setdefault(key, max(1, trainable_numel))
    return {**ds_config, "zero_optimization": zero}


def micro_batch_size(engine) -> int:
    return engine.train_micro_batch_size_per_gpu()


def all_reduce_mean(values: torch.Tensor) -> torch.Tensor:
    import torch.distributed as torch_dist

    if torch_dist.is_initialized() and torch_dist.get_world_size() > 1:
        values = values.clone()
        torch_dist.all_reduce(values)
        values /= torch_dist.get_world_size()
    return values


def barrier() -> None:
    import torch.distributed as torch_dist

    if torch_dist.is_initialized():
        torch_dist.barrier()


def save_checkpoint(engine, folder: Path, step: int, client_state: dict, keep: int) -> None:
    """Save under ``step<N>`` and only then point ``latest`` at it (atomically, from rank 0), so an
    interrupted save is never the one a resume loads. Older checkpoints beyond ``keep`` go."""
    tag = f"step{step:08d}"
    needed = checkpoint_bytes(engine.module)
    with writing_to(folder, needed, "a checkpoint"):
        try:
            engine.save_checkpoint(str(folder), tag=tag, client_state=client_state, save_latest=False)
        except RuntimeError as exc:
            # torch.save reports a full disk as a RuntimeError of its zip writer ("file write failed").
            if "file write failed" in str(exc) and shutil.disk_usage(folder).free < needed:
                raise OSError(errno.ENOSPC, "No space left on device") from None
            raise
    barrier()
    if engine.global_rank == 0:
        with writing_to(folder, what="a checkpoint"):
            write_checksums(folder / tag)
            atomic_write_text(folder / LATEST, tag)
        tags = sorted(p.name for p in folder.glob("step*") if p.is_dir())
        for old in tags[: max(0, len(tags) - keep)]:
            if old != tag:
                shutil.rmtree(folder / old, ignore_errors=True)
    barrier()


def checkpoint_bytes(model: torch.nn.Module) -> int:
    """About what one checkpoint takes: per trainable parameter its fp32 master copy and AdamW's two
    moments (12 bytes) plus the weights in their own dtype; frozen parameters once."""
    return sum(p.numel() * (p.element_size() + (12 if p.requires_grad else 0)) for p in model.parameters())


def load_latest(engine, folder: Path, run_hash: str, is_main: bool) -> dict | None:
    """Load the checkpoint ``latest`` names; its client state, or None when there is none.

    Checkpoints of another run (inputs or config changed: ``run.sha256`` beside them differs)
    are not resumed: the pointer is dropped and training starts over."""
    pointer, stamp = folder / LATEST, folder / "run.sha256"
    same = stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == run_hash
    barrier()
    if is_main and not same:
        pointer.unlink(missing_ok=True)
        atomic_write_text(stamp, run_hash)
    barrier()
    if not same or not pointer.is_file():
        return None
    tag = pointer.read_text(encoding="utf-8").strip()
    verify_checksums(folder / tag)  # a cut-short or altered checkpoint is not resumed
    if getattr(engine, "load_universal_checkpoint", lambda: False)():
        raise ConfigError("parallel.deepspeed_overrides: universal checkpoints are not resumed (DeepSpeed loads "
                          "them with torch.load(weights_only=False)); remove checkpoint.load_universal")
    engine.checkpoint_engine.load = load_weights_only  # DeepSpeed's own load runs torch.load(weights_only=False)
    path, client_state = engine.load_checkpoint(str(folder), tag=tag)
    if path is None:
        raise RuntimeError(f"{folder / tag}: DeepSpeed could not load this checkpoint")
    return client_state


def checkpoint_globals() -> list[type]:
    """The classes a DeepSpeed checkpoint of weam's configurations holds besides tensors and plain
    containers (ZeRO 1/2 optimizer states: the loss scaler, the ZeRO stage, fragment addresses);
    found with torch.serialization.get_unsafe_globals_in_checkpoint on ZeRO 0/1/2, fp32 and bf16."""
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [LossScaler, DynamicLossScaler, ZeroStageEnum, fragment_address]


def load_weights_only(path: str, map_location=None):
    """Load one checkpoint file with ``torch.load(weights_only=True)``: tensors, plain containers
    and :func:`checkpoint_globals` only, so a checkpoint rewritten on the shared volume cannot run
    code in the training job (DeepSpeed's TorchCheckpointEngine passes weights_only=False)."""
    import pickle

    try:
        with torch.serialization.safe_globals(checkpoint_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = " ".join(str(exc).split())[:300]
        raise WeamError(f"{path}: holds more than weights (torch.load weights_only=True refuses: {reason}); not "
                        "loading it. Delete the checkpoints folder to train from the start.") from None


CHECKSUMS = "SHA256SUMS"


def write_checksums(checkpoint: Path) -> None:
    """Record the hash of every file of a finished checkpoint (``sha256sum`` format)."""
    lines = [f"{file_sha256(p)}  {p.relative_to(checkpoint).as_posix()}\n"
             for p in sorted(checkpoint.rglob("*")) if p.is_file() and p.name != CHECKSUMS]
    atomic_write_text(checkpoint / CHECKSUMS, "".join(lines))


def verify_checksums(checkpoint: Path) -> None:
    """Refuse to load a checkpoint whose files differ from what this run saved.

    Trust boundary: the files are loaded with ``torch.load(weights_only=True)``
    (:func:`load_weights_only`, in place of DeepSpeed's weights_only=False), so a checkpoint
    rewritten on the shared volume cannot run code in the job. These hashes catch files cut short
    or altered afterwards (another job, a partial copy, a hand edit); they sit beside the
    checkpoint, so someone able to write the volume can rewrite them with the tensors and change
    what training resumes from (not what code it runs): ``checkpoints/`` should stay writable only
    by the training job's user (the manifests mount the work volume into weam's pods only, as uid 10001)."""
    sums = checkpoint / CHECKSUMS
    if not sums.is_file():
        raise WeamError(f"{checkpoint}: no {CHECKSUMS} (saved by an older weam, or not by weam); not loading a "
                        "checkpoint that cannot be verified. Delete this checkpoints folder to train from the start.")
    expected = dict(reversed(line.split("  ", 1)) for line in sums.read_text(encoding="utf-8").splitlines() if line)
    present = {p.relative_to(checkpoint).as_posix() for p in checkpoint.rglob("*") if p.is_file() and p.name != CHECKSUMS}
    for name in sorted(present | set(expected)):
        if name not in expected or name not in present or file_sha256(checkpoint / name) != expected[name]:
            raise WeamError(f"{checkpoint / name}: differs from the checkpoint this run saved ({CHECKSUMS}); "
                            "not loading it. Delete the checkpoints folder to start over.")


def export_hf(engine, tokenizer, out_dir: Path) -> Path:
    """Write the HF model + tokenizer (save_pretrained, fp32), gathering ZeRO-3 shards first.

    Saving goes through a fresh HF model built from the gathered weights, not zero_to_fp32, which
    trips over BERT's tied input/output embeddings."""
    import deepspeed

    mlm = engine.module.mlm
    params = list(mlm.parameters())
    gather = deepspeed.zero.GatheredParameters(params, modifier_rank=None) if engine.zero_optimization_stage() == 3 \
        else contextlib.nullcontext()
    with gather:
        state = {k: v.detach().float().cpu().clone() for k, v in mlm.state_dict().items()} if engine.global_rank == 0 else None
    if engine.global_rank == 0:
        fresh = type(mlm)(mlm.config)
        fresh.load_state_dict(state, strict=False)
        fresh.tie_weights()
        needed = sum(v.numel() * 4 for v in state.values())  # fp32
        with writing_to(out_dir, needed, "the exported model"), atomic_directory(out_dir) as tmp:
            fresh.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
    barrier()
    return out_dir


def teardown_engine(engine) -> None:
    """Drop the engine's references (optimizer state, hooks) before the next run in this process."""
    if hasattr(engine, "destroy"):
        engine.destroy()
    del engine
    gc.collect()
