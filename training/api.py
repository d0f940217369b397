"""``pretrain(config)``: the pre-training stage as a plain function (the CLI and the study call it).

Runs in the calling process: the process group is created for the call and destroyed after it,
so a study can call ``pretrain`` for condition after condition in one Python process. Outputs in
``out_dir``: ``model/`` (HF save_pretrained, what eval loads), ``checkpoints/`` (DeepSpeed; a
re-run resumes from ``latest`` at the same data position), ``train_log.jsonl`` (per-step losses,
rank 0), ``manifest.json`` (written last: inputs, config, counts incl. tokens per pair).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from weam.core.determinism import deterministic_torch
from weam.training import data as data_mod
from weam.training import distributed
from weam.training.config import DistributedEnv, PretrainConfig
from weam.training.inputs import stage_inputs
from weam.training.metrics import device_name, flops_per_step, memory_metrics, peak_flops
from weam.training.objectives import PretrainingModel, mask_batch
from weam.core.errors import ConfigError
from weam.core.manifest import file_sha256, fingerprint, is_up_to_date, write_manifest
from weam.modelcard import write_model_card
from weam.core.progress import Progress
from weam.core.tracking import RunLogger, drop_rows_after


def pretrain(config: PretrainConfig, dist: DistributedEnv | None = None, logger: RunLogger | None = None) -> Path:
    """Train, export ``<out_dir>/model`` and write the manifest; skip when already finished.

    ``logger`` is the stage's MLflow run (:func:`weam.stages.execute` opens and ends it): the config
    goes in as params, each pair read as a dataset, the losses as metrics and the exported model as a
    LoggedModel made by the run; this function never opens or ends a run."""
    distributed.check_config(config.parallel, config.optim, config.data.batch_size,
                             (dist or DistributedEnv()).world_size)  # before any data or model loads
    out = Path(config.out_dir)
    model_dir = out / "model"
    inputs = stage_inputs(config)
    if is_up_to_date(out, inputs, config.fingerprint_config()):
        return model_dir
    sizes = data_mod.count_lines_checked(config.data.pairs)  # bad data stops here, before any training
    deterministic_torch()
    tokenizer = load_tokenizer(config)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with distributed.session(dist or DistributedEnv()) as env:
        mlm = load_model(config, tokenizer)
        model = PretrainingModel(mlm, config.objective, frozen_copy(config, mlm))
        stream = data_mod.PackedStream.for_config(config, tokenizer, sizes)
        ds_config = distributed.deepspeed_config(config.optim, config.parallel, config.data.batch_size, env.world_size,
                                                 planned_steps(config, tokenizer, sizes))
        if config.input_mode() == "single" and ds_config["train_micro_batch_size_per_gpu"] % 2:
            raise ConfigError(f"micro-batch of {ds_config['train_micro_batch_size_per_gpu']} rows per rank: single-side "
                              "input needs an even number (a pair's two rows stay together); set "
                              "parallel.micro_batch_size or data.batch_size")
        engine = distributed.initialize(model, ds_config)
        logger = logger if env.is_main else None
        if logger:
            logger.log_params(config.model_dump(mode="json", exclude={"logging": {"tracking", "tags"}}))
            logger.log_datasets(data_mod.corpus_datasets(config.data.pairs, sizes))
        try:
            steps, stopped = train(engine, stream, config, env, tokenizer, logger, run_hash(inputs, config))
            distributed.export_hf(engine, tokenizer, model_dir)
        finally:
            distributed.teardown_engine(engine)
        if env.is_main:
            counts = {
                "steps": steps, "stopped": stopped, "tokens": stream.tokens, "tokens_per_pair": dict(stream.tokens_seen),
                "content_tokens": stream.content_tokens, "content_tokens_per_pair": dict(stream.content_seen),
                "links_per_pair": dict(stream.links_seen),
                "passes_per_pair": {name: round(int(n) / size, 4) for name, n, size in
                                    zip(stream.names, stream.sampler.counts(stream.consumed), stream.sizes)},
                "examples": stream.consumed, "world_size": env.world_size, "device": device_name(),
                "wall_seconds": round(time.time() - started, 3),
            }
            write_model_card(model_dir, config, counts, logger.run_id if logger else None,
                             logger.parent_run_id if logger else None)
            write_manifest(out, "pretrain", inputs, config.fingerprint_config(),
                           {"model": "model/config.json", "weights": "model/model.safetensors"}, counts)
            if logger:
                logger.log_model(model_dir, params={"base_model": config.model, "objective": config.objective.name,
                                                    "steps": steps, "tokens": stream.tokens},
                                 model_type="encoder")
        distributed.barrier()
    return model_dir


def planned_steps(config: PretrainConfig, tokenizer, sizes: list[int], probe_batches: int = 64) -> int:
    """Steps the LR schedule spans: max_steps, or the token budget over the tokens per batch that
    the first batches actually pack (packing depends on sentence lengths and the input mode)."""
    estimates = [config.optim.max_steps] if config.optim.max_steps else []
    budget = config.data.token_budget
    if budget:
        probe = data_mod.PackedStream.for_config(config, tokenizer, sizes)
        built = 0
        while built < probe_batches and probe.next_batch() is not None:
            built += 1
        ended = built < probe_batches
        estimates.append(max(built, 1) if ended else -(-budget * built // probe.budget_spent))
    return min(estimates)


def train(engine, stream: data_mod.PackedStream, config: PretrainConfig, env: DistributedEnv, tokenizer, logger,
          run_hash: str) -> tuple[int, str]:
    """The loop: resume, then batch → mask → forward/backward per micro-batch → step → log/save.
    Returns the steps taken and what ended the run: ``budget``, ``max_steps`` or ``plateau``."""
    ckpt_dir = Path(config.out_dir) / "checkpoints"
    state = distributed.load_latest(engine, ckpt_dir, run_hash, env.is_main)
    step = 0
    if state is not None:
        stream.restore(state["data"])
        step = state["step"]
    if env.is_main:  # rows a killed run logged after its last checkpoint are logged again below
        drop_rows_after(Path(config.out_dir) / "train_log.jsonl", step)
    # Every step's mean loss, for the plateau rule; in the checkpoint, so every rank resumes it.
    history: list[float] = list(state.get("losses", [])) if state is not None else []
    stopped = "max_steps"
    micro = distributed.micro_batch_size(engine)
    rows_per_rank = config.data.batch_size // env.world_size
    meter = Meter(config, engine.module.mlm.config, peak_flops(config.logging.cpu_peak_flops) * env.world_size, stream)
    names = ["loss", "mlm", *config.objective.spec.aux_losses]
    keep = config.checkpoint.keep
    by_tokens = config.data.token_budget is not None  # progress in the unit the run stops on
    bar = Progress(f"pretrain {config.objective.name}",
                   total=config.data.token_budget if by_tokens else config.optim.max_steps,
                   unit="tokens" if by_tokens else "steps", enabled=env.is_main)
    while config.optim.max_steps is None or step < config.optim.max_steps:
        if on_plateau(history, config.optim.plateau_window, config.optim.plateau_min_delta):
            stopped = "plateau"
            break
        batch = stream.next_batch()
        if batch is None:
            stopped = "budget"
            break
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        inputs, labels = mask_batch(batch, config.objective, tokenizer.mask_token_id, len(tokenizer), generator)
        torch.manual_seed(config.seed * 1_000_003 + step * env.world_size + env.rank)  # dropout, resumable
        losses = torch.zeros(len(names))
        start = env.rank * rows_per_rank
        for first in range(start, start + rows_per_rank, micro):
            out = engine(**to_model_inputs(batch, inputs, labels, first, first + micro, engine.device))
            engine.backward(out["loss"])
            engine.step()
            losses += torch.stack([out[name] for name in names]).detach().float().cpu()
        step += 1
        losses = distributed.all_reduce_mean(losses / (rows_per_rank // micro))
        history.append(losses[0].item())  # every rank holds the same mean: they stop together
        if env.is_main:
            meter.record(step, dict(zip(names, losses.tolist())), engine.get_lr()[0], batch,
                         int((labels != -100).sum()), logger)
            bar.update(stream.budget_spent if by_tokens else step, info=f"step {step}, loss {losses[0].item():.3f}")
        if step % config.checkpoint.every == 0:
            distributed.save_checkpoint(engine, ckpt_dir, step,
                                        {"data": stream.state(), "step": step, "losses": history}, keep)
    bar.close()
    if state is None or step != state["step"]:
        distributed.save_checkpoint(engine, ckpt_dir, step, {"data": stream.state(), "step": step, "losses": history},
                                    keep)
    return step, stopped


def on_plateau(history: list[float], window: int | None, min_delta: float) -> bool:
    """Whether the mean of the last ``window`` losses improved on the window before by less than
    ``min_delta`` of it (False until 2 × window losses exist, or with no window)."""
    if not window or len(history) < 2 * window:
        return False
    before = sum(history[-2 * window:-window]) / window
    last = sum(history[-window:]) / window
    return before - last < min_delta * abs(before)


def run_hash(inputs: dict[str, Any], config: PretrainConfig) -> str:
    """Identity of a run: input contents and config (checkpoints of another run are not resumed)."""
    return fingerprint({name: file_sha256(path) for name, path in inputs.items()}, config.fingerprint_config())


def to_model_inputs(batch: data_mod.Batch, inputs, labels, start: int, stop: int, device) -> dict[str, torch.Tensor]:
    part = batch.rows(start, stop)
    tensors = {
        "input_ids": inputs[start:stop], "attention_mask": part.attention_mask, "token_type_ids": part.token_type_ids,
        "position_ids": part.position_ids, "labels": labels[start:stop], "original_ids": part.input_ids,
        "links": part.links, "word_start": part.word_start, "word_end": part.word_end, "pivot": part.pivot,
    }
    if part.unit_index is not None:  # packed rows: attention stays inside each unit
        tensors["unit_index"] = part.unit_index
    return {name: value.to(device) for name, value in tensors.items()}


class Meter:
    """Rank 0's per-step record (train_log.jsonl) and, every log_every steps, MLflow metrics."""

    def __init__(self, config: PretrainConfig, model_config, peak: float, stream: data_mod.PackedStream):
        self.config, self.model_config, self.peak, self.stream = config, model_config, peak, stream
        self.path = Path(config.out_dir) / "train_log.jsonl"
        self.tick, self.tokens_at_tick, self.flops = time.time(), stream.tokens, 0.0

    def record(self, step: int, losses: dict[str, float], lr: float, batch: data_mod.Batch, masked: int,
               logger) -> None:
        """``losses``: "loss", "mlm" and the objective's auxiliary terms (the objective table's names)."""
        tokens = sum(batch.tokens_per_pair.values())
        predicted = masked * self.config.objective.spec.output_passes  # where the output layer runs
        self.flops += flops_per_step(self.model_config, tokens, predicted, batch.input_ids.shape[1])
        if self.config.objective.name == "word_aligned":  # the frozen copy's forward on the pivot rows
            pivot_tokens = int(batch.attention_mask[batch.pivot.any(1)].sum())
            self.flops += flops_per_step(self.model_config, pivot_tokens, 0, batch.input_ids.shape[1]) / 3
        # padded: this step's row slots (rows x width), what the encoder runs on, padding included.
        record = {"step": step, **losses, "tokens": self.stream.tokens, "lr": lr, "time": time.time(),
                  "masked": masked, "padded": int(batch.input_ids.numel()), "width": int(batch.input_ids.shape[1])}
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if logger is None or step % self.config.logging.log_every:
            return
        elapsed = max(time.time() - self.tick, 1e-9)
        metrics = {
            "train/loss": record["loss"], "train/loss_mlm": record["mlm"], "train/lr": lr,
            "train/tokens": record["tokens"], "perf/tokens_per_s": (record["tokens"] - self.tokens_at_tick) / elapsed,
            "perf/tflops": self.flops / elapsed / 1e12, "perf/mfu": self.flops / elapsed / self.peak,
            **{f"train/tokens/{pair}": count for pair, count in self.stream.tokens_seen.items()},
            **memory_metrics(),
        }
        metrics.update({f"train/loss_{name}": record[name] for name in self.config.objective.spec.aux_losses})
        logger.log_metrics(metrics, step=step)
        self.tick, self.tokens_at_tick, self.flops = time.time(), record["tokens"], 0.0


