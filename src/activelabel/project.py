"""A labeling project: a folder with a config, a store, cached features and saved models.

This binds the layers below (store, featurizers, model, strategy, stopping
rules) into what the CLI and the web app drive: import items and labels,
train a cycle, issue a batch, report status, export. Every import is one
transaction: it lands whole or not at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from activelabel.errors import (
    DuplicateIdError,
    EmptyLabelError,
    InvalidParameterError,
    MissingImageError,
    NotTrainedError,
    ProjectExistsError,
    ProjectNotFoundError,
    SingleClassError,
    UnknownLabelError,
    UnknownStrategyError,
)
from activelabel.files import Records, read_records
from activelabel.models.featurizers import FEATURIZERS, FeatureCache, compute_features, featurizer_version
from activelabel.store import queue, repo
from activelabel.store.db import Store, open_store, sqlite_url

__all__ = ["Config", "Project", "init_project", "CONFIG_FILE"]

CONFIG_FILE = "activelabel.toml"
DB_FILE = "activelabel.db"
_COMMITTEE = {"vote_entropy", "consensus_entropy", "kl_disagreement", "bald"}
_STOP_SET = 1000  # pool items whose predictions the stabilizing-predictions rule compares


@dataclass(kw_only=True)
class Config:
    """What ``activelabel.toml`` holds. Edit the file to change strategy, batch size or prices."""

    labels: list[str]
    db: str = ""  # empty: the SQLite file in the project folder
    strategy: str = "default"
    batch_size: int = 100
    random_fraction: float = 0.1
    price_per_label: float = 0.0
    budget: float = 0.0  # money; 0 means no budget
    label_budget: int = 0  # training labels; 0 means none
    featurizer: str = ""  # set by the first import
    model: str = ""  # import path of a scikit-learn classifier; empty: scaled logistic regression
    seed: int = 0
    image_dirs: list[str] = field(default_factory=list)
    # the labeling app (activelabel serve)
    test_share: float = 0.2  # share of served items that are unlabeled test items, while any are left
    overlap_fraction: float = 0.0  # share of items given to several annotators, for agreement
    overlap_annotators: int = 3
    assignment_minutes: float = 30.0  # an item served and not answered goes back to the queue after this
    retrain_minutes: float = 0.0  # also retrain on this schedule when new labels came in (0: only when the batch is done)

    def queue_settings(self):
        from activelabel.store.queue import QueueSettings

        return QueueSettings(test_share=self.test_share, overlap_fraction=self.overlap_fraction,
                             overlap_annotators=self.overlap_annotators, assignment_minutes=self.assignment_minutes)

    def check(self) -> None:
        from activelabel.strategies import STRATEGIES

        labels = [str(x).strip() for x in self.labels]
        if len(labels) < 2 or "" in labels or len(set(labels)) != len(labels):
            raise InvalidParameterError(f"labels must be at least two distinct non-empty names, got {self.labels!r}")
        if self.strategy not in STRATEGIES:
            raise UnknownStrategyError(f"strategy {self.strategy!r} is not known; known: {', '.join(STRATEGIES)}")
        if self.batch_size < 1:
            raise InvalidParameterError(f"batch_size must be >= 1, got {self.batch_size!r}")
        if not 0 <= self.random_fraction <= 1:
            raise InvalidParameterError(f"random_fraction must be in [0, 1], got {self.random_fraction!r}")
        for name in ("test_share", "overlap_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise InvalidParameterError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        if self.overlap_annotators < 1 or self.assignment_minutes <= 0 or self.retrain_minutes < 0:
            raise InvalidParameterError("overlap_annotators must be >= 1, assignment_minutes > 0 and "
                                        "retrain_minutes >= 0")
        if self.featurizer and self.featurizer.split(":")[0] not in FEATURIZERS:
            raise InvalidParameterError(f"featurizer {self.featurizer!r} is not known; known: {', '.join(FEATURIZERS)}")

    def write(self, path: Path) -> None:
        import tomli_w

        tmp = path.with_suffix(".tmp")
        tmp.write_text(tomli_w.dumps(asdict(self)))
        tmp.replace(path)


def init_project(folder: str | Path, labels: list[str], *, db: str | None = None, **settings) -> Project:
    """Create a project in ``folder``: config file, database (migrated), models and features folders."""
    folder = Path(folder)
    if (folder / CONFIG_FILE).exists():
        raise ProjectExistsError(f"{folder} already holds a project ({CONFIG_FILE} exists)")
    config = Config(labels=[str(x).strip() for x in labels], db=db or "", **settings)
    config.check()
    folder.mkdir(parents=True, exist_ok=True)
    store = open_store(config.db or sqlite_url(folder / DB_FILE))  # fails before anything is written
    config.write(folder / CONFIG_FILE)
    return Project(folder, config, store)


class Project:
    """An open project. Use :meth:`open`, or :func:`init_project` for a new one."""

    def __init__(self, folder: Path, config: Config, store: Store):
        self.folder = Path(folder)
        self.config = config
        self.store = store
        self.features = FeatureCache(self.folder / "features")

    @classmethod
    def open(cls, folder: str | Path) -> Project:
        folder = Path(folder)
        path = folder / CONFIG_FILE
        if not path.is_file():
            raise ProjectNotFoundError(f"{folder} holds no activelabel project (no {CONFIG_FILE}); "
                                       "create one with: activelabel init")
        try:
            raw = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise InvalidParameterError(f"{path}: cannot parse: {error}") from None
        known = {f.name for f in fields(Config)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise InvalidParameterError(f"{path}: unknown setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
        config = Config(**raw)
        config.check()
        return cls(folder, config, open_store(config.db or sqlite_url(folder / DB_FILE)))

    @property
    def classes(self) -> np.ndarray:
        """The labels in sorted order: the column order of every probability matrix."""
        return np.array(sorted(self.config.labels))

    def close(self) -> None:
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ import
    def import_items(self, path: str | Path, *, text_column: str | None = None, image_column: str | None = None,
                     feature_columns: list[str] | None = None, id_column: str | None = None,
                     label_column: str | None = None, embedding_column: str | None = None,
                     test_size: float | int | None = None, featurizer: str | None = None) -> dict:
        """Add the items of a CSV, JSONL or Parquet file; all or nothing, idempotent.

        Returns counts: ``new``, ``existing``, ``test`` (new items held out),
        ``labels`` (known labels stored).
        """
        records = read_records(path)
        kinds = [c for c in (text_column, image_column, feature_columns) if c]
        if len(kinds) != 1:
            raise InvalidParameterError("say what the items are with exactly one of --text-column, --image-column "
                                        "or --feature-columns")
        records.require(text_column, image_column, id_column, label_column, embedding_column,
                        *(feature_columns or []))
        kind = "text" if text_column else "image" if image_column else "row"
        chosen = featurizer or self.config.featurizer or {"text": "tfidf", "image": "pixels", "row": "table"}[kind]
        if embedding_column:
            chosen = f"precomputed:{embedding_column}"
        if self.config.featurizer and chosen != self.config.featurizer:
            raise InvalidParameterError(f"this project's items use the {self.config.featurizer!r} features; "
                                        f"this import would need {chosen!r}")
        payload = _payloads(records, kind, text_column, image_column, feature_columns)
        ids = _external_ids(records, id_column, payload["content_hash"])
        payload["external_id"] = ids
        vectors = _vectors(records, embedding_column) if embedding_column else None
        labels = _known_labels(records, label_column, self.config.labels) if label_column else None

        # Duplicates inside the file: the same id twice must mean the same content.
        first = ~payload.duplicated("external_id")
        clash = payload[~first].merge(payload[first], on="external_id", suffixes=("", "_first"))
        clash = clash[clash["content_hash"] != clash["content_hash_first"]]
        if len(clash):
            row = clash.iloc[0]
            raise DuplicateIdError(f"{records.where(int(row['row']))}: id {row['external_id']!r} was already used "
                                   f"at {records.unit} {int(records.lines[int(row['row_first'])])} for different content")

        with self.store.session() as s:
            known = repo.known_items(s)
            merged = payload[first].merge(known, on="external_id", how="left", suffixes=("", "_db"))
            changed = merged[merged["id"].notna() & (merged["content_hash"] != merged["content_hash_db"])]
            if len(changed):
                row = changed.iloc[0]
                raise DuplicateIdError(f"{records.where(int(row['row']))}: id {row['external_id']!r} is already in "
                                       "the project with different content")
            new = merged[merged["id"].isna()].copy()
            n_import = repo.count_imports(s)
            rng = np.random.default_rng([self.config.seed, n_import])
            n_test = _test_count(test_size, len(new))
            split = np.full(len(new), "pool", dtype=object)
            split[rng.choice(len(new), n_test, replace=False)] = "test"
            import_id = repo.record_import(s, path=str(Path(path).resolve()), kind="items", n_new=len(new),
                                           n_existing=int(len(merged) - len(new)))
            columns = ["external_id", "content_hash", "text", "image", "data"]
            repo.insert_items(s, new[columns].assign(kind=kind, split=split, import_id=import_id))
            added = repo.known_items(s, import_id)
            id_of = dict(zip(known["external_id"], known["id"])) | dict(zip(added["external_id"], added["id"]))
            n_labels = 0
            if labels is not None:
                n_labels = self._store_import_labels(s, records, payload, labels, id_of)
        if not self.config.featurizer or (image_column and str(Path(path).resolve().parent) not in self.config.image_dirs):
            self.config.featurizer = chosen
            if image_column:
                self.config.image_dirs = sorted({*self.config.image_dirs, str(Path(path).resolve().parent)})
            self.config.write(self.folder / CONFIG_FILE)
        if vectors is not None and len(new):
            rows_new = new["row"].to_numpy(np.int64)
            self.features.put(self.config.featurizer, np.array([id_of[e] for e in new["external_id"]]),
                              vectors[rows_new])
        return {"new": int(len(new)), "existing": int(len(merged) - len(new)), "test": int(n_test), "labels": n_labels}

    def _store_import_labels(self, s, records: Records, payload: pd.DataFrame, labels: pd.Series, id_of) -> int:
        """Labels given in an items file, stored as answers from that file (once, however often it is imported)."""
        source = f"import:{records.path.name}"
        given = pd.DataFrame({"item_id": payload["external_id"].map(id_of), "label": labels}).dropna()
        given = given.drop_duplicates("item_id")
        have = repo.annotations_frame(s)
        if len(have):
            seen = set(zip(have.loc[have["source"] == source, "item_id"], have.loc[have["source"] == source, "label"]))
            given = given[[(i, lab) not in seen for i, lab in zip(given["item_id"], given["label"])]]
        repo.add_annotations(s, [{"item_id": int(i), "annotator_id": None, "answer": "label", "label": lab,
                                  "seconds": None, "source": source} for i, lab in zip(given["item_id"], given["label"])])
        queue.mark_imported(s, given["item_id"])
        return int(len(given))

    def import_labels(self, path: str | Path, *, id_column: str = "id", label_column: str = "label",
                      annotator_column: str | None = None, seconds_column: str | None = None) -> dict:
        """Store answers from a CSV/JSONL file, a Label Studio JSON export or Prodigy JSONL; all or nothing.

        Returns counts: ``labels``, ``skips`` and ``ignored`` (Prodigy rejects, which carry no label).
        """
        from activelabel.interchange import parse_answers

        records = read_records(path)
        answers = parse_answers(records, id_column=id_column, label_column=label_column,
                                annotator_column=annotator_column, seconds_column=seconds_column)
        labels = set(self.config.labels)
        for i, (answer, label) in enumerate(zip(answers["answer"], answers["label"])):
            if answer == "label" and (label is None or str(label).strip() == ""):
                raise EmptyLabelError(f"{records.where(int(answers['row'].iloc[i]))}: empty label")
            if answer == "label" and label not in labels:
                raise UnknownLabelError(f"{records.where(int(answers['row'].iloc[i]))}: unknown label {label!r}; "
                                        f"this project's labels are {', '.join(self.config.labels)}")
        with self.store.session() as s:
            known = repo.known_items(s)
            id_of = dict(zip(known["external_id"], known["id"]))
            item_ids = answers["external_id"].map(id_of)
            if item_ids.isna().any():
                i = int(np.flatnonzero(item_ids.isna().to_numpy())[0])
                raise InvalidParameterError(f"{records.where(int(answers['row'].iloc[i]))}: no item with id "
                                            f"{answers['external_id'].iloc[i]!r} in this project")
            names = answers["annotator"].dropna()
            who = repo.annotator_ids(s, names.unique()) if len(names) else {}
            source = f"import:{records.path.name}"
            rows = [{"item_id": int(item), "annotator_id": who.get(name) if name is not None else None,
                     "answer": answer, "label": label if answer == "label" else None,
                     "seconds": None if sec is None or pd.isna(sec) else float(sec), "source": source}
                    for item, name, answer, label, sec in zip(item_ids, answers["annotator"], answers["answer"],
                                                              answers["label"], answers["seconds"])
                    if answer != "ignored"]
            repo.add_annotations(s, rows)
            repo.record_import(s, path=str(Path(path).resolve()), kind="labels", n_new=len(rows), n_existing=0)
            queue.mark_imported(s, [r["item_id"] for r in rows if r["answer"] == "label"])
        kinds = answers["answer"].value_counts()
        return {"labels": int(kinds.get("label", 0)), "skips": int(kinds.get("skip", 0) + kinds.get("unsure", 0)),
                "ignored": int(kinds.get("ignored", 0))}

    # ------------------------------------------------------------------ state
    def state(self) -> SimpleNamespace:
        """Items (id, external_id, split, kind, content hash) with their current label, from one snapshot."""
        from sqlalchemy import select

        from activelabel.store.schema import Item

        with self.store.session(readonly=True) as s:
            items = pd.DataFrame(s.execute(select(Item.id, Item.external_id, Item.split, Item.kind,
                                                  Item.content_hash).order_by(Item.id)).all(),
                                 columns=["id", "external_id", "split", "kind", "content_hash"])
            events = repo.annotations_frame(s)
            issued = repo.issued_items(s)
            history = repo.cycles(s)
        current = repo.current_labels(events)
        items["label"] = items["id"].map(current["label"])
        items["n_votes"] = items["id"].map(current["n_votes"]).fillna(0).astype(int)
        return SimpleNamespace(items=items, events=events, issued=issued, cycles=history)

    def item_features(self, items: pd.DataFrame) -> np.ndarray:
        """Features of every item in ``items`` (ordered by id), from the cache or computed now."""
        name = self.config.featurizer
        if not name:
            raise NotTrainedError("the project has no items yet: run activelabel import first")
        if name.startswith("precomputed:"):
            ids, X = self.features.load(name)
            missing = np.setdiff1d(items["id"].to_numpy(np.int64), ids)
            if len(missing):
                raise NotTrainedError(f"{len(missing)} items have no precomputed features; import them again "
                                      "with --embedding-column")
            order = np.argsort(ids)
            return X[order[np.searchsorted(ids, items["id"].to_numpy(np.int64), sorter=order)]]
        version = featurizer_version(name, items)

        def compute(missing: np.ndarray) -> np.ndarray:
            with self.store.session(readonly=True) as s:
                content = repo.items_frame(s, ids=missing)
            return compute_features(name, content)

        return self.features.get(version, items["id"].to_numpy(np.int64), compute)

    def money_spent(self, events: pd.DataFrame) -> float:
        """Every answer people gave (labels, skips, unsure) at the project's price per label."""
        if events.empty:
            return 0.0
        return float((events["answer"] != "retract").sum() * self.config.price_per_label)

    def _model(self):
        from sklearn.base import clone

        from activelabel.models.loading import load_model

        return clone(load_model(self.config.model or None))

    # ------------------------------------------------------------------ train and select
    def train(self, progress: Callable[[str], None] = lambda _: None) -> dict:
        """One cycle: fit on the labeled pool, evaluate on the labeled test items, select the next batch.

        Records the cycle (model version, metrics with 95% intervals,
        stop-set predictions) and its batch, and saves the model under
        ``models/``. Returns the cycle's summary.
        """
        import time

        import joblib

        from activelabel.loop.evaluation import evaluate
        from activelabel.models import predict_proba_aligned

        t0 = time.perf_counter()
        st = self.state()
        items = st.items
        classes = self.classes
        train_rows, test_rows = _labeled_rows(items, "pool"), _labeled_rows(items, "test")
        train, test = items.iloc[train_rows], items.iloc[test_rows]
        present = sorted(train["label"].unique())
        if len(present) < 2:
            raise SingleClassError(f"training needs labeled pool items of at least two classes; there are "
                                   f"{len(train)} labeled pool items of {len(present)} class(es)"
                                   + (f" ({present[0]!r})" if present else ""))
        progress("features")
        X = self.item_features(items)
        progress("fit")
        model = self._model().fit(X[train_rows], train["label"].to_numpy(dtype=str))
        class_index = {c: k for k, c in enumerate(classes)}
        progress("evaluate")
        if len(test):
            pred = predict_proba_aligned(model, X[test_rows], classes).argmax(axis=1)
            metrics = evaluate(test["label"].map(class_index).to_numpy(), pred, len(classes),
                               random_state=self.config.seed)
        else:
            metrics = evaluate([], [], len(classes))
        pool_rows = np.flatnonzero(items["split"].to_numpy() == "pool")
        stop_rows = pool_rows[:_STOP_SET]
        stop_pred = predict_proba_aligned(model, X[stop_rows], classes).argmax(axis=1)
        version = max([c.model_version or 0 for c in st.cycles], default=0) + 1
        model_path = self.folder / "models" / f"model-v{version}.joblib"
        model_path.parent.mkdir(exist_ok=True)
        tmp = model_path.with_suffix(".tmp")
        joblib.dump({"model": model, "classes": list(classes), "featurizer": self.config.featurizer}, tmp)
        os.replace(tmp, model_path)
        progress("select")
        batch = self._select(model, X, items, st, train_rows, train["label"].to_numpy(dtype=str),
                             self.config.batch_size, salt=version)

        def num(x):
            return None if x is None or not np.isfinite(x) else float(x)

        with self.store.session() as s:
            cycle_id = repo.add_cycle(
                s, model_version=version, model_path=str(model_path.relative_to(self.folder)),
                strategy=self.config.strategy, featurizer=self.config.featurizer, labels_used=len(train),
                test_labels=len(test), accuracy=num(metrics.accuracy), accuracy_low=num(metrics.accuracy_ci[0]),
                accuracy_high=num(metrics.accuracy_ci[1]), macro_f1=num(metrics.macro_f1),
                macro_f1_low=num(metrics.macro_f1_ci[0]), macro_f1_high=num(metrics.macro_f1_ci[1]),
                money_spent=self.money_spent(st.events), seconds=time.perf_counter() - t0,
                details={"stop_predictions": stop_pred.tolist(), "classes": list(classes),
                         "n_random": int(batch["n_random"])})
            if len(batch["item_ids"]):
                repo.add_batch(s, cycle_id=cycle_id, purpose="cycle", strategy=self.config.strategy,
                               item_ids=batch["item_ids"], scores=batch["scores"], is_random=batch["is_random"],
                               need=queue.answers_needed(np.array(batch["item_ids"]), self.config.queue_settings()))
        return {"cycle": version, "labels_used": len(train), "test_labels": len(test),
                "accuracy": num(metrics.accuracy), "accuracy_ci": [num(v) for v in metrics.accuracy_ci],
                "macro_f1": num(metrics.macro_f1), "batch": len(batch["item_ids"]),
                "seconds": time.perf_counter() - t0}

    def _select(self, model, X, items, st, train_rows, y_train, size: int, salt: int) -> dict:
        """The strategy's next batch among unlabeled pool items not issued yet; ids, scores, random flags."""
        from activelabel.models import committee_samples, predict_proba_aligned
        from activelabel.strategies import select_batch

        classes = self.classes
        blocked = (items["split"].to_numpy() != "pool") | items["label"].notna().to_numpy() \
            | items["id"].isin(st.issued).to_numpy()
        size = min(size, int((~blocked).sum()))
        if size == 0:
            return {"item_ids": [], "scores": [], "is_random": [], "n_random": 0}
        rng = np.random.default_rng([self.config.seed, 7, salt])
        proba = samples = None
        if model is not None:
            proba = predict_proba_aligned(model, X, classes)
            if self.config.strategy in _COMMITTEE:
                from sklearn.base import clone
                from sklearn.ensemble import BaggingClassifier

                bag = BaggingClassifier(clone(model), n_estimators=5, random_state=int(rng.integers(2**31)))
                samples = committee_samples(bag.fit(X[train_rows], y_train), X, classes)
        strategy = self.config.strategy if model is not None else "random"
        batch = select_batch(strategy, batch_size=size, proba=proba, samples=samples, X=X, labeled_mask=blocked,
                             random_fraction=self.config.random_fraction, random_state=rng)
        picks = batch.indices
        return {"item_ids": items["id"].to_numpy()[picks].tolist(), "scores": batch.scores[picks].tolist(),
                "is_random": batch.is_random.tolist(), "n_random": batch.n_random}

    def record_failure(self, error: str) -> None:
        """Record a cycle that failed (the app shows it; labeling goes on with the previous batch)."""
        with self.store.session() as s:
            repo.add_cycle(s, strategy=self.config.strategy, featurizer=self.config.featurizer, error=error,
                           money_spent=0.0)

    def latest_model(self):
        """The newest saved model, or None before the first cycle."""
        import joblib

        with self.store.session(readonly=True) as s:
            history = [c for c in repo.cycles(s) if c.model_path]
        if not history:
            return None
        return joblib.load(self.folder / history[-1].model_path)["model"]

    def query(self, n: int, *, test: bool = False) -> pd.DataFrame:
        """Issue the next ``n`` items for an outside labeling service and record them as issued.

        With the latest model the project's strategy picks them among
        unlabeled pool items not issued before; before any model exists they
        are drawn at random (a seed set). With ``test`` the batch is made of
        unlabeled held-out test items instead (random order), which are
        labeled like any other but never trained on.
        """
        if n < 1:
            raise InvalidParameterError(f"-n must be >= 1, got {n}")
        st = self.state()
        items = st.items
        with_labels = items["label"].notna().to_numpy()
        if test:
            free = np.flatnonzero((items["split"].to_numpy() == "test") & ~with_labels
                                  & ~items["id"].isin(st.issued).to_numpy())
            rng = np.random.default_rng([self.config.seed, 11, len(st.issued)])
            picks = rng.permutation(free)[:n]
            batch = {"item_ids": items["id"].to_numpy()[picks].tolist(), "scores": [np.nan] * len(picks),
                     "is_random": [True] * len(picks), "n_random": len(picks)}
            strategy = "test"
        else:
            model = self.latest_model()
            X = self.item_features(items) if model is not None else None  # a random seed set needs no features
            train_rows = _labeled_rows(items, "pool")
            batch = self._select(model, X, items, st, train_rows, items["label"].to_numpy()[train_rows].astype(str),
                                 n, salt=100_000 + len(st.issued))
            strategy = self.config.strategy if model is not None else "random"
        with self.store.session() as s:
            if batch["item_ids"]:
                repo.add_batch(s, cycle_id=None, purpose="issued", strategy=strategy, item_ids=batch["item_ids"],
                               scores=batch["scores"], is_random=batch["is_random"])
            content = repo.items_frame(s, ids=batch["item_ids"]).set_index("id").loc[batch["item_ids"]]
        out = pd.DataFrame({"id": content["external_id"].to_numpy(), "split": content["split"].to_numpy(),
                            "kind": content["kind"].to_numpy(), "text": content["text"].to_numpy(),
                            "image": content["image"].to_numpy(), "data": content["data"].to_numpy(),
                            "rank": np.arange(len(content)), "score": batch["scores"], "random": batch["is_random"],
                            "strategy": strategy})
        return out

    # ------------------------------------------------------------------ reports
    def status(self) -> dict:
        """Counts, the latest metrics with intervals, money, and the stopping rules' advice in words."""
        from activelabel.stopping import LabelBudget, MoneyBudget, Plateau, StabilizingPredictions, check_stopping

        st = self.state()
        items = st.items
        labeled = items["label"].notna()
        history = [SimpleNamespace(cycle=c.model_version, accuracy=np.nan if c.accuracy is None else c.accuracy,
                                   macro_f1=np.nan if c.macro_f1 is None else c.macro_f1,
                                   labels_used=c.labels_used, money_spent=c.money_spent,
                                   stop_predictions=np.array((c.details or {}).get("stop_predictions", [])))
                   for c in st.cycles if c.error is None]
        rules = [Plateau(min_gain=0.5, patience=2), StabilizingPredictions(threshold=0.99, window=3)]
        if self.config.label_budget:
            rules.append(LabelBudget(self.config.label_budget))
        if self.config.budget:
            rules.append(MoneyBudget(self.config.budget, min_purchase=self.config.price_per_label))
        decisions = check_stopping(rules, history)
        good = [c for c in st.cycles if c.error is None]
        latest = good[-1] if good else None
        failed = st.cycles[-1] if st.cycles and st.cycles[-1].error is not None else None
        spent = self.money_spent(st.events)
        if not history:
            advice = "no model yet: label a seed set (activelabel query -n 200), then run activelabel train"
        elif decisions:
            advice = "stop: " + "; ".join(d.reason for d in decisions)
        else:
            advice = "continue: no stopping rule has fired"
        return {
            "items": int(len(items)), "pool": int((items["split"] == "pool").sum()),
            "test": int((items["split"] == "test").sum()),
            "labeled": int((labeled & (items["split"] == "pool")).sum()),
            "test_labeled": int((labeled & (items["split"] == "test")).sum()),
            "answers": int((st.events["answer"] != "retract").sum()) if len(st.events) else 0,
            "cycles": len(good),
            "latest": None if latest is None else {
                "cycle": latest.model_version, "accuracy": latest.accuracy,
                "accuracy_ci": [latest.accuracy_low, latest.accuracy_high], "macro_f1": latest.macro_f1,
                "macro_f1_ci": [latest.macro_f1_low, latest.macro_f1_high], "labels_used": latest.labels_used,
                "test_labels": latest.test_labels, "strategy": latest.strategy},
            "curve": [{"cycle": h.cycle, "labels_used": h.labels_used, "accuracy": c.accuracy,
                       "accuracy_ci": [c.accuracy_low, c.accuracy_high]} for h, c in zip(history, good)],
            "last_error": None if failed is None else {"at": failed.created_at, "error": failed.error},
            "money_spent": spent, "budget": self.config.budget or None,
            "budget_left": (self.config.budget - spent) if self.config.budget else None,
            "stop": [{"rule": d.rule, "reason": d.reason} for d in decisions], "advice": advice,
        }

    def predictions(self, items: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
        """The latest model's predicted label and its probability for every item, or None before any model."""
        from activelabel.models import predict_proba_aligned

        model = self.latest_model()
        if model is None:
            return None
        proba = predict_proba_aligned(model, self.item_features(items), self.classes)
        return self.classes[proba.argmax(axis=1)], proba.max(axis=1)

    def export(self, path: str | Path, fmt: str | None = None) -> int:
        """Write every item with its label, votes and the latest model's prediction; returns the row count."""
        from activelabel.interchange import write_export

        st = self.state()
        with self.store.session(readonly=True) as s:
            content = repo.items_frame(s)
        items = st.items.merge(content[["id", "text", "image", "data"]], on="id")
        pred = self.predictions(st.items)
        if pred is not None:
            items["prediction"], items["confidence"] = pred
        else:
            items["prediction"], items["confidence"] = None, np.nan
        model_version = st.cycles[-1].model_version if st.cycles else None
        return write_export(items, Path(path), fmt, labels=self.config.labels, model_version=model_version)

    def add_annotator(self, name: str, role: str = "annotator") -> str:
        with self.store.session() as s:
            return repo.add_annotator(s, name, role)


def _labeled_rows(items: pd.DataFrame, split: str) -> np.ndarray:
    """Row positions of the labeled items of a split (``items`` is in id order, as the feature rows are)."""
    return np.flatnonzero((items["split"].to_numpy() == split) & items["label"].notna().to_numpy())


def _test_count(test_size, n_new: int) -> int:
    """Default: the smaller of 500 items and 10% of the new items."""
    if n_new == 0:
        return 0
    if test_size is None:
        return min(500, int(round(0.1 * n_new)))
    if isinstance(test_size, float) and 0 <= test_size < 1:
        return int(round(test_size * n_new))
    if float(test_size) == int(test_size) and 0 <= int(test_size) <= n_new:
        return int(test_size)
    raise InvalidParameterError(f"--test-size must be a fraction in [0, 1) or a count up to {n_new}, got {test_size!r}")


def _hash(values) -> list[str]:
    return [hashlib.blake2b(v, digest_size=16).hexdigest() for v in values]


def _payloads(records: Records, kind: str, text_column, image_column, feature_columns) -> pd.DataFrame:
    """Per row: text / image path / table data, and a content hash."""
    frame = records.frame
    n = len(frame)
    out = pd.DataFrame({"row": np.arange(n), "text": None, "image": None, "data": None})
    if kind == "text":
        texts = frame[text_column]
        empty = texts.isna() | (texts.astype(str).str.strip() == "")
        if empty.any():
            raise EmptyLabelError(f"{records.where(int(np.flatnonzero(empty.to_numpy())[0]))}: "
                                  f"empty text in column {text_column!r}")
        texts = texts.astype(str)
        out["text"] = texts.to_numpy()
        out["content_hash"] = _hash(t.encode() for t in texts)
    elif kind == "image":
        base = records.path.resolve().parent
        paths, digests = [], []
        for i, value in enumerate(frame[image_column]):
            if value is None or (isinstance(value, float) and np.isnan(value)) or not str(value).strip():
                raise MissingImageError(f"{records.where(i)}: empty image path in column {image_column!r}")
            p = (base / str(value)).resolve()
            if not p.is_file():
                raise MissingImageError(f"{records.where(i)}: image file {str(value)!r} not found (looked in {base})")
            paths.append(str(p))
            digests.append(p.read_bytes())
        out["image"] = paths
        out["content_hash"] = _hash(digests)
    else:
        data = frame[list(feature_columns)]
        data = data.astype(object).where(data.notna(), None)
        rows = data.to_dict("records")
        rows = [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()} for r in rows]
        out["data"] = rows
        out["content_hash"] = _hash(json.dumps(r, sort_keys=True, default=str).encode() for r in rows)
    return out


