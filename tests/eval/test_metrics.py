"""Metrics on hand-computed cases."""

from __future__ import annotations

import pytest

from weam.eval import metrics


def test_ner_partial_entity_counts_as_wrong():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    predicted = [["B-PER", "O", "O", "B-LOC"]]  # PER cut short: only LOC matches
    scores = metrics.tagging_scores(gold, predicted)
    assert scores["precision"] == pytest.approx(50.0)
    assert scores["recall"] == pytest.approx(50.0)
    assert scores["f1"] == pytest.approx(50.0)
    assert scores["accuracy"] == pytest.approx(75.0)


def test_pos_accuracy_is_token_accuracy():
    scores = metrics.tagging_scores([["DET", "NOUN", "VERB", "PUNCT"]], [["DET", "NOUN", "NOUN", "PUNCT"]])
    assert scores["accuracy"] == pytest.approx(75.0)


def test_tagging_rejects_misaligned_predictions():
    with pytest.raises(ValueError):
        metrics.tagging_scores([["O", "O"]], [["O"]])


def test_squad_normalization_drops_articles_and_punctuation():
    gold = {"q1": ["Eiffel Tower"], "q2": ["Eiffel Tower"], "q3": ["Paris", "in Paris"]}
    predicted = {"q1": "The Eiffel Tower!", "q2": "the big Eiffel tower", "q3": "Berlin"}
    scores = metrics.qa_scores(gold, predicted, "en")
    # q1: EM 1, F1 1; q2: EM 0, F1 = 2·(2/3·1)/(2/3+1) = 0.8; q3: 0, 0.
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * 1.8 / 3)


def test_missing_answer_scores_zero():
    assert metrics.qa_scores({"q1": ["x"], "q2": ["y"]}, {"q1": "x"}) == {"exact_match": 50.0, "f1": 50.0}


def test_mlqa_language_specific_normalization():
    # German articles are removed only by MLQA's normalization.
    assert metrics.qa_scores({"q": ["Turm"]}, {"q": "der Turm."}, "de", mlqa=True)["exact_match"] == 100.0
    assert metrics.qa_scores({"q": ["Turm"]}, {"q": "der Turm."}, "de", mlqa=False)["exact_match"] == 0.0
    # Chinese: mixed segmentation makes every Han character a token: P = 2/4, R = 1, F1 = 2/3.
    assert metrics.qa_scores({"q": ["铁塔"]}, {"q": "巴黎铁塔"}, "zh", mlqa=True)["f1"] == pytest.approx(200 / 3)
    # Unicode punctuation (the Chinese full stop) is stripped.
    assert metrics.qa_scores({"q": ["铁塔"]}, {"q": "铁塔。"}, "zh", mlqa=True)["exact_match"] == 100.0


def test_map_at_20_single_gold_is_reciprocal_rank():
    gold = {"a": ["E1"], "b": ["E2"], "c": ["E3"]}
    predicted = {"a": ["E1", "E9"], "b": ["E9", "E2"], "c": [f"X{i}" for i in range(20)] + ["E3"]}
    assert metrics.map_at_k(gold, predicted)["map@20"] == pytest.approx(100 * (1 + 0.5 + 0) / 3)


def test_average_precision_with_several_relevant_answers():
    # Relevant {a, b}; ranking a, x, b: (1/1 + 2/3) / 2.
    assert metrics.average_precision_at_k({"a", "b"}, ["a", "x", "b"]) == pytest.approx((1 + 2 / 3) / 2)
    # More relevant items than k: the divisor is k.
    relevant = {f"r{i}" for i in range(25)}
    assert metrics.average_precision_at_k(relevant, sorted(relevant)[:20], k=20) == pytest.approx(1.0)


def test_tatoeba_accuracy():
    assert metrics.accuracy([0, 1, 2, 3], [0, 2, 2, 3])["accuracy"] == pytest.approx(75.0)


def test_aggregates_by_family_and_low_resource():
    agg = metrics.aggregate({"sw": 40.0, "yo": 60.0, "de": 80.0, "fr": 100.0})
    assert agg["avg"] == pytest.approx(70.0)
    assert agg["families"] == {"Atlantic-Congo": pytest.approx(50.0), "Indo-European": pytest.approx(90.0)}
    assert agg["low_resource"] == pytest.approx(50.0)
    assert metrics.aggregate({"de": 10.0})["low_resource"] is None
