"""Every setting of ``activelabel.toml`` is checked for type and range, with one line naming the key and the value."""

import datetime
import hashlib
import math
import tomllib
from dataclasses import fields

import pytest
import tomli_w

from activelabel.errors import InvalidParameterError, UnknownStrategyError
from activelabel.project import init_project
from activelabel.project.config import CONFIG_FILE, Config, read_config

from helpers import one_line_error, run_cli

# (key, bad value): each must be refused on its own, every other setting left at its default
BAD = [
    ("labels", ["spam"]), ("labels", []), ("labels", ["a", "a"]), ("labels", ["a", ""]), ("labels", ["a", "   "]),
    ("labels", ["a", " b"]), ("labels", ["a", "b\t"]), ("labels", ["a", "b\nc"]), ("labels", ["a", "x" * 201]),
    ("labels", ["a", 1]), ("labels", "a,b"),
    ("db", "activelabel.db"), ("db", 5), ("db", ["sqlite://"]),
    ("strategy", "smart"), ("strategy", ""), ("strategy", 1),
    ("batch_size", 0), ("batch_size", -5), ("batch_size", "100"), ("batch_size", 100.0), ("batch_size", True),
    ("random_fraction", -0.1), ("random_fraction", 1.5), ("random_fraction", math.nan), ("random_fraction", "0.1"),
    ("random_fraction", False),
    ("price_per_label", -0.01), ("price_per_label", math.inf), ("price_per_label", math.nan), ("price_per_label", "1"),
    ("budget", -1), ("budget", math.inf), ("budget", True),
    ("label_budget", -1), ("label_budget", 10.0), ("label_budget", "10"),
    ("featurizer", "bert"), ("featurizer", ":tfidf"), ("featurizer", 0),
    ("model", "LogisticRegression"), ("model", "sklearn linear_model.X"), ("model", "sklearn..X"),
    ("model", "sklearn.linear_model.LogisticRegression()"), ("model", 1), ("model", "cnn2"), ("model", "mc_dropout"),
    ("seed", -1), ("seed", 2**32), ("seed", 1.0), ("seed", "0"), ("seed", datetime.date(2024, 1, 1)),
    ("image_dirs", "/data/images"), ("image_dirs", [""]), ("image_dirs", [1]),
    ("test_share", -0.5), ("test_share", 1.01), ("test_share", math.inf),
    ("overlap_fraction", -0.1), ("overlap_fraction", 2), ("overlap_fraction", math.nan),
    ("overlap_annotators", 0), ("overlap_annotators", 2.0), ("overlap_annotators", "3"),
    ("assignment_minutes", 0), ("assignment_minutes", -1.0), ("assignment_minutes", math.inf),
    ("assignment_minutes", math.nan), ("assignment_minutes", 1e12), ("assignment_minutes", "5"),
    ("skip_limit", 0), ("skip_limit", 1.5), ("skip_limit", False),
    ("test_target", -1), ("test_target", 5.0),
    ("show_test_items", 1), ("show_test_items", "true"),
    ("reserve_batches", -1), ("reserve_batches", 3.0),
    ("retrain_minutes", -0.5), ("retrain_minutes", math.inf), ("retrain_minutes", math.nan), ("retrain_minutes", "0"),
    ("guidelines", 3), ("guidelines", ["a"]), ("label_descriptions", ["a"]), ("label_descriptions", {"a": 1}),
    ("show_suggestions", "yes"), ("session_idle_hours", 0), ("session_idle_hours", math.inf),
    ("session_max_days", -1), ("session_max_days", "7"), ("max_body_kb", 0), ("max_body_kb", 1.5),
    ("trusted_proxies", "127.0.0.1"), ("trusted_proxies", [""]), ("trusted_proxies", ["not an ip"]),
    ("aggregation", "mode"), ("aggregation", ""), ("adjudicate_below", 1.5), ("adjudicate_below", "0.7"),
    ("relabel_fraction", -0.1), ("relabel_fraction", 2), ("max_opinions", 0), ("max_opinions", 1.5), ("weight_by_consensus", "yes"),
]

