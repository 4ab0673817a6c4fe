"""A project's agreement report: how far its annotators agree, overall, per person and per label pair.

The label matrix holds each named person's standing label on each item (their
latest label answer not undone or corrected away); answers imported without a
name have no one to compare, and skips and unsure are not labels.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from activelabel.agreement import (
    MISSING,
    annotator_stats,
    dawid_skene,
    fleiss_kappa,
    krippendorff_alpha,
    majority_vote,
    pairwise_kappa,
)
from activelabel.store import repo

if TYPE_CHECKING:
    from activelabel.project import Project

__all__ = ["label_matrix", "agreement_report", "consensus", "contested", "MIN_OVERLAP"]

MIN_OVERLAP = 20  # items each person shares with others before Dawid-Skene can estimate their confusion


def label_matrix(project: Project, st: SimpleNamespace | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The (n_items, n_people) matrix of class codes (the project's label order, -1: no label), the item ids
    of its rows (items with at least one label from a named person) and the people's names."""
    from activelabel.project.state import state

    st = state(project) if st is None else st
    events = st.events
    labels = list(project.config.labels)
    if events.empty:
        return np.empty((0, 0), dtype=np.int64), np.empty(0, dtype=np.int64), []
    latest, _ = repo.standing_answers(events)
    given = latest[(latest["answer"] == "label") & latest["annotator_id"].notna()
                   & latest["item_id"].isin(st.items.loc[~st.items["retired"], "id"])]
    with project.store.session(readonly=True) as s:
        names = repo.annotators_frame(s).set_index("id")["name"]
    m, items, people = _matrix(given.assign(voter=given["annotator_id"].astype(np.int64)), labels)
    return m, items, [str(names.get(p, p)) for p in people]


def _matrix(given: pd.DataFrame, labels: list[str]) -> tuple[np.ndarray, np.ndarray, list]:
    """Label answers (``item_id``, ``voter``, ``label``) as a matrix of class codes, its item ids and voters;
    labels no longer in the project's list are left out."""
    code = {name: k for k, name in enumerate(labels)}
    given = given[given["label"].isin(code)]
    items = np.sort(given["item_id"].astype(np.int64).unique())
    voters = sorted(given["voter"].unique())
    m = np.full((len(items), len(voters)), MISSING, dtype=np.int64)
    row = pd.Series(np.arange(len(items)), index=items)
    col = pd.Series(np.arange(len(voters)), index=voters)
    m[row[given["item_id"].astype(np.int64)].to_numpy(), col[given["voter"]].to_numpy()] = \
        given["label"].map(code).to_numpy(np.int64)
    return m, items, voters


def agreement_report(project: Project, st: SimpleNamespace | None = None) -> dict:
    """Overall agreement (Fleiss' kappa, Krippendorff's alpha), per person (labels, agreement with the consensus,
    and pairwise Cohen's kappa), and how often each pair of labels met on one item between two people.

    The consensus is Dawid-Skene once every person shares ``MIN_OVERLAP`` items with others, majority vote before.
    """
    from activelabel.project.state import state

    labels = list(project.config.labels)
    st = state(project) if st is None else st  # one snapshot for the matrix and, with crowdlab, the labels
    m, items, people = label_matrix(project, st)
    k = len(labels)
    multi = (m != MISSING).sum(axis=1) >= 2 if m.size else np.zeros(0, dtype=bool)
    shared = ((m != MISSING) & multi[:, None]).sum(axis=0) if m.size else np.zeros(0, dtype=int)
    method = _method(project.config.aggregation, m) if m.size else "majority"
    if method == "crowdlab" and m.size:  # the project's own labels: people and the model's out-of-fold view
        current = st.items.set_index("id")["label"].reindex(items).map({c: i for i, c in enumerate(labels)})
        agreed = current.fillna(MISSING).to_numpy(np.int64)
    else:
        agreed = (dawid_skene if method == "dawid_skene" else majority_vote)(m, k).labels if m.size else None
    stats = annotator_stats(m, agreed) if m.size else {"answered": [], "agreement": []}
    kappas = pairwise_kappa(m, k) if m.size else np.empty((0, 0))
    pairs = np.zeros((k, k), dtype=np.int64)  # ordered pairs of two people's labels on one item: a-b and b-a
    for row in m[multi] if m.size else []:
        codes = row[row != MISSING]
        for i in range(len(codes)):
            for j in range(i + 1, len(codes)):
                pairs[codes[i], codes[j]] += 1
                pairs[codes[j], codes[i]] += 1

    def number(x) -> float | None:
        return None if x is None or not np.isfinite(x) else round(float(x), 4)

    return {
        "labels": labels,
        "items_labeled": int(len(items)),
        "items_with_several_opinions": int(multi.sum()),
        "fleiss_kappa": number(fleiss_kappa(m, k)) if m.size else None,
        "krippendorff_alpha": number(krippendorff_alpha(m)) if multi.any() else None,
        "consensus_method": method,
        "annotators": [{"name": name, "labels": int(stats["answered"][a]),
                        "shared_items": int(shared[a]), "agreement_with_consensus": number(stats["agreement"][a]),
                        "kappa": {people[b]: number(kappas[a, b]) for b in range(len(people)) if b != a}}
                       for a, name in enumerate(people)],
        "label_pairs": {labels[a]: {labels[b]: int(pairs[a, b]) for b in range(k)} for a in range(k)},
    }


