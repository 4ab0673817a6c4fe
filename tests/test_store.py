"""The project store, run against a SQLite file and a real PostgreSQL (fixture ``db_url``).

Each test states the rule it checks: imports are all or nothing and
idempotent, answers are appended and never changed, test items are never
selected, tokens are stored only as hashes, cycles are recorded with their
model and batch.
"""


import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from activelabel.errors import (
    DuplicateIdError,
    InvalidParameterError,
    MalformedFileError,
    ProjectExistsError,
    SingleClassError,
    UnknownLabelError,
)
from activelabel.project import Project, init_project
from activelabel.store import repo
from activelabel.store.schema import Annotation, Annotator, Base, Batch, BatchItem, Item

from conftest import SMS_PARQUET


@pytest.fixture(scope="module")
def sms(tmp_path_factory):
    """600 real SMS texts with ids and their true labels, as a CSV."""
    frame = pd.read_parquet(SMS_PARQUET).drop_duplicates("text").head(600).reset_index(drop=True)
    frame.insert(0, "id", [f"m{i}" for i in range(len(frame))])
    path = tmp_path_factory.mktemp("sms") / "sms.csv"
    frame.to_csv(path, index=False)
    return path, frame


@pytest.fixture
def project(tmp_path, db_url):
    p = init_project(tmp_path / "proj", ["spam", "ham"], db=db_url, batch_size=40)
    yield p
    p.close()


def snapshot(p: Project) -> dict:
    """Row counts of every table: what 'the database is unchanged' compares."""
    with p.store.session() as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


def labels_file(path, frame, ids, **extra):
    rows = frame.set_index("id").loc[ids, "label"].reset_index()
    for k, v in extra.items():
        rows[k] = v
    rows.to_csv(path, index=False)
    return path


def test_migrations_match_the_models(project):
    """The Alembic migrations build exactly the tables the ORM models describe."""
    with project.store.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diffs == []
    assert Project.open(project.folder).config.labels == ["spam", "ham"]  # reopening re-runs migrations: a no-op


def test_init_refuses_an_existing_project(project):
    with pytest.raises(ProjectExistsError):
        init_project(project.folder, ["a", "b"])


def test_import_is_idempotent_and_carves_a_test_set(project, sms):
    path, frame = sms
    first = project.import_items(path, text_column="text", id_column="id")
    assert first == {"new": 600, "existing": 0, "test": 60, "labels": 0}  # min(500, 10%)
    assert project.import_items(path, text_column="text", id_column="id") == \
        {"new": 0, "existing": 600, "test": 0, "labels": 0}
    counts = snapshot(project)
    assert counts["items"] == 600 and counts["imports"] == 2
    with project.store.session() as s:
        assert s.scalar(select(func.count()).where(Item.split == "test")) == 60


def test_known_labels_on_import_are_stored_once(project, sms):
    path, frame = sms
    assert project.import_items(path, text_column="text", id_column="id", label_column="label")["labels"] == 600
    assert project.import_items(path, text_column="text", id_column="id", label_column="label")["labels"] == 0
    st = project.state()
    assert st.items.set_index("external_id")["label"].equals(frame.set_index("id")["label"].rename("label")
                                                              .reindex(st.items["external_id"]))


def test_duplicate_id_with_other_content_is_refused_and_nothing_lands(project, sms, tmp_path):
    path, frame = sms
    project.import_items(path, text_column="text", id_column="id")
    before = snapshot(project)
    changed = frame.head(5).copy()
    changed.loc[3, "text"] = "something else entirely"
    changed.to_csv(tmp_path / "changed.csv", index=False)
    with pytest.raises(DuplicateIdError, match=r"changed\.csv: line 5: id 'm3' is already in the project"):
        project.import_items(tmp_path / "changed.csv", text_column="text", id_column="id")
    twice = pd.concat([frame.head(3), frame.iloc[[1]].assign(text="other")]).assign(id=lambda d: d["id"] + "x")
    twice.to_csv(tmp_path / "twice.csv", index=False)
    with pytest.raises(DuplicateIdError, match=r"twice\.csv: line 5: id 'm1x' was already used at line 3"):
        project.import_items(tmp_path / "twice.csv", text_column="text", id_column="id")
    assert snapshot(project) == before


