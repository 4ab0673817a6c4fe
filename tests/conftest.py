"""Shared test settings."""

from hypothesis import settings

# No per-example deadline: the first example pays for imports and JIT-free
# NumPy warm-up, and CI machines are noisy. Examples stay small instead.
settings.register_profile("activelabel", deadline=None, max_examples=100)
settings.load_profile("activelabel")

import os
import uuid

# Two xdist workers share two cores: PyTorch (and the servers the tests start, which inherit this) take one
# thread each, or their thread pools oversubscribe the cores and a 4 s test takes a minute.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url



def _own_postgres() -> str:
    """Start a private PostgreSQL (pgserver's wheel ships the binaries) in a temporary folder; its URL.

    Only the first pytest process starts it (the xdist controller, or pytest
    without xdist); it puts the URL into ``ACTIVELABEL_TEST_PG``, which the
    workers it spawns inherit, and stops the server when the session ends.
    """
    import atexit
    import shutil
    import tempfile
    import warnings

    folder = tempfile.mkdtemp(prefix="activelabel-pg-")
    with warnings.catch_warnings():  # platformdirs: no XDG_RUNTIME_DIR in a container; pgserver copes
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(folder, cleanup_mode="stop")

    def stop():
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(stop)
    url = make_url(server.get_uri()).set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


# The PostgreSQL server the store tests run against. CI sets it (and starts the system server); without
# it, the test session starts its own. When it cannot be reached the PostgreSQL tests fail: they never skip.
if not os.environ.get("ACTIVELABEL_TEST_PG"):
    os.environ["ACTIVELABEL_TEST_PG"] = _own_postgres()
PG_URL = os.environ["ACTIVELABEL_TEST_PG"]
# The real SMS Spam Collection ships inside the package (it backs the demo), so the tests need nothing
# outside the repository.
from activelabel.demo import DEMO_DATA as SMS_PARQUET  # noqa: E402, F401 (used by the tests)


@pytest.fixture
def pg_url():
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"al_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request):
    """The database of a project under test: None (the default SQLite file) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("pg_url")


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, driven by Playwright (Playwright's own browser download does not work here)."""
    import shutil

    from playwright.sync_api import sync_playwright

    # The OS's Chromium where there is one (Debian's package here; Playwright's download does not work on
    # this network), else Playwright's own browser (`playwright install chromium`), which says so if missing.
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        yield b
        b.close()
