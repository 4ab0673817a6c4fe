"""Reading the files people import: CSV, JSONL and Parquet, with exact line numbers for errors.

CSV is parsed with the standard ``csv`` module rather than pandas because it
reports the physical line of every record (quoted fields may span lines),
so an error can say ``data.csv: line 1204``. Text must be UTF-8 (a BOM is
accepted); anything else is an error naming the line of the first bad byte.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from activelabel.errors import (
    EmptyFileError,
    MalformedFileError,
    MissingColumnError,
    NestedValueError,
    UnreadableFileError,
)

__all__ = ["Records", "read_records", "first_nested", "FORMATS"]

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet",
           ".pq": "parquet"}


@dataclass(frozen=True)
class Records:
    """The rows of a file as a DataFrame, and the line (or row) each came from."""

    path: Path
    frame: pd.DataFrame
    lines: np.ndarray  # physical line of each row (CSV, JSONL) or row number (Parquet)
    unit: str  # "line" or "row"

    def where(self, i: int) -> str:
        """``"data.csv: line 12"`` for row ``i``."""
        return f"{self.path}: {self.unit} {int(self.lines[i])}"

    def require(self, *columns: str | None) -> None:
        """Raise :class:`MissingColumnError` for the first column the file does not have."""
        for c in columns:
            if c is not None and c not in self.frame.columns:
                have = ", ".join(map(str, self.frame.columns))
                raise MissingColumnError(f"{self.path}: no column {c!r}; columns are {have}")

    def require_single(self, *columns: str | None, what: str = "a single value") -> None:
        """Raise :class:`NestedValueError` for the first row holding a list or an object in one of ``columns``."""
        for c in columns:
            if c is not None and c in self.frame.columns:
                i = first_nested(self.frame[c])
                if i is not None:
                    found = "an object" if isinstance(self.frame[c].iloc[i], dict) else "a list"
                    raise NestedValueError(f"{self.where(i)}: column {c!r} holds {found}, not {what}")


def first_nested(values: pd.Series) -> int | None:
    """The position of the first list, tuple, array or dict in ``values`` (Parquet list columns, JSON arrays), or None."""
    if values.dtype != object or pd.api.types.infer_dtype(values, skipna=True) == "string":  # the usual case, fast
        return None
    nested = values.map(lambda v: isinstance(v, (dict, list, tuple, np.ndarray))).to_numpy(bool)
    return int(np.flatnonzero(nested)[0]) if nested.any() else None


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise MalformedFileError(f"{path}: line {line}: not UTF-8 text (byte 0x{raw[error.start]:02x} at offset "
                                 f"{error.start}); save the file as UTF-8") from None


def read_records(path: str | Path, fmt: str | None = None) -> Records:
    """Read every row of a CSV, JSONL or Parquet file.

    Raises
    ------
    UnreadableFileError
        Missing file or unknown format.
    MalformedFileError
        A line that cannot be parsed, or text that is not UTF-8; names the line.
    EmptyFileError
        No rows.
    """
    path = Path(path)
    if not path.is_file():
        raise UnreadableFileError(f"{path}: no such file")
    fmt = fmt or FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UnreadableFileError(f"{path}: unknown format {path.suffix!r}; use .csv, .jsonl or .parquet")
    if fmt == "parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as error:  # pyarrow raises several types for a damaged file
            raise UnreadableFileError(f"{path}: cannot read as Parquet: {str(error).splitlines()[0]}") from None
        records = Records(path, frame.reset_index(drop=True), np.arange(1, len(frame) + 1), "row")
    else:
        text = _decode(path, path.read_bytes())
        records = _read_csv(path, text) if fmt == "csv" else _read_jsonl(path, text)
    if records.frame.empty:
        raise EmptyFileError(f"{path}: the file has no rows")
    return records


def _read_csv(path: Path, text: str) -> Records:
    # The csv module refuses fields over 128 KiB by default; a long text (which JSONL imports and the label page
    # shows) must come back from our own CSV export too. The whole file is in memory already.
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise EmptyFileError(f"{path}: the file is empty")
        if len(set(header)) != len(header):
            dup = next(h for h in header if header.count(h) > 1)
            raise MalformedFileError(f"{path}: line 1: column {dup!r} appears twice in the header")
        rows, lines = [], []
        start = reader.line_num + 1
        for row in reader:
            if not row:  # blank line
                start = reader.line_num + 1
                continue
            if len(row) != len(header):
                raise MalformedFileError(f"{path}: line {start}: expected {len(header)} fields, found {len(row)}")
            rows.append(row)
            lines.append(start)
            start = reader.line_num + 1
    except csv.Error as error:
        raise MalformedFileError(f"{path}: line {reader.line_num}: {error}") from None
    frame = pd.DataFrame(rows, columns=header, dtype=object) if rows else pd.DataFrame(columns=header)
    return Records(path, frame, np.asarray(lines, dtype=np.int64), "line")


def _read_jsonl(path: Path, text: str) -> Records:
    stripped = text.lstrip()
    if stripped.startswith("["):  # a JSON array of objects (Label Studio exports) is accepted too
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as error:
            raise MalformedFileError(f"{path}: line {error.lineno}: not valid JSON: {error.msg}") from None
        bad = next((i for i, r in enumerate(rows) if not isinstance(r, dict)), None)
        if bad is not None:
            raise MalformedFileError(f"{path}: element {bad + 1} of the array is not an object")
        return Records(path, pd.DataFrame(rows), np.arange(1, len(rows) + 1), "element")
    rows, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise MalformedFileError(f"{path}: line {number}: not valid JSON: {error.msg} "
                                     f"(column {error.colno})") from None
        if not isinstance(row, dict):
            raise MalformedFileError(f"{path}: line {number}: expected a JSON object, found {type(row).__name__}")
        rows.append(row)
        lines.append(number)
    return Records(path, pd.DataFrame(rows), np.asarray(lines, dtype=np.int64), "line")
