"""Importing into a project: items (with their split, any known labels and precomputed vectors) and answers.

Every import lands whole or not at all, vectors included: an items file is
read, checked and staged chunk by chunk in a temporary table of its own
connection, then moved in one transaction. Everything that can refuse an
import (a file that does not fit the project: another kind of item, other
table columns, non-finite numbers, vectors of another length, values the
database cannot hold) is checked before the first write to the project. A change of the config file is
written inside the transaction and renamed into place once it committed,
so a full disk fails the import whole and the config never runs ahead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import math
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from activelabel.errors import (
    DataError,
    DuplicateIdError,
    EmptyLabelError,
    InvalidParameterError,
    MissingColumnError,
    MissingImageError,
    NonFiniteValueError,
    NonNumericColumnError,
    ShapeMismatchError,
    UnknownLabelError,
    UnstorableValueError,
    UnwritableFileError,
)
from activelabel.files import FORMATS, Records, first_nested, iter_records, read_records
from activelabel.project.config import CONFIG_FILE
from activelabel.store import leases, queue, repo, vectors
from activelabel.store.annotators import hidden_character
from activelabel.store.schema import Annotation, Annotator, Item, ItemVector
from activelabel.store.staging import staging

if TYPE_CHECKING:
    from activelabel.project import Project

__all__ = ["import_items", "import_labels"]

_NOUN = {"text": "texts", "image": "images", "row": "table rows"}


_CHUNK_ROWS = 100_000  # rows read, checked and staged at a time: memory holds one chunk whatever the file's size


def import_items(project: Project, path: str | Path, *, text_column: str | None = None, image_column: str | None = None,
                 feature_columns: list[str] | None = None, id_column: str | None = None,
                 label_column: str | None = None, embedding_column: str | None = None,
                 test_size: float | int | None = None, featurizer: str | None = None,
                 progress: Callable[[int], None] | None = None) -> dict:
    """Add the items of a CSV, JSONL or Parquet file; all or nothing, idempotent, in bounded memory.

    The file is read, checked and staged in chunks (see :mod:`activelabel.store.staging`), then the new items
    move into the project in one transaction: a refused or killed import leaves the project as it was.
    With ``embedding_column`` the vectors are stored with their items, in
    the same transaction; importing the same file again stores the vectors
    of items that have none (``repaired``). ``progress(rows)`` hears how many rows are staged.

    Returns counts: ``new``, ``existing``, ``test`` (new items held out),
    ``labels`` (known labels stored) and, with ``embedding_column``,
    ``repaired`` (existing items whose missing vectors were stored).

    Raises
    ------
    DataError
        Items of another kind than the project's, or table columns other than its own.
    NonFiniteValueError
        Infinity in a table feature column; NaN or infinity in a vector.
    NonNumericColumnError
        A nested object or list in a table feature column.
    ShapeMismatchError
        Vectors of different lengths, or of another length than the project's.
    """
    chunks = iter_records(path, chunk_rows=_CHUNK_ROWS)
    first = next(chunks)
    kinds = [c for c in (text_column, image_column, feature_columns) if c]
    if len(kinds) != 1:
        raise InvalidParameterError("say what the items are with exactly one of --text-column, --image-column "
                                    "or --feature-columns")
    wanted = [c for c in (text_column, image_column, id_column, label_column, embedding_column,
                          *(feature_columns or [])) if c]
    if first.unit != "line" or FORMATS.get(first.path.suffix.lower()) == "csv":
        first.require(*wanted)  # a header (CSV) or a schema (Parquet): every chunk has the same columns
    seen: dict[str, None] = {}  # JSON objects: a key may first appear in a later chunk
    kind = "text" if text_column else "image" if image_column else "row"
    column = text_column or image_column or feature_columns[0]
    chosen = featurizer or project.config.featurizer or {"text": "tfidf", "image": "pixels", "row": "table"}[kind]
    if embedding_column:
        chosen = f"precomputed:{embedding_column}"
        _check_name(embedding_column, "precomputed:", ItemVector.featurizer, f"{first.path}: embedding column name")
    if label_column:
        _check_name(first.path.name, _SOURCE, Annotation.source, f"{first.path}: file name")
    if chosen.startswith("torchscript:") and kind != "image":
        raise InvalidParameterError("an image model (--image-model) makes features of images: give --image-column")
    if project.config.featurizer and chosen != project.config.featurizer:
        raise InvalidParameterError(f"this project's items use the {project.config.featurizer!r} features; "
                                    f"this import would need {chosen!r}")
    digest = _file_hash(first.path)
    X_first = None

    def where(line: int) -> str:
        return f"{first.path}: {first.unit} {line}"

    with _ConfigChange(project) as change, staging(project.store) as stage:
        for records in itertools.chain([first], chunks):
            seen.update(dict.fromkeys(map(str, records.frame.columns)))
            records = _with_columns(records, wanted)  # a JSON key absent from a whole chunk is an empty value
            records.require_single(id_column, what="an id")
            records.require_single(text_column, what="a text")
            records.require_single(image_column, what="an image path")
            records.require_single(label_column, what="a label")
            if kind == "row":
                _check_table(records, feature_columns)
            X = _vectors(records, embedding_column, None if X_first is None else X_first.shape[1]) \
                if embedding_column else None
            if X is not None and X_first is None:
                X_first = X[:1]
            payload = _payloads(records, kind, text_column, image_column, feature_columns)
            payload["external_id"] = _external_ids(records, id_column, payload["content_hash"]).to_numpy()
            payload["line"] = records.lines
            payload["label"] = (_known_labels(records, label_column, project.config.labels).to_numpy()
                                if label_column else None)
            stage.add(payload, X)
            if progress is not None:
                progress(stage.rows)
        absent = [c for c in wanted if c not in seen]  # a key no object of the file has
        if absent:
            raise MissingColumnError(f"{first.path}: no column {absent[0]!r}; columns are {', '.join(seen)}")
        with stage.transaction() as s:
            leases.lock(s, "import")  # two imports at once (PostgreSQL) see each other's items, never race
            # Everything that can refuse the import is read and checked before the first write to the items.
            _check_fits(project, s, first, kind, column, feature_columns, chosen, embedding_column, X_first)
            stage.settle(s)
            clash = stage.clash_in_file(s)
            if clash:
                line, key, earlier = clash
                raise DuplicateIdError(f"{where(line)}: id {key!r} was already used at {first.unit} {earlier} "
                                       "for different content")
            changed = stage.clash_in_project(s)
            if changed:
                raise DuplicateIdError(f"{where(changed[0])}: id {changed[1]!r} is already in the project with "
                                       "different content")
            n_new, n_existing, first_new = stage.counts(s)
            if chosen.startswith("precomputed:") and X_first is None and n_new:
                raise InvalidParameterError(f"{where(first_new)}: this project's items use precomputed features: "
                                            f"give their vectors with --embedding-column {chosen.split(':', 1)[1]}")
            rng = np.random.default_rng([project.config.seed, repo.count_imports(s)])
            n_test = _test_count(test_size, n_new)
            import_id = repo.record_import(s, path=str(Path(path).resolve()), kind="items", n_new=n_new,
                                           n_existing=n_existing)
            vectors.set_import_hash(s, import_id, digest)
            stage.move(s, kind=kind, import_id=import_id, test_positions=rng.choice(n_new, n_test, replace=False))
            repaired = stage.move_vectors(s, chosen) - n_new if X_first is not None else 0
            n_labels = _store_staged_labels(s, _source(first), stage) if label_column else 0
            config = project.config
            if not config.featurizer or (image_column and str(Path(path).resolve().parent) not in config.image_dirs):
                image_dirs = config.image_dirs
                if image_column:
                    image_dirs = sorted({*image_dirs, str(Path(path).resolve().parent)})
                change.write(dataclasses.replace(config, featurizer=chosen, image_dirs=image_dirs))
    counts = {"new": n_new, "existing": n_existing, "test": int(n_test), "labels": n_labels}
    if X_first is not None:
        counts["repaired"] = int(repaired)
    return counts


def _with_columns(records: Records, columns: list[str]) -> Records:
    missing = [c for c in columns if c not in records.frame.columns]
    if not missing:
        return records
    return dataclasses.replace(records, frame=records.frame.assign(**{c: None for c in missing}))


def _store_staged_labels(s, source: str, stage) -> int:
    """Labels given in an items file, stored as answers from that file, unless already imported (from any file)."""
    current = repo.current_labels(repo.annotations_frame(s))
    n = 0
    for given in stage.labels(s):
        given = given.assign(annotator_id=None, answer="label")
        given = given[~_already_imported(s, given, current)]
        repo.add_annotations(s, [{"item_id": int(i), "annotator_id": None, "answer": "label", "label": lab,
                                  "seconds": None, "source": source}
                                 for i, lab in zip(given["item_id"], given["label"])])
        queue.mark_imported(s, given["item_id"])
        n += len(given)
    return n


class _ConfigChange:
    """A new config for the project, written beside the config file inside the import's transaction and put
    in place once the transaction committed, so neither lands without the other (a full disk fails the
    write, which rolls the import back; the rename after the commit needs no space)."""

    def __init__(self, project: Project):
        self.project = project
        self.config = None
        self.pending: Path | None = None

    def write(self, config) -> None:
        # a name of its own: two imports at once never write the same temporary file
        self.pending = self.project.folder / f".{CONFIG_FILE}.{os.getpid()}.{secrets.token_hex(4)}.pending"
        try:
            config.write(self.pending)
        except OSError as error:
            self._drop()
            raise UnwritableFileError(f"cannot write {self.project.folder / CONFIG_FILE}: "
                                      f"{error.strerror or error}; nothing was imported") from None
        self.config = config

    def _drop(self) -> None:
        for path in (self.pending, self.pending.with_suffix(".tmp")):
            with contextlib.suppress(OSError):
                path.unlink()
        self.pending = None

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if self.pending is None:
            return
        if kind is not None:
            self._drop()
            return
        os.replace(self.pending, self.project.folder / CONFIG_FILE)
        self.project.config = self.config


_SOURCE = "import:"  # answers stored from a file have the source "import:<file name>"


def _source(records: Records) -> str:
    return _SOURCE + records.path.name


def _check_name(name: str, prefix: str, field, what: str) -> None:
    """Refuse a name stored as ``prefix + name`` in ``field`` when the column cannot hold it."""
    room = field.type.length - len(prefix)
    if len(name) > room:
        raise UnstorableValueError(f"{what} {name[:20]!r}... is {len(name)} characters long; at most {room} fit "
                                   "in the database")


def _unstorable(values: pd.Series, field) -> tuple[int | None, str | None]:
    """The position of the first of ``values`` the database cannot store in ``field``, and why (or None, None).

    PostgreSQL refuses a NUL byte in text and a string longer than its
    column; SQLite would store both, so both are refused on either, alike.
    """
    text = values.reset_index(drop=True)  # strings (a value of another type is never refused)
    nul = text.str.find("\x00").to_numpy(np.float64, na_value=-1)
    if (nul >= 0).any():
        i = int(np.flatnonzero(nul >= 0)[0])
        return i, f"holds a NUL byte (\\x00) at character {int(nul[i]) + 1}, which the database cannot store"
    limit = getattr(field.type, "length", None)
    if limit:
        lengths = text.str.len().to_numpy(np.float64, na_value=0)
        if (lengths > limit).any():
            i = int(np.flatnonzero(lengths > limit)[0])
            return i, f"is {int(lengths[i])} characters long ({text.iloc[i][:20]!r}...); at most {limit} fit"
    return None, None


def _check_storable(records: Records, values: pd.Series, field, what: str, rows=None) -> None:
    """Refuse the first of ``values`` (row ``rows[k]`` of the file, default ``k``) that ``field`` cannot hold."""
    i, problem = _unstorable(values, field)
    if problem:
        row = i if rows is None else int(np.asarray(rows)[i])
        raise UnstorableValueError(f"{records.where(row)}: {what} {problem}")


def _check_fits(project: Project, s, records: Records, kind: str, column: str, feature_columns, chosen: str,
                embedding_column: str | None, X: np.ndarray | None) -> None:
    """Refuse items that do not fit the project's: another kind, other table columns, vectors of another length."""
    other = vectors.other_kind(s, kind)
    if other is not None:
        raise DataError(f"{records.where(0)}: column {column!r} holds {_NOUN[kind]}, but this project's items "
                        f"are {_NOUN[other]}")
    if kind == "row":
        have = vectors.feature_columns(s)
        if have is not None:
            missing = [c for c in have if c not in feature_columns]
            extra = [c for c in feature_columns if c not in have]
            if extra:
                also = f", and column {missing[0]!r} is missing" if missing else ""
                raise DataError(f"{records.where(0)}: column {extra[0]!r} is not one of this project's feature "
                                f"columns ({', '.join(have)}){also}")
            if missing:
                raise DataError(f"{records.where(0)}: column {missing[0]!r} of this project's items is missing "
                                f"from the import (its feature columns are {', '.join(have)})")
    if X is not None:
        dim = vectors.vector_dimension(s, chosen)
        if dim is None:
            dim = project.features.dimension(chosen)  # projects imported before vectors moved into the database
        if dim is not None and X.shape[1] != dim:
            raise ShapeMismatchError(f"{records.where(0)}: column {embedding_column!r} holds vectors of "
                                     f"{X.shape[1]} numbers; this project's vectors have {dim}")


