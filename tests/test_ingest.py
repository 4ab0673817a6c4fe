"""Imports are all or nothing, features included (SQLite file and PostgreSQL, fixture ``db_url``).

Each test states its claim: an import that does not fit the project is
refused with one line naming file, line and column, before anything is
written (database rows and config file unchanged); precomputed vectors
land in the same transaction as their items, so a killed import leaves no
item without its vector; a re-import repairs missing vectors; answers
imported again are not stored (or paid for) twice.
"""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sqlalchemy import MetaData, delete, func, select

from activelabel.errors import (
    DataError,
    InvalidParameterError,
    NonFiniteValueError,
    NonNumericColumnError,
    ShapeMismatchError,
)
from activelabel.project import CONFIG_FILE, Project, init_project
from activelabel.store.schema import Annotation, Import, Item, ItemVector


def dump(p: Project) -> dict:
    """Every row of every table, ordered by primary key: what 'the database is unchanged' compares."""
    meta = MetaData()
    meta.reflect(p.store.engine)
    out = {}
    with p.store.engine.connect() as conn:
        for table in meta.sorted_tables:
            order = list(table.primary_key.columns) or list(table.columns)
            out[table.name] = [tuple(r) for r in conn.execute(select(table).order_by(*order))]
    return out


def refused(p: Project, error, match, **kwargs):
    """The import raises ``error`` (message matching ``match``, on one line); rows and config file untouched."""
    config = (p.folder / CONFIG_FILE).read_bytes()
    before = dump(p)
    with pytest.raises(error, match=match) as caught:
        p.import_items(**kwargs)
    assert "\n" not in str(caught.value)
    assert dump(p) == before
    assert (p.folder / CONFIG_FILE).read_bytes() == config
    reopened = Project.open(p.folder)
    assert reopened.config == p.config
    reopened.close()


def vectors_frame(n, dim, seed=0, prefix="v"):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim)).astype(np.float32)
    return pd.DataFrame({"id": [f"{prefix}{k}" for k in range(n)], "text": [f"text {prefix}{k}" for k in range(n)],
                         "emb": list(X), "label": np.where(X[:, 0] > 0, "pos", "neg")}), X


@pytest.fixture
def text_project(tmp_path, db_url):
    pd.DataFrame({"id": ["a", "b", "c"], "text": ["one", "two", "three"]}).to_csv(tmp_path / "t.csv", index=False)
    p = init_project(tmp_path / "proj", ["pos", "neg"], db=db_url)
    p.import_items(tmp_path / "t.csv", text_column="text", id_column="id", test_size=1)
    yield p
    p.close()


@pytest.fixture
def table_project(tmp_path, db_url):
    pd.DataFrame({"id": [1, 2, 3], "a": [1.0, 2.0, 3.0], "b": ["x", "y", "x"]}).to_csv(tmp_path / "rows.csv",
                                                                                       index=False)
    p = init_project(tmp_path / "proj", ["pos", "neg"], db=db_url)
    p.import_items(tmp_path / "rows.csv", feature_columns=["a", "b"], id_column="id")
    yield p
    p.close()


@pytest.fixture
def vector_project(tmp_path, db_url):
    frame, _ = vectors_frame(40, 8)
    frame.to_parquet(tmp_path / "e.parquet")
    p = init_project(tmp_path / "proj", ["pos", "neg"], db=db_url)
    p.import_items(tmp_path / "e.parquet", text_column="text", id_column="id", embedding_column="emb", test_size=5)
    yield p
    p.close()


def test_images_into_a_text_project_are_refused(text_project, tmp_path):
    """Items of another kind than those stored are refused, naming file, line and column, and nothing changes."""
    (tmp_path / "img").mkdir()
    for k in range(3):
        Image.new("RGB", (4, 4), (k * 40, 0, 0)).save(tmp_path / "img" / f"{k}.png")
    pd.DataFrame({"file": [f"{k}.png" for k in range(3)]}).to_csv(tmp_path / "img" / "i.csv", index=False)
    refused(text_project, DataError, r"i\.csv: line 2: column 'file' holds images, but this project's items are texts",
            path=tmp_path / "img" / "i.csv", image_column="file")
    pd.DataFrame({"x": [1, 2]}).to_csv(tmp_path / "r.csv", index=False)
    refused(text_project, DataError, r"r\.csv: line 2: column 'x' holds table rows", path=tmp_path / "r.csv",
            feature_columns=["x"])
    assert text_project.config.image_dirs == []


