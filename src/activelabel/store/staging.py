"""A staged import: rows go chunk by chunk into a temporary table, then move into the items in one transaction.

The stage is a ``TEMPORARY`` table of the import's own connection: other connections never see it, each chunk
is staged in a short transaction of its own (on SQLite that briefly takes the database's write lock, so other
writers wait a fraction of a second, never the whole import), and it vanishes with the connection, so an import
killed at any moment leaves nothing behind. Memory holds one
chunk; the checks that need the whole file (an id used twice for different content, an id already in the
project for different content) and the move are SQL. PostgreSQL is filled with ``COPY``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, Column, Connection, Integer, LargeBinary, MetaData, Table, Text, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from activelabel.store.db import Store, database_error

__all__ = ["Stage", "staging", "STAGE_COLUMNS"]

STAGE_COLUMNS = ["pos", "line", "external_id", "content_hash", "text", "image", "data", "label", "vector"]
_metadata = MetaData()
_stage = Table(
    "import_stage", _metadata,
    Column("pos", BigInteger, primary_key=True),  # position in the file, from 0
    Column("line", BigInteger),  # the line (or row) errors name
    Column("external_id", Text), Column("content_hash", Text), Column("text", Text), Column("image", Text),
    Column("data", Text),  # a table row as JSON
    Column("label", Text), Column("vector", LargeBinary),
    Column("is_first", Integer), Column("is_new", Integer),  # set by Stage.settle()
    prefixes=["TEMPORARY"],
)


class Stage:
    """The staging table of one import, on one connection."""

    def __init__(self, store: Store, conn: Connection):
        self.store, self.conn = store, conn
        self.postgres = conn.dialect.name == "postgresql"
        self.rows = 0

    def add(self, frame: pd.DataFrame, vectors: np.ndarray | None = None) -> None:
        """Stage one chunk: ``frame`` has the columns of ``STAGE_COLUMNS`` but ``pos`` and ``vector``."""
        n = len(frame)
        data = [None if d is None else json.dumps(d, sort_keys=True, default=str) for d in frame["data"]]
        blobs = [None] * n if vectors is None else [v.tobytes() for v in np.ascontiguousarray(vectors, np.float32)]
        columns = [range(self.rows, self.rows + n), frame["line"].astype(np.int64).tolist(),
                   frame["external_id"].tolist(), frame["content_hash"].tolist(), _text(frame["text"]),
                   _text(frame["image"]), data, _text(frame["label"]), blobs]
        rows = list(zip(*columns))
        try:
            with self.conn.begin():
                if self.postgres:
                    raw = self.conn.connection.driver_connection
                    with raw.cursor() as cursor, cursor.copy(
                            f"COPY import_stage ({', '.join(STAGE_COLUMNS)}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                else:  # the driver's executemany on plain tuples: compiling 100,000 parameter dicts took longer
                    self.conn.exec_driver_sql(f"INSERT INTO import_stage ({', '.join(STAGE_COLUMNS)}) VALUES "
                                              f"({', '.join('?' * len(STAGE_COLUMNS))})", rows)
        except DBAPIError as error:
            raise database_error(error, self.store.engine.url, wrote=True) from None
        self.rows += n

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One write transaction on the stage's connection (the move), as ``Store.session`` gives one."""
        try:
            with self.store.write_lock, Session(bind=self.conn) as s, s.begin():
                yield s
        except DBAPIError as error:
            raise database_error(error, self.store.engine.url, wrote=True) from None

    def settle(self, s: Session) -> None:
        """Mark each id's first row in the file, and which of those are new to the project (indexes first)."""
        s.execute(text("CREATE INDEX IF NOT EXISTS import_stage_ids ON import_stage (external_id, pos)"))
        s.execute(text("UPDATE import_stage SET is_first = 1 WHERE pos IN "
                       "(SELECT MIN(pos) FROM import_stage GROUP BY external_id)"))
        s.execute(text("UPDATE import_stage SET is_new = 1 WHERE is_first = 1 AND NOT EXISTS "
                       "(SELECT 1 FROM items WHERE items.external_id = import_stage.external_id)"))
        # Nothing gathers statistics on a temporary table by itself (PostgreSQL's autovacuum skips them); without
        # them the joins below were planned as nested loops: minutes for a million rows.
        s.execute(text("ANALYZE import_stage"))

    def clash_in_file(self, s: Session) -> tuple[int, str, int] | None:
        """The first row whose id was used earlier in the file for other content: (line, id, earlier line)."""
        row = s.execute(text(
            "SELECT a.line, a.external_id, f.line FROM import_stage a "
            "JOIN import_stage f ON f.external_id = a.external_id AND f.is_first = 1 "
            "WHERE a.content_hash != f.content_hash AND a.external_id IN (SELECT external_id FROM import_stage "
            "GROUP BY external_id HAVING MIN(content_hash) != MAX(content_hash)) ORDER BY a.pos LIMIT 1")).first()
        return None if row is None else (int(row[0]), row[1], int(row[2]))

    def clash_in_project(self, s: Session) -> tuple[int, str] | None:
        """The first row whose id is already in the project for other content: (line, id)."""
        row = s.execute(text(
            "SELECT a.line, a.external_id FROM import_stage a JOIN items i ON i.external_id = a.external_id "
            "WHERE a.is_first = 1 AND i.content_hash != a.content_hash ORDER BY a.pos LIMIT 1")).first()
        return None if row is None else (int(row[0]), row[1])

    def counts(self, s: Session) -> tuple[int, int, int | None]:
        """(new ids, ids already in the project, the line of the first new row or None)."""
        new, old = s.execute(text("SELECT COALESCE(SUM(is_new), 0), COUNT(*) - COALESCE(SUM(is_new), 0) "
                                  "FROM import_stage WHERE is_first = 1")).one()
        line = s.scalar(text("SELECT line FROM import_stage WHERE is_new = 1 ORDER BY pos LIMIT 1"))
        return int(new), int(old), None if line is None else int(line)

    def move(self, s: Session, *, kind: str, import_id: int, test_positions: np.ndarray) -> None:
        """Insert the new rows as items in file order, then put those at ``test_positions`` (in that order) in the
        test split."""
        data = "CAST(data AS JSON)" if self.postgres else "data"
        s.execute(text(
            "INSERT INTO items (external_id, content_hash, kind, text, image, data, split, import_id) "
            f"SELECT external_id, content_hash, CAST(:kind AS VARCHAR(10)), text, image, {data}, 'pool', "
            "CAST(:import_id AS BIGINT) "
            "FROM import_stage WHERE is_new = 1 ORDER BY pos"), {"kind": kind, "import_id": import_id})
        if len(test_positions):
            # read through the driver's cursor: a million ids as SQLAlchemy rows cost seconds
            cursor = s.connection().connection.driver_connection.cursor()
            cursor.execute(f"SELECT id FROM items WHERE import_id = {int(import_id)} ORDER BY id")
            ids = np.fromiter((row[0] for row in cursor), dtype=np.int64)
            cursor.close()
            test = ids[np.sort(test_positions)].tolist()
            for start in range(0, len(test), 5_000):
                s.execute(text("UPDATE items SET split = 'test' WHERE id IN "
                               f"({', '.join(str(int(i)) for i in test[start:start + 5_000])})"))

    def move_vectors(self, s: Session, featurizer: str) -> int:
        """Store the staged vectors of every item that has none of ``featurizer`` (new and repaired ones)."""
        done = s.execute(text(
            "INSERT INTO item_vectors (item_id, featurizer, vector) "
            "SELECT i.id, CAST(:f AS VARCHAR(200)), a.vector FROM import_stage a JOIN items i ON i.external_id = a.external_id "
            "WHERE a.is_first = 1 AND a.vector IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM item_vectors v WHERE v.item_id = i.id AND v.featurizer = CAST(:f AS VARCHAR(200)))"), {"f": featurizer})
        return int(done.rowcount)

    def labels(self, s: Session, page: int = 100_000) -> Iterator[pd.DataFrame]:
        """(item_id, label) of each id's first row that gives a label, in pages, in file order."""
        after = -1
        while True:
            rows = s.execute(text(
                "SELECT a.pos, i.id, a.label FROM import_stage a JOIN items i ON i.external_id = a.external_id "
                "WHERE a.label IS NOT NULL AND a.pos > :after AND a.pos = (SELECT MIN(b.pos) FROM import_stage b "
                "WHERE b.external_id = a.external_id AND b.label IS NOT NULL) ORDER BY a.pos LIMIT :page"),
                {"after": after, "page": page}).all()
            if not rows:
                return
            after = int(rows[-1][0])
            yield pd.DataFrame([(int(r[1]), r[2]) for r in rows], columns=["item_id", "label"])


def _text(values: pd.Series) -> list[Any]:
    values = pd.Series(values, dtype=object)
    missing = values.isna().to_numpy()  # None, NaN and pd.NA alike, at once
    return [None if gone else v if isinstance(v, str) else str(v) for v, gone in zip(values.tolist(), missing)]


@contextmanager
def staging(store: Store) -> Iterator[Stage]:
    """A connection with an empty staging table; both are gone when the block ends (or the process dies)."""
    try:
        conn = store.engine.connect()
    except DBAPIError as error:
        raise database_error(error, store.engine.url, opening=True) from None
    try:
        try:
            with conn.begin():
                _stage.create(conn)
        except DBAPIError as error:
            raise database_error(error, store.engine.url, wrote=True) from None
        yield Stage(store, conn)
    finally:
        try:
            if conn.in_transaction():
                conn.rollback()
            with conn.begin():
                _stage.drop(conn, checkfirst=True)
        except DBAPIError:
            pass  # the table goes with the connection anyway
        conn.close()