def test_an_import_is_all_or_nothing(project, sms, tmp_path):
    """A bad label on the last line of an items file leaves no item of that file behind."""
    path, frame = sms
    bad = frame.copy()
    bad.loc[len(bad) - 1, "label"] = "eggs"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    before = snapshot(project)
    with pytest.raises(UnknownLabelError, match=r"bad\.csv: line 601: unknown label 'eggs'"):
        project.import_items(tmp_path / "bad.csv", text_column="text", id_column="id", label_column="label")
    assert snapshot(project) == before


def test_import_labels_errors_leave_the_database_unchanged(project, sms, tmp_path):
    path, frame = sms
    project.import_items(path, text_column="text", id_column="id")
    good = labels_file(tmp_path / "good.csv", frame, ["m1", "m2"])
    project.import_labels(good)
    before = snapshot(project)
    pd.DataFrame({"id": ["m3", "m4"], "label": ["spam", "maybe"]}).to_csv(tmp_path / "unknown.csv", index=False)
    with pytest.raises(UnknownLabelError, match=r"unknown\.csv: line 3: unknown label 'maybe'"):
        project.import_labels(tmp_path / "unknown.csv")
    pd.DataFrame({"id": ["m3", "nope"], "label": ["spam", "ham"]}).to_csv(tmp_path / "noitem.csv", index=False)
    with pytest.raises(InvalidParameterError, match=r"noitem\.csv: line 3: no item with id 'nope'"):
        project.import_labels(tmp_path / "noitem.csv")
    (tmp_path / "broken.jsonl").write_text('{"id": "m3", "label": "spam"}\n{"id": "m4", "label": \n')
    with pytest.raises(MalformedFileError, match=r"broken\.jsonl: line 2"):
        project.import_labels(tmp_path / "broken.jsonl")
    assert snapshot(project) == before


def test_answers_are_appended_and_the_label_is_derived(project, sms, tmp_path):
    """A correction is a new event; the label is the majority of each answerer's latest answer."""
    path, frame = sms
    project.import_items(path, text_column="text", id_column="id")
    pd.DataFrame({"id": ["m0"] * 4, "label": ["ham", "ham", "ham", "spam"],
                  "who": ["ann", "bob", "cy", "ann"]}).to_csv(tmp_path / "a.csv", index=False)
    project.import_labels(tmp_path / "a.csv", annotator_column="who")
    st = project.state()
    m0 = st.items.set_index("external_id").loc["m0"]
    # ann's latest is spam, bob and cy say ham: ham wins 2-1; ann's first answer (ham) is still stored.
    assert (m0["label"], m0["n_votes"]) == ("ham", 3)
    assert list(st.events["label"]) == ["ham", "ham", "ham", "spam"]
    # cy retracts (undo): 1-1, the tie goes to the most recent label (ann's spam)
    with project.store.session() as s:
        cy = s.scalar(select(Annotation.id).join(Annotator).where(Annotator.name == "cy"))
        repo.add_annotations(s, [{"item_id": int(m0["id"]), "annotator_id": None, "answer": "retract",
                                  "label": None, "source": "web", "retracts_id": cy}])
    m0 = project.state().items.set_index("external_id").loc["m0"]
    assert (m0["label"], m0["n_votes"]) == ("spam", 2)
    assert len(project.state().events) == 5


def test_annotator_tokens_are_stored_only_as_hashes(project):
    token = project.add_annotator("alice", "admin")
    with project.store.session() as s:
        row = s.scalar(select(Annotator).where(Annotator.name == "alice"))
        assert row.token_hash != token and token not in row.token_hash and len(row.token_hash) == 64
        assert repo.annotator_by_token(s, token).name == "alice"
        assert repo.annotator_by_token(s, token + "x") is None
    with pytest.raises(InvalidParameterError, match="already exists"):
        project.add_annotator("alice")
    with pytest.raises(InvalidParameterError, match="role must be"):
        project.add_annotator("bob", "root")


