"""Opening a project's database: engine, migrations, sessions.

SQLite (the default, a file in the project folder) runs in WAL mode with
``synchronous=FULL``, so a committed transaction survives the process being
killed at any moment, and a busy timeout lets readers and the one writer
wait for each other instead of failing. PostgreSQL is opened by URL.
Alembic migrations are applied every time a store is opened.
"""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.exc import DataError as SQLDataError
from sqlalchemy.orm import Session, sessionmaker

from activelabel.errors import ActiveLabelError, StoreError, UnstorableValueError

__all__ = ["Store", "open_store", "sqlite_url", "shown_url"]

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
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back on any error.

        On SQLite a writing session takes the write lock when it begins, so
        writers queue instead of failing halfway; a ``readonly`` one reads a
        snapshot alongside the writer without waiting for it. A database
        failure leaves as one line: :class:`StoreError` (disk full, read-only
        or damaged file, lost connection) or :class:`UnstorableValueError`
        (a value the database refuses), the transaction rolled back.
        """
        try:
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
        except DBAPIError as error:
            raise database_error(error, self.engine.url, wrote=not readonly) from None
        except OverflowError as error:
            if "SQLite INTEGER" not in str(error):
                raise
            raise UnstorableValueError(f"the database refused a value: {error} (its integers are 64-bit)") from None

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
    shown = shown_url(url)
    try:
        # a pre-ping finds dropped server connections; a SQLite file has none to drop
        # JIT off on PostgreSQL: the queue's short, correlated queries are estimated costly enough to be
        # compiled (30 ms of JIT for 0.1 ms of work, measured, while every annotator waits on the queue lock).
        options = {"connect_args": {"options": "-c jit=off"}} if url.startswith("postgresql") else {}
        engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"), **options)
    except (ArgumentError, ImportError, ValueError, TypeError) as error:  # a bad URL, a missing driver
        raise StoreError(f"cannot use database URL {shown}: {_masked(_first_line(error), url)}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    try:
        if migrate:
            upgrade(engine)
        else:
            with engine.connect():
                pass
    except DBAPIError as error:
        engine.dispose()
        raise database_error(error, url, opening=True) from None
    except ActiveLabelError:
        engine.dispose()
        raise
    return Store(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))


def upgrade(engine: Engine) -> None:
    """Apply every Alembic migration not yet applied, one process at a time.

    On SQLite the migration's transaction holds the write lock (BEGIN
    IMMEDIATE); on PostgreSQL an advisory lock does the same, so two
    commands started at once after an upgrade of activelabel never both
    create the same table.
    """
    from alembic import command
    from alembic.config import Config
    from alembic.util import CommandError

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({zlib.crc32(b'activelabel:migrate')})")
        config.attributes["connection"] = connection
        try:
            command.upgrade(config, "head")
        except CommandError as error:  # e.g. a revision this version does not know: a newer activelabel's database
            raise StoreError(f"cannot open database {shown_url(engine.url)}: {_first_line(error)} (was it made by "
                             "a newer activelabel? upgrade activelabel)") from None


# ---------------------------------------------------------------- errors in one line, passwords masked

def shown_url(url: str | URL) -> str:
    """A database as shown to people: a SQLite file's path, else the URL with its password masked."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (ArgumentError, ValueError):  # not a URL SQLAlchemy can parse: mask anything between "user:" and "@"
        return re.sub(r"(://[^/@:]*:)[^/]*@", r"\1***@", str(url))
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return parsed.database
    return parsed.render_as_string(hide_password=True)


def _password(url) -> str | None:
    try:
        return (make_url(url) if isinstance(url, str) else url).password
    except (ArgumentError, ValueError):
        return None


def _masked(text: str, url) -> str:
    """``text`` with the password of ``url`` masked, should a driver have repeated it."""
    password = _password(url)
    return text.replace(password, "***") if password and len(password) >= 3 else text


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


# What a database's own words mean for the person reading them (SQLite's and PostgreSQL's messages).
_HINTS = (
    ("disk i/o error", "is the disk full, or a file-size limit reached?"),
    ("database or disk is full", "free some disk space"),
    ("readonly database", "make the database file and its folder writable"),
    ("file is not a database", "the file is damaged or is not a database: restore it from a backup, or give "
                               "the URL of the project's database"),
    ("disk image is malformed", "the database file is damaged: restore it from a backup"),
    ("unable to open database file", "check that the file's folder exists and can be written"),
    ("database is locked", "another process kept it locked for 30 s: try again"),
)
_OPENING_HINTS = (  # met while migrating
    ("already exists", "the database already holds tables that are not this project's: use an empty database"),
)


def database_error(error: DBAPIError, url, *, opening: bool = False, wrote: bool = False) -> ActiveLabelError:
    """A database failure as one line naming the database (password masked) and, where known, the remedy.

    ``wrote``: the failure ended a writing transaction, which was rolled back.
    """
    text = _masked(_first_line(error.orig if error.orig is not None else error), url)
    shown = shown_url(url)
    if isinstance(error, SQLDataError) and not opening:
        # a value PostgreSQL refuses (too long for its column, a NUL byte, a number out of range)
        return UnstorableValueError(f"the database refused a value: {text}" + ("; nothing was changed" if wrote else ""))
    hint = next((h for key, h in _HINTS + (_OPENING_HINTS if opening else ()) if key in text.lower()), None)
    what = "cannot open database" if opening else "database"
    return StoreError(f"{what} {shown}: {text}" + (f" ({hint})" if hint else "")
                      + ("; nothing was changed" if wrote else ""))
