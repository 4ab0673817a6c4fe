"""Training a cycle and selecting its batch: one cycle at a time, unique model versions.

A cycle holds the project's ``train`` lease (a row in the database, shared
by the CLI and the server's retrainer) from its snapshot to its publish, so
two trainings never interleave; the unique model version is the database's
guarantee on top. Publishing happens in one transaction that leaves out the
items answered while the model trained, so every published item can be
served.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from activelabel.errors import (
    BusyError,
    InvalidParameterError,
    ModelMissingError,
    SingleClassError,
    StoreError,
    UnwritableFileError,
)
from activelabel.project.features import item_features
from activelabel.project.state import labeled_rows, money_spent, state
from activelabel.store import leases, queue, repo

if TYPE_CHECKING:
    import pandas as pd

    from activelabel.project import Project

__all__ = ["train", "select", "seed_batch", "latest_model", "record_failure", "training_lease", "TRAIN_LEASE_SECONDS"]

_STOP_SET = 1000  # unlabeled pool items whose predictions the stabilizing-predictions rule compares
TRAIN_LEASE_SECONDS = 60.0  # a training not heard from for this long is taken for dead


def _model(project: Project):
    from sklearn.base import clone

    from activelabel.models.loading import load_model

    return clone(load_model(project.config.model or None))


@contextmanager
def training_lease(project: Project) -> Iterator[leases.Keeper]:
    """Hold the project's ``train`` lease for the block, or raise :class:`BusyError` naming who holds it."""
    holder = leases.holder_id("training")
    with project.store.session() as s:
        other = leases.acquire(s, "train", holder, TRAIN_LEASE_SECONDS)
    if other is not None:
        raise BusyError(f"another training is running ({leases.describe(other)}); try again when it is done")
    keeper = leases.Keeper(project.store, "train", holder, TRAIN_LEASE_SECONDS).start()
    try:
        yield keeper
    finally:
        # Releasing is best effort: when the database cannot take this write (a full disk), the training's
        # own outcome is what to report, and the lease is taken over once this process is gone.
        with contextlib.suppress(StoreError):
            keeper.stop()


def train(project: Project, progress: Callable[[str], None] = lambda _: None, *, force: bool = False) -> dict:
    """One cycle: fit on the labeled pool, evaluate on the labeled test items, select the next batch.

    Records the cycle (model version, metrics with 95% intervals,
    stop-set predictions) and its batch, and saves the model under
    ``models/``. Returns the cycle's summary, or ``{"nothing_new": True,
    "reason": ...}`` when no answer came in since the last cycle (unless
    ``force``): a cycle without new labels would only repeat the last one.

    Raises
    ------
    BusyError
        When another training of this project is running.
    """
    with training_lease(project) as keeper:
        return _train(project, progress, force, keeper)


