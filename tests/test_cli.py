"""The command line: the main job runs, and bad input gives one line and a non-zero exit."""

import subprocess
import sys

from typer.testing import CliRunner

from activelabel.cli import app

runner = CliRunner()


def test_simulate_digits_prints_curves_savings_and_writes_a_plot(tmp_path):
    result = runner.invoke(app, ["simulate", "digits", "--seeds", "2", "--budget", "80", "--batch-size", "20",
                                 "--cost-per-label", "2", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Test accuracy per cycle" in result.output
    assert "labels saved" in result.output and "baseline" in result.output
    png = tmp_path / "learning_curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "activelabel.cli", *args], capture_output=True, text=True)


def test_unknown_data_set_is_one_line():
    out = run_cli("simulate", "nosuchdata")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["error: unknown data set 'nosuchdata'; built-in data sets: digits"]


def test_unknown_strategy_is_one_line():
    out = run_cli("simulate", "digits", "--strategy", "magic")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown strategy 'magic'" in lines[0]


def test_batch_too_large_is_one_line():
    out = run_cli("simulate", "digits", "--batch-size", "5000")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "batch_size 5000 is larger than the pool" in lines[0]
