"""The README's benchmark tables are exactly what ``benchmarks/readme_tables.py`` makes of the saved results."""

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _tables():
    spec = importlib.util.spec_from_file_location("readme_tables", REPO / "benchmarks" / "readme_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_tables_match_the_results_files():
    tables = _tables()
    text = (REPO / "README.md").read_text()
    assert len(tables._BLOCK.findall(text)) == len(tables.TABLES)  # every table is in the README, once
    assert tables.render(text) == text, "run: python benchmarks/readme_tables.py"


def test_a_changed_result_changes_the_table(tmp_path, monkeypatch):
    """The check can fail: one number changed in a results file gives a different README."""
    tables = _tables()
    import stamp

    original = json.loads((stamp.RESULTS / "all_strategies.json").read_text())
    original["results"]["strategies"]["default"]["aulc_mean"] = 0.1234
    (tmp_path / "all_strategies.json").write_text(json.dumps(original))
    monkeypatch.setattr(stamp, "RESULTS", tmp_path)
    monkeypatch.setattr(tables, "load", stamp.load)
    text = (REPO / "README.md").read_text()
    block = text[text.index("<!-- table:all_strategies -->"):text.index("<!-- /table:all_strategies -->") + 40]
    assert "| default | 0.1234 |" in tables.render(block)