def _train(project: Project, progress, force: bool, keeper) -> dict:
    import time

    import joblib

    from activelabel.loop.evaluation import evaluate, expected_calibration_error
    from activelabel.models import predict_proba_aligned

    t0 = time.perf_counter()
    st = state(project)
    items = st.items
    good = [c for c in st.cycles if c.error is None and c.model_version is not None]
    mark = int(st.events["id"].max()) if len(st.events) else 0
    if (good and not force and (good[-1].details or {}).get("answer_mark") == mark
            and _has_model(project, good[-1])):  # a model file gone (models/ deleted) or damaged is trained again
        return {"nothing_new": True, "cycle": good[-1].model_version,
                "reason": f"no new answers since cycle {good[-1].model_version}: nothing to train "
                          "(use --force to retrain anyway)"}
    classes = project.classes
    train_rows, test_rows = labeled_rows(items, "pool"), labeled_rows(items, "test")
    train, test = items.iloc[train_rows], items.iloc[test_rows]
    present = sorted(train["label"].unique())
    if len(present) < 2:
        raise SingleClassError(f"training needs labeled pool items of at least two classes; there are "
                               f"{len(train)} labeled pool items of {len(present)} class(es)"
                               + (f" ({present[0]!r})" if present else ""))
    progress("features")
    X = item_features(project, items, lambda done, total: progress(f"features: {done:,} of {total:,} items"))
    progress("fit")
    model = _fit(_model(project), X[train_rows], train["label"].to_numpy(dtype=str),
                 train["consensus"].fillna(1.0).to_numpy(float) if project.config.weight_by_consensus else None)
    class_index = {c: k for k, c in enumerate(classes)}
    judged = None
    if project.config.aggregation == "crowdlab":  # CROWDLAB weighs what a model that did not see a label thinks
        from activelabel.models import out_of_fold_proba

        progress("out-of-fold probabilities")
        proba = out_of_fold_proba(_model(project), X[train_rows], train["label"].to_numpy(dtype=str),
                                  np.asarray(classes), project.config.seed)
        if proba is not None:
            judged = {"ids": train["id"].astype(int).tolist(), "proba": np.round(proba, 5).tolist()}
    progress("evaluate")
    if len(test):
        test_proba = predict_proba_aligned(model, X[test_rows], classes)
        truth = test["label"].map(class_index).to_numpy()
        metrics = evaluate(truth, test_proba.argmax(axis=1), len(classes), random_state=project.config.seed)
        ece = expected_calibration_error(truth, test_proba)
    else:
        metrics, ece = evaluate([], [], len(classes)), float("nan")
    stop_ids = _stop_set(project, items, good)
    stop_rows = np.searchsorted(items["id"].to_numpy(), stop_ids)
    stop_pred = predict_proba_aligned(model, X[stop_rows], classes).argmax(axis=1) if len(stop_rows) else stop_rows
    version = max([c.model_version or 0 for c in st.cycles], default=0) + 1
    model_path = project.folder / "models" / f"model-v{version}.joblib"
    tmp = model_path.with_suffix(f".{os.getpid()}.tmp")
    try:
        model_path.parent.mkdir(exist_ok=True)
        joblib.dump({"model": model, "classes": list(classes), "featurizer": project.config.featurizer}, tmp)
        os.replace(tmp, model_path)
    except OSError as error:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise UnwritableFileError(f"cannot write the model file {model_path}: {error.strerror or error}; "
                                  "nothing was recorded") from None
    progress("select")
    size = project.config.batch_size
    batch = select(project, model, X, items, st, train_rows, train["label"].to_numpy(dtype=str), size,
                   salt=version, reserve=project.config.reserve_batches * size)
    if keeper.lost.is_set():
        raise BusyError("this training lost the project's train lock (it stalled for over a minute); nothing saved")

    def num(x):
        return None if x is None or not np.isfinite(x) else float(x)

    with _unless_recorded(model_path), project.store.session() as s:
        queue.lock_queue(s)
        # Items answered, retired or issued while the model trained are left out, so that every
        # published item can be served and the batch can close.
        gone = repo.settled_items(s, batch["item_ids"]) | queue.skipped_out(s, project.config.queue_settings())
        keep = [k for k, i in enumerate(batch["item_ids"]) if i not in gone]
        routed = batch.get("relabel", [])
        # retired, out with a service, or adjudicated while the model trained: no more opinions
        again = [i for i in routed if i not in repo.retired_or_out(s, routed) | repo.adjudicated(s, routed)]
        claims = queue.label_claims(s, again)
        core = sum(1 for k in keep if k < batch["size"])
        cycle_id = repo.add_cycle(
            s, model_version=version, model_path=str(model_path.relative_to(project.folder)),
            strategy=project.config.strategy, featurizer=project.config.featurizer, labels_used=len(train),
            test_labels=len(test), accuracy=num(metrics.accuracy), accuracy_low=num(metrics.accuracy_ci[0]),
            accuracy_high=num(metrics.accuracy_ci[1]), macro_f1=num(metrics.macro_f1),
            macro_f1_low=num(metrics.macro_f1_ci[0]), macro_f1_high=num(metrics.macro_f1_ci[1]),
            money_spent=money_spent(project, st.events), seconds=time.perf_counter() - t0,
            details={"stop_predictions": stop_pred.tolist(), "stop_set": stop_ids.tolist(), "classes": list(classes),
                     "relabel": len(again), **({"oof": judged} if judged is not None else {}),
                     "ece": num(ece),
                     "n_random": int(batch["n_random"]), "answer_mark": mark, "left_out": len(batch["item_ids"]) - len(keep)})
        if keep or again:
            # Items routed for another opinion lead the batch: each needs one more label than it has.
            ids = again + [batch["item_ids"][k] for k in keep]
            need = [claims.get(i, 0) + 1 for i in again] + \
                list(queue.answers_needed(np.array([batch["item_ids"][k] for k in keep]), project.config.queue_settings()))
            repo.add_batch(s, cycle_id=cycle_id, purpose="cycle", strategy=project.config.strategy, item_ids=ids,
                           scores=[float("nan")] * len(again) + [batch["scores"][k] for k in keep],
                           is_random=[False] * len(again) + [batch["is_random"][k] for k in keep],
                           need=need, size=core + len(again))
    return {"cycle": version, "labels_used": len(train), "test_labels": len(test),
            "accuracy": num(metrics.accuracy), "accuracy_ci": [num(v) for v in metrics.accuracy_ci],
            "macro_f1": num(metrics.macro_f1), "ece": num(ece), "batch": core + len(again), "routed": len(again), "reserve": len(keep) - core,
            "seconds": time.perf_counter() - t0}