def _check_image(data: bytes, where: str) -> None:
    """Refuse a file no image reader recognizes (its header only: cheap), before it is stored and fails every
    later training."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)):
            pass
    except (UnidentifiedImageError, OSError) as error:
        raise MissingImageError(f"{where} is not an image that can be read ({error})") from None


def _check_table(records: Records, columns: list[str]) -> None:
    """Table feature columns hold plain values: no nested objects or lists, no infinity (NaN is imputed)."""
    for c in columns:
        values = records.frame[c]
        if values.dtype == object:
            i = first_nested(values)
            if i is not None:
                what = "an object" if isinstance(values.iloc[i], dict) else "a list"
                raise NonNumericColumnError(f"{records.where(i)}: column {c!r} holds {what}, not a number or "
                                            "a category")
            numbers = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            numbers = values.to_numpy(np.float64)
        else:
            continue
        infinite = np.isinf(numbers)
        if infinite.any():
            i = int(np.flatnonzero(infinite)[0])
            raise NonFiniteValueError(f"{records.where(i)}: column {c!r} holds {str(records.frame[c].iloc[i])!r}: "
                                      "infinity cannot be a feature (leave the cell empty if the value is unknown)")


def _file_hash(path: Path) -> str:
    """SHA-256 of the file's bytes: recognizes a file imported before."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _answer_keys(frame: pd.DataFrame) -> pd.Series:
    """(item, annotator, answer, label) of each answer as one string; no annotator and no label are keys too."""
    annotator = pd.to_numeric(frame["annotator_id"], errors="coerce").astype("Int64")
    parts = [frame["item_id"].astype(np.int64), annotator.astype(object).where(annotator.notna(), "-"),
             frame["answer"], frame["label"].astype(object).where(frame["label"].notna(), "\\0")]
    keys = np.asarray(parts[0].astype(str), dtype=object)
    for part in parts[1:]:
        keys = keys + "|" + np.asarray(part.astype(str), dtype=object)
    return pd.Series(keys, dtype=object)


