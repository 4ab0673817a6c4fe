"""Importing into a project: items (with their split and any known labels) and answers from files.

Every import is one transaction: it lands whole or not at all.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from activelabel.errors import (
    DuplicateIdError,
    EmptyLabelError,
    InvalidParameterError,
    MissingImageError,
    UnknownLabelError,
)
from activelabel.files import Records, read_records
from activelabel.project.config import CONFIG_FILE
from activelabel.store import queue, repo

if TYPE_CHECKING:
    from activelabel.project import Project

__all__ = ["import_items", "import_labels"]


def import_items(project: Project, path: str | Path, *, text_column: str | None = None, image_column: str | None = None,
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
    chosen = featurizer or project.config.featurizer or {"text": "tfidf", "image": "pixels", "row": "table"}[kind]
    if embedding_column:
        chosen = f"precomputed:{embedding_column}"
    if project.config.featurizer and chosen != project.config.featurizer:
        raise InvalidParameterError(f"this project's items use the {project.config.featurizer!r} features; "
                                    f"this import would need {chosen!r}")
    payload = _payloads(records, kind, text_column, image_column, feature_columns)
    ids = _external_ids(records, id_column, payload["content_hash"])
    payload["external_id"] = ids
    vectors = _vectors(records, embedding_column) if embedding_column else None
    labels = _known_labels(records, label_column, project.config.labels) if label_column else None

    # Duplicates inside the file: the same id twice must mean the same content.
    first = ~payload.duplicated("external_id")
    clash = payload[~first].merge(payload[first], on="external_id", suffixes=("", "_first"))
    clash = clash[clash["content_hash"] != clash["content_hash_first"]]
    if len(clash):
        row = clash.iloc[0]
        raise DuplicateIdError(f"{records.where(int(row['row']))}: id {row['external_id']!r} was already used "
                               f"at {records.unit} {int(records.lines[int(row['row_first'])])} for different content")

    with project.store.session() as s:
        known = repo.known_items(s)
        merged = payload[first].merge(known, on="external_id", how="left", suffixes=("", "_db"))
        changed = merged[merged["id"].notna() & (merged["content_hash"] != merged["content_hash_db"])]
        if len(changed):
            row = changed.iloc[0]
            raise DuplicateIdError(f"{records.where(int(row['row']))}: id {row['external_id']!r} is already in "
                                   "the project with different content")
        new = merged[merged["id"].isna()].copy()
        n_import = repo.count_imports(s)
        rng = np.random.default_rng([project.config.seed, n_import])
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
            n_labels = _store_import_labels(project, s, records, payload, labels, id_of)
    if not project.config.featurizer or (image_column and str(Path(path).resolve().parent) not in project.config.image_dirs):
        project.config.featurizer = chosen
        if image_column:
            project.config.image_dirs = sorted({*project.config.image_dirs, str(Path(path).resolve().parent)})
        project.config.write(project.folder / CONFIG_FILE)
    if vectors is not None and len(new):
        rows_new = new["row"].to_numpy(np.int64)
        project.features.put(project.config.featurizer, np.array([id_of[e] for e in new["external_id"]]),
                          vectors[rows_new])
    return {"new": int(len(new)), "existing": int(len(merged) - len(new)), "test": int(n_test), "labels": n_labels}


def _store_import_labels(project: Project, s, records: Records, payload: pd.DataFrame, labels: pd.Series, id_of) -> int:
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


def import_labels(project: Project, path: str | Path, *, id_column: str = "id", label_column: str = "label",
                  annotator_column: str | None = None, seconds_column: str | None = None) -> dict:
    """Store answers from a CSV/JSONL file, a Label Studio JSON export or Prodigy JSONL; all or nothing.

    Returns counts: ``labels``, ``skips`` and ``ignored`` (Prodigy rejects, which carry no label).
    """
    from activelabel.interchange import parse_answers

    records = read_records(path)
    answers = parse_answers(records, id_column=id_column, label_column=label_column,
                            annotator_column=annotator_column, seconds_column=seconds_column)
    labels = set(project.config.labels)
    for i, (answer, label) in enumerate(zip(answers["answer"], answers["label"])):
        if answer == "label" and (label is None or str(label).strip() == ""):
            raise EmptyLabelError(f"{records.where(int(answers['row'].iloc[i]))}: empty label")
        if answer == "label" and label not in labels:
            raise UnknownLabelError(f"{records.where(int(answers['row'].iloc[i]))}: unknown label {label!r}; "
                                    f"this project's labels are {', '.join(project.config.labels)}")
    with project.store.session() as s:
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