def test_cycles_never_select_test_items_and_query_never_reissues(project, sms, tmp_path):
    path, frame = sms
    project.import_items(path, text_column="text", id_column="id")
    with pytest.raises(SingleClassError):
        project.train()
    seed = project.query(60)
    assert (seed["strategy"] == "random").all() and (seed["split"] == "pool").all()
    test = project.query(60, test=True)
    assert (test["split"] == "test").all() and len(test) == 60
    project.import_labels(labels_file(tmp_path / "seed.csv", frame, list(seed["id"]) + list(test["id"])))
    issued = set(seed["id"]) | set(test["id"])
    for cycle in (1, 2, 3):
        result = project.train()
        assert result["cycle"] == cycle and result["test_labels"] == 60
        assert 0.5 < result["accuracy"] <= 1 and result["accuracy_ci"][0] <= result["accuracy"] <= result["accuracy_ci"][1]
        batch = project.query(30)
        assert (batch["split"] == "pool").all() and (batch["strategy"] == "default").all()
        assert not issued & set(batch["id"])
        assert batch["random"].sum() == 3  # the 10% random share
        issued |= set(batch["id"])
        project.import_labels(labels_file(tmp_path / f"b{cycle}.csv", frame, list(batch["id"])))
    with project.store.session() as s:
        chosen = s.execute(select(Item.split, Batch.strategy).join(BatchItem, BatchItem.item_id == Item.id)
                           .join(Batch, Batch.id == BatchItem.batch_id)).all()
        history = repo.cycles(s)
    # test items appear only in the batch issued with query --test, never in a strategy's batch
    assert {strategy for split, strategy in chosen if split == "test"} == {"test"}
    assert sum(split == "test" for split, _ in chosen) == 60
    assert [c.model_version for c in history] == [1, 2, 3]
    assert [c.labels_used for c in history] == [60, 90, 120]
    assert all((project.folder / c.model_path).is_file() for c in history)
    # one fixed stop set, drawn among the pool items unlabeled at the first cycle (480 of 540), for every cycle
    stop = history[0].details["stop_set"]
    assert len(stop) == 480 and all(c.details["stop_set"] == stop for c in history)
    assert all(len(c.details["stop_predictions"]) == 480 for c in history)
    assert not set(stop) & set(project.state().items.set_index("external_id").loc[list(seed["id"]), "id"])
    with project.store.session() as s:
        cycle_batches = s.execute(select(func.count()).select_from(BatchItem)).scalar()
    assert cycle_batches == 60 + 60 + 3 * 30 + 3 * 40 * 2  # each cycle: its batch of 40 and a reserve of one more


def test_queue_lookups_use_their_indexes(tmp_path):
    """The next-item and today's-count lookups search an index instead of reading the annotator's whole history."""
    from datetime import UTC, datetime

    from activelabel.store import queue
    from activelabel.store.db import open_store, sqlite_url

    store = open_store(sqlite_url(tmp_path / "plan.db"))
    now = datetime.now(UTC)
    with store.engine.connect() as conn:
        given, taken_back = queue._answers_since()  # today's labels and passes, and the undone ones
        for statement, index in [(queue.open_assignment(1, now), "ix_assignments_open"),
                                 (given.params(who=1, since=now), "ix_annotations_annotator_time"),
                                 (taken_back.params(who=1, since=now), "ix_annotations_annotator_time")]:
            compiled = statement.compile(conn, compile_kwargs={"render_postcompile": True})
            plan = " | ".join(row[-1] for row in conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {compiled}", tuple(None for _ in compiled.positiontup)))
            assert f"USING INDEX {index}" in plan or f"USING COVERING INDEX {index}" in plan, plan
            assert "TEMP B-TREE" not in plan, plan  # and no sort of everything found
    store.close()
