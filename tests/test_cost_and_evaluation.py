"""Costs worked out by hand; metrics against scikit-learn; intervals against scipy's bootstrap and by coverage."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import bootstrap
from sklearn.metrics import f1_score

from activelabel.errors import InvalidParameterError, UnknownLabelError
from activelabel.loop import CostModel, evaluate
from activelabel.loop.evaluation import macro_f1


def test_flat_price():
    cost = CostModel(price_per_label=0.5, budget=100)
    s = cost.summary(["a"] * 30, n_items=1000)
    assert (s.spent, s.budget_left, s.full_pool_cost, s.saving) == (15.0, 85.0, 500.0, 485.0)


def test_per_class_prices_weight_the_full_pool_cost_by_class_shares():
    cost = CostModel(price_per_label={"spam": 2.0, "ham": 0.5})
    s = cost.summary(["spam", "ham", "ham", "ham"], n_items=100)
    assert s.spent == 3.5
    assert s.full_pool_cost == pytest.approx(87.5)  # mean price 0.875 x 100
    with pytest.raises(UnknownLabelError, match="no price for class 'eggs'"):
        cost.cost_of(["eggs"])


def test_bad_prices():
    with pytest.raises(InvalidParameterError, match="price_per_label"):
        CostModel(price_per_label=-1)
    with pytest.raises(InvalidParameterError, match="budget"):
        CostModel(budget=-5)


@settings(max_examples=50)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=40))
def test_macro_f1_matches_scikit_learn(pairs):
    t, p = np.array(pairs).T
    assert macro_f1(t, p, 4) == pytest.approx(f1_score(t, p, average="macro"))


def test_bootstrap_interval_brackets_the_estimate_and_shrinks_with_more_data():
    rng = np.random.default_rng(0)

    def width(n):
        t = rng.integers(0, 3, n)
        p = np.where(rng.random(n) < 0.8, t, (t + 1) % 3)
        m = evaluate(t, p, 3, random_state=0)
        assert m.accuracy_ci[0] <= m.accuracy <= m.accuracy_ci[1]
        return m.accuracy_ci[1] - m.accuracy_ci[0]

    assert width(2000) < width(100) / 2


def test_perfect_and_empty_predictions():
    m = evaluate([0, 1, 1, 2], [0, 1, 1, 2], 3, random_state=0)
    assert m.accuracy == 1.0 and m.macro_f1 == 1.0 and m.macro_f1_ci == (1.0, 1.0)
    # Four right of four is not certainty: Wilson's interval reaches down to about a half (a percentile
    # bootstrap would say exactly 1).
    assert m.accuracy_ci[1] == pytest.approx(1.0) and 0.4 < m.accuracy_ci[0] < 0.6
    empty = evaluate([], [], 3)
    assert empty.n_test == 0 and np.isnan(empty.accuracy)


def _noisy(rng, n, n_classes, right=0.8):
    t = rng.integers(0, n_classes, n)
    return t, np.where(rng.random(n) < right, t, rng.integers(0, n_classes, n))


@pytest.mark.parametrize("n_classes", [2, 5, 10])
def test_intervals_agree_with_scipys_item_bootstrap_on_small_samples(n_classes):
    rng = np.random.default_rng(n_classes)
    t, p = _noisy(rng, 500, n_classes)
    m = evaluate(t, p, n_classes, random_state=0)
    items = dict(paired=True, vectorized=True, method="percentile", rng=rng, n_resamples=4000)
    acc = bootstrap((t, p), lambda a, b, axis=-1: (a == b).mean(axis=axis), **items).confidence_interval
    f1 = bootstrap((t, p), lambda a, b, axis=-1: macro_f1(a, b, n_classes, axis=axis), **items).confidence_interval
    assert np.allclose(m.accuracy_ci, (acc.low, acc.high), atol=0.01)
    assert np.allclose(m.macro_f1_ci, (f1.low, f1.high), atol=0.01)


def test_intervals_cover_the_true_accuracy_and_macro_f1_at_about_the_stated_rate():
    rng = np.random.default_rng(7)
    population = _noisy(rng, 400_000, 4, right=0.85)
    true_acc = float((population[0] == population[1]).mean())
    true_f1 = float(macro_f1(*population, 4))
    hits = np.zeros(2)
    trials = 300
    for _ in range(trials):
        pick = rng.integers(0, len(population[0]), 250)
        m = evaluate(population[0][pick], population[1][pick], 4, n_resamples=400, random_state=rng)
        hits += [m.accuracy_ci[0] <= true_acc <= m.accuracy_ci[1], m.macro_f1_ci[0] <= true_f1 <= m.macro_f1_ci[1]]
    coverage = hits / trials
    assert np.all((coverage > 0.91) & (coverage < 0.985)), coverage


def test_a_large_test_set_gets_a_reproducible_interval_of_the_normal_width():
    rng = np.random.default_rng(3)
    t, p = _noisy(rng, 40_000, 10)
    first, again = evaluate(t, p, 10, random_state=5), evaluate(t, p, 10, random_state=5)
    assert first == again
    half = 1.96 * np.sqrt(first.accuracy * (1 - first.accuracy) / len(t))
    assert first.accuracy_ci[1] - first.accuracy_ci[0] == pytest.approx(2 * half, rel=0.02)
