"""Stopping rules fire on the right evidence and say why."""

from types import SimpleNamespace

import numpy as np
import pytest

from activelabel.errors import InvalidParameterError
from activelabel.stopping import (
    LabelBudget,
    MaxCycles,
    MoneyBudget,
    Plateau,
    StabilizingPredictions,
    check_stopping,
    prediction_kappas,
)


def history(accuracies, labels=None, money=None, predictions=None):
    n = len(accuracies)
    labels = labels or [20 + 10 * i for i in range(n)]
    money = money or [0.0] * n
    predictions = predictions or [np.zeros(5, dtype=int)] * n
    return [SimpleNamespace(cycle=i, accuracy=a, macro_f1=a, labels_used=labels[i], money_spent=money[i],
                            stop_predictions=predictions[i]) for i, a in enumerate(accuracies)]


def test_plateau_needs_patience_cycles_below_threshold():
    """0.5-point threshold, patience 2: gains of 0.3 and 0.1 points stop; a 0.6 gain in the window does not."""
    rule = Plateau(min_gain=0.5, patience=2)
    assert rule.check(history([0.80, 0.85, 0.853, 0.854])).reason.startswith(
        "the last 2 cycles changed accuracy by +0.30, +0.10 points")
    assert rule.check(history([0.80, 0.85, 0.856, 0.857])) is None
    assert rule.check(history([0.80, 0.801])) is None  # not enough cycles yet


def test_plateau_counts_drops_as_no_gain():
    assert Plateau(patience=1).check(history([0.9, 0.88])) is not None


def test_plateau_rejects_bad_settings():
    with pytest.raises(InvalidParameterError, match="patience"):
        Plateau(patience=0)
    with pytest.raises(InvalidParameterError, match="metric"):
        Plateau(metric="recall")


def test_label_and_money_budgets():
    h = history([0.5, 0.6], labels=[100, 200], money=[50.0, 99.5])
    assert LabelBudget(200).check(h).reason == "200 labels used of a budget of 200"
    assert LabelBudget(201).check(h) is None
    assert MoneyBudget(100.0).check(h) is None
    assert MoneyBudget(100.0, min_purchase=0.5).check(h).rule == "money_budget"


def test_stabilizing_predictions_uses_kappa_between_successive_models():
    """Identical predictions give kappa 1; one changed prediction of five lowers it below 0.99."""
    a = np.array([0, 1, 2, 0, 1])
    b = np.array([0, 1, 2, 0, 2])
    assert prediction_kappas(history([0] * 2, predictions=[a, a])) == [1.0]
    kappa = prediction_kappas(history([0] * 2, predictions=[a, b]))[0]
    assert 0 < kappa < 0.99
    rule = StabilizingPredictions(threshold=0.99, window=3)
    assert rule.check(history([0] * 5, predictions=[b, a, a, a, a])) is not None
    assert rule.check(history([0] * 4, predictions=[b, a, a, a])) is None
    assert rule.check(history([0] * 4, predictions=[a, a, b, b])) is None
    assert "kappa 1.000, 1.000, 1.000" in rule.check(history([0] * 4, predictions=[a] * 4)).reason


def test_rules_combine_in_order():
    h = history([0.9, 0.9, 0.9], labels=[10, 20, 30])
    fired = check_stopping([MaxCycles(3), LabelBudget(1000), Plateau(patience=2)], h)
    assert [d.rule for d in fired] == ["max_cycles", "plateau"]
    assert all(d.cycle == 2 for d in fired)


def test_learner_reports_plateau_with_evidence():
    """On digits with a tight plateau threshold the learner stops and says which rule fired."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    from activelabel.loop import ActiveLearner

    X, y = load_digits(return_X_y=True)
    learner = ActiveLearner(LogisticRegression(max_iter=300), batch_size=20, max_labels=600, random_state=0,
                            stopping=[Plateau(min_gain=1.0, patience=2), StabilizingPredictions()])
    learner.start(X / 16, y)
    history_ = learner.run(lambda idx: y[idx])
    last = history_[-1]
    assert last.labels_used < 600
    assert last.stop and last.stop[0].rule in {"plateau", "stabilizing_predictions"}
    assert learner.stop_decisions_ == last.stop
