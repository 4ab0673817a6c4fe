"""Costs worked out by hand; metrics against scikit-learn; bootstrap intervals."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
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
    assert m.accuracy == 1.0 and m.accuracy_ci == (1.0, 1.0) and m.macro_f1 == 1.0
    empty = evaluate([], [], 3)
    assert empty.n_test == 0 and np.isnan(empty.accuracy)