def _external_ids(records: Records, id_column: str | None, hashes: pd.Series) -> pd.Series:
    if id_column is None:
        return "h" + hashes.str[:20]
    ids = records.frame[id_column]
    empty = ids.isna() | (ids.astype(str).str.strip() == "")
    if empty.any():
        raise EmptyLabelError(f"{records.where(int(np.flatnonzero(empty.to_numpy())[0]))}: empty id "
                              f"in column {id_column!r}")
    ids = ids.astype(str).str.strip()
    return pd.Series([i[:-2] if i.endswith(".0") and i[:-2].lstrip("-").isdigit() else i for i in ids])


def _vectors(records: Records, column: str) -> np.ndarray:
    values = records.frame[column]
    try:
        rows = [np.asarray(json.loads(v) if isinstance(v, str) else v, dtype=np.float32) for v in values]
        X = np.stack(rows)
    except (ValueError, TypeError, json.JSONDecodeError):
        lengths = pd.Series([np.size(v) if not isinstance(v, str) else -1 for v in values])
        i = int(np.flatnonzero(lengths.to_numpy() != lengths.mode().iloc[0])[0]) if lengths.nunique() > 1 else 0
        raise InvalidParameterError(f"{records.where(i)}: column {column!r} must hold lists of numbers of one "
                                    "length") from None
    if X.ndim != 2 or not np.isfinite(X).all():
        raise InvalidParameterError(f"{records.path}: column {column!r} must hold finite vectors, got shape {X.shape}")
    return X


def _known_labels(records: Records, column: str, labels: list[str]) -> pd.Series:
    """Labels given with the items: empty means not known; anything else must be a project label."""
    values = records.frame[column]
    given = values.notna() & (values.astype(str).str.strip() != "")
    out = values.astype(object).where(given, None).map(lambda v: None if v is None else str(v).strip())
    bad = given & ~out.isin(labels)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise UnknownLabelError(f"{records.where(i)}: unknown label {out.iloc[i]!r} in column {column!r}; "
                                f"this project's labels are {', '.join(labels)}")
    return out
