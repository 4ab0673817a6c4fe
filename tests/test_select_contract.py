"""The contract every strategy of select_batch keeps."""

import numpy as np
import pytest

from activelabel.strategies import STRATEGIES, random_share, select_batch


@pytest.fixture(scope="module")
def pool():
    """A small pool with probabilities, committee samples and features, 30 items labeled, 40 excluded.

    The excluded items (a held-out test set) are the most uncertain and lie
    far out, so a strategy that let them in would pick them.
    """
    rng = np.random.default_rng(0)
    n, c, d = 400, 4, 5
    X = rng.normal(size=(n, d))
    samples = rng.dirichlet(np.ones(c) * 0.5, size=(3, n))
    order = rng.permutation(n)
    mask = np.zeros(n, dtype=bool)
    mask[order[:30]] = True
    excluded = np.zeros(n, dtype=bool)
    excluded[order[30:70]] = True
    excluded[order[:5]] = True  # in both masks: counts as excluded
    X[excluded] *= 20
    samples[:, excluded] = rng.dirichlet(np.ones(c) * 50, size=(3, int(excluded.sum())))
    proba = samples.mean(axis=0)
    return dict(proba=proba, samples=samples, X=X, labeled_mask=mask, exclude_mask=excluded)


def not_candidates(pool):
    return pool["labeled_mask"] | pool["exclude_mask"]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("batch_size", [1, 7, 50])
def test_contract(strategy, batch_size, pool):
    """Exact size, distinct, unlabeled and not excluded only, seeded, the random share honoured."""
    batch = select_batch(strategy, batch_size=batch_size, random_state=3, **pool)
    idx = batch.indices
    n = pool["X"].shape[0]
    assert len(idx) == batch_size
    assert len(np.unique(idx)) == batch_size
    assert np.all((idx >= 0) & (idx < n))
    assert not pool["labeled_mask"][idx].any()
    assert not pool["exclude_mask"][idx].any()
    assert batch.scores.shape == (n,)
    assert np.all(np.isneginf(batch.scores[not_candidates(pool)]))
    expected_random = batch_size if strategy == "random" else random_share(batch_size, 0.1)
    assert batch.n_random == expected_random
    assert batch.is_random.sum() == expected_random

    again = select_batch(strategy, batch_size=batch_size, random_state=3, **pool)
    np.testing.assert_array_equal(again.indices, idx)
    np.testing.assert_array_equal(again.scores, batch.scores)


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s != "random"])
def test_random_share_is_random(strategy, pool):
    """With half the batch random, the random half changes with the seed and avoids the strategy's picks."""
    draws = [select_batch(strategy, batch_size=40, random_fraction=0.5, random_state=s, **pool) for s in range(4)]
    random_parts = [set(b.indices[b.is_random]) for b in draws]
    assert all(len(r) == 20 for r in random_parts)
    assert len({frozenset(r) for r in random_parts}) > 1
    for b in draws:
        assert not set(b.indices[b.is_random]) & set(b.indices[~b.is_random])


@pytest.mark.parametrize("strategy", ["least_confident", "margin", "entropy", "vote_entropy",
                                      "consensus_entropy", "kl_disagreement", "bald", "density"])
def test_score_strategies_take_the_top_scores(strategy, pool):
    """Without a random share, a score strategy returns exactly the top-scored unlabeled items, best first."""
    batch = select_batch(strategy, batch_size=25, random_fraction=0.0, random_state=0, **pool)
    s = batch.scores
    np.testing.assert_array_equal(np.sort(s[batch.indices]), np.sort(s)[-25:])
    assert np.all(np.diff(s[batch.indices]) <= 0)


def test_random_fraction_one_gives_all_random(pool):
    """random_fraction=1 turns any strategy into uniform sampling."""
    batch = select_batch("margin", batch_size=10, random_fraction=1.0, random_state=0, **pool)
    assert batch.n_random == 10