# (key, edge value): each accepted
GOOD = [
    ("labels", ["a", "b"]), ("labels", ["spam", "ham", "not sure"]), ("labels", ["é", "x" * 200]),
    ("labels", ["a", "A"]), ("db", ""), ("db", "postgresql+psycopg://user@host/db"), ("db", "sqlite:///x.db"),
    ("strategy", "random"), ("strategy", "bald"),
    ("batch_size", 1), ("random_fraction", 0), ("random_fraction", 1), ("random_fraction", 0.5),
    ("price_per_label", 0), ("price_per_label", 2), ("price_per_label", 0.05), ("budget", 0), ("budget", 1e9),
    ("label_budget", 0), ("featurizer", ""), ("featurizer", "tfidf"), ("featurizer", "embeddings:some-model"),
    ("model", ""), ("model", "sklearn.linear_model.LogisticRegression"), ("model", "sklearn.svm:SVC"), ("model", "cnn"), ("model", "mc-dropout"),
    ("seed", 0), ("seed", 2**32 - 1), ("image_dirs", []), ("image_dirs", ["/data/images", "rel/dir"]),
    ("test_share", 0), ("test_share", 1), ("overlap_fraction", 0), ("overlap_fraction", 1),
    ("overlap_annotators", 1), ("assignment_minutes", 0.01), ("assignment_minutes", 525_600),
    ("skip_limit", 1), ("test_target", 0), ("show_test_items", True), ("reserve_batches", 0),
    ("retrain_minutes", 0), ("retrain_minutes", 60),
    ("guidelines", ""), ("guidelines", "# Spam\n\nAnything *selling* something."), ("label_descriptions", {}),
    ("label_descriptions", {"a": "the first"}), ("show_suggestions", True), ("session_idle_hours", 0.5),
    ("session_max_days", 30), ("max_body_kb", 1), ("trusted_proxies", []), ("trusted_proxies", ["127.0.0.1"]),
    ("trusted_proxies", ["10.0.0.0/8", "::1"]), ("aggregation", "auto"), ("aggregation", "dawid_skene"), ("aggregation", "crowdlab"),
    ("adjudicate_below", 0), ("adjudicate_below", 0.9), ("relabel_fraction", 0.2), ("max_opinions", 5), ("weight_by_consensus", True),
]


def config(key, value) -> Config:
    return Config(**{"labels": ["a", "b"], key: value})