def _already_imported(s, rows: pd.DataFrame, current: pd.DataFrame | None = None) -> np.ndarray:
    """Which ``rows`` (item_id, annotator_id, answer, label) add nothing the store does not hold.

    - A row repeating an earlier row of the same file (same item, annotator, answer and label): one answer.
    - An answer the store already holds from an import (any file): stored once.
    - A label naming nobody that agrees with the item's current label (from anyone, the app included): such
      a row carries no new information, and it is what every re-imported export of this project holds.
    """
    if rows.empty:
        return np.zeros(0, dtype=bool)
    rows = rows.reset_index(drop=True)
    keys = _answer_keys(rows)
    out = keys.duplicated().to_numpy().copy()
    have = vectors.imported_answer_keys(s, rows["item_id"].unique())
    if not have.empty:
        out |= keys.isin(set(_answer_keys(have))).to_numpy()
    nobody = rows["annotator_id"].isna().to_numpy() & (rows["answer"] == "label").to_numpy()
    if nobody.any():
        if current is None:
            current = repo.current_labels(repo.annotations_frame(s))
        agree = rows["item_id"].map(current["label"]).to_numpy(dtype=object) == rows["label"].to_numpy(dtype=object)
        out |= nobody & agree
    return out


def import_labels(project: Project, path: str | Path, *, id_column: str = "id", label_column: str = "label",
                  annotator_column: str | None = None, seconds_column: str | None = None) -> dict:
    """Store answers from a CSV/JSONL file, a Label Studio JSON export or Prodigy JSONL; all or nothing.

    Answers already stored by an import (the same item, annotator, answer
    and label, from any file), rows repeated within the file, and labels
    naming nobody that agree with the item's current label are not stored
    (``already``), so importing a file twice, or an export of this project,
    stores and pays for nothing new. Answers for held-out test items are stored: they are
    the test labels.

    Returns counts: ``labels`` and ``skips`` (stored now), ``already``
    (answers the store already held, not stored again) and ``ignored``
    (rows that carry no label: Prodigy rejects, and rows whose label is empty, such as the unlabeled items of
    an export).
    """
    from activelabel.interchange import parse_answers

    records = read_records(path)
    records.require_single(id_column, what="an id")
    records.require_single(label_column, what="a label")
    records.require_single(annotator_column, what="a name")
    records.require_single(seconds_column, what="a number")
    answers = parse_answers(records, id_column=id_column, label_column=label_column,
                            annotator_column=annotator_column, seconds_column=seconds_column)
    _check_name(records.path.name, _SOURCE, Annotation.source, f"{records.path}: file name")
    named = answers["annotator"].notna().to_numpy()
    _check_storable(records, answers["annotator"][named], Annotator.name, "annotator name",
                    rows=answers["row"].to_numpy()[named])
    hidden = answers["annotator"][named].map(lambda name: hidden_character(name) is not None).to_numpy(dtype=bool)
    if hidden.any():
        i = int(np.flatnonzero(hidden)[0])
        raise UnstorableValueError(f"{records.where(int(answers['row'].to_numpy()[named][i]))}: annotator name "
                                   f"{answers['annotator'][named].iloc[i][:40]!r} holds a control or invisible "
                                   "character")
    is_label = (answers["answer"] == "label").to_numpy()
    text = answers["label"].astype(object).where(answers["label"].notna(), "").astype(str)
    empty = is_label & (text.str.strip() == "").to_numpy()
    unknown = is_label & ~empty & ~answers["label"].isin(project.config.labels).to_numpy()
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise UnknownLabelError(f"{records.where(int(answers['row'].iloc[i]))}: unknown label "
                                f"{_shown(answers['label'].iloc[i])}; this project's labels are "
                                f"{', '.join(project.config.labels)}")
    answers.loc[empty, "answer"] = "ignored"  # a row without a label is an item nobody labeled (exports list them)
    digest = _file_hash(records.path)
    answers = answers[answers["answer"] != "ignored"].reset_index(drop=True)
    n_ignored = int(len(is_label) - len(answers))
    with project.store.session() as s:
        leases.lock(s, "import")  # two imports of one file at once (PostgreSQL) store its answers once
        known = repo.known_items(s)
        item_ids = answers["external_id"].map(pd.Series(known["id"].to_numpy(), index=known["external_id"]))
        if item_ids.isna().any():
            i = int(np.flatnonzero(item_ids.isna().to_numpy())[0])
            raise InvalidParameterError(f"{records.where(int(answers['row'].iloc[i]))}: no item with id "
                                        f"{answers['external_id'].iloc[i]!r} in this project")
        if vectors.import_with_hash(s, digest, "labels") is not None:
            return {"labels": 0, "skips": 0, "already": int(len(answers)), "ignored": n_ignored}
        names = answers["annotator"].dropna()
        who = repo.annotator_ids(s, names.unique()) if len(names) else {}
        rows = pd.DataFrame({
            "item_id": item_ids.astype(np.int64).to_numpy(),
            "annotator_id": [who.get(name) if name is not None else None for name in answers["annotator"]],
            "answer": answers["answer"].to_numpy(),
            "label": answers["label"].where(answers["answer"] == "label", None).to_numpy(),
            "seconds": pd.to_numeric(answers["seconds"], errors="coerce").to_numpy(np.float64),
        })
        fresh = rows[~_already_imported(s, rows)]
        if len(fresh):
            source = _source(records)
            repo.add_annotations(s, [
                {"item_id": int(item), "annotator_id": None if pd.isna(ann) else int(ann), "answer": answer,
                 "label": label, "seconds": None if np.isnan(sec) else float(sec), "source": source}
                for item, ann, answer, label, sec in zip(fresh["item_id"], fresh["annotator_id"], fresh["answer"],
                                                         fresh["label"], fresh["seconds"])])
            import_id = repo.record_import(s, path=str(Path(path).resolve()), kind="labels", n_new=len(fresh),
                                           n_existing=int(len(rows) - len(fresh)))
            vectors.set_import_hash(s, import_id, digest)
            queue.mark_imported(s, fresh.loc[fresh["answer"] == "label", "item_id"])
    kinds = fresh["answer"].value_counts()
    return {"labels": int(kinds.get("label", 0)), "skips": int(kinds.get("skip", 0) + kinds.get("unsure", 0)),
            "already": int(len(rows) - len(fresh)), "ignored": n_ignored}