def test_text_into_a_table_project_is_refused(table_project, tmp_path):
    pd.DataFrame({"text": ["hello"]}).to_csv(tmp_path / "t.csv", index=False)
    refused(table_project, DataError, r"t\.csv: line 2: column 'text' holds texts, but this project's items are "
            "table rows", path=tmp_path / "t.csv", text_column="text")


def test_other_feature_columns_are_refused(table_project, tmp_path):
    """A table import must have exactly the project's feature columns; the missing or extra one is named."""
    pd.DataFrame({"id": [4, 5], "a": [1.0, 2.0], "c": ["x", "y"]}).to_csv(tmp_path / "o.csv", index=False)
    refused(table_project, DataError, r"o\.csv: line 2: column 'b' of this project's items is missing",
            path=tmp_path / "o.csv", feature_columns=["a"], id_column="id")
    refused(table_project, DataError, r"o\.csv: line 2: column 'c' is not one of this project's feature columns "
            r"\(a, b\), and column 'b' is missing", path=tmp_path / "o.csv", feature_columns=["a", "c"],
            id_column="id")
    (tmp_path / "o.csv").write_text("id,a,b,c\n4,1,x,z\n")
    refused(table_project, DataError, r"column 'c' is not one of", path=tmp_path / "o.csv",
            feature_columns=["a", "b", "c"], id_column="id")


@pytest.mark.parametrize("cell", ["inf", "-inf", "1e400", "Infinity"])
def test_infinity_in_a_table_column_is_refused(table_project, tmp_path, cell):
    (tmp_path / "inf.csv").write_text(f"id,a,b\n4,1.5,x\n5,2,y\n6,{cell},x\n")
    refused(table_project, NonFiniteValueError, rf"inf\.csv: line 4: column 'a' holds '{cell}': infinity",
            path=tmp_path / "inf.csv", feature_columns=["a", "b"], id_column="id")


def test_infinity_and_nesting_in_jsonl_and_parquet_tables_are_refused(tmp_path, db_url):
    """Into a new project too: the refused first import leaves the config without a featurizer."""
    p = init_project(tmp_path / "proj", ["pos", "neg"], db=db_url)
    (tmp_path / "n.jsonl").write_text('{"a": 1, "b": "x"}\n\n{"a": 2, "b": {"deep": 1}}\n')
    refused(p, NonNumericColumnError, r"n\.jsonl: line 3: column 'b' holds an object", path=tmp_path / "n.jsonl",
            feature_columns=["a", "b"])
    (tmp_path / "l.jsonl").write_text('{"a": [1, 2], "b": "x"}\n')
    refused(p, NonNumericColumnError, r"l\.jsonl: line 1: column 'a' holds a list", path=tmp_path / "l.jsonl",
            feature_columns=["a", "b"])
    (tmp_path / "i.jsonl").write_text('{"a": 1, "b": "x"}\n{"a": -Infinity, "b": "y"}\n')
    refused(p, NonFiniteValueError, r"i\.jsonl: line 2: column 'a' holds '-inf'", path=tmp_path / "i.jsonl",
            feature_columns=["a", "b"])
    pd.DataFrame({"a": [1.0, 2.0, np.inf], "b": ["x", "y", "z"]}).to_parquet(tmp_path / "i.parquet")
    refused(p, NonFiniteValueError, r"i\.parquet: row 3: column 'a'", path=tmp_path / "i.parquet",
            feature_columns=["a", "b"])
    assert p.config.featurizer == ""
    # NaN in a table column is a missing value, imputed: it imports
    pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": ["x", None, "z"]}).to_parquet(tmp_path / "ok.parquet")
    assert p.import_items(tmp_path / "ok.parquet", feature_columns=["a", "b"], test_size=0)["new"] == 3
    p.close()


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e39])
def test_non_finite_vectors_are_refused(tmp_path, db_url, bad):
    """NaN or infinity in a precomputed vector (or a number float32 cannot hold) is refused on a new project."""
    frame, _ = vectors_frame(30, 4)
    frame["emb"] = frame["emb"].map(lambda v: v.astype(np.float64))
    frame.at[17, "emb"] = np.array([0.0, bad, 1.0, 2.0])
    frame.to_parquet(tmp_path / "e.parquet")
    frame.assign(emb=frame["emb"].map(lambda v: json.dumps([float(x) for x in v]))).to_csv(tmp_path / "e.csv",
                                                                                            index=False)
    p = init_project(tmp_path / "proj", ["pos", "neg"], db=db_url)
    refused(p, NonFiniteValueError, r"e\.parquet: row 18: column 'emb' holds NaN or infinity",
            path=tmp_path / "e.parquet", text_column="text", embedding_column="emb")
    refused(p, NonFiniteValueError, r"e\.csv: line 19: column 'emb' holds NaN or infinity",
            path=tmp_path / "e.csv", text_column="text", embedding_column="emb")
    assert p.config.featurizer == ""
    p.close()


