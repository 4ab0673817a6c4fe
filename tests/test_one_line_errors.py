"""Every failure the CLI and the app used to answer with a traceback (issue 11): one line, a non-zero exit, and the
database as it was.

Each case runs the real command in a fresh interpreter (``run_cli``) and counts the database's rows before and
after. A full disk is a file-size limit set in the child (``RLIMIT_FSIZE``, ``SIGXFSZ`` ignored so that a write
fails with ``EFBIG`` instead of killing the process); a read-only database file is one the child cannot write
(as root, the child drops the capabilities that let root write any file).
"""

import ctypes
import hashlib
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from activelabel.errors import StoreError, UnstorableValueError
from activelabel.models.featurizers import FeatureCache
from activelabel.project import Project
from activelabel.store.db import open_store, shown_url, sqlite_url
from activelabel.store.schema import Item

from conftest import PG_URL, SMS_PARQUET
from helpers import bearer, make_sms_project, one_line_error, run_cli

TABLES = ("items", "item_vectors", "imports", "annotations", "annotators", "cycles", "batches", "batch_items",
          "assignments")


# ---------------------------------------------------------------- helpers

def database_url(folder: Path) -> str:
    """The project's database URL, read from its config (the SQLite file in the folder when none is set)."""
    import tomllib

    url = tomllib.loads((folder / "activelabel.toml").read_text()).get("db")
    return url or sqlite_url(folder / "activelabel.db")


def rows(url: str) -> dict[str, int]:
    """Row counts of every table of the project's schema, read without migrating or writing anything."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}
    finally:
        engine.dispose()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_limited(limit: int, *args):
    """``activelabel *args`` in a child that cannot write beyond ``limit`` bytes of any file (a full disk)."""
    def limit_writes():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "activelabel.cli", *map(str, args)], capture_output=True,
                          text=True, preexec_fn=limit_writes)


def run_unprivileged(*args):
    """``activelabel *args`` in a child that file permissions bind (root keeps none of its overrides)."""
    libc = ctypes.CDLL(None, use_errno=True)

    def drop_overrides():
        if os.geteuid() == 0:
            for capability in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
                if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP: gone after exec
                    raise OSError(ctypes.get_errno(), "cannot drop a capability")

    return subprocess.run([sys.executable, "-m", "activelabel.cli", *map(str, args)], capture_output=True,
                          text=True, preexec_fn=drop_overrides)


def clean_failure_or_success(out, before: dict, folder: Path, *fragments) -> bool:
    """The run either worked, or failed with one line (containing ``fragments``) and changed no row; True if it failed."""
    assert "Traceback" not in out.stderr, out.stderr
    if out.returncode == 0:
        return False
    one_line_error(out, *fragments)
    assert rows(database_url(folder)) == before
    return True


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A trained SQLite project (300 SMS, 40 + 30 labeled, one cycle), built once; tests copy it."""
    return make_sms_project(tmp_path_factory.mktemp("trained"))


@pytest.fixture
def project(trained, tmp_path):
    folder = tmp_path / "proj"
    shutil.copytree(trained, folder)
    return folder


@pytest.fixture
def sms_csv(tmp_path):
    """Every SMS message (4,534 texts) with an id: an import whose transaction takes about 1.6 MB."""
    frame = pd.read_parquet(SMS_PARQUET).drop_duplicates("text").reset_index(drop=True)
    frame.insert(0, "id", [f"s{i}" for i in range(len(frame))])
    frame[["id", "text"]].to_csv(tmp_path / "all.csv", index=False)
    return tmp_path / "all.csv"


def new_project(folder: Path, db_url: str | None = None) -> Path:
    assert run_cli("init", folder, "--labels", "spam,ham", *(["--db", db_url] if db_url else [])).returncode == 0
    return folder


@pytest.fixture
def empty_project(tmp_path, db_url):
    """A project without items, on a SQLite file and on PostgreSQL."""
    return new_project(tmp_path / "empty", db_url)


