"""Bad input to the strategies raises typed errors that name the problem."""

import numpy as np
import pytest

from activelabel.errors import (
    ActiveLabelError,
    BatchTooLargeError,
    EmptyPoolError,
    InvalidParameterError,
    InvalidProbabilitiesError,
    NonFiniteValueError,
    ShapeMismatchError,
    UnknownStrategyError,
)
from activelabel.strategies import entropy, select_batch

P = np.full((5, 2), 0.5)


def test_nan_in_probabilities_names_the_row():
    p = P.copy()
    p[3, 1] = np.nan
    with pytest.raises(NonFiniteValueError, match="row 3"):
        entropy(p)


def test_inf_in_features_names_the_row():
    X = np.zeros((5, 3))
    X[2, 0] = np.inf
    with pytest.raises(NonFiniteValueError, match=r"X has a non-finite value \(inf\) in row 2"):
        select_batch("kcenter", batch_size=1, X=X)


def test_negative_probability():
    p = np.array([[1.2, -0.2], [0.5, 0.5]])
    with pytest.raises(InvalidProbabilitiesError, match="negative probability in row 0"):
        entropy(p)


def test_rows_not_summing_to_one():
    with pytest.raises(InvalidProbabilitiesError, match="row 1 sums to 1.4"):
        entropy(np.array([[0.5, 0.5], [0.7, 0.7]]))


def test_wrong_dimensions():
    with pytest.raises(ShapeMismatchError, match=r"shape \(5,\)"):
        entropy(np.full(5, 0.2))


def test_features_and_probabilities_disagree_on_rows():
    with pytest.raises(ShapeMismatchError, match="X has 4 rows but the probabilities have 5"):
        select_batch("default", batch_size=1, proba=P, X=np.zeros((4, 2)))


def test_mask_of_wrong_length():
    with pytest.raises(ShapeMismatchError, match=r"labeled_mask must have shape \(5,\)"):
        select_batch("margin", batch_size=1, proba=P, labeled_mask=np.zeros(4, dtype=bool))


def test_batch_larger_than_pool_names_both_numbers():
    mask = np.array([True, True, False, False, False])
    with pytest.raises(BatchTooLargeError, match="batch_size 4 is larger than the 3 unlabeled"):
        select_batch("margin", batch_size=4, proba=P, labeled_mask=mask)


def test_everything_labeled():
    with pytest.raises(EmptyPoolError, match="no unlabeled item left in a pool of 5"):
        select_batch("margin", batch_size=1, proba=P, labeled_mask=np.ones(5, dtype=bool))


def test_empty_pool():
    with pytest.raises(EmptyPoolError):
        select_batch("random", batch_size=1, X=np.zeros((0, 3)))


def test_unknown_strategy_lists_the_known_ones():
    with pytest.raises(UnknownStrategyError, match="'marginn'.*margin"):
        select_batch("marginn", batch_size=1, proba=P)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_batch_size(bad):
    with pytest.raises(InvalidParameterError, match="batch_size"):
        select_batch("margin", batch_size=bad, proba=P)


def test_random_fraction_out_of_range():
    with pytest.raises(InvalidParameterError, match="random_fraction must be between 0 and 1, got 1.5"):
        select_batch("margin", batch_size=1, proba=P, random_fraction=1.5)


@pytest.mark.parametrize("strategy, missing", [("bald", "samples"), ("kmeans", "X"), ("default", "X"), ("margin", "proba")])
def test_missing_input_is_named(strategy, missing):
    kwargs = {"proba": P} if strategy != "margin" else {"X": np.zeros((5, 2))}
    with pytest.raises(InvalidParameterError, match=missing):
        select_batch(strategy, batch_size=1, **kwargs)


def test_errors_are_both_typed_and_builtin():
    """Callers can catch the family or the matching built-in."""
    assert issubclass(NonFiniteValueError, ActiveLabelError)
    assert issubclass(NonFiniteValueError, ValueError)


def test_exclude_mask_of_wrong_length():
    with pytest.raises(ShapeMismatchError, match=r"exclude_mask must have shape \(5,\), got shape \(6,\)"):
        select_batch("kcenter", batch_size=1, X=np.zeros((5, 2)), exclude_mask=np.zeros(6, dtype=bool))


def test_exclude_mask_must_be_boolean():
    """An index list passed as a mask is refused rather than read as 0/1 flags."""
    with pytest.raises(InvalidParameterError, match="exclude_mask must be boolean, got dtype int"):
        select_batch("margin", batch_size=1, proba=P, exclude_mask=np.array([0, 1, 0, 1, 0]))


def test_random_with_a_mask_that_is_not_a_vector():
    with pytest.raises(ShapeMismatchError, match=r"exclude_mask must have shape \(n_samples,\), got shape \(\)"):
        select_batch("random", batch_size=1, exclude_mask=np.bool_(True))


def test_everything_excluded_or_labeled_names_the_excluded():
    labeled = np.array([True, True, False, False, False])
    excluded = np.array([False, False, True, True, True])
    with pytest.raises(EmptyPoolError, match=r"no unlabeled item left in a pool of 5 \(3 excluded\)"):
        select_batch("kcenter", batch_size=1, X=np.zeros((5, 2)), labeled_mask=labeled, exclude_mask=excluded)


def test_batch_larger_than_what_exclusion_leaves():
    excluded = np.array([True, False, True, False, False])
    with pytest.raises(BatchTooLargeError, match=r"batch_size 4 is larger than the 3 unlabeled items in the pool "
                                                 r"\(2 excluded\)"):
        select_batch("margin", batch_size=4, proba=P, exclude_mask=excluded)
