"""The fine-tuning loop every task shares: AdamW, linear warm-up/decay, gradient accumulation to the
effective batch, and XTREME's model selection: for tasks whose train script keeps the best checkpoint
(``--save_only_best_checkpoint``), evaluate on English dev every ``save_steps`` optimizer steps and at the
end, keep the best; the other tasks keep the final model, as their scripts do."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from weam.eval.config import EvalConfig, HyperParams
from weam.eval.tasks import FineTune, TaskSpec


@dataclass(frozen=True)
class Settings:
    learning_rate: float
    epochs: float
    batch_size: int
    step_batch_size: int
    max_seq_len: int
    warmup_steps: int
    weight_decay: float
    max_steps: int | None
    max_train_examples: int | None
    selection: str = "last"
    """best_dev | last (the registry's, from the task's XTREME train script)."""
    save_steps: int | None = None
    """Optimizer steps between English-dev evaluations (best_dev only)."""


def settings_for(spec: TaskSpec, config: EvalConfig) -> Settings:
    base = spec.finetune or FineTune()
    override = config.hyperparams.get(spec.name, HyperParams())

    def pick(name: str) -> Any:
        value = getattr(override, name)
        return getattr(base, name) if value is None else value

    max_len = pick("max_seq_len")
    if config.max_seq_len is not None:
        max_len = min(max_len, config.max_seq_len)
    batch = pick("batch_size")
    return Settings(
        learning_rate=pick("learning_rate"), epochs=pick("epochs"), batch_size=batch,
        step_batch_size=min(batch, config.train_batch_size or batch), max_seq_len=max_len,
        warmup_steps=pick("warmup_steps"), weight_decay=pick("weight_decay"), max_steps=override.max_steps,
        max_train_examples=override.max_train_examples, selection=spec.selection,
        save_steps=override.save_steps if override.save_steps is not None else spec.save_steps,
    )


def resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def fine_tune(
    model,
    features: Sequence[Any],
    loss_of: Callable[[Any, list[Any]], Any],
    settings: Settings,
    seed: int,
    dev_score: Callable[[], float] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Train ``model`` in place on ``features``; returns {steps, best_dev, train_loss, best_step}.

    ``dev_score`` is used only when ``settings.selection`` is best_dev (every ``save_steps`` and at the end)."""
    import numpy as np
    import torch
    from transformers import get_linear_schedule_with_warmup

    if not features:
        raise ValueError("no English training examples")
    from weam.core.determinism import deterministic_torch

    deterministic_torch()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    accumulation = max(1, settings.batch_size // settings.step_batch_size)
    steps_per_epoch = max(1, math.ceil(len(features) / (settings.step_batch_size * accumulation)))
    total_steps = settings.max_steps or max(1, math.ceil(settings.epochs * steps_per_epoch))
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
         "weight_decay": settings.weight_decay},
        {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=settings.learning_rate)
    # A smoke run of a few steps would otherwise never leave warm-up.
    warmup = min(settings.warmup_steps, total_steps // 10)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
    best_score, best_state, step, last_loss = None, None, 0, float("nan")
    evaluated_at, best_step = -1, -1
    selecting = settings.selection == "best_dev" and dev_score is not None

    def select() -> None:
        nonlocal best_score, best_state, evaluated_at, best_step
        if not selecting or evaluated_at == step:
            return
        model.eval()
        score = dev_score()
        evaluated_at = step
        if progress:
            progress(f"step {step}: English dev score {score:.2f}")
        if best_score is None or score > best_score:
            best_score, best_step = score, step
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    from weam.core.progress import Progress

    bar = Progress("fine-tune", total=total_steps, unit="steps")
    while step < total_steps:
        model.train()
        order = rng.permutation(len(features))
        micro = [order[i : i + settings.step_batch_size] for i in range(0, len(order), settings.step_batch_size)]
        for index, chunk in enumerate(micro):
            loss = loss_of(model, [features[i] for i in chunk]) / accumulation
            loss.backward()
            last_loss = float(loss.detach()) * accumulation
            if (index + 1) % accumulation == 0 or index == len(micro) - 1:
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                step += 1
                bar.update(step, info=f"loss {last_loss:.3f}")
                if settings.save_steps and step % settings.save_steps == 0:
                    select()
                    model.train()
                if step >= total_steps:
                    break
    bar.close()
    select()
    if best_state is not None:
        model.load_state_dict(copy.copy(best_state))
    model.eval()
    return {"steps": step, "best_dev": best_score if best_score is not None else float("nan"),
            "best_step": best_step if selecting else step, "train_loss": last_loss}
