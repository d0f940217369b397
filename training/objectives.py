"""Pre-training objectives on one device (no deepspeed, no torch.distributed here).

All four share the data path (training/data.py) and the masking below; they differ in the input
mode (one side or the concatenated pair, chosen in PretrainConfig.input_mode) and the loss:

* ``mlm`` / ``tlm``: L_mlm, cross-entropy of each masked token's own id.
* ``weam``: L_mlm + λ·L_cross. L_cross = mean over masked tokens that have targets of the mean
  cross-entropy of their aligned token ids in the other language (WeamOptions: which aligned
  tokens count, and what unaligned tokens do).
* ``word_aligned``: L_mlm + λ·L_align. L_align = mean over token links whose two tokens are both
  unmasked of the per-dimension squared distance between the target token's last hidden state
  and the (detached) source token's.

Vocabulary logits are computed only at masked positions: the output layer is most of a small
model's compute at mBERT's vocabulary size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.config import MaskingConfig, PretrainConfig, WeamOptions

IGNORE = -100


def mask_tokens(
    input_ids: torch.Tensor,
    special: torch.Tensor,
    aligned: torch.Tensor,
    mask_prob: float,
    masking: MaskingConfig,
    mask_id: int,
    vocab_size: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose round(mask_prob × maskable tokens) per row (aligned tokens weighted under
    alignment-aware masking), then BERT's corruption. Returns (corrupted ids, labels)."""
    weights = torch.ones(input_ids.shape, dtype=torch.float)
    if masking.alignment_aware:
        weights[aligned] = masking.aligned_weight
    # Gumbel top-k: k draws without replacement, each with probability ∝ weight.
    uniform = torch.rand(input_ids.shape, generator=generator).clamp_min(1e-12)
    scores = weights.log() - torch.log(-torch.log(uniform))
    scores[special] = float("-inf")
    n_maskable = (~special).sum(dim=1)
    k = (n_maskable.float() * mask_prob).round().long().clamp(min=1)
    k = torch.minimum(k, n_maskable)
    order = scores.argsort(dim=1, descending=True)
    ranks = order.argsort(dim=1)
    chosen = (ranks < k[:, None]) & ~special
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE))
    roll = torch.rand(input_ids.shape, generator=generator)
    corrupted = input_ids.clone()
    corrupted[chosen & (roll < masking.replace_mask)] = mask_id
    random_slot = chosen & (roll >= masking.replace_mask) & (roll < masking.replace_mask + masking.replace_random)
    corrupted[random_slot] = torch.randint(vocab_size, input_ids.shape, generator=generator)[random_slot]
    return corrupted, labels


def cross_targets(
    labels: torch.Tensor,
    original_ids: torch.Tensor,
    links: torch.Tensor,
    word_start: torch.Tensor,
    options: WeamOptions,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """WEAM's cross-lingual targets as flat triples (masked position, target id, weight).

    Links run both ways: a masked source token predicts its aligned target tokens and a masked
    target token its aligned source tokens. Weights make each masked token with targets count
    once, and sum to 1 over all of them (so the loss is a mean over those tokens)."""
    seq = labels.shape[1]
    src = links[:, 0] * seq + links[:, 1]
    tgt = links[:, 2] * seq + links[:, 3]
    predicted = torch.cat([src, tgt])
    target_pos = torch.cat([tgt, src])
    flat_labels = labels.reshape(-1)
    keep = flat_labels[predicted] != IGNORE
    if options.multi_token == "first":
        keep &= word_start.reshape(-1)[target_pos]
    predicted, target_pos = predicted[keep], target_pos[keep]
    target_ids = original_ids.reshape(-1)[target_pos]
    if options.unaligned == "self":
        masked = (flat_labels != IGNORE).nonzero().squeeze(1)
        lonely = masked[~torch.isin(masked, predicted)]
        predicted = torch.cat([predicted, lonely])
        target_ids = torch.cat([target_ids, flat_labels[lonely]])
    if predicted.numel() == 0:
        return predicted, target_ids, torch.zeros(0)
    unique, inverse, per_token = torch.unique(predicted, return_inverse=True, return_counts=True)
    weights = 1.0 / (per_token[inverse].float() * unique.numel())
    return predicted, target_ids, weights


class PretrainingModel(nn.Module):
    """An HF masked LM plus the configured objective; forward returns the losses."""

    def __init__(self, mlm: nn.Module, config: PretrainConfig):
        super().__init__()
        self.mlm = mlm
        self.objective = config.objective
        self.cross_weight = config.cross_weight
        self.weam = config.weam

    @property
    def encoder(self) -> nn.Module:
        return getattr(self.mlm, self.mlm.base_model_prefix)

    @property
    def head(self) -> nn.Module:
        return self.mlm.cls if hasattr(self.mlm, "cls") else self.mlm.lm_head

    def forward(self, input_ids, attention_mask, token_type_ids, labels, original_ids, links, word_start):
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        flat_hidden = hidden.reshape(-1, hidden.shape[-1])
        flat_labels = labels.reshape(-1)
        masked = (flat_labels != IGNORE).nonzero().squeeze(1)
        log_probs = F.log_softmax(self.head(flat_hidden[masked]).float(), dim=-1)
        mlm = _mean_or_zero(-log_probs.gather(1, flat_labels[masked][:, None]).squeeze(1), log_probs)
        losses = {"mlm": mlm}
        if self.objective == "weam":
            losses["cross"] = weam_cross_loss(log_probs, masked, labels, original_ids, links, word_start, self.weam)
            losses["loss"] = mlm + self.cross_weight * losses["cross"]
        elif self.objective == "word_aligned":
            losses["align"] = alignment_loss(flat_hidden, labels, links)
            losses["loss"] = mlm + self.cross_weight * losses["align"]
        else:
            losses["loss"] = mlm
        return losses


def weam_cross_loss(log_probs, masked, labels, original_ids, links, word_start, options: WeamOptions):
    """L_cross from the log-probabilities already computed at the masked positions."""
    predicted, target_ids, weights = cross_targets(labels, original_ids, links, word_start, options)
    if predicted.numel() == 0:
        return log_probs.sum() * 0.0
    row_of = torch.full((labels.numel(),), -1, dtype=torch.long, device=masked.device)
    row_of[masked] = torch.arange(masked.numel(), device=masked.device)
    picked = log_probs[row_of[predicted], target_ids]
    return -(weights.to(picked) * picked).sum()


def alignment_loss(flat_hidden: torch.Tensor, labels: torch.Tensor, links: torch.Tensor) -> torch.Tensor:
    seq = labels.shape[1]
    src = links[:, 0] * seq + links[:, 1]
    tgt = links[:, 2] * seq + links[:, 3]
    flat_labels = labels.reshape(-1)
    visible = (flat_labels[src] == IGNORE) & (flat_labels[tgt] == IGNORE)
    src, tgt = src[visible], tgt[visible]
    if src.numel() == 0:
        return flat_hidden.sum() * 0.0
    diff = flat_hidden[tgt].float() - flat_hidden[src].detach().float()
    return diff.pow(2).mean()


def _mean_or_zero(values: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
    return values.mean() if values.numel() else anchor.sum() * 0.0
