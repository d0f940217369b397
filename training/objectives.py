"""Pre-training objectives on one device (no deepspeed, no torch.distributed here).

The five objectives of the table in training/config.py (``OBJECTIVES``) share the data path
(training/data.py) and the masking below; they differ in the input mode and the loss:

* ``mlm`` (BERT): L_mlm, the mean cross-entropy of each masked token's own id; one side per row.
* ``tlm`` (XLM, Conneau & Lample 2019): L_mlm on one pair per row, target positions reset, the
  side as token type (XLM's language embedding stand-in, see DataConfig.language_input).
* ``word_aligned`` (Cao, Kitaev & Klein 2020): L_align + reg_weight·R, see
  :func:`word_alignment_losses`; no masking and no MLM term unless ``mlm_weight`` > 0.
* ``weam`` (Yang et al. 2021, Figure 1): L_mp + λ·L_cp on the concatenated pair, L_cp predicting
  each masked token from the state at its aligned word's position, see :func:`weam_exchange_loss`
  (the written spec).
* ``partner_id_prediction`` (ablation; this project's earlier reading of WEAM): L_mlm + λ·L_cross
  where each masked token's own state predicts its aligned partner's ids, see
  :func:`partner_id_loss`.

Vocabulary logits are computed only at masked positions: the output layer is most of a small
model's compute at mBERT's vocabulary size.

Departures from the sources, kept on purpose (the study holds data, budget, batch, optimiser
and mask rate equal across objectives):

* all: AdamW (0.9, 0.999), weight decay 0.01, 6 % linear warm-up then linear decay, clipping 1,
  batch 32 rows, lr 5e-5 (WEAM's), sentence pairs drawn by ``data.sampling``.
* tlm: mBERT has no language embeddings; token type 1 on the target side stands in (it marks
  the side, not the language). BERT's [CLS]/[SEP] replace XLM's </s> delimiters, so target
  positions restart at 1 (after the shared [SEP]) where XLM restarts at 0 on the target's own
  </s>. Mask rate 0.3 (XLM: 0.15); pairs are truncated to max_seq_len (XLM drops long ones);
  TLM alone, not alternated with monolingual MLM steps.
* word_aligned: loss terms are per-micro-batch means (Cao et al.'s code sums per-chunk means
  over languages and chunks); the alignments are the align stage's symmetrised links filtered to
  one-to-one (Cao et al.: fast_align intersection, then one-to-one); long sentences are truncated
  to max_seq_len subwords (Cao et al. drop sentences over 64 words); the MLM head's own
  parameters are frozen and exported unchanged (Cao et al. train an encoder without one).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from weam.training.config import MaskingConfig, ObjectiveConfig, WeamOptions

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
    groups: torch.Tensor | None = None,
    always_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose round(mask_prob × maskable tokens) per row (aligned tokens weighted under
    alignment-aware masking), then BERT's corruption. Returns (corrupted ids, labels).

    ``groups`` ([rows, seq], the flat index of each token's group representative) makes groups
    the unit: a group is masked whole, and groups are taken in random order until the row has its
    k tokens (the last group may overshoot). ``always_mask`` tokens, when chosen, become [MASK]
    (never kept or randomised), so their identity is not visible."""
    weights = torch.ones(input_ids.shape, dtype=torch.float)
    if masking.alignment_aware:
        weights[aligned] = masking.aligned_weight
    # Gumbel top-k: k draws without replacement, each with probability ∝ weight.
    uniform = torch.rand(input_ids.shape, generator=generator).clamp_min(1e-12)
    scores = weights.log() - torch.log(-torch.log(uniform))
    if groups is not None:  # every token of a group carries its representative's score
        scores = scores.reshape(-1)[groups.reshape(-1)].reshape(input_ids.shape)
    scores[special] = float("-inf")
    n_maskable = (~special).sum(dim=1)
    k = (n_maskable.float() * mask_prob).round().long().clamp(min=1)
    k = torch.minimum(k, n_maskable)
    order = scores.argsort(dim=1, descending=True, stable=True)
    ranks = order.argsort(dim=1)
    if groups is not None:  # a group is in when its best-placed token is among the first k
        first = torch.full((input_ids.numel(),), input_ids.shape[1], dtype=torch.long)
        first = first.scatter_reduce(0, groups.reshape(-1), ranks.reshape(-1), reduce="amin")
        ranks = first[groups.reshape(-1)].reshape(input_ids.shape)
    chosen = (ranks < k[:, None]) & ~special
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE))
    roll = torch.rand(input_ids.shape, generator=generator)
    if always_mask is not None:
        roll = torch.where(always_mask, torch.zeros_like(roll), roll)
    corrupted = input_ids.clone()
    corrupted[chosen & (roll < masking.replace_mask)] = mask_id
    random_slot = chosen & (roll >= masking.replace_mask) & (roll < masking.replace_mask + masking.replace_random)
    corrupted[random_slot] = torch.randint(vocab_size, input_ids.shape, generator=generator)[random_slot]
    return corrupted, labels