def test_vectors_of_another_length_are_refused(vector_project, tmp_path):
    frame, _ = vectors_frame(10, 6, seed=1, prefix="w")
    frame.to_parquet(tmp_path / "w.parquet")
    refused(vector_project, ShapeMismatchError, r"w\.parquet: row 1: column 'emb' holds vectors of 6 numbers; "
            "this project's vectors have 8", path=tmp_path / "w.parquet", text_column="text", id_column="id",
            embedding_column="emb")
    frame, _ = vectors_frame(10, 8, seed=1, prefix="w")
    frame.at[4, "emb"] = np.zeros(7, dtype=np.float32)
    frame.to_parquet(tmp_path / "w.parquet")
    refused(vector_project, ShapeMismatchError, r"w\.parquet: row 5: column 'emb' holds a vector of 7 numbers",
            path=tmp_path / "w.parquet", text_column="text", id_column="id", embedding_column="emb")
    frame.drop(columns="emb").to_csv(tmp_path / "w.csv", index=False)
    refused(vector_project, InvalidParameterError, r"w\.csv: line 2: .*--embedding-column emb",
            path=tmp_path / "w.csv", text_column="text", id_column="id")


def test_vectors_land_with_their_items_and_a_reimport_repairs_missing_ones(vector_project, tmp_path):
    """Vectors are in the database with their items; re-importing the file stores those that went missing."""
    p = vector_project
    _, X = vectors_frame(40, 8)
    with p.store.session() as s:
        assert s.scalar(select(func.count()).select_from(ItemVector)) == 40
    assert not (p.folder / "features").exists() or not any((p.folder / "features").rglob("*.npz"))
    st = p.state()
    assert np.array_equal(p.item_features(st.items), X[st.items["external_id"].str[1:].astype(int)])
    lost = st.items["id"].iloc[[3, 10, 11]].tolist()
    with p.store.session() as s:  # as a project imported before vectors were stored with their items
        s.execute(delete(ItemVector).where(ItemVector.item_id.in_(lost)))
    with pytest.raises(Exception, match="3 items have no precomputed features"):
        p.item_features(st.items)
    counts = p.import_items(tmp_path / "e.parquet", text_column="text", id_column="id", embedding_column="emb")
    assert counts == {"new": 0, "existing": 40, "test": 0, "labels": 0, "repaired": 3}
    assert np.array_equal(p.item_features(st.items), X[st.items["external_id"].str[1:].astype(int)])
    assert p.import_items(tmp_path / "e.parquet", text_column="text", id_column="id",
                          embedding_column="emb")["repaired"] == 0


def test_vectors_in_the_old_on_disk_cache_are_still_read(vector_project, tmp_path):
    """A project imported before this change kept its vectors in feature chunks on disk: they still serve."""
    p = vector_project
    _, X = vectors_frame(40, 8)
    st = p.state()
    ids = st.items["id"].to_numpy()
    with p.store.session() as s:
        s.execute(delete(ItemVector).where(ItemVector.item_id.in_(ids[:25].tolist())))
    p.features.put("precomputed:emb", ids[:25], X[st.items["external_id"].str[1:].astype(int)][:25])
    assert np.array_equal(p.item_features(st.items), X[st.items["external_id"].str[1:].astype(int)])
    frame, _ = vectors_frame(5, 6, seed=3, prefix="z")
    with p.store.session() as s:  # the dimension comes from the old chunks when the database has none
        s.execute(delete(ItemVector))
    frame.to_parquet(tmp_path / "z.parquet")
    refused(p, ShapeMismatchError, "this project's vectors have 8", path=tmp_path / "z.parquet",
            text_column="text", id_column="id", embedding_column="emb")