def _method(config_method: str, m: np.ndarray) -> str:
    """``auto``: Dawid-Skene once every answerer who shares items with others shares ``MIN_OVERLAP`` of them
    (answerers who share none, such as a seed file, keep their labels either way), majority before."""
    if config_method != "auto":
        return config_method
    multi = (m != MISSING).sum(axis=1) >= 2
    shared = ((m != MISSING) & multi[:, None]).sum(axis=0)
    overlapping = shared[shared > 0]
    return "dawid_skene" if len(overlapping) >= 2 and (overlapping >= MIN_OVERLAP).all() else "majority"


def consensus(project: Project, events: pd.DataFrame, current: pd.DataFrame,
              cycles: list | None = None) -> tuple[str, pd.DataFrame]:
    """The project's aggregation method in effect and each labeled item's consensus: ``label`` and ``confidence``
    (the posterior's top probability), and the ``method`` that made each label, indexed by item id.

    Answerers are people and, for answers imported without a name, their source file; each counts with their
    latest answer. With majority the labels are ``current``'s (ties to the most recent answer) and the
    confidence is the winning share of the votes; with Dawid-Skene both come from its posterior. With CROWDLAB,
    items the last training judged (its out-of-fold probabilities, saved with the cycle in ``cycles``) take
    CROWDLAB's label and consensus quality; items labeled since, Dawid-Skene's until the next training.
    """
    labels = list(project.config.labels)
    out = pd.DataFrame({"label": current["label"], "confidence": np.nan, "adjudicated": False, "method": "majority"},
                       index=current.index)
    if events.empty or current.empty:
        return "majority", out
    latest, settled = repo.standing_answers(events)
    m, items, _ = _matrix(latest[latest["answer"] == "label"], labels)
    method = _method(project.config.aggregation, m)
    if method == "majority":
        votes = np.stack([(m == c).sum(axis=1) for c in range(len(labels))], axis=1)
        share = pd.Series(votes.max(axis=1) / np.maximum(votes.sum(axis=1), 1), index=items)
        out["confidence"] = share.reindex(out.index)
    elif len(items):
        result = dawid_skene(m, len(labels))
        out.loc[items, "label"] = np.asarray(labels, dtype=object)[result.labels]
        out.loc[items, "confidence"] = result.quality
        out.loc[items, "method"] = "dawid_skene"
        if method == "crowdlab":
            judged = _crowdlab(m, items, labels, cycles or [])
            if judged is not None:
                out.loc[judged.index, ["label", "confidence"]] = judged
                out.loc[judged.index, "method"] = "crowdlab"
    if len(settled):
        out.loc[settled.index, ["label", "confidence", "adjudicated", "method"]] = \
            pd.DataFrame({"label": settled, "confidence": 1.0, "adjudicated": True, "method": "adjudicated"})
    return method, out


def _crowdlab(m: np.ndarray, items: np.ndarray, labels: list[str], cycles: list) -> pd.DataFrame | None:
    """CROWDLAB's label and quality for the items the newest cycle judged out of fold, or None (no such cycle,
    its classes differ from today's labels, or too few items for CROWDLAB)."""
    from activelabel.agreement import crowdlab
    from activelabel.errors import InvalidParameterError

    saved = next((c.details for c in reversed(cycles) if (c.details or {}).get("oof")), None)
    if saved is None or saved.get("classes") != sorted(labels):
        return None
    proba = pd.DataFrame(saved["oof"]["proba"], index=saved["oof"]["ids"], columns=sorted(labels))[labels]
    rows = np.flatnonzero(np.isin(items, proba.index))
    try:
        result = crowdlab(m[rows], proba.loc[items[rows]].to_numpy(float))
    except InvalidParameterError:
        return None
    return pd.DataFrame({"label": np.asarray(labels, dtype=object)[result.labels], "confidence": result.quality},
                        index=items[rows])


def contested(project: Project, st: SimpleNamespace) -> pd.DataFrame:
    """Items whose answers disagree: two or more opinions, a consensus below ``adjudicate_below``, not
    adjudicated nor retired; least agreed first. The state's items rows."""
    items = st.items
    threshold = project.config.adjudicate_below
    keep = ((items["n_votes"] >= 2) & (items["consensus"] < threshold) & ~items["adjudicated"].astype(bool)
            & ~items["retired"])
    return items[keep].sort_values(["consensus", "id"])
