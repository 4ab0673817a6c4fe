"""Reading the files people import: CSV, JSONL and Parquet, with exact line numbers for errors.

CSV is parsed with the standard ``csv`` module rather than pandas because it
reports the physical line of every record (quoted fields may span lines),
so an error can say ``data.csv: line 1204``. Text must be UTF-8 (a BOM is
accepted); anything else is an error naming the line of the first bad byte.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
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

__all__ = ["Records", "read_records", "iter_records", "first_nested", "FORMATS"]

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


def _lines(path: Path) -> Iterator[str]:
    """The file's physical lines, decoded one at a time: UTF-8 (a BOM accepted), or an error naming the line."""
    with open(path, "rb") as f:
        offset = 0
        for number, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise MalformedFileError(f"{path}: line {number}: not UTF-8 text (byte 0x{raw[error.start]:02x} at "
                                         f"offset {offset + error.start}); save the file as UTF-8") from None
            offset += len(raw)
            yield text


def _resolve(path: str | Path, fmt: str | None) -> tuple[Path, str]:
    path = Path(path)
    if not path.is_file():
        raise UnreadableFileError(f"{path}: no such file")
    fmt = fmt or FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UnreadableFileError(f"{path}: unknown format {path.suffix!r}; use .csv, .jsonl or .parquet")
    return path, fmt


def iter_records(path: str | Path, fmt: str | None = None, chunk_rows: int = 100_000) -> Iterator[Records]:
    """The rows of a CSV, JSONL or Parquet file in chunks of up to ``chunk_rows``, read as they are needed.

    Memory holds one chunk, whatever the file's size (a JSON array, which has no lines to stream, is read
    whole). Each chunk's ``lines`` are the rows' lines (or row numbers) in the whole file.

    Raises
    ------
    UnreadableFileError
        Missing file or unknown format.
    MalformedFileError
        A line that cannot be parsed, or text that is not UTF-8; names the line.
    EmptyFileError
        No rows.
    """
    path, fmt = _resolve(path, fmt)
    if fmt == "parquet":
        chunks = _parquet_chunks(path, chunk_rows)
    else:
        chunks = _csv_chunks(path, chunk_rows) if fmt == "csv" else _jsonl_chunks(path, chunk_rows)
    empty = True
    for chunk in chunks:
        if len(chunk.frame):
            empty = False
            yield chunk
    if empty:
        raise EmptyFileError(f"{path}: the file has no rows")


def read_records(path: str | Path, fmt: str | None = None) -> Records:
    """Read every row of a CSV, JSONL or Parquet file (errors as :func:`iter_records`)."""
    chunks = list(iter_records(path, fmt))
    if len(chunks) == 1:
        return chunks[0]
    frame = pd.concat([c.frame for c in chunks], ignore_index=True)
    return Records(chunks[0].path, frame, np.concatenate([c.lines for c in chunks]), chunks[0].unit)


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[Records]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(path)
        done = 0
        for batch in source.iter_batches(batch_size=chunk_rows):
            frame = pa.Table.from_batches([batch], schema=source.schema_arrow).to_pandas().reset_index(drop=True)
            yield Records(path, frame, np.arange(done + 1, done + len(frame) + 1), "row")
            done += len(frame)
    except (pa.ArrowException, OSError) as error:  # pyarrow raises several types for a damaged file
        raise UnreadableFileError(f"{path}: cannot read as Parquet: {str(error).splitlines()[0]}") from None


def _csv_chunks(path: Path, chunk_rows: int) -> Iterator[Records]:
    # The csv module refuses fields over 128 KiB by default; a long text (which JSONL imports and the label page
    # shows) must come back from our own CSV export too.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    reader = csv.reader(_lines(path), strict=True)
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
            if len(rows) == chunk_rows:
                yield Records(path, pd.DataFrame(rows, columns=header, dtype=object), np.asarray(lines), "line")
                rows, lines = [], []
    except csv.Error as error:
        raise MalformedFileError(f"{path}: line {reader.line_num}: {error}") from None
    frame = pd.DataFrame(rows, columns=header, dtype=object) if rows else pd.DataFrame(columns=header)
    yield Records(path, frame, np.asarray(lines, dtype=np.int64), "line")


def _jsonl_chunks(path: Path, chunk_rows: int) -> Iterator[Records]:
    lines = _lines(path)
    rows, where = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if not rows and not where and line.lstrip().startswith("["):
            # a JSON array of objects (Label Studio exports) is accepted too; it has no lines to stream
            yield _json_array(path, "\n" * (number - 1) + line + "".join(lines))  # errors keep their line
            return
        try:
            row = json.loads(line.rstrip("\r\n"))  # the line ending would move an error to "column 1"
        except json.JSONDecodeError as error:
            raise MalformedFileError(f"{path}: line {number}: not valid JSON: {error.msg} "
                                     f"(column {error.colno})") from None
        if not isinstance(row, dict):
            raise MalformedFileError(f"{path}: line {number}: expected a JSON object, found {type(row).__name__}")
        rows.append(row)
        where.append(number)
        if len(rows) == chunk_rows:
            yield Records(path, _frame(rows), np.asarray(where, dtype=np.int64), "line")
            rows, where = [], []
    yield Records(path, _frame(rows), np.asarray(where, dtype=np.int64), "line")


def _frame(rows: list[dict]) -> pd.DataFrame:
    """JSON objects as a frame of the values as written: a chunk that has a null in a column of whole numbers
    would otherwise make them floats (10 becomes 10.0) in that chunk only, and the same row would hash
    differently in two chunks."""
    return pd.DataFrame(rows, dtype=object)


def _json_array(path: Path, text: str) -> Records:
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as error:
        raise MalformedFileError(f"{path}: line {error.lineno}: not valid JSON: {error.msg}") from None
    bad = next((i for i, r in enumerate(rows) if not isinstance(r, dict)), None)
    if bad is not None:
        raise MalformedFileError(f"{path}: element {bad + 1} of the array is not an object")
    return Records(path, pd.DataFrame(rows), np.arange(1, len(rows) + 1), "element")
