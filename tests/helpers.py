"""Helpers shared by the command-line tests."""

import subprocess
import sys


def run_cli(*args, cwd=None, env=None):
    """Run ``activelabel *args`` as a user would and return its exit code, stdout and stderr.

    In this process, through the console script's own entry point (an interpreter start costs 1-3 s of
    imports per command); in a fresh interpreter when the test sets the working folder or the environment.
    """
    if cwd is not None or env is not None:
        return subprocess.run([sys.executable, "-m", "activelabel.cli", *map(str, args)], capture_output=True,
                              text=True, cwd=cwd, env=env)
    return run_in_process(*args)


def run_in_process(*args):
    """``activelabel *args`` in this process: stdout, stderr and the exit code as a real run gives them.

    Warnings go to stderr, where an interpreter would print them, so a one-line check sees them too. An
    exception the command line lets escape is raised here: the test fails with its traceback.
    """
    import io
    import warnings
    from contextlib import redirect_stderr, redirect_stdout

    from activelabel.cli import entry

    out, err, code = io.StringIO(), io.StringIO(), 0
    with redirect_stdout(out), redirect_stderr(err), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            entry([str(a) for a in args])
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    for w in caught:
        err.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno))
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def bearer(token):
    """The header a script sends to the JSON API."""
    return {"Authorization": f"Bearer {token}"}


def one_line_error(out, *fragments):
    """A non-zero exit with exactly one line on stderr that contains every fragment."""
    assert out.returncode != 0, out.stdout
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``activelabel serve`` in a real uvicorn process on a free port of 127.0.0.1.

    With ``log`` (a path) its output goes to that file, so a crash says why and a full pipe never blocks it.
    """

    def __init__(self, folder, port=None, log=None):
        self.folder = folder
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.log = log

    def output(self) -> str:
        return self.log.read_text()[-3000:] if self.log else self.proc.stderr.read().decode()

    def start(self, timeout=60.0):
        import time
        import urllib.request

        command = [sys.executable, "-m", "activelabel.cli", "serve", str(self.folder), "--port", str(self.port)]
        if self.log:
            with open(self.log, "wb") as out:
                self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        else:
            self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def kill(self):
        import signal

        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def make_sms_project(tmp_path, db_url=None, n=300, test_size=60, seed_pool=40, seed_test=30, batch_size=30):
    """Real SMS messages as a trained project: ``seed_pool`` labeled pool items, ``seed_test`` labeled test items."""
    import pandas as pd

    from activelabel.project import init_project
    from conftest import SMS_PARQUET

    frame = pd.read_parquet(SMS_PARQUET).drop_duplicates("text").head(n).reset_index(drop=True)
    frame.insert(0, "id", [f"m{i}" for i in range(len(frame))])
    frame.to_csv(tmp_path / "sms.csv", index=False)
    p = init_project(tmp_path / "proj", ["spam", "ham"], db=db_url, batch_size=batch_size, price_per_label=0.1)
    p.import_items(tmp_path / "sms.csv", text_column="text", id_column="id", test_size=test_size)
    items = p.state().items
    chosen = list(items[items["split"] == "pool"]["external_id"][:seed_pool]) + \
        list(items[items["split"] == "test"]["external_id"][:seed_test])
    frame.set_index("id").loc[chosen, "label"].reset_index().to_csv(tmp_path / "seed.csv", index=False)
    p.import_labels(tmp_path / "seed.csv")
    p.train()
    p.close()
    return tmp_path / "proj"


def set_config(folder, **values):
    """Change settings in the project's ``activelabel.toml`` (read at the next open or ``serve``)."""
    import tomllib

    import tomli_w

    path = folder / "activelabel.toml"
    path.write_text(tomli_w.dumps(tomllib.loads(path.read_text()) | values))
