"""Tatoeba's added figures on hand-made similarity matrices (rows: English queries, columns: xx
candidates), each answer worked out in the comments."""

from __future__ import annotations

import numpy as np
import pytest

from weam.eval import metrics

# Query 0: gold 0 is the most similar (rank 1). Query 1: gold 2, candidates 0 and 1 strictly more
# similar (rank 3). Query 2: gold 1 ties candidate 0 at the top: rank 1 (ties do not push the gold
# down), but argmax takes the first maximum, candidate 0, so the query is wrong for accuracy.
SIM = np.array([[0.9, 0.1, 0.2],
                [0.8, 0.7, 0.3],
                [0.5, 0.5, 0.1]])
GOLD = [0, 2, 1]


def test_gold_rank_counts_only_strictly_more_similar_candidates():
    assert metrics.gold_ranks(SIM, GOLD).tolist() == [1, 3, 1]


def test_mrr_is_the_mean_reciprocal_gold_rank_in_percent():
    assert metrics.mean_reciprocal_rank(SIM, GOLD) == pytest.approx(100 * (1 + 1 / 3 + 1) / 3)


def test_chance_levels_are_one_over_n_and_the_harmonic_number_over_n():
    assert metrics.chance_levels(1) == {"chance_accuracy": 100.0, "chance_mrr": 100.0}
    # n = 4: H_4 = 1 + 1/2 + 1/3 + 1/4 = 25/12, so E[1/rank] = 25/48.
    assert metrics.chance_levels(4) == pytest.approx({"chance_accuracy": 25.0, "chance_mrr": 100 * 25 / 48})
    with pytest.raises(ValueError):
        metrics.chance_levels(0)


def test_chance_mrr_is_what_a_random_ranking_scores():
    # Every permutation of 3 candidates equally likely: the gold is at rank 1, 2 or 3 with p = 1/3.
    ranks = [1, 2, 3]
    assert metrics.chance_levels(3)["chance_mrr"] == pytest.approx(100 * np.mean([1 / r for r in ranks]))


def test_shared_word_is_two_word_characters_case_folded():
    assert metrics.shares_word("Send Email now", "Tuma EMAIL sasa")
    assert not metrics.shares_word("a b", "a b")  # single characters are not words
    assert not metrics.shares_word("the cat", "paka")
    assert metrics.shares_word("STRASSE 5", "straße 5".replace("ß", "ss"))


def test_retrieval_scores_of_a_tiny_pool():
    queries = ["open the file", "save Email", "close it"]
    candidates = ["fungua faili", "funga", "hifadhi Email"]  # query 1's gold (2) shares "email"
    scores = metrics.retrieval_scores(SIM, GOLD, queries, candidates)
    # argmax: [0, 0, 0] against gold [0, 2, 1]: one of three right.
    assert scores["accuracy"] == pytest.approx(100 / 3)
    assert scores["mrr"] == pytest.approx(100 * (1 + 1 / 3 + 1) / 3)
    assert scores["chance_accuracy"] == pytest.approx(100 / 3)
    assert scores["chance_mrr"] == pytest.approx(100 * (1 + 1 / 2 + 1 / 3) / 3)
    assert scores["n_shared_word"] == 1.0
    # Queries 0 and 2 share no word with their gold: query 0 right, query 2 wrong (tie → first).
    assert scores["accuracy_no_shared_word"] == pytest.approx(50.0)


def test_accuracy_matches_xtremes_argmax_and_accepts_torch():
    import torch

    from weam.eval.runners import retrieve_en_to_xx

    rng = np.random.default_rng(0)
    src = torch.nn.functional.normalize(torch.tensor(rng.normal(size=(7, 4)), dtype=torch.float32), dim=-1)
    eng = torch.nn.functional.normalize(src + 0.8 * torch.randn(7, 4, generator=torch.Generator().manual_seed(1)),
                                        dim=-1)
    gold = list(range(7))
    words = [f"w{i}" for i in range(7)]
    scores = metrics.retrieval_scores(eng @ src.T, gold, words, [f"x{i}" for i in range(7)])
    assert scores["accuracy"] == metrics.accuracy(gold, retrieve_en_to_xx(src, eng))["accuracy"]
    assert scores["accuracy_no_shared_word"] == scores["accuracy"] and scores["n_shared_word"] == 0


def test_no_shared_word_accuracy_is_absent_when_every_pair_shares_one():
    scores = metrics.retrieval_scores(np.eye(2), [0, 1], ["Email", "Wi-Fi"], ["Email", "WiFi Wi"])
    assert scores["n_shared_word"] == 2 and "accuracy_no_shared_word" not in scores


def test_bad_gold_is_refused():
    with pytest.raises(ValueError, match="outside"):
        metrics.gold_ranks(SIM, [0, 3, 1])
    with pytest.raises(ValueError, match="3 gold indices"):
        metrics.gold_ranks(SIM[:2], GOLD)


def test_averages_skip_reference_figures_and_partial_metrics():
    per_language = {"sw": {"accuracy": 10.0, "mrr": 20.0, "chance_accuracy": 1.0, "accuracy_no_shared_word": 5.0},
                    "yo": {"accuracy": 30.0, "mrr": 40.0, "chance_accuracy": 2.0}}
    means = metrics.average_metrics(per_language, ["accuracy", "mrr", "chance_accuracy", "accuracy_no_shared_word"],
                                    skip=metrics.REFERENCE_METRICS)
    assert means == {"accuracy": 20.0, "mrr": 30.0}
