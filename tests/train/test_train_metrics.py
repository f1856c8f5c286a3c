"""Retrieval and zero-shot metrics against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from capbuild.train.metrics import ranking_metrics, topk_accuracy


def test_single_relevant_ranks_with_ties_counted_against_the_model():
    scores = np.array(
        [
            [0.9, 0.5, 0.1],  # true candidate 0 first: rank 1
            [0.2, 0.2, 0.1],  # true candidate 1 ties with candidate 0: rank 2
            [0.3, 0.3, 0.3],  # everything tied: rank 3
        ]
    )
    result = ranking_metrics(scores, np.eye(3, dtype=bool), ks=(1, 2, 3))
    assert result["MRR@1"] == pytest.approx(1 / 3)
    assert result["MRR@2"] == pytest.approx((1 + 1 / 2) / 3)
    assert result["MRR@3"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    assert result["R@1"] == pytest.approx(1 / 3)
    assert result["R@2"] == pytest.approx(2 / 3)
    assert result["R@3"] == pytest.approx(1.0)
    assert result["mAP"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)


def test_mrr_at_k_is_zero_past_k_as_clip_italian_defines_it():
    scores = np.array([[0.1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4]])  # the true candidate (0) is last: rank 7
    relevant = np.zeros_like(scores, dtype=bool)
    relevant[0, 0] = True
    result = ranking_metrics(scores, relevant)
    assert result["MRR@1"] == result["MRR@5"] == 0.0
    assert result["MRR@10"] == pytest.approx(1 / 7)
    assert result["R@5"] == 0.0
    assert result["R@10"] == 1.0


def test_average_precision_over_several_relevant_captions():
    # Image 0 has captions 0 and 2; ranking by score: c1, c0, c3, c2 -> relevant at ranks 2 and 4.
    # AP = (1/2 + 2/4) / 2 = 0.5. Image 1 has captions 1 and 3.
    scores = np.array([[0.8, 0.9, 0.1, 0.5], [0.5, 0.9, 0.2, 0.5]])
    relevant = np.array([[True, False, True, False], [False, True, False, True]])
    result = ranking_metrics(scores, relevant, ks=(1,))
    # Image 1: c1 rank 1; c3 ties c0 (non-relevant ranks first), so c3 is rank 3: AP = (1/1 + 2/3) / 2.
    assert result["mAP"] == pytest.approx((0.5 + (1 + 2 / 3) / 2) / 2)
    assert result["MRR@1"] == pytest.approx(0.5)  # image 0's best caption is at rank 2, image 1's at rank 1
    assert result["R@1"] == pytest.approx(0.5)


def test_metrics_reject_queries_without_a_relevant_candidate():
    with pytest.raises(ValueError, match="relevant"):
        ranking_metrics(np.zeros((2, 2)), np.array([[True, False], [False, False]]))


def test_topk_accuracy_counts_ties_against_the_model_and_skips_k_past_the_classes():
    scores = np.array([[0.1, 0.7, 0.2, 0.0], [0.5, 0.5, 0.1, 0.0], [0.9, 0.1, 0.1, 0.1]])
    labels = np.array([1, 1, 3])  # rank 1; tied for first -> rank 2; tied last -> rank 4
    result = topk_accuracy(scores, labels, ks=(1, 2, 3, 10))
    assert result == {"top1": pytest.approx(1 / 3), "top2": pytest.approx(2 / 3), "top3": pytest.approx(2 / 3)}
