"""Committee scores: hand-worked values, BALD >= 0 and agreement with plain loops."""

import math

import numpy as np
import pytest
from hypothesis import given
from hyp import committee_samples

from activelabel.strategies import bald, consensus_entropy, kl_disagreement, vote_entropy


def H(row):
    return -sum(p * math.log(p) for p in row if p > 0)


def plain_vote_entropy(s):
    m, n, c = s.shape
    out = []
    for i in range(n):
        votes = [0] * c
        for j in range(m):
            votes[int(np.argmax(s[j, i]))] += 1
        out.append(H([v / m for v in votes]))
    return out


def plain_consensus(s):
    return [H(s[:, i].mean(axis=0).tolist()) for i in range(s.shape[1])]


def plain_kl(s):
    m, n, c = s.shape
    out = []
    for i in range(n):
        q = s[:, i].mean(axis=0)
        total = 0.0
        for j in range(m):
            total += sum(p * math.log(p / q[k]) for k, p in enumerate(s[j, i]) if p > 0)
        out.append(total / m)
    return out


def plain_bald(s):
    m, n, c = s.shape
    return [H(s[:, i].mean(axis=0).tolist()) - sum(H(s[j, i].tolist()) for j in range(m)) / m for i in range(n)]


@pytest.mark.parametrize(
    "score, plain",
    [(vote_entropy, plain_vote_entropy), (consensus_entropy, plain_consensus),
     (kl_disagreement, plain_kl), (bald, plain_bald)],
)
@given(s=committee_samples())
def test_vectorised_score_equals_plain_loop(score, plain, s):
    """Each vectorised committee score matches a Python loop."""
    np.testing.assert_allclose(score(s), np.maximum(plain(s), 0) if score is bald else plain(s), atol=1e-9)


@given(s=committee_samples())
def test_bald_and_kl_are_non_negative(s):
    """BALD (mutual information) and the KL disagreement are never negative."""
    assert np.all(bald(s) >= 0)
    assert np.all(kl_disagreement(s) >= -1e-12)


def test_agreeing_members_give_no_disagreement():
    """Identical members: KL, BALD and vote entropy are 0 whatever their confidence."""
    row = np.array([[0.4, 0.35, 0.25]])
    s = np.stack([row, row, row])
    assert kl_disagreement(s)[0] == pytest.approx(0)
    assert bald(s)[0] == pytest.approx(0)
    assert vote_entropy(s)[0] == pytest.approx(0)
    assert consensus_entropy(s)[0] == pytest.approx(H(row[0].tolist()))


def test_confident_disagreement_hand_worked():
    """Two confident members voting for different classes: BALD = vote entropy = log 2."""
    s = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    assert vote_entropy(s)[0] == pytest.approx(math.log(2))
    assert bald(s)[0] == pytest.approx(math.log(2))
    assert kl_disagreement(s)[0] == pytest.approx(math.log(2))