def _test_count(test_size, n_new: int) -> int:
    """Default: the smaller of 500 items and 10% of the new items."""
    if test_size is not None and not (isinstance(test_size, (int, float)) and math.isfinite(test_size)):
        raise InvalidParameterError(f"--test-size must be a fraction in [0, 1) or a count, got {test_size!r}")
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
        _check_storable(records, texts, Item.text, f"column {text_column!r}")
        out["text"] = texts.to_numpy()
        out["content_hash"] = _hash(t.encode() for t in texts)
    elif kind == "image":
        base = records.path.resolve().parent
        paths, digests = [], []
        _check_storable(records, frame[image_column].astype(object).where(frame[image_column].notna(), ""), Item.image,
                        f"column {image_column!r}")
        for i, value in enumerate(frame[image_column]):
            if value is None or (isinstance(value, float) and np.isnan(value)) or not str(value).strip():
                raise MissingImageError(f"{records.where(i)}: empty image path in column {image_column!r}")
            p = (base / str(value)).resolve()
            if not p.is_file():
                raise MissingImageError(f"{records.where(i)}: image file {str(value)!r} not found (looked in {base})")
            paths.append(str(p))
            digests.append(p.read_bytes())
            _check_image(digests[-1], f"{records.where(i)}: image file {str(value)!r}")
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
    _check_storable(records, ids, Item.external_id, f"column {id_column!r}: id")
    return pd.Series([i[:-2] if i.endswith(".0") and i[:-2].lstrip("-").isdigit() else i for i in ids])