def test_whole_unlabeled_pool(pool):
    """A batch as large as the unlabeled pool returns every unlabeled item."""
    n_unlabeled = int((~not_candidates(pool)).sum())
    for strategy in ("default", "kcenter", "kmeans", "density", "margin"):
        batch = select_batch(strategy, batch_size=n_unlabeled, random_state=0, **pool)
        assert set(batch.indices) == set(np.flatnonzero(~not_candidates(pool)))


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s != "random"])
def test_excluded_items_take_no_part(strategy, pool):
    """Selecting with excluded items gives the batch and scores of the pool with those items deleted.

    ``random`` keeps only the weaker promise (its scores are one uniform draw
    per pool item, so the stream depends on the pool size): see
    ``test_random_needs_only_a_mask``.
    """
    keep = np.flatnonzero(~pool["exclude_mask"])
    smaller = dict(proba=pool["proba"][keep], samples=pool["samples"][:, keep], X=pool["X"][keep],
                   labeled_mask=pool["labeled_mask"][keep])
    alone = select_batch(strategy, batch_size=30, random_state=4, **smaller)
    got = select_batch(strategy, batch_size=30, random_state=4, **pool)
    np.testing.assert_array_equal(got.indices, keep[alone.indices])
    np.testing.assert_allclose(got.scores[keep], alone.scores, rtol=1e-9)
    assert got.n_random == alone.n_random


def test_random_needs_only_a_mask(pool):
    """random takes its pool size from either mask and avoids what the masks hold."""
    only_excluded = select_batch("random", batch_size=50, random_state=0, exclude_mask=pool["exclude_mask"])
    assert len(only_excluded.scores) == len(pool["X"])
    assert not pool["exclude_mask"][only_excluded.indices].any()
    both = select_batch("random", batch_size=50, random_state=0, labeled_mask=pool["labeled_mask"],
                        exclude_mask=pool["exclude_mask"])
    assert not not_candidates(pool)[both.indices].any()
    assert np.all(np.isneginf(both.scores[not_candidates(pool)]))


def test_default_spreads_over_clusters():
    """The default picks one item per cluster when uncertainty alone would pile into one cluster."""
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)
    X = np.concatenate([c + rng.normal(scale=0.3, size=(100, 2)) for c in centres])
    margin_score = np.zeros(400)
    margin_score[:100] = 0.9 + rng.random(100) * 0.1   # cluster 0 is the most uncertain
    margin_score[100:] = 0.5 + rng.random(300) * 0.3
    # turn the wanted margin into two-class probabilities: 1 - (p1 - p2) = m
    gap = 1 - margin_score
    proba = np.stack([(1 + gap) / 2, (1 - gap) / 2], axis=1)
    only_margin = select_batch("margin", batch_size=4, proba=proba, X=X, random_fraction=0, random_state=0)
    assert set(only_margin.indices // 100) == {0}
    spread = select_batch("default", batch_size=4, proba=proba, X=X, random_fraction=0, random_state=0, beta=100)
    assert set(spread.indices // 100) == {0, 1, 2, 3}


def test_ties_go_to_the_lower_index():
    """Equal scores are broken by index, at the cut too, whatever order argpartition leaves them in."""
    rng = np.random.default_rng(1)
    proba = np.repeat(rng.dirichlet([1, 1], size=10), 20, axis=0)[rng.permutation(200)]  # 10 values, 20 items each
    batch = select_batch("margin", batch_size=15, proba=proba, random_fraction=0)
    best = np.flatnonzero(batch.scores == batch.scores.max())
    assert len(best) == 20
    assert list(batch.indices) == list(best[:15])
    labeled = np.zeros(200, dtype=bool)
    labeled[best[:3]] = True
    again = select_batch("margin", batch_size=15, proba=proba, labeled_mask=labeled, random_fraction=0)
    assert list(again.indices) == list(best[3:18])
