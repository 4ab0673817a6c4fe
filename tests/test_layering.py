"""The strategies layer stays free of model, database and web code."""

import json
import subprocess
import sys


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