def _vectors(records: Records, column: str, dim: int | None = None) -> np.ndarray:
    """The vectors of an embedding column (lists of numbers, or JSON arrays in text) as an (n, d) float32 matrix;
    ``dim``: the length of the file's first vector, when it was in an earlier chunk."""
    rows = []
    for i, v in enumerate(records.frame[column]):
        try:
            with np.errstate(over="ignore"):  # too large for float32: infinity, refused below
                a = np.asarray(json.loads(v) if isinstance(v, str) else v, dtype=np.float32)
        except (ValueError, TypeError):
            a = None
        if a is None or a.ndim != 1 or a.size == 0:
            raise ShapeMismatchError(f"{records.where(i)}: column {column!r} must hold a list of numbers, found "
                                     f"{str(v)[:40]!r}")
        rows.append(a)
    lengths = np.fromiter((a.size for a in rows), dtype=np.int64, count=len(rows))
    dim = lengths[0] if dim is None else dim
    if (lengths != dim).any():
        i = int(np.flatnonzero(lengths != dim)[0])
        raise ShapeMismatchError(f"{records.where(i)}: column {column!r} holds a vector of {lengths[i]} numbers; "
                                 f"the first one has {dim}")
    X = np.stack(rows)
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise NonFiniteValueError(f"{records.where(i)}: column {column!r} holds NaN or infinity (or a number too "
                                  "large for float32) in its vector")
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


def _shown(value, limit: int = 40) -> str:
    """A value quoted for an error line, cut at ``limit`` characters (a whole file's worth must not be echoed)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(str(value)):,} characters)"
