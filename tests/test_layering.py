"""The layers import downward only (import-linter's contract), and the strategies layer stays free of model,
database and web code."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def test_strategies_import_pulls_in_no_heavy_layers():
    """A fresh interpreter that imports activelabel.strategies has not loaded sklearn, sqlalchemy or fastapi."""
    code = (
        "import sys, json, activelabel.strategies\n"
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert "numpy" in loaded  # the check itself sees imports
    assert not loaded & {"sklearn", "sqlalchemy", "fastapi", "pandas", "torch", "matplotlib"}


REPO = Path(__file__).resolve().parents[1]


def lint_imports(source_root: Path):
    """import-linter's contracts of pyproject.toml, checked on the package found under ``source_root``."""
    lint = Path(sys.executable).parent / "lint-imports"
    return subprocess.run([str(lint), str(REPO / "pyproject.toml"), "--no-cache"], capture_output=True,
                          text=True, cwd=source_root, env={**os.environ, "PYTHONPATH": str(source_root)})


def test_the_layers_contract_holds():
    out = lint_imports(REPO / "src")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Contracts: 2 kept, 0 broken." in out.stdout


@pytest.mark.parametrize(("module", "bad_import", "broken"), [
    ("strategies/select.py", "import activelabel.project", "Layers import downward only BROKEN"),
    ("models/adapters.py", "from activelabel.loop import simulate", "Layers import downward only BROKEN"),
    ("loop/cost.py", "from activelabel.store import _nothing", "private module is imported"),
])
def test_the_contract_fails_on_a_wrong_import(tmp_path, module, bad_import, broken):
    """A copy of the package with one import that goes up a layer (or into another package's private module)
    breaks the contract, naming the importing module."""
    shutil.copytree(REPO / "src" / "activelabel", tmp_path / "activelabel",
                    ignore=shutil.ignore_patterns("__pycache__", "demo_data"))
    if "_nothing" in bad_import:
        (tmp_path / "activelabel" / "store" / "_nothing.py").write_text('"""A private module."""\n')
    path = tmp_path / "activelabel" / module
    path.write_text(path.read_text() + f"\n{bad_import}  # noqa\n")
    out = lint_imports(tmp_path)
    assert out.returncode != 0
    assert broken in out.stdout, out.stdout
    assert "activelabel." + module.removesuffix(".py").replace("/", ".") in out.stdout
