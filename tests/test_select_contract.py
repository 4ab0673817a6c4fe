"""The contract every strategy of select_batch keeps."""

import numpy as np
import pytest

from activelabel.strategies import STRATEGIES, random_share, select_batch


@pytest.fixture(scope="module")
def pool():
    """A small pool with probabilities, committee samples and features, 30 items labeled."""
    rng = np.random.default_rng(0)
    n, c, d = 400, 4, 5
    X = rng.normal(size=(n, d))
    samples = rng.dirichlet(np.ones(c) * 0.5, size=(3, n))
    proba = samples.mean(axis=0)
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, 30, replace=False)] = True
    return dict(proba=proba, samples=samples, X=X, labeled_mask=mask)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("batch_size", [1, 7, 50])
def test_contract(strategy, batch_size, pool):
    """Exact size, distinct, unlabeled only, seeded, the random share honoured."""
    batch = select_batch(strategy, batch_size=batch_size, random_state=3, **pool)
    idx = batch.indices
    n = pool["X"].shape[0]
    assert len(idx) == batch_size
    assert len(np.unique(idx)) == batch_size
    assert np.all((idx >= 0) & (idx < n))
    assert not pool["labeled_mask"][idx].any()
    assert batch.scores.shape == (n,)
    assert np.all(np.isneginf(batch.scores[pool["labeled_mask"]]))
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
    n_unlabeled = int((~pool["labeled_mask"]).sum())
    for strategy in ("default", "kcenter", "kmeans", "margin"):
        batch = select_batch(strategy, batch_size=n_unlabeled, random_state=0, **pool)
        assert set(batch.indices) == set(np.flatnonzero(~pool["labeled_mask"]))


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