# ---------------------------------------------------------------- a full disk

def test_disk_full_during_import(tmp_path, sms_csv):
    """At any file-size limit an import fails whole, in one line, or lands whole; the config never runs ahead."""
    empty_project = new_project(tmp_path / "proj")
    before, config = rows(database_url(empty_project)), (empty_project / "activelabel.toml").read_text()
    failed = 0
    for limit in (20_000, 60_000, 400_000):  # at the database's opening, and at its commit
        out = run_limited(limit, "import", empty_project, sms_csv, "--text-column", "text", "--id-column", "id")
        if clean_failure_or_success(out, before, empty_project, "is the disk full"):
            failed += 1
            assert (empty_project / "activelabel.toml").read_text() == config  # no featurizer without the items
            assert not list(empty_project.glob(".*pending*"))
    assert failed == 3
    assert "imported 4,534 new items" in run_cli("import", empty_project, sms_csv, "--text-column", "text").stdout


def test_disk_full_during_train(project):
    """Training under a full disk records no cycle and leaves no model file of a cycle that was not recorded."""
    shutil.rmtree(project / "features")
    before = rows(database_url(project))
    failures = []
    for limit in (20_000, 30_000, 34_000, 38_000):
        out = run_limited(limit, "train", project, "--force")
        if clean_failure_or_success(out, before, project, "is the disk full"):
            failures.append(out.stderr)
            assert sorted(p.name for p in (project / "models").iterdir()) == ["model-v1.joblib"]
        else:
            break  # a cycle was recorded: the database is no longer as before
    assert any("cannot open database" in e for e in failures)  # at the opening
    assert any("nothing was changed" in e for e in failures)  # at the commit of the cycle
    assert "cycle" in run_cli("train", project, "--force").stdout  # with room again it trains


def test_disk_full_during_annotator_add(project):
    before = rows(database_url(project))
    out = run_limited(20_000, "annotator", "add", project, "carol")
    assert clean_failure_or_success(out, before, project, "activelabel.db", "is the disk full")
    assert run_cli("annotator", "add", project, "carol").returncode == 0  # nothing half-added: the name is free


def test_a_feature_cache_that_cannot_be_written_is_not_kept(project):
    """The features cache is only a cache: a full disk leaves it empty and training goes on."""
    shutil.rmtree(project / "features")
    out = run_limited(100_000, "train", project, "--force")  # the database fits, the 120 kB chunk does not
    assert out.returncode == 0, out.stderr
    assert not list((project / "features").rglob("*.npz"))


# ---------------------------------------------------------------- read-only, damaged or foreign databases

def test_read_only_database_file(project, tmp_path):
    db = project / "activelabel.db"
    pd.DataFrame({"id": ["m299"], "label": ["spam"]}).to_csv(tmp_path / "labels.csv", index=False)
    before = rows(database_url(project))
    db.chmod(0o444)
    try:
        for args in (("annotator", "add", project, "dave"), ("train", project, "--force"),
                     ("import-labels", project, tmp_path / "labels.csv")):
            out = run_unprivileged(*args)
            one_line_error(out, str(db.resolve()), "readonly database", "writable")
        assert "Traceback" not in run_unprivileged("status", project).stderr  # reading may work, or say why not
    finally:
        db.chmod(0o644)
    assert rows(database_url(project)) == before


@pytest.mark.parametrize("damage", ["garbage", "garbage after the header"])
def test_corrupt_database_file(project, damage):
    db = project / "activelabel.db"
    raw = bytearray(db.read_bytes())
    rng = np.random.default_rng(0)
    start = 0 if damage == "garbage" else 8192
    raw[start:] = rng.integers(0, 256, len(raw) - start, dtype=np.uint8).tobytes()
    db.write_bytes(bytes(raw))
    before = digest(db)
    for args in (("status", project), ("train", project, "--force"), ("annotator", "add", project, "erin")):
        one_line_error(run_cli(*args), str(db.resolve()), "restore it from a backup")
    assert digest(db) == before