def test_import_labels_three_times_stores_answers_once(text_project, tmp_path):
    """The same answers imported again (same file, or the same rows in another file) add nothing and cost nothing."""
    p = text_project
    p.config.price_per_label = 0.5
    test_item = p.state().items.query("split == 'test'")["external_id"].tolist()
    pd.DataFrame({"id": ["a", "b", "c", "a"], "label": ["pos", "neg", "pos", "pos"],
                  "who": ["ann", "ann", "bob", "ann"]}).to_csv(tmp_path / "l.csv", index=False)
    first = p.import_labels(tmp_path / "l.csv", annotator_column="who")
    assert first == {"labels": 3, "skips": 0, "already": 1, "ignored": 0}  # ann's repeated row is one answer
    before = dump(p)
    for _ in range(2):
        assert p.import_labels(tmp_path / "l.csv", annotator_column="who") == \
            {"labels": 0, "skips": 0, "already": 4, "ignored": 0}
    assert dump(p) == before
    # the same rows under another name and order, plus one new answer: only the new one is stored
    pd.DataFrame({"id": ["c", "a", "b", "a", "b"], "label": ["pos", "pos", "neg", "pos", "pos"],
                  "who": ["bob", "ann", "ann", "ann", "bob"]}).to_csv(tmp_path / "m.csv", index=False)
    assert p.import_labels(tmp_path / "m.csv", annotator_column="who") == \
        {"labels": 1, "skips": 0, "already": 4, "ignored": 0}
    st = p.state()
    assert len(st.events) == 4 and p.money_spent(st.events) == 2.0
    with p.store.session() as s:
        assert s.scalar(select(func.count()).select_from(Annotation)) == 4
        hashes = s.scalars(select(Import.content_hash).where(Import.kind == "labels")).all()
    assert len(hashes) == 2 and all(len(h) == 64 for h in hashes)
    # labels of held-out test items are stored: they are the test labels
    assert test_item
    pd.DataFrame({"id": test_item, "label": ["neg"] * len(test_item)}).to_csv(tmp_path / "t.csv", index=False)
    assert p.import_labels(tmp_path / "t.csv")["labels"] == len(test_item)
    st = p.state()
    assert (st.items.set_index("external_id").loc[test_item, "label"] == "neg").all()


def test_unattributed_labels_and_known_labels_are_stored_once(vector_project, tmp_path):
    """Labels given with the items and the same labels in a labels file are one answer each."""
    p = vector_project
    frame, _ = vectors_frame(40, 8)
    counts = p.import_items(tmp_path / "e.parquet", text_column="text", id_column="id", embedding_column="emb",
                            label_column="label")
    assert counts["labels"] == 40
    frame[["id", "label"]].head(10).to_csv(tmp_path / "l.csv", index=False)
    assert p.import_labels(tmp_path / "l.csv") == {"labels": 0, "skips": 0, "already": 10, "ignored": 0}
    assert p.import_items(tmp_path / "e.parquet", text_column="text", id_column="id", embedding_column="emb",
                          label_column="label")["labels"] == 0
    assert len(p.state().events) == 40


KILL_POINTS = (0.0, 0.3, 0.6, 1.0)  # shares of the writing, from its first INSERT to the process's end


def writing(folder, db_url):
    """A test of whether the import process has begun writing: the SQLite WAL changes, or PostgreSQL runs an INSERT."""
    if db_url is None:  # the WAL is removed when the last connection closes, and created empty on opening
        wal = folder / "activelabel.db-wal"
        assert not wal.exists()
        return lambda: wal.exists() and wal.stat().st_size > 4096
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    engine = create_engine(db_url)
    name = make_url(db_url).database

    def check():
        with engine.connect() as conn:
            return bool(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d AND "
                                          "query LIKE 'INSERT INTO items%'"), {"d": name}).scalar())
    return check