def frozen_copy(config: PretrainConfig, mlm):
    """word_aligned's anchor: a copy of the starting model's encoder, taken before DeepSpeed wraps
    (and under ZeRO-3 partitions) the trained one; None for the other objectives."""
    if config.objective.name != "word_aligned":
        return None
    import copy

    return copy.deepcopy(getattr(mlm, mlm.base_model_prefix))


def load_tokenizer(config: PretrainConfig):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(config.tokenizer or config.model)


def load_model(config: PretrainConfig, tokenizer):
    if config.model.startswith("preset:"):
        from weam.modeling import build_masked_lm

        model = build_masked_lm(config.model.removeprefix("preset:"), vocab_size=len(tokenizer),
                                max_position_embeddings=max(512, config.data.max_seq_len), seed=config.seed)
    else:
        from transformers import AutoModelForMaskedLM

        model = AutoModelForMaskedLM.from_pretrained(config.model)
    types = getattr(model.config, "type_vocab_size", 0)
    if config.input_mode() == "pair" and config.data.language_input == "token_type" and types < 2:
        raise ConfigError(f"{config.model}: type_vocab_size {types} cannot mark the pair's target side with token "
                          "type 1 (XLM-R has 1); set data.language_input: none")
    if config.optim.freeze_layers:
        from weam.modeling import freeze_lower_layers

        freeze_lower_layers(model, config.optim.freeze_layers)
    if config.parallel.activation_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model
