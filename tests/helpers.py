"""Helpers shared by the command-line tests."""

import subprocess
import sys


def run_cli(*args, cwd=None, env=None):
    """Run ``activelabel`` in a fresh interpreter, as a user would."""
    return subprocess.run([sys.executable, "-m", "activelabel.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env)


def one_line_error(out, *fragments):
    """A non-zero exit with exactly one line on stderr that contains every fragment."""
    assert out.returncode != 0, out.stdout
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
