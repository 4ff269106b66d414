"""FAISS index choice, deletes and persistence; reciprocal rank fusion, MMR and the token budget."""

from __future__ import annotations

import numpy as np
import pytest

from middleware.retrieval.fusion import (
    maximal_marginal_relevance,
    reciprocal_rank_fusion,
    select_under_budget,
)
from middleware.retrieval.vectors import VectorIndex


def unit_vectors(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_small_index_is_exact_inner_product_and_deletes_for_real() -> None:
    vectors = unit_vectors(30)
    index = VectorIndex(16)
    index.add(np.arange(100, 130), vectors)
    scores, ids = index.search(vectors[:2], 3)
    assert index.kind == "flat-ip"
    assert list(ids[:, 0]) == [100, 101]
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    exact = np.argsort(-(vectors @ vectors[0]))[:3] + 100
    assert list(ids[0]) == list(exact)
    index.remove(np.array([100]))
    assert len(index) == 29 and 100 not in index.search(vectors[:1], 29)[1][0]


def test_past_the_threshold_the_index_becomes_hnsw_and_deleted_ids_never_come_back(tmp_path) -> None:
    vectors = unit_vectors(120)
    index = VectorIndex(16, exact_max=50)
    index.add(np.arange(60), vectors[:60])
    assert index.kind == "hnsw-ip"
    index.remove(np.array([0, 1]))  # tombstones: HNSW cannot delete
    assert index.tombstones == {0, 1} and len(index) == 58
    _, ids = index.search(vectors[:2], 5)
    assert not {0, 1} & set(ids.ravel().tolist())
    index.save(tmp_path / "i.faiss")
    reopened = VectorIndex.load(tmp_path / "i.faiss", index.kind, index.tombstones)
    assert np.array_equal(reopened.search(vectors[2:4], 5)[1], index.search(vectors[2:4], 5)[1])
    index.remove(np.arange(2, 20))  # past a fifth tombstoned: rebuilt from the live vectors
    assert index.tombstones == set() and len(index) == 40
    assert index.search(vectors[30:31], 1)[1][0, 0] == 30


def test_reciprocal_rank_fusion_rewards_agreement_and_respects_weights() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "c", "a"]], k=10)
    assert [key for key, _ in fused] == ["b", "a", "c"]
    assert fused[0][1] == pytest.approx(1 / 12 + 1 / 11)
    assert reciprocal_rank_fusion([["a", "b"], ["b", "a"]], [3.0, 1.0], k=10)[0][0] == "a"


def test_mmr_skips_a_near_duplicate_for_a_diverse_passage() -> None:
    base = unit_vectors(2, seed=3)
    duplicate = base[0] + 0.01
    candidates = np.stack([base[0], duplicate / np.linalg.norm(duplicate), base[1]])
    assert maximal_marginal_relevance(candidates, [1.0, 0.99, 0.5], lambda_=1.0, top_n=2) == [0, 1]
    assert maximal_marginal_relevance(candidates, [1.0, 0.99, 0.5], lambda_=0.5, top_n=2) == [0, 2]


def test_budget_selection_keeps_rank_order_and_skips_what_does_not_fit() -> None:
    assert select_under_budget([50, 80, 30, 10], budget=100, limit=5) == [0, 2, 3]
    assert select_under_budget([50, 80, 30, 10], budget=None, limit=2) == [0, 1]
