"""Hypothesis strategies shared by the property tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays


@st.composite
def probabilities(draw, max_rows: int = 12, max_classes: int = 6):
    """A (n, c) matrix whose rows are probability distributions (with exact zeros)."""
    n = draw(st.integers(1, max_rows))
    c = draw(st.integers(2, max_classes))
    raw = draw(arrays(np.float64, (n, c), elements=st.floats(0, 10, allow_nan=False)))
    raw[raw.sum(axis=1) == 0, 0] = 1.0
    return raw / raw.sum(axis=1, keepdims=True)


@st.composite
def committee_samples(draw, max_members: int = 5, max_rows: int = 8, max_classes: int = 5):
    """A (m, n, c) stack of probability matrices."""
    m = draw(st.integers(1, max_members))
    n = draw(st.integers(1, max_rows))
    c = draw(st.integers(2, max_classes))
    raw = draw(arrays(np.float64, (m, n, c), elements=st.floats(0, 10, allow_nan=False)))
    flat = raw.reshape(-1, c)
    flat[flat.sum(axis=1) == 0, 0] = 1.0
    return (flat / flat.sum(axis=1, keepdims=True)).reshape(m, n, c)