def alignment_groups(links: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """[rows, seq] flat index of each token's group: tokens joined by links (transitively) share
    the smallest flat index among them; an unlinked token is its own group."""
    n = shape[0] * shape[1]
    rep = torch.arange(n)
    if links.numel() == 0:
        return rep.reshape(shape)
    a = links[:, 0] * shape[1] + links[:, 1]
    b = links[:, 2] * shape[1] + links[:, 3]
    while True:  # label propagation with pointer jumping: ends at the connected components
        low = torch.minimum(rep[a], rep[b])
        new = rep.scatter_reduce(0, a, low, reduce="amin").scatter_reduce(0, b, low, reduce="amin")
        new = new[new]
        if torch.equal(new, rep):
            return rep.reshape(shape)
        rep = new


def mask_batch(batch, objective: ObjectiveConfig, mask_id: int, vocab_size: int, generator: torch.Generator):
    """Corrupted inputs and labels for one global batch, as the objective masks it."""
    if not objective.masks_inputs():  # Cao et al.: clean sentences, nothing predicted
        return batch.input_ids.clone(), torch.full_like(batch.input_ids, IGNORE)
    aligned = batch.aligned()
    groups = alignment_groups(batch.links, tuple(batch.input_ids.shape)) if objective.co_masks() else None
    return mask_tokens(batch.input_ids, batch.special, aligned, objective.mask_prob, objective.masking, mask_id,
                       vocab_size, generator, groups=groups, always_mask=aligned if objective.co_masks() else None)


def cross_targets(
    labels: torch.Tensor,
    original_ids: torch.Tensor,
    links: torch.Tensor,
    word_start: torch.Tensor,
    options: WeamOptions,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """WEAM's cross-lingual targets as flat triples (masked position, target id, weight).

    Links run both ways: a masked source token predicts its aligned target tokens and a masked
    target token its aligned source tokens. Each masked token with targets weighs 1 in total
    (split evenly over its targets); the sum is divided by the number of masked tokens
    (``normalise: masked``) or of masked tokens with targets (``targeted``)."""
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
    denominator = int((flat_labels != IGNORE).sum()) if options.normalise == "masked" else unique.numel()
    weights = 1.0 / (per_token[inverse].float() * denominator)
    return predicted, target_ids, weights


class PretrainingModel(nn.Module):
    """An HF masked LM plus the configured objective; forward returns the losses.

    ``frozen`` (word_aligned only) is the starting model's encoder, held outside the module tree
    on purpose: DeepSpeed never sees it (no optimizer state, no ZeRO partitioning, not in
    checkpoints), and training/distributed.py puts it on the device in the compute dtype."""

    def __init__(self, mlm: nn.Module, objective: ObjectiveConfig, frozen: nn.Module | None = None):
        super().__init__()
        self.mlm = mlm
        self.objective = objective
        if objective.name == "word_aligned" and frozen is None:
            raise ValueError("word_aligned needs the frozen copy of the starting model")
        object.__setattr__(self, "frozen", frozen)  # not a submodule (see the class docstring)
        if frozen is not None:
            frozen.eval().requires_grad_(False)
        if objective.name == "word_aligned" and objective.word_aligned.mlm_weight == 0:
            # Cao et al. train the encoder alone: the MLM head (bar the embeddings it shares) stays
            # as it was, and frozen parameters give ZeRO no gradient-less trainable parameters.
            tied = {id(p) for p in self.encoder.parameters()}
            for param in self.head.parameters():
                if id(param) not in tied:
                    param.requires_grad_(False)

    @property
    def encoder(self) -> nn.Module:
        return getattr(self.mlm, self.mlm.base_model_prefix)

    @property
    def head(self) -> nn.Module:
        return self.mlm.cls if hasattr(self.mlm, "cls") else self.mlm.lm_head

    def forward(self, input_ids, attention_mask, token_type_ids, position_ids, labels, original_ids, links,
                word_start, word_end, pivot, unit_index=None):
        if unit_index is not None:  # packed rows (data.packing): no attention across units
            attention_mask = unit_attention_mask(unit_index, next(self.encoder.parameters()).dtype)
        encoder_inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids,
                          "position_ids": position_ids}
        hidden = self.encoder(**encoder_inputs).last_hidden_state
        flat_hidden = hidden.reshape(-1, hidden.shape[-1])
        flat_labels = labels.reshape(-1)
        masked = (flat_labels != IGNORE).nonzero().squeeze(1)
        name = self.objective.name
        if masked.numel():
            log_probs = F.log_softmax(self.head(flat_hidden[masked]).float(), dim=-1)
            mlm = -log_probs.gather(1, flat_labels[masked][:, None]).squeeze(1).mean()
        else:
            log_probs, mlm = None, hidden.sum() * 0.0
        losses = {"mlm": mlm}
        if name == "weam":
            losses["cross"] = (weam_exchange_loss(flat_hidden, masked, flat_labels, links, labels.shape[1], self.head)
                               if masked.numel() else hidden.sum() * 0.0)
            losses["loss"] = mlm + self.objective.weam.cross_weight * losses["cross"]
        elif name == "partner_id_prediction":
            cross = partner_id_loss(log_probs, masked, labels, original_ids, links, word_start, self.objective.weam)
            losses["cross"] = cross if cross is not None else hidden.sum() * 0.0
            losses["loss"] = mlm + self.objective.weam.cross_weight * losses["cross"]
        elif name == "word_aligned":
            rows = pivot.any(1).nonzero().squeeze(1)
            with torch.no_grad():
                anchor = self.frozen(**{k: v[rows] for k, v in encoder_inputs.items()}).last_hidden_state
            align, reg = word_alignment_losses(hidden, anchor, rows, links, word_end & pivot, labels)
            options = self.objective.word_aligned
            losses.update(align=align, reg=reg, loss=align + options.reg_weight * reg + options.mlm_weight * mlm)
        else:
            losses["loss"] = mlm
        return losses


def unit_attention_mask(unit_index: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[rows, 1, seq, seq] additive mask from a packed batch's ``unit_index`` ([rows, seq], 0 on
    padding): a token sees exactly the tokens of its own unit. HF encoders (BERT, XLM-R) take a 4-D
    mask as it is, and both their eager (adds it to the scores) and sdpa (passes it as attn_mask)
    attention accept an additive float mask; padding queries see nothing, so their softmax is
    uniform but finite, and no loss reads them. FlashAttention/varlen kernels take no such mask."""
    same = (unit_index[:, :, None] == unit_index[:, None, :]) & (unit_index[:, None, :] > 0)
    mask = torch.zeros(same.shape, dtype=dtype, device=unit_index.device)
    return mask.masked_fill_(~same, torch.finfo(dtype).min)[:, None]


def exchanged_states(flat_hidden: torch.Tensor, masked: torch.Tensor, links: torch.Tensor, seq: int) -> torch.Tensor:
    """[n_masked, H]: the state each masked token is predicted from in WEAM's L_cp, after the word
    exchange: the mean final state of the tokens linked to it (its aligned word's subwords), or its
    own final state when nothing is linked to it. ``masked`` are flat indices into ``flat_hidden``
    ([rows × seq, H]); ``links`` are (row, pos, row, pos) token links, read in both directions."""
    src = links[:, 0] * seq + links[:, 1]
    tgt = links[:, 2] * seq + links[:, 3]
    at, partner = torch.cat([src, tgt]), torch.cat([tgt, src])
    slot = torch.full((flat_hidden.shape[0],), -1, dtype=torch.long, device=masked.device)
    slot[masked] = torch.arange(masked.numel(), device=masked.device)
    keep = slot[at] >= 0
    at, partner = slot[at[keep]], partner[keep]
    sums = flat_hidden.new_zeros(masked.numel(), flat_hidden.shape[1]).index_add(0, at, flat_hidden[partner])
    counts = flat_hidden.new_zeros(masked.numel()).index_add(0, at, flat_hidden.new_ones(at.numel()))
    own = flat_hidden[masked]
    return torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], own)


def weam_exchange_loss(flat_hidden, masked, flat_labels, links, seq: int, head) -> torch.Tensor:
    """L_cp of WEAM as Figure 1 of Yang et al. 2021 (arXiv 2106.01732) draws it; the model's loss is
    L = L_mp + λ·L_cp (:class:`PretrainingModel`).

    The spec. [paper] names where in Figure 1 (figure panels, or its caption) a point comes from;
    [chosen here] is what the figure and caption leave open, decided in this code.

    * Input [paper, figure top row "Bilingual Parallel Sentences"]: one concatenated pair,
      ``[CLS] en-words [SEP] xx-words [SEP]``. Positions and token types [chosen here]: the same as
      the ``tlm`` arm (target positions restart, side as token type; training/data.py), so WEAM and
      TLM differ only in the loss.
    * Masking [paper, figure "MASK" arrow]: the two sides are masked independently ("Is" and
      "raining" on the English side, "今天" on the Chinese side, while "下雨", the partner of
      "raining", and "today", the partner of "今天", stay visible). Rate 0.3 and BERT's 80/10/10
      corruption [chosen here; 0.3 is what the paper's text is reported to state].
    * L_mp [paper, figure "Multilingual Prediction"; caption "predicts the masked tokens"]: each
      masked token predicted from its own final state (R2 → Is, R4 → raining, R8 → 今天): the
      ``mlm`` term of :class:`PretrainingModel`.
    * L_cp [paper, figure "Word Alignment Matrix", "Word-Exchange", "Cross-lingual Prediction";
      caption "utilizes a word alignment matrix to swap the representations of aligned words in
      parallel sentences, then predicts the masked tokens in the swapped sentences"]: after the
      final layer, the representations of aligned words change places, and each masked token is
      predicted, through the same MLM output layer, from the representation now at its position:
      its aligned partner's (R9 of 下雨 → raining, R5 of today → 今天). A masked token without an
      alignment keeps its own (R2 of the unaligned "Is" → Is).
    * The alignment [paper, "Word Alignment Matrix"]: statistical word links, given as input (here
      the align stage's symmetrised eflomal / fast_align links).
    * Subwords [chosen here]: a word of several pieces is aligned piece by piece to every piece of
      its partner (training/data.py projects word links so); a masked piece is predicted from the
      mean final state of all pieces linked to it. One-to-many and many-to-many links [chosen
      here] follow the same rule: the mean over every token linked to the masked one. A partner
      that is itself masked still lends its state (the figure's partners are visible; nothing
      drops the case when they are not).
    * λ = 1 [chosen here; what the paper's text is reported to state]: ``objective.weam.cross_weight``.
    * Normalisation [chosen here]: L_mp and L_cp are each the mean cross-entropy over the masked
      tokens of the batch, so both are per-token losses on one scale and every masked token has one
      term in each (aligned or not).
    """
    states = exchanged_states(flat_hidden, masked, links, seq)
    log_probs = F.log_softmax(head(states).float(), dim=-1)
    return -log_probs.gather(1, flat_labels[masked][:, None]).squeeze(1).mean()


def partner_id_loss(log_probs, masked, labels, original_ids, links, word_start, options: WeamOptions):
    """L_cross of the ablation ``partner_id_prediction`` (this project's earlier reading of WEAM;
    Figure 1 of the paper does the reverse, see :func:`weam_exchange_loss`), from the
    log-probabilities already computed at the masked positions; None when no masked token has a
    target.

    The spec. [paper] = as this project read the paper before Figure 1 was checked; [chosen here]
    = a choice of this code, a config option.

    * What is predicted from what: each masked token's final hidden state goes through the MLM
      output layer once; L_mlm scores its own token id [paper], L_cross the token ids of the
      words aligned to it in the other language of the pair [paper]. Both terms use the same
      output layer and the same softmax [chosen here].
    * Loss: L = L_mlm + λ·L_cross, λ = ``cross_weight`` = 1 [paper]; mask rate 0.3 [paper].
    * Single input (``input: single``, the default) [chosen here]: the model sees one side; the
      translation is never in its input, so the alignment is prior knowledge, not context.
    * Pair input (``input: pair``) [chosen here]: ``[CLS] src [SEP] tgt [SEP]`` as in TLM. The
      masking unit is an alignment group (tokens joined by links, transitively): when one token is
      masked its aligned counterparts are masked too, and aligned masked tokens are always
      replaced by [MASK] (never kept or randomised), so no masked token's cross-lingual target is
      visible and the prediction cannot copy it. The mask rate then overshoots by less than one
      group per row.
    * Multi-subword words [chosen here]: links join every subword of one word with every subword
      of the other. ``multi_token: all`` (default): a masked token's cross-entropy is averaged over
      all its aligned tokens (a uniform soft target over the aligned word's subwords, so a word of
      many pieces weighs as much as one of a single piece); ``first``: only the first subword of
      each aligned word is a target.
    * Unaligned masked tokens [chosen here]: ``unaligned: skip`` (default) gives them no L_cross
      term (they still count in L_mlm); ``self`` makes their own id the cross-lingual target.
    * Normalisation [chosen here]: each masked token with targets contributes its mean target
      cross-entropy once. ``normalise: masked`` (default) divides the sum by the number of masked
      tokens, L_mlm's denominator, so λ weighs per-token losses on one scale and an unaligned
      token contributes 0 to L_cross (λ = 1 then means the same whatever the alignment coverage,
      which differs by language); ``targeted`` divides by the masked tokens that have targets.
    """
    predicted, target_ids, weights = cross_targets(labels, original_ids, links, word_start, options)
    if predicted.numel() == 0:
        return None
    row_of = torch.full((labels.numel(),), -1, dtype=torch.long, device=masked.device)
    row_of[masked] = torch.arange(masked.numel(), device=masked.device)
    picked = log_probs[row_of[predicted], target_ids]
    return -(weights.to(picked) * picked).sum()


def word_alignment_losses(hidden, anchor, anchor_rows, links, pivot_word_end, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """Cao, Kitaev & Klein 2020 (ICLR), on one micro-batch: (L_align, R).

    ``hidden`` [rows, seq, H]: the trained model's last layer on every row; ``anchor``: the frozen
    starting model's last layer on the rows holding pivot (English) tokens, ``anchor_rows``; ``pivot_word_end``
    [rows, seq]: the last subword of each pivot word. Words are their last subword's vector and only
    one-to-one word links count (the data path builds ``links`` so).

    * L_align = mean over links and dimensions of (f(non-pivot word) − f₀(pivot word))²: the
      trained model's non-English vectors move to the frozen copy's English ones.
    * R = mean over every pivot word and dimension of (f(pivot word) − f₀(pivot word))²: the
      trained model's English vectors stay where they were.

    Masked words (only with an MLM term) drop out of both."""
    seq = labels.shape[1]
    flat = hidden.reshape(-1, hidden.shape[-1]).float()
    row_map = torch.full((labels.shape[0],), -1, dtype=torch.long, device=labels.device)
    row_map[anchor_rows] = torch.arange(anchor_rows.numel(), device=labels.device)
    flat_anchor = anchor.reshape(-1, anchor.shape[-1]).float()
    visible = labels.reshape(-1) == IGNORE
    src = links[:, 0] * seq + links[:, 1]
    tgt = links[:, 2] * seq + links[:, 3]
    keep = visible[src] & visible[tgt]
    src_anchor = row_map[links[keep, 0]] * seq + links[keep, 1]
    align = _mean_sq(flat[tgt[keep]] - flat_anchor[src_anchor], hidden)
    words = (pivot_word_end & (row_map >= 0)[:, None]).reshape(-1) & visible
    positions = words.nonzero().squeeze(1)
    word_anchor = row_map[positions // seq] * seq + positions % seq
    reg = _mean_sq(flat[positions] - flat_anchor[word_anchor], hidden)
    return align, reg


def _mean_sq(diff: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
    return diff.pow(2).mean() if diff.numel() else anchor.sum() * 0.0