def test_sqlite_url_naming_a_file_that_is_not_a_database(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("groceries: milk, eggs\n")
    out = run_cli("init", tmp_path / "proj", "--labels", "a,b", "--db", f"sqlite:///{notes}")
    one_line_error(out, str(notes), "not a database")
    assert notes.read_text() == "groceries: milk, eggs\n"
    assert not (tmp_path / "proj").exists()  # a failed init leaves no folder behind


# ---------------------------------------------------------------- caches and models

def damage_chunk(path: Path, how: str) -> None:
    if how == "truncated":
        raw = path.read_bytes()
        path.write_bytes(raw[:len(raw) // 2])
    elif how == "garbage":
        path.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    elif how == "wrong shape":
        np.savez(path.with_suffix(""), ids=np.arange(5), X=np.zeros((3, 2), np.float32))
    elif how == "other arrays":
        np.savez(path.with_suffix(""), foo=np.arange(5))
    elif how == "pickled objects":
        np.savez(path.with_suffix(""), ids=np.array([object()], dtype=object), X=np.zeros((1, 2)))
    elif how == "not finite":
        with np.load(path) as part:
            ids, X = part["ids"], part["X"].copy()
        X[0, 0] = np.nan
        np.savez(path.with_suffix(""), ids=ids, X=X)


DAMAGE = ["truncated", "garbage", "wrong shape", "other arrays", "pickled objects", "not finite"]


def test_a_damaged_feature_cache_is_computed_again(project):
    chunk = next((project / "features").rglob("chunk-*.npz"))
    with np.load(chunk) as part:
        good = part["X"].copy()
    damage_chunk(chunk, "truncated")
    out = run_cli("train", project, "--force")
    assert out.returncode == 0 and "cycle 2:" in out.stdout, out.stderr
    with np.load(next((project / "features").rglob("chunk-*.npz"))) as part:
        assert np.allclose(part["X"], good, atol=1e-5)  # the same features, computed again and cached again


@pytest.mark.parametrize("how", DAMAGE)
def test_feature_cache_recomputes_every_row_when_a_chunk_is_damaged(tmp_path, how):
    """TF-IDF rows depend on every item, so a damaged chunk means computing them all again, never a part."""
    cache = FeatureCache(tmp_path / "features")
    asked = []

    def compute(ids):
        asked.append(ids.copy())
        return np.column_stack([ids, ids * 2]).astype(np.float32)

    cache.get("tfidf-v1-00ff", np.arange(6), compute)
    cache.put("tfidf-v1-00ff", np.arange(6, 9), compute(np.arange(6, 9)))  # a second chunk
    asked.clear()
    damage_chunk(sorted((tmp_path / "features" / "tfidf-v1-00ff").glob("chunk-*.npz"))[0], how)
    X = cache.get("tfidf-v1-00ff", np.arange(9), compute)
    assert [a.tolist() for a in asked] == [list(range(9))]
    assert np.array_equal(X[:, 0], np.arange(9))
    assert np.array_equal(cache.get("tfidf-v1-00ff", np.arange(9), compute), X) and len(asked) == 1  # cached again


def test_deleted_models_folder(project, tmp_path):
    """query and export say in one line to train again; train (without --force) does; then both work."""
    shutil.rmtree(project / "models")
    before = rows(database_url(project))
    one_line_error(run_cli("query", project, "-n", "5", "--out", tmp_path / "b.jsonl"),
                   "model of cycle 1", "is missing", "run activelabel train")
    one_line_error(run_cli("export", project, tmp_path / "out.csv"), "is missing", "run activelabel train")
    assert rows(database_url(project)) == before and not (tmp_path / "b.jsonl").exists()
    assert "cycle 2:" in run_cli("train", project).stdout
    assert run_cli("export", project, tmp_path / "out.csv").returncode == 0


def test_a_damaged_model_file_is_reported_and_trained_again(project, tmp_path):
    (project / "models" / "model-v1.joblib").write_bytes(b"garbage")
    one_line_error(run_cli("query", project, "-n", "5", "--out", tmp_path / "b.jsonl"), "cannot be read",
                   "run activelabel train")
    assert "cycle 2:" in run_cli("train", project).stdout


def test_admin_export_without_the_model_file_is_one_line_not_a_500(project):
    with Project.open(project) as p:
        admin = p.add_annotator("boss", "admin")
    shutil.rmtree(project / "models")
    with TestClient(create_app_for(project)) as client:
        r = client.get("/admin/export?format=csv", headers=bearer(admin))
    assert 400 <= r.status_code < 500, r.text
    detail = r.json()["detail"]
    assert "\n" not in detail and "run activelabel train" in detail


def create_app_for(folder):
    from activelabel.server import create_app

    return create_app(folder, retrain=False)


# ---------------------------------------------------------------- values PostgreSQL refuses (refused alike on SQLite)

def test_nul_byte_in_a_text(empty_project, tmp_path):
    pd.DataFrame({"id": ["a", "b", "c"], "text": ["hello", "wor\x00ld", "x"]}).to_csv(tmp_path / "nul.csv", index=False)
    before = rows(database_url(empty_project))
    one_line_error(run_cli("import", empty_project, tmp_path / "nul.csv", "--text-column", "text", "--id-column", "id"),
                   "nul.csv: line 3", "column 'text'", "NUL byte", "character 4")
    assert rows(database_url(empty_project)) == before


def test_nul_byte_in_an_id_or_an_image_path(empty_project, tmp_path):
    pd.DataFrame({"id": ["a", "b\x00c"], "text": ["hello", "world"]}).to_csv(tmp_path / "ids.csv", index=False)
    one_line_error(run_cli("import", empty_project, tmp_path / "ids.csv", "--text-column", "text", "--id-column", "id"),
                   "ids.csv: line 3", "column 'id'", "NUL byte")
    pd.DataFrame({"id": ["a"], "img": ["x\x00.png"]}).to_csv(tmp_path / "img.csv", index=False)
    one_line_error(run_cli("import", empty_project, tmp_path / "img.csv", "--image-column", "img"),
                   "img.csv: line 2", "column 'img'", "NUL byte")
    assert rows(database_url(empty_project))["items"] == 0


def test_id_longer_than_200_characters(empty_project, tmp_path):
    pd.DataFrame({"id": ["b1", "x" * 201], "text": ["hello there", "long id"]}).to_csv(tmp_path / "ids.csv", index=False)
    before = rows(database_url(empty_project))
    one_line_error(run_cli("import", empty_project, tmp_path / "ids.csv", "--text-column", "text", "--id-column", "id"),
                   "ids.csv: line 3", "column 'id'", "201 characters", "at most 200")
    assert rows(database_url(empty_project)) == before


def test_annotator_names_longer_than_100_characters(empty_project, tmp_path):
    before = rows(database_url(empty_project))
    one_line_error(run_cli("annotator", "add", empty_project, "n" * 101), "100 characters")
    frame = pd.DataFrame({"id": ["a", "b"], "text": ["hello there", "general kenobi"], "label": ["spam", "ham"],
                          "who": ["w" * 101, "ann"]})
    frame.to_csv(tmp_path / "items.csv", index=False)
    assert run_cli("import", empty_project, tmp_path / "items.csv", "--text-column", "text", "--id-column",
                   "id").returncode == 0
    before = rows(database_url(empty_project))
    one_line_error(run_cli("import-labels", empty_project, tmp_path / "items.csv", "--annotator-column", "who"),
                   "items.csv: line 2", "annotator name", "101 characters", "at most 100")
    assert rows(database_url(empty_project)) == before


def test_names_stored_with_a_prefix_must_fit_too(empty_project, tmp_path):
    """The featurizer of an embedding column is stored as ``precomputed:<column>``; a file's answers as ``import:<name>``."""
    column = "e" * 195
    pd.DataFrame({"id": ["a", "b"], "text": ["aa", "bb"], column: [[1.0, 2.0], [3.0, 4.0]]}).to_parquet(
        tmp_path / "emb.parquet")
    one_line_error(run_cli("import", empty_project, tmp_path / "emb.parquet", "--text-column", "text",
                           "--embedding-column", column), "embedding column name", "at most 188")
    name = tmp_path / ("l" * 200 + ".csv")
    pd.DataFrame({"id": ["a", "b"], "text": ["aa", "bb"], "label": ["spam", "ham"]}).to_csv(name, index=False)
    one_line_error(run_cli("import", empty_project, name, "--text-column", "text", "--id-column", "id",
                           "--label-column", "label"), "file name", "at most 193")
    assert rows(database_url(empty_project))["items"] == 0


def test_ids_no_item_can_have_are_unknown_not_a_database_error(project, tmp_path):
    (tmp_path / "ids.txt").write_text("m1\nbad\x00id\n")
    before = rows(database_url(project))
    one_line_error(run_cli("items", "remove", project, "--file", tmp_path / "ids.txt"), "no item with id 'bad\\x00id'")
    one_line_error(run_cli("items", "remove", project, "y" * 300), "no item with id")
    assert rows(database_url(project)) == before


def test_two_imports_at_once_into_a_database_not_yet_migrated(tmp_path, pg_url, sms_csv):
    """Several commands at once on a database that needs migrating (a fresh one, or after an upgrade of
    activelabel) migrate it one at a time; before, two of them raced to create the same tables."""
    folder = tmp_path / "proj"
    assert run_cli("init", folder, "--labels", "spam,ham").returncode == 0
    config = folder / "activelabel.toml"  # point the project at a database no command has migrated yet
    config.write_text(config.read_text().replace('db = ""', f'db = "{pg_url}"'))
    command = [sys.executable, "-m", "activelabel.cli", "import", str(folder), str(sms_csv), "--text-column", "text",
               "--id-column", "id"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [(p.returncode, out, err) for p in runs for out, err in [p.communicate()]]
    for code, _, err in results:
        assert code == 0, err
    assert sum("imported 4,534 new items" in out for _, out, _ in results) == 1
    assert rows(pg_url)["items"] == 4534


def test_a_database_that_already_has_an_unrelated_items_table(tmp_path, pg_url):
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE items (sku integer, title text)"))
        conn.execute(text("INSERT INTO items VALUES (1, 'bolt'), (2, 'nut')"))
    out = run_cli("init", tmp_path / "proj", "--labels", "a,b", "--db", pg_url)
    one_line_error(out, 'relation "items" already exists', "not this project's")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM items")).scalar_one() == 2
        assert inspect(conn).get_table_names() == ["items"]  # nothing of the project's was left half-made
    engine.dispose()
    assert not (tmp_path / "proj").exists()


def test_the_store_turns_values_the_database_refuses_into_one_line(db_url, tmp_path):
    """What the app's routes hit with a 64-bit overflow or an over-long value: a typed error, not a 500."""
    store = open_store(db_url or sqlite_url(tmp_path / "x.db"))
    try:
        with pytest.raises(UnstorableValueError, match="refused a value: .*(too large|out of range)") as caught:
            with store.session() as s:
                s.get(Item, 2**64)
        assert "\n" not in str(caught.value)
    finally:
        store.close()


def test_assignment_id_above_64_bits_is_not_a_500(project):
    with Project.open(project) as p:
        ann = p.add_annotator("ann")
    with TestClient(create_app_for(project)) as client:
        assert client.get("/api/next", headers=bearer(ann)).status_code == 200
        r = client.post("/api/answer", json={"assignment_id": 2**70, "answer": "label", "label": "spam"},
                        headers=bearer(ann))
        assert 400 <= r.status_code < 500, r.text


# ---------------------------------------------------------------- arguments and files

@pytest.fixture
def sqlite_project(tmp_path):
    """An empty project on SQLite, for refusals that happen before the database is touched."""
    return new_project(tmp_path / "empty")


@pytest.mark.parametrize("size", ["nan", "inf", "-inf", "1e300", "2.5"])
def test_test_size_that_is_no_fraction_or_count(sqlite_project, tmp_path, size):
    empty_project = sqlite_project
    pd.DataFrame({"id": ["a", "b"], "text": ["hello", "world"]}).to_csv(tmp_path / "t.csv", index=False)
    before = rows(database_url(empty_project))
    one_line_error(run_cli("import", empty_project, tmp_path / "t.csv", "--text-column", "text", "--test-size", size),
                   "--test-size must be a fraction in [0, 1) or a count")
    assert rows(database_url(empty_project)) == before


def test_simulate_test_size_infinity(tmp_path):
    one_line_error(run_cli("simulate", "digits", "--seeds", "1", "--budget", "40", "--test-size", "inf",
                           "--out", tmp_path / "out"), "test_size", "inf")


@pytest.mark.parametrize("column, option, what", [
    ("text", "--text-column", "a text"), ("id", "--id-column", "an id"), ("label", "--label-column", "a label")])
def test_parquet_list_column(sqlite_project, tmp_path, column, option, what):
    empty_project = sqlite_project
    frame = pd.DataFrame({"id": ["a", "b", "c"], "text": ["x y", "y z", "z w"], "label": ["spam", "ham", None]})
    frame[column] = [["spam"], ["ham"], ["spam", "ham"]]
    frame.to_parquet(tmp_path / "list.parquet")
    args = ["--text-column", "text"] + ([option, column] if option != "--text-column" else [])
    before = rows(database_url(empty_project))
    one_line_error(run_cli("import", empty_project, tmp_path / "list.parquet", *args),
                   "list.parquet: row 1", f"column {column!r} holds a list, not {what}")
    assert rows(database_url(empty_project)) == before


def test_parquet_list_column_in_simulate(tmp_path):
    pd.DataFrame({"a": [1.0, 2, 3, 4], "tags": [[1, 2], [3], [], [1]], "label": ["x", "y", "x", "y"]}).to_parquet(
        tmp_path / "l.parquet")
    for extra in ([], ["--feature-columns", "a,tags"]):
        one_line_error(run_cli("simulate", tmp_path / "l.parquet", "--seeds", "1", *extra, "--out", tmp_path / "o"),
                       "l.parquet: row 1", "column 'tags' holds a list")


def test_init_over_an_existing_file(tmp_path):
    (tmp_path / "afile").write_text("keep me")
    one_line_error(run_cli("init", tmp_path / "afile", "--labels", "a,b"), "afile is a file, not a folder")
    one_line_error(run_cli("init", tmp_path / "afile" / "sub", "--labels", "a,b"), "cannot create the project folder")
    assert (tmp_path / "afile").read_text() == "keep me"


def test_export_into_a_missing_folder(project, tmp_path):
    one_line_error(run_cli("export", project, tmp_path / "nowhere" / "out.csv"), "nowhere", "does not exist")
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("url", [
    "postgresql+psycopg2://user:s3cret-pw@db.example/labels",  # psycopg2 is not installed
    "postgresql+psycopg://user:s3cret-pw@127.0.0.1:1/labels",  # nothing listens there
    "postgresql+psycopg://user:s3cret-pw@127.0.0.1:notaport/labels",
    "postgresql+psycopg://user:s3cr:et-pw@extra@127.0.0.1:notaport/labels",
    "mysql://user:s3cret-pw@127.0.0.1/labels",
])
def test_passwords_in_database_urls_are_masked(tmp_path, url):
    out = run_cli("init", tmp_path / "proj", "--labels", "a,b", "--db", url)
    one_line_error(out, "user:***@")
    assert "s3cr" not in out.stderr + out.stdout and "et-pw" not in out.stderr


def test_shown_url():
    assert shown_url("postgresql+psycopg://u:pw@h/db") == "postgresql+psycopg://u:***@h/db"
    assert shown_url("sqlite:////tmp/p/activelabel.db") == "/tmp/p/activelabel.db"
    assert shown_url(make_url(PG_URL)) == make_url(PG_URL).render_as_string(hide_password=True)


def test_a_store_that_cannot_be_opened_names_it_without_its_password():
    with pytest.raises(StoreError, match=r"user:\*\*\*@127\.0\.0\.1:1") as caught:
        open_store("postgresql+psycopg://user:s3cret-pw@127.0.0.1:1/labels")
    assert "s3cret" not in str(caught.value)


# ---------------------------------------------------------------- noticed earlier

def test_tfidf_project_whose_texts_give_a_single_term(tmp_path):
    """Only 'common' appears in two texts: one TF-IDF column, which truncated SVD cannot reduce."""
    n = 40
    pd.DataFrame({"id": [f"i{k}" for k in range(n)], "text": [f"w{k} common" for k in range(n)],
                  "label": ["spam", "ham"] * (n // 2)}).to_csv(tmp_path / "one.csv", index=False)
    folder = tmp_path / "proj"
    assert run_cli("init", folder, "--labels", "spam,ham").returncode == 0
    assert run_cli("import", folder, tmp_path / "one.csv", "--text-column", "text", "--id-column", "id",
                   "--label-column", "label", "--test-size", "5").returncode == 0
    out = run_cli("train", folder)
    assert out.returncode == 0 and "cycle 1:" in out.stdout, out.stderr


def test_disk_full_during_export(project, tmp_path):
    """An export that does not fit says so in one line, leaves no file (and no temporary one) behind."""
    out = run_limited(40_000, "export", project, tmp_path / "out.json", "--format", "labelstudio")
    one_line_error(out, "out.json", "cannot write")
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(("out", ".out"))]
    assert run_cli("export", project, tmp_path / "out.json", "--format", "labelstudio").returncode == 0


def test_export_over_a_link_or_a_device_is_refused(project, tmp_path):
    (tmp_path / "real.csv").write_text("keep me")
    (tmp_path / "link.csv").symlink_to(tmp_path / "real.csv")
    one_line_error(run_cli("export", project, tmp_path / "link.csv"), "link.csv", "not a regular file")
    assert (tmp_path / "link.csv").is_symlink() and (tmp_path / "real.csv").read_text() == "keep me"
    (tmp_path / "folder.csv").mkdir()
    one_line_error(run_cli("export", project, tmp_path / "folder.csv"), "folder.csv", "not a regular file")


def test_serve_and_demo_on_a_busy_port_or_a_bad_host_say_so_in_one_line(project, tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        one_line_error(run_cli("serve", project, "--port", port), f"cannot serve on 127.0.0.1:{port}")
        one_line_error(run_cli("demo", tmp_path / "demo", "--port", port), f"cannot serve on 127.0.0.1:{port}")
    assert not (tmp_path / "demo").exists()  # nothing built for a server that could not start
    one_line_error(run_cli("serve", project, "--host", "999.1.1.1", "--port", "8123"), "cannot serve on 999.1.1.1")


@pytest.mark.parametrize(("args", "fragments"), [
    (["serve", "p", "--port", "-1"], ["activelabel serve", "'--port'", "greater than or equal to 1"]),
    (["query", "p", "-n", "nan"], ["activelabel query", "'-n'", "integer"]),
    (["query", "p", "--bogus"], ["No such option: --bogus"]),
    (["status"], ["Missing argument"]),
    (["nonsense"], ["No such command"]),
    (["simulate", "digits", "--seeds", str(10**20)], ["'--seeds'", "less than or equal to 10000"]),
    (["simulate", "digits", "--jobs", "0"], ["'--jobs'", "0 processes"]),
])
def test_usage_errors_are_one_line_too(args, fragments, capsys):
    """Typer's boxed usage panel becomes one line naming the command, with Click's exit code 2."""
    from activelabel.cli import entry

    with pytest.raises(SystemExit) as stop:
        entry(args)
    out = subprocess.CompletedProcess(args, stop.value.code, *capsys.readouterr())
    assert out.returncode == 2
    one_line_error(out, *fragments)


def test_a_count_beyond_64_bits_is_refused_before_the_project_is_made(tmp_path):
    """TOML holds 64-bit integers: a bigger batch size would make ``activelabel.toml`` unreadable elsewhere."""
    out = run_cli("init", tmp_path / "p", "--labels", "a,b", "--batch-size", str(2**64))
    one_line_error(out, "batch_size", "64-bit")
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize(("model", "fragment"), [
    ("sklearn.svm.SVC", "has no predict_proba"),
    ("sklearn.linear_model.LinearRegression", "has no predict_proba"),
    ("builtins.exit", "not a class or a Python function"),
    ("os.abort", "not a class or a Python function"),
])
def test_a_model_setting_that_gives_no_probabilities_is_one_line_at_train(project, model, fragment):
    """These pass the config's import-path check; ``train`` used to end in a traceback, or silently."""
    import tomllib

    import tomli_w

    path = project / "activelabel.toml"
    path.write_text(tomli_w.dumps(tomllib.loads(path.read_text()) | {"model": model}))
    before = rows(database_url(project))
    one_line_error(run_cli("train", project, "--force"), model, fragment)
    assert rows(database_url(project)) == before


@pytest.mark.parametrize("value", ["abc", "-3", "1e308", "nan"])
def test_a_seconds_column_with_no_sensible_seconds_is_one_line(project, tmp_path, value):
    """Text was stored as nothing, -3 and 1e308 as given (skewing the admin's time per answer)."""
    with Project.open(project) as p:
        item = p.state().items.query("split == 'pool'")["external_id"].iloc[-1]
    path = tmp_path / "timed.csv"
    pd.DataFrame({"id": [item, item], "label": ["ham", "ham"], "secs": ["12", value]}).to_csv(path, index=False)
    before = rows(database_url(project))
    one_line_error(run_cli("import-labels", project, path, "--seconds-column", "secs"), "timed.csv", "line 3",
                   "'secs'", "seconds")
    assert rows(database_url(project)) == before


def test_more_import_and_release_mistakes_are_one_line(project, tmp_path):
    """An answers export is not labels; a label a whole file long is not echoed; JSON true is not seconds; two
    accepted Prodigy labels are not one; a batch id beyond 64 bits is no batch."""
    with Project.open(project) as p:
        item = p.state().items.query("split == 'pool'")["external_id"].iloc[-1]
    run_cli("export", project, tmp_path / "answers.csv", "--format", "answers")
    before = rows(database_url(project))
    one_line_error(run_cli("import-labels", project, tmp_path / "answers.csv"), "answers export")
    pd.DataFrame({"id": [item], "label": ["x" * 200_000]}).to_csv(tmp_path / "long.csv", index=False)
    out = run_cli("import-labels", project, tmp_path / "long.csv")
    one_line_error(out, "unknown label", "200,000 characters")
    assert len(out.stderr) < 400
    (tmp_path / "t.jsonl").write_text(f'{{"id": "{item}", "label": "ham", "sec": true}}\n')
    one_line_error(run_cli("import-labels", project, tmp_path / "t.jsonl", "--seconds-column", "sec"), "'sec'")
    (tmp_path / "p.jsonl").write_text(f'{{"text": "t", "meta": {{"id": "{item}"}}, "answer": "accept", '
                                      '"accept": ["spam", "ham"]}\n')
    one_line_error(run_cli("import-labels", project, tmp_path / "p.jsonl"), "'accept' holds 2 labels")
    one_line_error(run_cli("batches", project, "--release", str(2**70)), "no issued batch")
    assert rows(database_url(project)) == before
