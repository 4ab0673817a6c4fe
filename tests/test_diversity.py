"""Diversity kernels against brute force and hand-worked layouts."""

import numpy as np
import pytest

from activelabel.strategies import density, kcenter_greedy, kmeans, kmeans_select, select_batch
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


def test_density_does_not_depend_on_the_block_size(monkeypatch):
    """The same pool and seed give the same densities, and the same density batch, whatever the block size."""
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(scale=0.3, size=(300, 3)), rng.normal(loc=4.0, size=(300, 3))])
    proba = rng.dirichlet(np.ones(3), size=600)
    results = []
    for block in (diversity._BLOCK, 1_000, 37):
        monkeypatch.setattr(diversity, "_BLOCK", block)
        d = density(X, np.random.default_rng(5), n_reference=100)
        batch = select_batch("density", batch_size=20, proba=proba, X=X, random_state=5, n_reference=100)
        results.append((d, batch))
    d0, b0 = results[0]
    for d, batch in results[1:]:
        np.testing.assert_allclose(d, d0, rtol=1e-12)
        np.testing.assert_array_equal(batch.indices, b0.indices)
        np.testing.assert_allclose(batch.scores, b0.scores, rtol=1e-12)


def test_density_bandwidth_is_the_median_reference_distance():
    """Worked by hand: two reference points at distance 2 give bandwidth 4, so each has density (1 + e^-1) / 2."""
    X = np.array([[0.0, 0.0], [2.0, 0.0]])
    np.testing.assert_allclose(density(X, np.random.default_rng(0)), [(1 + np.exp(-1)) / 2] * 2)


def test_density_never_uses_excluded_rows_as_reference():
    """A dense block of excluded rows does not raise the density of the rows next to it."""
    X = np.array([[0.0], [1.0], [10.0], [10.0], [10.0], [10.0], [10.0]])
    excluded = np.array([False, False, True, True, True, True, True])
    d = density(X, np.random.default_rng(0), exclude_mask=excluded)
    np.testing.assert_allclose(d, density(X[:2], np.random.default_rng(0)).tolist() + [d[2]] * 5)
    # the first two rows are each other's only reference: same density, by symmetry
    assert d[0] == pytest.approx(d[1])


@pytest.mark.parametrize("where", [1000.0, 4.5, 0.2])
@pytest.mark.parametrize("labeled_too", [False, True])
def test_kcenter_ignores_an_excluded_point(where, labeled_too):
    """An excluded point, far away or inside the pool, changes nothing: picks and scores are as if it did not exist."""
    X = np.arange(11, dtype=float)[:, None]
    labeled = np.zeros(11, dtype=bool)
    labeled[0] = True
    with_point = np.concatenate([X[:6], [[where]], X[6:]])
    mask = np.insert(labeled, 6, labeled_too)  # an item in both masks counts as excluded
    excluded = np.zeros(12, dtype=bool)
    excluded[6] = True
    for lab, lab_with in ((labeled, mask), (np.zeros(11, bool), np.zeros(12, bool))):
        alone = select_batch("kcenter", batch_size=4, X=X, labeled_mask=lab, random_fraction=0, random_state=2)
        got = select_batch("kcenter", batch_size=4, X=with_point, labeled_mask=lab_with, exclude_mask=excluded,
                           random_fraction=0, random_state=2)
        old_index = np.delete(np.arange(12), 6)
        np.testing.assert_array_equal(got.indices, old_index[alone.indices])
        np.testing.assert_allclose(np.delete(got.scores, 6), alone.scores)
        assert got.scores[6] == -np.inf


def test_kcenter_spreads_away_from_labeled_not_excluded():
    """On 0..9 with 0 labeled and 9 excluded, the first pick is 8 (9 is no centre), then 4, midway to 0."""
    X = np.arange(10, dtype=float)[:, None]
    labeled = np.zeros(10, dtype=bool)
    labeled[0] = True
    excluded = np.zeros(10, dtype=bool)
    excluded[9] = True
    batch = select_batch("kcenter", batch_size=2, X=X, labeled_mask=labeled, exclude_mask=excluded,
                         random_fraction=0, random_state=0)
    assert list(batch.indices) == [8, 4]
    np.testing.assert_allclose(batch.scores[1:9], np.arange(1, 9))