def test_a_killed_embedding_import_leaves_no_item_without_its_vector(tmp_path, db_url):
    """SIGKILL at several points of an embeddings import: each file's items are all there with vectors, or absent."""
    n, dim = 5_000, 64
    folder = tmp_path / "proj"
    init_project(folder, ["pos", "neg"], db=db_url).close()
    files, truth = [], {}
    for j in range(len(KILL_POINTS) + 1):
        frame, X = vectors_frame(n, dim, seed=j, prefix=f"k{j}-")
        frame.to_parquet(tmp_path / f"k{j}.parquet")
        files.append(tmp_path / f"k{j}.parquet")
        truth.update(zip(frame["id"], X))

    def start(path):
        """The import running, once it has begun writing (and the time that took)."""
        began = writing(folder, db_url)
        proc = subprocess.Popen([sys.executable, "-m", "activelabel.cli", "import", str(folder), str(path),
                                 "--text-column", "text", "--id-column", "id", "--embedding-column", "emb",
                                 "--label-column", "label"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not began() and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        return proc

    # How long the writing lasts, measured on a first import in full; the kills are spread over it.
    proc = start(files[0])
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    window = time.monotonic() - t0
    outcomes = []
    for fraction, path in zip(KILL_POINTS, files[1:]):
        proc = start(path)
        time.sleep(fraction * window)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        with Project.open(folder) as p, p.store.session(readonly=True) as s:
            prefix = path.stem + "-%"
            items = s.scalar(select(func.count()).select_from(Item).where(Item.external_id.like(prefix)))
            with_vector = s.scalar(select(func.count()).select_from(Item).join(ItemVector)
                                   .where(Item.external_id.like(prefix)))
        assert (items, with_vector) in {(0, 0), (n, n)}, (fraction, items, with_vector)
        outcomes.append("finished" if proc.returncode == 0 else "landed" if items else "absent")
    print(f"writing lasts {window:.1f} s; kills: {outcomes}")

    with Project.open(folder) as p:
        for path, outcome in zip(files[1:], outcomes):
            counts = p.import_items(path, text_column="text", id_column="id", embedding_column="emb",
                                    label_column="label")
            assert counts["new"] == (0 if outcome != "absent" else n) and counts["repaired"] == 0
        st = p.state()
        assert len(st.items) == n * len(files)
        X = p.item_features(st.items)
        assert X.shape == (n * len(files), dim)
        assert np.array_equal(X, np.stack([truth[e] for e in st.items["external_id"]]))
        assert st.items["label"].notna().all()


STAGED_KILL = r"""
import os, signal, sys
import activelabel.project.ingest as ingest
from activelabel.project import Project
from activelabel.store import staging

ingest._CHUNK_ROWS = 50  # many chunks from a small file
folder, path, where = sys.argv[1:4]
if where == "move":  # SIGKILL inside the moving transaction, after the items' INSERT, before the commit
    move = staging.Stage.move
    def killed(self, s, **kwargs):
        move(self, s, **kwargs)
        s.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    staging.Stage.move = killed
def staged(rows):
    if where == "staging" and rows >= 150:  # three chunks staged, more to come
        os.kill(os.getpid(), signal.SIGKILL)
with Project.open(folder) as p:
    p.import_items(path, text_column="text", id_column="id", label_column="label", progress=staged)
"""


def _staged_file(path, n=400):
    labels = np.where(np.arange(n) % 3 == 0, "pos", "")
    pd.DataFrame({"id": [f"s{k}" for k in range(n)], "text": [f"text {k}" for k in range(n)],
                  "label": labels}).to_csv(path, index=False)


@pytest.mark.parametrize("where", ["staging", "move"])
def test_a_staged_import_killed_mid_file_or_mid_move_leaves_the_project_unchanged(text_project, tmp_path, where):
    _staged_file(tmp_path / "big.csv")
    before = dump(text_project)
    done = subprocess.run([sys.executable, "-c", STAGED_KILL, str(text_project.folder), str(tmp_path / "big.csv"),
                           where], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert dump(text_project) == before
    counts = text_project.import_items(tmp_path / "big.csv", text_column="text", id_column="id", label_column="label")
    assert counts == {"new": 400, "existing": 0, "test": 40, "labels": 134}


def test_an_import_in_many_chunks_stores_what_one_chunk_stores(tmp_path, db_url, monkeypatch):
    """Duplicates, labels and the test split across chunk boundaries come out as when the file is one chunk."""
    import activelabel.project.ingest as ingest

    rows = [("a", "one", ""), ("b", "two", "pos"), ("c", "three", ""), ("a", "one", "neg"), ("d", "four", ""),
            ("e", "five", "neg"), ("c", "three", "pos"), ("f", "six", "")]
    pd.DataFrame(rows, columns=["id", "text", "label"]).to_csv(tmp_path / "t.csv", index=False)
    stored = []
    # one database per project: on PostgreSQL (one database per test) the chunked import alone
    for chunk, db in ((3, db_url), (100_000, None)) if db_url is None else ((3, db_url),):
        monkeypatch.setattr(ingest, "_CHUNK_ROWS", chunk)
        with init_project(tmp_path / f"p{chunk}", ["pos", "neg"], db=db) as p:
            counts = p.import_items(tmp_path / "t.csv", text_column="text", id_column="id", label_column="label",
                                    test_size=2)
            with p.store.session(readonly=True) as s:
                items = s.execute(select(Item.external_id, Item.text, Item.split).order_by(Item.id)).all()
                answers = s.execute(select(Item.external_id, Annotation.label).join(Item)
                                    .order_by(Item.external_id)).all()
            stored.append((counts, [tuple(r) for r in items], [tuple(r) for r in answers]))
    assert stored[0] == stored[-1]
    counts, items, answers = stored[0]
    assert counts == {"new": 6, "existing": 0, "test": 2, "labels": 4}
    assert answers == [("a", "neg"), ("b", "pos"), ("c", "pos"), ("e", "neg")]  # the first row giving a label


def test_a_clash_or_bad_vector_in_a_later_chunk_is_refused_naming_its_line(tmp_path, db_url, monkeypatch):
    import activelabel.project.ingest as ingest

    monkeypatch.setattr(ingest, "_CHUNK_ROWS", 2)
    rows = [("a", "one"), ("b", "two"), ("c", "three"), ("a", "changed")]
    pd.DataFrame(rows, columns=["id", "text"]).to_csv(tmp_path / "clash.csv", index=False)
    frame, _ = vectors_frame(5, 4)
    frame.loc[4, "emb"] = np.zeros(3, dtype=np.float32)
    frame.to_parquet(tmp_path / "short.parquet")
    with init_project(tmp_path / "p", ["pos", "neg"], db=db_url) as p:
        refused(p, DataError, r"clash.csv: line 5: id 'a' was already used at line 2 for different content",
                path=tmp_path / "clash.csv", text_column="text", id_column="id")
        refused(p, ShapeMismatchError, r"short.parquet: row 5: column 'emb' holds a vector of 3 numbers; the first "
                                       r"one has 4", path=tmp_path / "short.parquet", text_column="text",
                id_column="id", embedding_column="emb")


def test_a_json_key_first_seen_in_a_later_chunk_and_identical_rows_across_chunks(tmp_path, db_url, monkeypatch):
    import activelabel.project.ingest as ingest

    monkeypatch.setattr(ingest, "_CHUNK_ROWS", 3)
    rows = [{"id": "a", "x": 1, "y": "u"}, {"id": "b", "x": None, "y": "v"}, {"id": "c", "x": 3, "y": "w"},
            {"id": "d", "x": 4, "y": "u", "label": "pos"}, {"id": "a", "x": 1, "y": "u", "label": "neg"}]
    path = tmp_path / "late.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with init_project(tmp_path / "p", ["pos", "neg"], db=db_url) as p:
        counts = p.import_items(path, feature_columns=["x", "y"], id_column="id", label_column="label", test_size=0)
        assert counts == {"new": 4, "existing": 0, "test": 0, "labels": 2}
        refused(p, DataError, r"late.jsonl: no column 'z'; columns are id, x, y, label", path=path,
                feature_columns=["x", "y"], id_column="id", label_column="z")