def _fit(model: Any, X: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> Any:
    """Fit, each example weighted by ``weight`` when given (a pipeline passes it to its last step)."""
    if weight is None:
        return model.fit(X, y)
    from sklearn.pipeline import Pipeline

    key = f"{model.steps[-1][0]}__sample_weight" if isinstance(model, Pipeline) else "sample_weight"
    try:
        return model.fit(X, y, **{key: weight})
    except TypeError as error:  # an estimator whose fit takes no sample_weight
        raise InvalidParameterError(f"weight_by_consensus: the model cannot weight examples ({error}); "
                                    "turn it off or choose a model whose fit takes sample_weight") from None


@contextmanager
def _unless_recorded(model_path):
    """Remove the model file just saved when its cycle cannot be recorded (a full disk fails the commit)."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            model_path.unlink()
        raise


def _stop_set(project: Project, items, good) -> np.ndarray:
    """The stabilizing-predictions rule's fixed stop set: item ids drawn once, among then-unlabeled pool items.

    The first cycle draws it (seeded) and records it; later cycles reuse it,
    so consecutive cycles' predictions are compared on the same items.
    """
    known = items["id"].to_numpy()
    for cycle in good:
        ids = np.asarray((cycle.details or {}).get("stop_set", []), dtype=np.int64)
        if len(ids):
            return ids[np.isin(ids, known)]
    unlabeled = items["id"].to_numpy()[(items["split"].to_numpy() == "pool") & items["label"].isna().to_numpy()
                                      & ~items["retired"].to_numpy()]
    rng = np.random.default_rng([project.config.seed, 13])
    return np.sort(rng.permutation(unlabeled)[:_STOP_SET])


def select(project: Project, model: Any | None, X: np.ndarray, items: pd.DataFrame, st: SimpleNamespace,
           train_rows: np.ndarray, y_train: ArrayLike, size: int, salt: int, reserve: int = 0) -> dict:
    """The strategy's next batch among unlabeled pool items not issued yet, and a ranked reserve after it.

    Returns ids (batch first, then the reserve in score order), scores,
    random flags, ``size`` (how many of the ids are the batch proper) and
    ``n_random``. Test, retired and issued items are neither selected nor
    used as labeled evidence by diversity strategies.
    """
    from activelabel.models import build_committee, committee_samples, predict_proba_aligned
    from activelabel.strategies import COMMITTEE_STRATEGIES, select_batch

    classes = project.classes
    # Labeled and issued pool items (about to be labeled) are never picked and diversity spreads away from them;
    # test, retired and skipped-out items (skip_limit people passed on them) take no part at all.
    pool = ((items["split"].to_numpy() == "pool") & ~items["retired"].to_numpy()
            & ~items["id"].isin(list(st.skipped)).to_numpy())
    labeled = pool & (items["label"].notna().to_numpy() | items["id"].isin(st.issued).to_numpy())
    excluded = ~pool
    blocked = labeled | excluded
    size = min(size, int((~blocked).sum()))
    if size == 0:
        return {"item_ids": [], "scores": [], "is_random": [], "n_random": 0, "size": 0}
    rng = np.random.default_rng([project.config.seed, 7, salt])
    proba = samples = None
    if model is not None:
        if project.config.strategy in COMMITTEE_STRATEGIES or hasattr(model, "sample_proba"):
            committee = build_committee(model, X[train_rows], y_train, random_state=int(rng.integers(2**31)))
            samples = committee_samples(committee, X, classes)
        # MC dropout or a deep ensemble: the stack's mean, rather than one pass with dropout off
        proba = samples.mean(axis=0) if hasattr(model, "sample_proba") else predict_proba_aligned(model, X, classes)
    strategy = project.config.strategy if model is not None else "random"
    batch = select_batch(strategy, batch_size=size, proba=proba, samples=samples, X=X, labeled_mask=labeled,
                         exclude_mask=excluded, random_state=rng, random_fraction=project.config.random_fraction)
    picks = np.asarray(batch.indices)
    scores = np.asarray(batch.scores, dtype=float)
    rest = np.flatnonzero(~blocked)
    rest = rest[~np.isin(rest, picks)]
    if reserve and len(rest):
        # the next-ranked items of this scoring, labeled while the next cycle trains (ties and NaN scores at random)
        key = np.where(np.isfinite(scores[rest]), scores[rest], -np.inf)
        order = np.lexsort((rng.random(len(rest)), -key))
        rest = rest[order][:reserve]
    else:
        rest = rest[:0]
    ids = items["id"].to_numpy()
    is_random = np.asarray(batch.is_random, dtype=bool)
    again = (relabel(project, items, pool, proba, picks, size, st.events) if proba is not None
             else np.empty(0, dtype=np.intp))
    if len(again):
        # the same batch size: each routed item takes the place of one of the least informative new items, which
        # lead the reserve instead (labeled while the next cycle trains, when a reserve is kept)
        order = np.argsort(1 - proba[picks].max(axis=1), kind="stable")
        out = np.zeros(len(picks), dtype=bool)
        out[order[:len(again)]] = True
        rest = np.concatenate([picks[out], rest])[:len(rest)]
        picks, is_random = picks[~out], is_random[~out]
    return {"item_ids": ids[picks].tolist() + ids[rest].tolist(), "scores": scores[picks].tolist() + scores[rest].tolist(),
            "is_random": list(map(bool, is_random)) + [False] * len(rest), "n_random": int(is_random.sum()),
            "size": len(picks), "relabel": ids[again].tolist()}


def relabel(project: Project, items: pd.DataFrame, pool: np.ndarray, proba: np.ndarray, picks: np.ndarray,
            size: int, events: pd.DataFrame) -> np.ndarray:
    """Rows of labeled pool items worth another opinion more than the batch's least informative new items, one
    for one, at most ``relabel_fraction`` of the batch, most worth first (an ActiveLab-style choice, Goh and
    Mueller 2023; scores from :mod:`activelabel.agreement.routing`).

    Items with ``max_opinions`` opinions, an adjudicated label, or no active annotator left who has not answered
    them (admins count only in a project without annotators) are left as they are: they could never get
    another opinion, and their places in the batch would be lost.
    """
    from activelabel.agreement.routing import relabel_scores, route

    cap = int(project.config.relabel_fraction * size)
    if cap < 1 or not len(picks):
        return np.empty(0, dtype=np.intp)
    votes = items["n_votes"].to_numpy()
    labels = items["label"].to_numpy(dtype=object)
    candidates = np.flatnonzero(pool & (votes >= 1) & (votes < project.config.max_opinions)
                                & ~items["adjudicated"].to_numpy(dtype=bool) & items["label"].notna().to_numpy())
    if not len(candidates):
        return np.empty(0, dtype=np.intp)
    with project.store.session(readonly=True) as s:
        people = repo.active_people(s, role="annotator") or repo.active_people(s)  # admins when nobody else labels
    answered = (events[events["annotator_id"].isin(people) & (events["answer"] != "retract")]
                .groupby("item_id")["annotator_id"].nunique()) if len(events) else pd.Series(dtype=int)
    ids = items["id"].to_numpy()
    candidates = candidates[answered.reindex(ids[candidates]).fillna(0).to_numpy() < len(people)]
    column = {c: k for k, c in enumerate(project.classes)}
    label_col = np.array([column.get(labels[r], -1) for r in candidates], dtype=np.intp)
    known = label_col >= 0
    candidates, label_col = candidates[known], label_col[known]
    agreed = np.nan_to_num(items["consensus"].to_numpy(dtype=float)[candidates], nan=1.0)
    score = relabel_scores(agreed, votes[candidates], proba[candidates, label_col])
    return candidates[route(score, 1 - proba[picks].max(axis=1), cap)]


def seed_batch(project: Project) -> int:
    """Before any model exists, publish a random batch (and its reserve) for the app to serve; its size.

    Done when no cycle has trained yet and every item of the current batch
    (if any) is done, so a project served straight after its import gets pool items
    and, if the first training fails for want of two classes, another
    random batch. Returns 0 when a model exists or a batch is still open.
    """
    from datetime import UTC, datetime

    settings = project.config.queue_settings()
    with project.store.session(readonly=True) as s:  # cheap checks first: this runs at every retrainer poll
        if repo.newest_good_cycle(s) is not None or queue.batch_progress(s)["left"]:
            return 0
    st = state(project)
    items = st.items
    free = ((items["split"].to_numpy() == "pool") & ~items["retired"].to_numpy() & items["label"].isna().to_numpy()
            & ~items["id"].isin(st.issued).to_numpy() & ~items["id"].isin(list(st.skipped)).to_numpy())
    rng = np.random.default_rng([project.config.seed, 17, len(st.cycles), int(free.sum())])
    size = project.config.batch_size
    picks = rng.permutation(items["id"].to_numpy()[free])[:size * (1 + project.config.reserve_batches)]
    with project.store.session() as s:
        queue.lock_queue(s)
        if not len(picks) or queue.batch_progress(s)["left"]:  # every item of the current batch must be done
            return 0
        gone = repo.settled_items(s, picks) | queue.held_items(s, picks, datetime.now(UTC))
        ids = [int(i) for i in picks if int(i) not in gone]
        repo.add_batch(s, cycle_id=None, purpose="cycle", strategy="random", item_ids=ids, scores=[np.nan] * len(ids),
                       is_random=[True] * len(ids), need=queue.answers_needed(np.array(ids), settings),
                       size=min(size, len(ids)))
    return min(size, len(ids))


def record_failure(project: Project, error: str) -> None:
    """Record a cycle that failed (the app shows it; labeling goes on with the previous batch)."""
    with project.store.session() as s:
        repo.add_cycle(s, strategy=project.config.strategy, featurizer=project.config.featurizer, error=error,
                       money_spent=0.0)


def _load_model(project: Project, cycle):
    """The model a cycle saved; :class:`ModelMissingError` when its file is missing or unreadable."""
    import joblib

    path = project.folder / (cycle.model_path or "")
    try:
        return joblib.load(path)["model"]
    except FileNotFoundError:
        problem = "is missing"
    except Exception as error:  # joblib and pickle raise many types for a damaged file
        lines = str(error).strip().splitlines()
        problem = f"cannot be read ({type(error).__name__}{': ' + lines[0] if lines else ''})"
    raise ModelMissingError(f"the model of cycle {cycle.model_version} ({path}) {problem}: "
                            "run activelabel train to train it again")


def _has_model(project: Project, cycle) -> bool:
    try:
        _load_model(project, cycle)
    except ModelMissingError:
        return False
    return True


def latest_model(project: Project) -> Any | None:
    """The newest saved model, or None before the first cycle.

    Raises
    ------
    ModelMissingError
        When the newest cycle's model file is missing or unreadable (a deleted ``models/`` folder); the
        message says to train again.
    """
    with project.store.session(readonly=True) as s:
        history = [c for c in repo.cycles(s) if c.model_path]
    return _load_model(project, history[-1]) if history else None
