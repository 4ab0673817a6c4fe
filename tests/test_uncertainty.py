"""Uncertainty scores: hand-worked values, extremes and agreement with plain loops."""

import math

import numpy as np
import pytest
from hypothesis import given
from hyp import probabilities

from activelabel.strategies import entropy, least_confident, margin

SCORES = [least_confident, margin, entropy]


def plain_least_confident(row):
    return 1 - max(row)


def plain_margin(row):
    top = sorted(row, reverse=True)
    return 1 - (top[0] - top[1])


def plain_entropy(row):
    return -sum(p * math.log(p) for p in row if p > 0)


@pytest.mark.parametrize(
    "score, plain",
    [(least_confident, plain_least_confident), (margin, plain_margin), (entropy, plain_entropy)],
)
@given(p=probabilities())
def test_vectorised_score_equals_plain_loop(score, plain, p):
    """Each vectorised score matches a row-by-row Python loop."""
    expected = [plain(row) for row in p.tolist()]
    np.testing.assert_allclose(score(p), expected, atol=1e-9)


@pytest.mark.parametrize("score", SCORES)
@given(p=probabilities())
def test_one_hot_lowest_uniform_highest(score, p):
    """A one-hot row scores 0 (lowest) and a uniform row scores highest."""
    c = p.shape[1]
    one_hot = np.eye(c)[[0]]
    uniform = np.full((1, c), 1 / c)
    s = score(p)
    assert score(one_hot)[0] == pytest.approx(0.0, abs=1e-12)
    assert np.all(s >= -1e-12)
    assert np.all(s <= score(uniform)[0] + 1e-9)


@given(p=probabilities())
def test_entropy_bounded_by_log_c(p):
    """Entropy never exceeds log(c)."""
    assert np.all(entropy(p) <= math.log(p.shape[1]) + 1e-9)


def test_hand_worked_values():
    """Values worked out by hand for a three-class row."""
    p = np.array([[0.5, 0.3, 0.2]])
    assert least_confident(p)[0] == pytest.approx(0.5)
    assert margin(p)[0] == pytest.approx(0.8)
    assert entropy(p)[0] == pytest.approx(-(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2)))


def test_float32_and_larger_than_one_block():
    """Entropy over float32 input longer than one internal block matches float64."""
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(4), size=20_000)
    np.testing.assert_allclose(entropy(p.astype(np.float32)), entropy(p), atol=1e-5)


def test_margin_orders_by_closeness_of_top_two():
    """A row whose top two classes are closer gets the larger margin score."""
    p = np.array([[0.9, 0.1, 0.0], [0.45, 0.4, 0.15], [0.6, 0.2, 0.2]])
    assert list(np.argsort(-margin(p))) == [1, 2, 0]
