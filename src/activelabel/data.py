"""Labeled data for simulation: files and built-in sets turned into features and labels.

A file is CSV, Parquet or NPZ. Text columns become TF-IDF features reduced
to a dense latent space (so diversity strategies can measure distances);
table columns are imputed, scaled and, when named explicitly, one-hot
encoded. Every problem raises a :class:`activelabel.errors.DataError`
naming the file, the column and the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from activelabel.errors import (
    EmptyLabelError,
    MissingColumnError,
    NestedValueError,
    NonNumericColumnError,
    SingleClassError,
    UnreadableFileError,
)
from activelabel.files import first_nested
from activelabel.models.featurizers import featurize_table, featurize_text

__all__ = ["LabeledData", "BUILTIN", "load_labeled"]

BUILTIN = ("digits",)


@dataclass(frozen=True, kw_only=True)
class LabeledData:
    """Dense features, labels and where they came from."""

    X: np.ndarray
    y: np.ndarray
    name: str
    features: str  # how X was made, for the report


def load_labeled(source: str, *, label_column: str = "label", text_column: str | None = None,
                 feature_columns: list[str] | None = None, random_state: int = 0) -> LabeledData:
    """Load a built-in data set or a labeled CSV, Parquet or NPZ file.

    Parameters
    ----------
    source : str
        ``digits`` or a path.
    label_column : str
        Column with the labels (for NPZ: the array name, ``y`` also accepted).
    text_column : str, optional
        Column of text: TF-IDF, reduced by truncated SVD.
    feature_columns : list of str, optional
        Columns to use; default every column but the label. Non-numeric
        columns listed here are one-hot encoded; unlisted ones are an error.
    """
    if source in BUILTIN:
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        return LabeledData(X=X.astype(np.float64), y=y, name="digits", features="8x8 pixel intensities")
    path = Path(source)
    if not path.is_file():
        raise UnreadableFileError(f"{source}: no such file (built-in data sets: {', '.join(BUILTIN)})")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path, label_column)
    frame = _read_table(path, suffix)
    if label_column not in frame.columns:
        raise MissingColumnError(
            f"{path}: no label column {label_column!r}; columns are {', '.join(map(str, frame.columns))}")
    _single(frame, label_column, path, "a label")
    y = _labels(frame[label_column], path, first_line=2 if suffix == ".csv" else 0)
    if text_column is not None:
        if text_column not in frame.columns:
            raise MissingColumnError(
                f"{path}: no text column {text_column!r}; columns are {', '.join(map(str, frame.columns))}")
        _single(frame, text_column, path, "a text")
        X, how = featurize_text(frame[text_column].fillna("").astype(str).tolist(), random_state)
    else:
        columns = feature_columns or [c for c in frame.columns if c != label_column]
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise MissingColumnError(
                f"{path}: no feature column {missing[0]!r}; columns are {', '.join(map(str, frame.columns))}")
        if not columns:
            raise MissingColumnError(f"{path}: no feature column besides the label {label_column!r}")
        for c in columns:
            _single(frame, c, path, "a number or a category")
        X, how = featurize_table(frame[columns], path, categorical_ok=feature_columns is not None)
    return LabeledData(X=X, y=y, name=path.stem, features=how)


def _read_table(path: Path, suffix: str) -> pd.DataFrame:
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path)
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            raise UnreadableFileError(f"{path}: unknown format {suffix!r}; use .csv, .parquet or .npz")
    except UnreadableFileError:
        raise
    except UnicodeDecodeError as error:
        raise UnreadableFileError(f"{path}: not UTF-8 text (byte {error.start}): {error.reason}") from None
    except pd.errors.EmptyDataError:
        raise UnreadableFileError(f"{path}: the file is empty") from None
    except pd.errors.ParserError as error:
        raise UnreadableFileError(f"{path}: cannot parse: {str(error).strip()}") from None
    except (OSError, ValueError) as error:
        raise UnreadableFileError(f"{path}: cannot read: {str(error).splitlines()[0]}") from None
    if frame.empty:
        raise UnreadableFileError(f"{path}: no rows")
    return frame


def _single(frame: pd.DataFrame, column: str, path: Path, what: str) -> None:
    """Refuse a list or an object (a Parquet list column) where ``column`` needs single values."""
    i = first_nested(frame[column])
    if i is not None:
        found = "an object" if isinstance(frame[column].iloc[i], dict) else "a list"
        where = f"line {i + 2}" if path.suffix.lower() == ".csv" else f"row {i + 1}"  # as a person counts them
        raise NestedValueError(f"{path}: {where}: column {column!r} holds {found}, not {what}")


def _load_npz(path: Path, label_column: str) -> LabeledData:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = dict(z)
    except Exception as error:  # numpy raises several types for a damaged archive
        raise UnreadableFileError(f"{path}: cannot read as NPZ: {error}") from None
    label_key = label_column if label_column in arrays else "y"
    if "X" not in arrays or label_key not in arrays:
        raise MissingColumnError(
            f"{path}: needs arrays 'X' and {label_column!r} (or 'y'); it has {', '.join(arrays)}")
    X = arrays["X"]
    if X.ndim != 2 or not np.issubdtype(X.dtype, np.number):
        raise NonNumericColumnError(f"{path}: 'X' must be a 2-D numeric array, got shape {X.shape} {X.dtype}")
    if len(arrays[label_key]) != len(X):
        raise MissingColumnError(f"{path}: 'X' has {len(X)} rows but {label_key!r} has {len(arrays[label_key])}")
    y = _labels(pd.Series(arrays[label_key]), path, first_line=0)
    return LabeledData(X=X.astype(np.float64), y=y, name=path.stem, features=f"{X.shape[1]} numeric columns")


def _labels(column: pd.Series, path: Path, first_line: int) -> np.ndarray:
    """Labels as an array; empty values and single-class columns are errors."""
    empty = column.isna() | (column.astype(str).str.strip() == "")
    if empty.any():
        row = int(np.flatnonzero(empty.to_numpy())[0])
        where = f"line {row + first_line}" if first_line else f"row {row}"
        raise EmptyLabelError(f"{path}: empty label in column {column.name!r} at {where} "
                              f"({int(empty.sum())} empty in all)")
    values = column.to_numpy()
    if values.dtype == object:
        values = values.astype(str)
    classes = np.unique(values)
    if len(classes) < 2:
        raise SingleClassError(f"{path}: column {column.name!r} has only one class ({classes[0].item()!r})")
    return values
