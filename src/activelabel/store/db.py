"""Opening a project's database: engine, migrations, sessions.

SQLite (the default, a file in the project folder) runs in WAL mode with
``synchronous=FULL``, so a committed transaction survives the process being
killed at any moment, and a busy timeout lets readers and the one writer
wait for each other instead of failing. PostgreSQL is opened by URL.
Alembic migrations are applied every time a store is opened.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import sessionmaker

from activelabel.errors import StoreError

__all__ = ["Store", "open_store", "sqlite_url"]

MIGRATIONS = Path(__file__).parent / "migrations"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


@dataclass
class Store:
    """An engine and its session factory; ``with store.session() as s:`` commits or rolls back."""

    engine: Engine
    sessions: sessionmaker
    write_lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def session(self, *, readonly: bool = False):
        """A session in one transaction: committed when the block ends, rolled back on any error.

        On SQLite a writing session takes the write lock when it begins, so
        writers queue instead of failing halfway; a ``readonly`` one reads a
        snapshot alongside the writer without waiting for it.
        """
        if readonly or self.engine.dialect.name != "sqlite":
            with self.sessions() as s, s.begin():
                if readonly:
                    s.connection(execution_options={"activelabel_readonly": True})
                yield s
            return
        # One writer at a time inside this process (as datasette does): threads queue on a
        # lock that wakes them at once, instead of on SQLite's busy handler, which sleeps
        # in steps of up to 100 ms. Other processes still wait on the busy timeout.
        with self.write_lock, self.sessions() as s, s.begin():
            yield s

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # transactions are begun by _sqlite_begin, not by pysqlite
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn) -> None:
    # pysqlite's own transaction handling is off (see _sqlite_pragmas). A writer
    # takes the lock up front with BEGIN IMMEDIATE, so two writers queue on the
    # busy timeout instead of one failing when it upgrades from reading to writing.
    readonly = conn.get_execution_options().get("activelabel_readonly", False)
    conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Connect to ``url`` and bring its tables to the newest migration.

    Raises
    ------
    StoreError
        When the database cannot be reached or the URL is not understood.
    """
    try:
        # a pre-ping finds dropped server connections; a SQLite file has none to drop
        # JIT off on PostgreSQL: the queue's short, correlated queries are estimated costly enough to be
        # compiled (30 ms of JIT for 0.1 ms of work, measured, while every annotator waits on the queue lock).
        options = {"connect_args": {"options": "-c jit=off"}} if url.startswith("postgresql") else {}
        engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"), **options)
    except (ArgumentError, ImportError) as error:
        raise StoreError(f"cannot use database URL {url!r}: {error}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    try:
        if migrate:
            upgrade(engine)
        else:
            with engine.connect():
                pass
    except OperationalError as error:
        engine.dispose()
        first = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise StoreError(f"cannot open database {engine.url.render_as_string(hide_password=True)}: {first}") from None
    return Store(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))


def upgrade(engine: Engine) -> None:
    """Apply every Alembic migration not yet applied."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
