"""The command line: the main job runs and reports; bad input gives one line and a non-zero exit."""

import json
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from typer.testing import CliRunner

from activelabel.cli import app

from helpers import one_line_error, run_cli

runner = CliRunner()

STRATEGY_KEYS = {"aulc_mean": float, "aulc_per_seed": list, "labels_to_95": (float, type(None)),
                 "labels_to_99": (float, type(None)), "savings_vs_random_99": (float, type(None)),
                 "p_value_vs_random": (float, type(None)), "curve": dict, "stopping": dict}


@pytest.fixture(scope="module")
def digits_csv(tmp_path_factory):
    """600 digits as a CSV with a string label column."""
    X, y = load_digits(return_X_y=True)
    frame = pd.DataFrame(X[:600], columns=[f"p{i}" for i in range(64)])
    frame["label"] = [f"d{v}" for v in y[:600]]
    path = tmp_path_factory.mktemp("data") / "digits.csv"
    frame.to_csv(path, index=False)
    return path


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])


def test_simulate_writes_a_report_that_parses(tmp_path, digits_csv):
    """CSV in; HTML with embedded PNGs, PNG files and a results.json matching its schema out."""
    out = tmp_path / "out"
    result = runner.invoke(app, ["simulate", str(digits_csv), "-s", "default,margin", "--seeds", "2",
                                 "--budget", "60", "--cost-per-label", "2", "--jobs", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "full-pool accuracy" in result.output and "baseline" in result.output
    header = next(line for line in result.output.splitlines() if line.lstrip().startswith("strategy"))
    assert header.split()[-6:] == ["plateau", "stop", "at", "stabilizing", "stop", "at"]
    assert "p vs random" in header  # piped output keeps every column, whatever the width

    results = json.loads((out / "results.json").read_text())
    assert 0.8 < results["ceiling_accuracy"] <= 1.0
    assert set(results["strategies"]) == {"default", "margin", "random"}
    for name, s in results["strategies"].items():
        for key, kind in STRATEGY_KEYS.items():
            assert isinstance(s[key], kind), (name, key, s[key])
        assert len(s["aulc_per_seed"]) == 2
        assert s["curve"]["labels"][0] == 20 and s["curve"]["labels"][-1] == 60
        assert len(s["curve"]["accuracy"]) == len(s["curve"]["labels"])
    assert results["strategies"]["random"]["p_value_vs_random"] is None

    page = (out / "report.html").read_text()
    parser = _Images()
    parser.feed(page)
    assert len(parser.images) == 3 and all(src.startswith("data:image/png;base64,") for src in parser.images)
    assert "http://" not in page and "https://" not in page  # opens offline
    for png in ("learning_curves.png", "aulc.png", "labels_to_99.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000


def test_simulate_json_prints_the_summary_alone_on_stdout(tmp_path):
    out = run_cli("simulate", "digits", "--seeds", "1", "--budget", "40", "--jobs", "1", "--out", tmp_path, "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary == json.loads((tmp_path / "results.json").read_text())
    assert set(summary["strategies"]) == {"default", "random"} and "report.html" in out.stderr


def test_missing_label_column(digits_csv):
    one_line_error(run_cli("simulate", str(digits_csv), "--label-column", "target"),
                   "no label column 'target'", "p0, p1")


def test_empty_label_values(tmp_path, digits_csv):
    frame = pd.read_csv(digits_csv)
    frame.loc[7, "label"] = None
    path = tmp_path / "holes.csv"
    frame.to_csv(path, index=False)
    one_line_error(run_cli("simulate", str(path)), "empty label in column 'label' at line 9")


def test_one_class_only(tmp_path):
    path = tmp_path / "one.csv"
    pd.DataFrame({"x": np.arange(50.0), "label": ["spam"] * 50}).to_csv(path, index=False)
    one_line_error(run_cli("simulate", str(path)), "only one class ('spam')")


def test_non_numeric_feature_column_without_text_option(tmp_path):
    path = tmp_path / "text.csv"
    pd.DataFrame({"x": np.arange(50.0), "note": ["hello"] * 50, "label": ["a", "b"] * 25}).to_csv(path, index=False)
    one_line_error(run_cli("simulate", str(path)), "column 'note' is not numeric", "--text-column")


@pytest.mark.parametrize("content, fragment", [
    (b"\xff\xfe\x00\x00garbage\xff", "not UTF-8"),
    (b"", "empty"),
])
def test_unreadable_file(tmp_path, content, fragment):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    one_line_error(run_cli("simulate", str(path)), str(path), fragment)


def test_missing_file_and_damaged_parquet(tmp_path):
    one_line_error(run_cli("simulate", str(tmp_path / "nope.csv")), "no such file")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    one_line_error(run_cli("simulate", str(bad)), "cannot read")


def test_unknown_strategy_and_model():
    one_line_error(run_cli("simulate", "digits", "--strategy", "magic"), "unknown strategy 'magic'")
    one_line_error(run_cli("simulate", "digits", "--model", "sklearn.nothing.Here"), "cannot build model")


def test_batch_too_large():
    one_line_error(run_cli("simulate", "digits", "--batch-size", "5000"), "batch_size 5000 is larger than the pool")
