"""What a project reports: status with stopping advice, money spent, predictions, exports, and the admin's figures.

The admin's figures say what they count: answers are labels, skips and
unsure apart, undone answers left out; time per answer counts only
answers given within the idle time (longer ones sat open, unattended); a
point of the learning curve says how many test labels it rests on and
whether its test set differs from the previous point's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from activelabel.project.features import item_features
from activelabel.project.state import money_spent, state
from activelabel.project.training import latest_model
from activelabel.store import repo

if TYPE_CHECKING:
    from activelabel.project import Project

__all__ = ["status", "counted_cycles", "predictions", "export", "export_answers", "answer_figures",
           "cycle_test_sets", "label_distribution", "confusion", "midnight_utc"]


def status(project: Project, st: SimpleNamespace | None = None) -> dict:
    """Counts, the latest metrics with intervals, money, and the stopping rules' advice in words.

    ``st`` is a snapshot from :func:`~activelabel.project.state.state`, read now when not given.
    Each point of ``curve`` carries ``test_labels`` and ``test_changed`` (its test set differs
    from the previous point's: other items, or other labels on them).
    """
    from activelabel.stopping import DEFAULT_RULES, LabelBudget, MoneyBudget, Plateau, check_stopping

    st = state(project) if st is None else st
    items = st.items
    retired = items["retired"].to_numpy()
    live = items[~retired]
    labeled = live["label"].notna()
    good = [c for c in st.cycles if c.error is None]
    test_sets = cycle_test_sets(project, st, good)
    counted = counted_cycles(good, min_new=max(1, project.config.batch_size // 2))
    history = [SimpleNamespace(cycle=c.model_version, accuracy=np.nan if c.accuracy is None else c.accuracy,
                               macro_f1=np.nan if c.macro_f1 is None else c.macro_f1,
                               labels_used=c.labels_used, money_spent=c.money_spent,
                               stop_predictions=np.array((c.details or {}).get("stop_predictions", [])))
               for c in counted]
    # The plateau rule compares test accuracies, which only mean something on one test set: it sees the
    # counted cycles since the test set last changed (labels added, corrected or retired), never across.
    where = {id(c): k for k, c in enumerate(good)}
    moved = _changes(counted, [test_sets[where[id(c)]] for c in counted])
    since = max((k for k, flag in enumerate(moved) if flag), default=0)
    plateau = next(rule for rule in DEFAULT_RULES if isinstance(rule, Plateau))
    rules = [rule for rule in DEFAULT_RULES if rule is not plateau]
    if project.config.label_budget:
        rules.append(LabelBudget(project.config.label_budget))
    if project.config.budget:
        rules.append(MoneyBudget(project.config.budget, min_purchase=project.config.price_per_label))
    spent = money_spent(project, st.events)
    # The budget rules judge the money and labels spent now (imports and answers since the last cycle
    # count), not the figures recorded when that cycle trained.
    now = history and [*history[:-1], SimpleNamespace(**{
        **vars(history[-1]), "money_spent": spent, "labels_used": int((labeled & (live["split"] == "pool")).sum())})]
    decisions = check_stopping([plateau], history[since:]) + check_stopping(rules, now)
    latest = good[-1] if good else None
    failed = st.cycles[-1] if st.cycles and st.cycles[-1].error is not None else None
    if not history:
        advice = "no model yet: label a seed set (activelabel query -n 200), then run activelabel train"
    elif decisions:
        advice = "stop: " + "; ".join(d.reason for d in decisions)
    else:
        advice = "continue: no stopping rule has fired"
        if since and len(history) - since < plateau.patience + 1:
            advice += (f" (the test set changed at cycle {history[since].cycle}: the plateau rule compares "
                       f"accuracies on one test set only, so it waits for {plateau.patience + 1} cycles on it)")
    return {
        "items": int(len(items)), "pool": int((live["split"] == "pool").sum()),
        "test": int((live["split"] == "test").sum()), "retired": int(retired.sum()),
        "labeled": int((labeled & (live["split"] == "pool")).sum()),
        "test_labeled": int((labeled & (live["split"] == "test")).sum()),
        "answers": int((st.events["answer"] != "retract").sum()) if len(st.events) else 0,
        "cycles": len(good),
        "latest": None if latest is None else {
            "cycle": latest.model_version, "accuracy": latest.accuracy,
            "accuracy_ci": [latest.accuracy_low, latest.accuracy_high], "macro_f1": latest.macro_f1,
            "macro_f1_ci": [latest.macro_f1_low, latest.macro_f1_high], "labels_used": latest.labels_used,
            "test_labels": latest.test_labels, "strategy": latest.strategy},
        "curve": [{"cycle": c.model_version, "labels_used": c.labels_used, "accuracy": c.accuracy,
                   "accuracy_ci": [c.accuracy_low, c.accuracy_high], "test_labels": c.test_labels,
                   "ece": (c.details or {}).get("ece"), "seconds": c.seconds,
                   "test_changed": changed, "at": c.created_at}
                  for c, changed in zip(good, _changes(good, test_sets))],
        "last_error": None if failed is None else {"at": failed.created_at, "error": failed.error},
        "money_spent": spent, "budget": project.config.budget or None,
        "budget_left": (project.config.budget - spent) if project.config.budget else None,
        "stop": [{"rule": d.rule, "reason": d.reason} for d in decisions], "advice": advice,
    }


def counted_cycles(cycles: list, min_new: int = 1) -> list:
    """The cycles the stopping rules count: each one that trained on at least ``min_new`` more labels than the
    last counted one.

    Retraining without new labels (pressing retrain again, a forced cycle)
    repeats a point of the learning curve, and a batch closed mostly by skips
    adds a label or two; counting those would let the plateau rule fire on
    repetition instead of on labels that stopped helping. The project counts
    a cycle once it adds half a batch.
    """
    counted, most = [], None
    for c in cycles:
        if most is None or c.labels_used >= most + min_new:
            counted.append(c)
            most = c.labels_used
    return counted


def predictions(project: Project, items: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """The latest model's predicted label and its probability for every item, or None before any model."""
    from activelabel.models import predict_proba_aligned

    model = latest_model(project)
    if model is None:
        return None
    proba = predict_proba_aligned(model, item_features(project, items), project.classes)
    return project.classes[proba.argmax(axis=1)], proba.max(axis=1)


def export(project: Project, path: str | Path, fmt: str | None = None) -> int:
    """Write every item that is not retired with its label, votes and the latest model's prediction.

    With ``fmt="answers"``, write every answer event instead (:func:`export_answers`).
    Returns the row count.
    """
    from activelabel.interchange import write_export

    if fmt == "answers":
        return export_answers(project, path)

    st = state(project)
    with project.store.session(readonly=True) as s:
        content = repo.items_frame(s)
    items = st.items.merge(content[["id", "text", "image", "data"]], on="id")
    pred = predictions(project, st.items)
    if pred is not None:
        items["prediction"], items["confidence"] = pred
    else:
        items["prediction"], items["confidence"] = None, np.nan
    items["aggregation"] = items["method"]  # per item: with crowdlab, items no training judged are Dawid-Skene's
    items = items[~items["retired"].to_numpy()].reset_index(drop=True)
    model_version = st.cycles[-1].model_version if st.cycles else None
    return write_export(items, Path(path), fmt, labels=project.config.labels, model_version=model_version)




def export_answers(project: Project, path: str | Path) -> int:
    """Write the audit log: every answer event (labels, skips, unsure, undos), oldest first; the row count.

    One row per event: its id, the item's external id and split, who answered
    (empty for unattributed imports), the answer and label, seconds, the UTC
    time, the source (``web`` or the imported file), and for an undo the event
    it retracts (and for an undone answer the event that retracted it).
    CSV, or JSONL / Parquet by the file's suffix.
    """
    from activelabel.interchange import write_answers

    with project.store.session(readonly=True) as s:
        events = repo.answers_export_frame(s)
    return write_answers(events, Path(path))


def midnight_utc(now: datetime) -> datetime:
    """The start of ``now``'s day in UTC: what "today" counts from."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _utc_times(values: pd.Series) -> pd.Series:
    """Times as UTC-aware timestamps (SQLite hands back naive UTC times, PostgreSQL aware ones)."""
    return pd.to_datetime(values, utc=True) if len(values) else pd.Series(pd.DatetimeIndex([], tz=UTC))


def _utc(t):
    return None if t is None else (t if t.tzinfo else t.replace(tzinfo=UTC))


def _tally(events: pd.DataFrame, undone: pd.Series, since: datetime, idle_seconds: float) -> dict:
    """Counts of one group of answer events (no undo events among them); ``undone`` marks the retracted ones."""
    kept = events[~undone]
    at = _utc_times(kept["created_at"])
    today = (at >= pd.Timestamp(since)).to_numpy()
    seconds = kept["seconds"].astype(float)
    timed = seconds.notna().to_numpy()
    active = timed & (seconds.to_numpy() <= idle_seconds)
    out = {kind: int((kept["answer"] == kind).sum()) for kind in ("label", "skip", "unsure")}
    out |= {f"{kind}_today": int(((kept["answer"] == kind).to_numpy() & today).sum())
            for kind in ("label", "skip", "unsure")}
    undone_at = _utc_times(events.loc[undone, "created_at"])
    out |= {"undone": int(undone.sum()), "undone_today": int((undone_at >= pd.Timestamp(since)).sum()),
            "mean_seconds": float(seconds[active].mean()) if active.any() else None,
            "timed": int(active.sum()), "idle": int((timed & ~active).sum()),
            "last": _utc(max(events["created_at"])) if len(events) else None}
    return out


def answer_figures(project: Project, st: SimpleNamespace, now: datetime) -> dict:
    """Answers counted honestly: all of them and per person, all time and since midnight UTC.

    Labels, skips and unsure are counted apart; an answer later undone is
    not counted (it shows as ``undone``), nor is the undo itself. Time per
    answer (``mean_seconds``) counts answers given within the project's
    idle time (``assignment_minutes``) only; ``idle`` answers took longer
    (the item sat open, unattended) and are left out of the mean.

    Returns ``{"idle_seconds", "since", "total": {...}, "imported": {...},
    "people": [{"name", "role", ...}]}``; ``people`` lists every annotator and
    admin, and any imported name with answers, by name.
    """
    idle_seconds = project.config.assignment_minutes * 60
    since = midnight_utc(now)
    events = st.events
    with project.store.session(readonly=True) as s:
        who = repo.annotators_frame(s)
    if events.empty:
        answers, undone = events, pd.Series([], dtype=bool)
    else:
        answers = events[events["answer"] != "retract"]
        undone = answers["id"].isin(set(events["retracts_id"].dropna().astype(np.int64)))
    imported = (answers["source"] != "web") if len(answers) else pd.Series([], dtype=bool)
    people = []
    by_person = answers.groupby("annotator_id").groups if len(answers) else {}
    for person in who.itertuples():
        index = by_person.get(person.id)
        if index is None and person.role not in ("annotator", "admin"):
            continue
        mine = answers.loc[index] if index is not None else answers.iloc[:0]
        people.append({"name": person.name, "role": person.role,
                       **_tally(mine, undone.loc[mine.index] if len(mine) else undone.iloc[:0], since, idle_seconds)})
    return {"idle_seconds": idle_seconds, "since": since, "people": people,
            "total": _tally(answers, undone, since, idle_seconds),
            "imported": _tally(answers[imported], undone[imported], since, idle_seconds)}


def cycle_test_sets(project: Project, st: SimpleNamespace, cycles: list) -> list[frozenset | None]:
    """The test set each cycle was evaluated on, as ``(item_id, label)`` pairs; None where it cannot be told.

    Rebuilt from the answer events up to the cycle's answer mark (the newest
    event it trained on) and the items not retired when it was recorded, as
    training built it. Cycles recorded before answer marks existed give None.
    """
    items = st.items
    test_ids = items.loc[items["split"] == "test", "id"]
    events = st.events[st.events["item_id"].isin(test_ids)] if len(st.events) else st.events
    with project.store.session(readonly=True) as s:
        retired = {i: _utc(t) for i, t in repo.retired_times(s).items()}
    out = []
    for c in cycles:
        mark = (c.details or {}).get("answer_mark")
        if mark is None:
            out.append(None)
            continue
        labels = repo.current_labels(events[events["id"] <= int(mark)] if len(events) else events)["label"]
        at = _utc(c.created_at)
        out.append(frozenset((int(i), str(label)) for i, label in labels.items()
                             if i not in retired or retired[i] > at))
    return out


def _changes(cycles: list, test_sets: list) -> list[bool]:
    """Whether each cycle's test set differs from the previous cycle's (by its items and labels when they are
    known, else by its count); the first cycle has nothing to differ from."""
    out = []
    for k, (c, test) in enumerate(zip(cycles, test_sets)):
        if k == 0:
            out.append(False)
        elif test is not None and test_sets[k - 1] is not None:
            out.append(test != test_sets[k - 1])
        else:
            out.append(c.test_labels != cycles[k - 1].test_labels)
    return out


def label_distribution(project: Project, st: SimpleNamespace) -> list[dict]:
    """Per label: how many times it was given (answers not undone), and the pool and test items that carry it now.

    Items that are retired are not counted; labels given that are no longer in
    the project's list still show, after the listed ones.
    """
    items = st.items[~st.items["retired"].to_numpy()]
    events = st.events
    if len(events):
        undone = set(events["retracts_id"].dropna().astype(np.int64))
        given = events[(events["answer"] == "label") & ~events["id"].isin(undone)]["label"].value_counts()
    else:
        given = pd.Series(dtype=np.int64)
    pool = items.loc[items["split"] == "pool", "label"].value_counts()
    test = items.loc[items["split"] == "test", "label"].value_counts()
    names = list(project.config.labels)
    names += sorted(set(given.index) - set(names))
    return [{"label": name, "given": int(given.get(name, 0)), "pool": int(pool.get(name, 0)),
             "test": int(test.get(name, 0))} for name in names]


_CONFUSION: dict[tuple, dict] = {}  # by project, model file and test set: the page is reloaded often


def confusion(project: Project, st: SimpleNamespace, cycles: list | None = None,
              test_sets: list | None = None) -> dict | None:
    """The confusion matrix of the latest model on the test items it was evaluated on; None before any model.

    The test set is the cycle's own (see :func:`cycle_test_sets`), so the
    matrix's diagonal gives the accuracy the cycle reported. Rows are the
    true labels, columns the predicted ones, both in ``labels`` order (the
    project's, as configured; scikit-learn's ``confusion_matrix``). A model file that cannot be read
    gives ``{"error": ...}`` in one line instead of a matrix.
    """
    import joblib
    from sklearn.metrics import confusion_matrix

    from activelabel.models import predict_proba_aligned

    if cycles is None:
        cycles = [c for c in st.cycles if c.error is None and c.model_path]
    if not cycles:
        return None
    latest = cycles[-1]
    test = (test_sets if test_sets is not None else cycle_test_sets(project, st, [latest]))[-1]
    if test is None:  # an old cycle: the test items labeled now
        items = st.items
        rows = np.flatnonzero((items["split"] == "test").to_numpy() & items["label"].notna().to_numpy()
                              & ~items["retired"].to_numpy())
        test = frozenset(zip(items["id"].to_numpy()[rows].tolist(), items["label"].to_numpy()[rows].tolist()))
    pairs = sorted(test)
    classes = project.classes
    shown = [str(c) for c in project.config.labels]  # the project's order, as in the label table
    found = {"cycle": latest.model_version, "labels": shown, "n": len(pairs), "error": None,
             "matrix": None, "accuracy": None}
    if not pairs:
        return found
    path = project.folder / latest.model_path
    try:
        key = (str(path.resolve()), path.stat().st_mtime_ns, hash(test), tuple(classes))
        if key in _CONFUSION:
            return _CONFUSION[key]
        model = joblib.load(path)["model"]
        ids = np.array([i for i, _ in pairs], dtype=np.int64)
        rows = np.searchsorted(st.items["id"].to_numpy(), ids)
        X = item_features(project, st.items)[rows]
        predicted = classes[predict_proba_aligned(model, X, classes).argmax(axis=1)]
    except Exception as error:  # noqa: BLE001 (a figure on a page: say what is wrong, never fail the page)
        return found | {"error": f"the model of cycle {latest.model_version} ({latest.model_path}) cannot be "
                                 f"used: {type(error).__name__}: {error}".splitlines()[0]}
    truth = np.array([label for _, label in pairs], dtype=object).astype(str)
    matrix = confusion_matrix(truth, predicted.astype(str), labels=shown)
    found |= {"matrix": matrix.tolist(), "accuracy": float(np.trace(matrix) / matrix.sum())}
    if len(_CONFUSION) >= 16:
        _CONFUSION.clear()
    _CONFUSION[key] = found
    return found
