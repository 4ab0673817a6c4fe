"""Durability: a process killed with SIGKILL while writing labels loses nothing it acknowledged."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pandas as pd
from sqlalchemy import text

from activelabel.project import Project, init_project

from helpers import run_cli

WRITER = textwrap.dedent("""
    import sys
    from activelabel.project import Project
    from activelabel.store import repo

    project = Project.open(sys.argv[1])
    ids = [int(i) for i in project.state().items["id"]]
    for n in range(1, 1_000_000):
        with project.store.session() as s:  # one answer, one transaction, as the web app does
            repo.add_annotations(s, [{"item_id": ids[n % len(ids)], "annotator_id": None, "answer": "label",
                                      "label": "spam" if n % 2 else "ham", "seconds": float(n), "source": "web"}])
        print(n, flush=True)  # acknowledged only after the commit returned
""")


def make_project(tmp_path, db_url=None, n=300):
    p = init_project(tmp_path / "proj", ["spam", "ham"], db=db_url)
    pd.DataFrame({"id": [f"i{k}" for k in range(n)], "text": [f"message number {k}" for k in range(n)]}) \
        .to_csv(tmp_path / "items.csv", index=False)
    p.import_items(tmp_path / "items.csv", text_column="text", id_column="id")
    p.close()
    return tmp_path / "proj"


def check_opens_cleanly(folder):
    with Project.open(folder) as p:
        if p.store.engine.dialect.name == "sqlite":
            with p.store.session(readonly=True) as s:
                assert s.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        return p.state()


def test_every_acknowledged_answer_survives_sigkill(tmp_path, db_url):
    folder = make_project(tmp_path, db_url)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(folder)], stdout=subprocess.PIPE, text=True)
    acked = 0
    for line in proc.stdout:
        acked = int(line)
        if acked >= 150:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for line in proc.stdout:  # acknowledgements already in the pipe count too
        acked = int(line)
    st = check_opens_cleanly(folder)
    stored = set(st.events["seconds"].astype(int))
    assert set(range(1, acked + 1)) <= stored
    assert len(stored) <= acked + 1  # at most the one in flight beyond the last acknowledgement


def test_killed_label_import_is_all_or_nothing(tmp_path):
    """SIGKILL while ``import-labels`` writes: the earlier import is intact, the killed one absent, the file sound."""
    folder = make_project(tmp_path, n=2000)
    pd.DataFrame({"id": ["i1", "i2"], "label": ["spam", "ham"]}).to_csv(tmp_path / "first.csv", index=False)
    assert run_cli("import-labels", folder, tmp_path / "first.csv").returncode == 0
    big = pd.DataFrame({"id": [f"i{k % 2000}" for k in range(200_000)], "label": ["spam", "ham"] * 100_000,
                        "who": [f"vendor{k // 2000}" for k in range(200_000)]})  # 200,000 distinct answers
    big.to_csv(tmp_path / "big.csv", index=False)
    wal = folder / "activelabel.db-wal"
    start = wal.stat().st_size if wal.exists() else 0
    proc = subprocess.Popen([sys.executable, "-m", "activelabel.cli", "import-labels", str(folder),
                             str(tmp_path / "big.csv"), "--annotator-column", "who"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while (not wal.exists() or wal.stat().st_size <= start + 1_000_000) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)  # the import has written over 1 MB of its transaction: mid-write
    assert proc.wait() == -signal.SIGKILL
    st = check_opens_cleanly(folder)
    assert len(st.events) == 2 and set(st.events["label"]) == {"spam", "ham"}
    con = sqlite3.connect(folder / "activelabel.db")
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    con.close()