def show(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def test_every_setting_has_bad_and_good_cases():
    """The tables below cover every field of Config, so a new setting cannot slip in unchecked."""
    names = {f.name for f in fields(Config)}
    assert {k for k, _ in BAD} == names
    assert {k for k, _ in GOOD} == names


@pytest.mark.parametrize(("key", "value"), BAD, ids=[f"{k}={show(v)}" for k, v in BAD])
def test_bad_value_is_refused_in_one_line(key, value):
    """Each bad value raises the typed error, one line that starts with 'key = value'."""
    expected = UnknownStrategyError if key == "strategy" else InvalidParameterError
    with pytest.raises(expected) as info:
        config(key, value).check()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{key} = {show(value)}: "), message


@pytest.mark.parametrize(("key", "value"), GOOD, ids=[f"{k}={show(v)}" for k, v in GOOD])
def test_edge_value_is_accepted(key, value):
    config(key, value).check()


def test_defaults_are_valid():
    Config(labels=["a", "b"]).check()


def test_overlap_needs_two_annotators():
    """An overlap share given to one annotator each would measure no agreement: refused, naming both settings."""
    with pytest.raises(InvalidParameterError, match=r"^overlap_annotators = 1: must be >= 2 when overlap_fraction"):
        Config(labels=["a", "b"], overlap_fraction=0.1, overlap_annotators=1).check()
    Config(labels=["a", "b"], overlap_fraction=0.1, overlap_annotators=2).check()
    Config(labels=["a", "b"], overlap_fraction=0.0, overlap_annotators=1).check()


def test_long_values_are_shortened():
    with pytest.raises(InvalidParameterError) as info:
        config("image_dirs", ["x" * 500, ""]).check()
    assert len(str(info.value)) < 200


# ---------------------------------------------------------------- from the file

def write_toml(folder, **settings):
    folder.mkdir(exist_ok=True)
    (folder / CONFIG_FILE).write_text(tomli_w.dumps({"labels": ["a", "b"], **settings}))
    return folder / CONFIG_FILE


@pytest.mark.parametrize(("key", "value"), BAD, ids=[f"{k}={show(v)}" for k, v in BAD])
def test_bad_value_in_the_file_names_the_file(tmp_path, key, value):
    """The same values, read from activelabel.toml: the line starts with the file's path."""
    path = write_toml(tmp_path, **{key: value})
    with pytest.raises((InvalidParameterError, UnknownStrategyError)) as info:
        read_config(tmp_path)
    assert str(info.value).startswith(f"{path}: {key} = "), str(info.value)


def test_file_labels_are_not_stripped(tmp_path):
    """A label with a space around it in the file is refused, not silently changed."""
    write_toml(tmp_path, labels=["spam", "ham "])
    with pytest.raises(InvalidParameterError, match="label 'ham ' has leading or trailing whitespace"):
        read_config(tmp_path)


def test_missing_labels_and_unknown_keys_are_refused(tmp_path):
    (tmp_path / CONFIG_FILE).write_text("batch_size = 10\n")
    with pytest.raises(InvalidParameterError, match="setting 'labels' is missing"):
        read_config(tmp_path)
    write_toml(tmp_path, batch_sise=10)
    with pytest.raises(InvalidParameterError, match="unknown setting 'batch_sise'"):
        read_config(tmp_path)


def test_good_file_reads_back(tmp_path):
    write_toml(tmp_path, **dict(GOOD[:3]))
    assert read_config(tmp_path).labels == ["é", "x" * 200]


def test_init_project_refuses_before_writing(tmp_path):
    """init_project checks the settings before it creates the folder, the config or the database."""
    with pytest.raises(InvalidParameterError, match="^batch_size = 0: "):
        init_project(tmp_path / "p", ["a", "b"], batch_size=0)
    with pytest.raises(UnknownStrategyError, match="^strategy = 'smart': "):
        init_project(tmp_path / "p", ["a", "b"], strategy="smart")
    assert not (tmp_path / "p").exists()


# ---------------------------------------------------------------- the command line

def files(folder) -> dict:
    """Content and modification time of every file in the project: what 'untouched' compares."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


CLI_CASES = {  # hand edits of activelabel.toml
    "batch_size": "batch_size = 0",
    "labels": 'labels = ["a", " b"]',
    "strategy": 'strategy = "smart"',
    "random_fraction": 'random_fraction = "0.1"',
    "assignment_minutes": "assignment_minutes = nan",
}


def test_hand_edited_bad_config_fails_status_in_one_line(tmp_path):
    """`activelabel status` on a project whose file was edited to a bad value: exit 1, one line, nothing touched."""
    proj = tmp_path / "proj"
    out = run_cli("init", proj, "--labels", "a,b")
    assert out.returncode == 0, out.stderr
    path = proj / CONFIG_FILE
    original = path.read_text()
    for key, line in CLI_CASES.items():
        rest = {k: v for k, v in tomllib.loads(original).items() if k != key}
        path.write_text(f"{line}\n{tomli_w.dumps(rest)}")
        before = files(proj)
        out = run_cli("status", proj)
        assert out.returncode == 1, out.stdout
        one_line_error(out, str(path), f"{key} = ")
        assert files(proj) == before
    path.write_text(original)
    out = run_cli("status", proj)
    assert out.returncode == 0, out.stderr


def test_init_with_bad_settings_writes_nothing(tmp_path):
    one_line_error(run_cli("init", tmp_path / "p", "--labels", "a,a"), "labels = ['a', 'a']", "appears twice")
    one_line_error(run_cli("init", tmp_path / "p", "--labels", "a,b", "--strategy", "smart"), "strategy = 'smart'")
    one_line_error(run_cli("init", tmp_path / "p", "--labels", "a,b", "--db", "x.db"), "db = 'x.db'")
    assert not (tmp_path / "p").exists()
