"""Diversity kernels against brute force and hand-worked layouts."""

import numpy as np

from activelabel.strategies import density, kcenter_greedy, kmeans, kmeans_select
from activelabel.strategies import diversity


def test_nearest_centers_matches_brute_force(monkeypatch):
    """Chunked nearest-centre search equals the full distance matrix, across chunk borders."""
    monkeypatch.setattr(diversity, "_BLOCK", 50)
    rng = np.random.default_rng(0)
    X, C = rng.normal(size=(333, 6)), rng.normal(size=(7, 6))
    full = ((X[:, None, :] - C[None]) ** 2).sum(axis=2)
    idx, sq = diversity.nearest_centers(X, C)
    np.testing.assert_array_equal(idx, full.argmin(axis=1))
    np.testing.assert_allclose(sq, full.min(axis=1), atol=1e-9)


def test_kcenter_covers_the_line():
    """On points 0..10 with 0 labeled, k-center picks 10, then 5 (farthest first)."""
    X = np.arange(11, dtype=float)[:, None]
    mask = np.zeros(11, dtype=bool)
    mask[0] = True
    picks, scores = kcenter_greedy(X, 2, mask, np.random.default_rng(0))
    assert list(picks) == [10, 5]
    np.testing.assert_allclose(scores[1:], np.arange(1, 11))


def test_kcenter_without_labels_is_distinct_even_with_duplicates():
    """With nothing labeled and duplicate points, picks stay distinct."""
    X = np.zeros((20, 3))
    picks, _ = kcenter_greedy(X, 20, np.zeros(20, dtype=bool), np.random.default_rng(1))
    assert sorted(picks) == list(range(20))


def test_kmeans_finds_separated_clusters():
    """Three well separated blobs are recovered exactly."""
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [20, 0], [0, 20]], dtype=float)
    X = np.concatenate([c + rng.normal(size=(50, 2)) for c in centres])
    found, labels = kmeans(X, 3, rng)
    groups = [set(labels[i * 50:(i + 1) * 50]) for i in range(3)]
    assert all(len(g) == 1 for g in groups)
    assert len(set.union(*groups)) == 3
    assert np.abs(np.sort(found[:, 0]) - np.sort(centres[:, 0])).max() < 1.0


def test_kmeans_select_prefers_high_scores_within_a_cluster():
    """kmeans_select returns the best-scored member of each cluster."""
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(30, 2)), 50 + rng.normal(size=(30, 2))])
    scores = rng.random(60)
    picks = kmeans_select(X, 2, rng, scores=scores)
    assert set(picks) == {int(np.argmax(scores[:30])), 30 + int(np.argmax(scores[30:]))}


def test_density_is_higher_in_the_dense_region():
    """A tight cluster has higher estimated density than scattered outliers."""
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(scale=0.1, size=(200, 2)), rng.uniform(-20, 20, size=(20, 2))])
    d = density(X, rng, n_reference=100)
    assert d[:200].min() > d[200:].max() * 0.9
    assert d[:200].mean() > 5 * d[200:].mean()
