"""Managing the team: add, list, revoke, rotate, change roles, in the store, the CLI and the admin page."""

import re
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from helpers import bearer, make_sms_project, one_line_error, run_cli

from activelabel.errors import InvalidParameterError
from activelabel.project import Project
from activelabel.server import create_app
from activelabel.store import annotators, sessions
from activelabel.store.schema import Annotator

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LIMITS = sessions.SessionLimits(idle=timedelta(hours=12), absolute=timedelta(days=14))


@pytest.fixture
def project(tmp_path, db_url):
    with Project.open(make_sms_project(tmp_path, db_url, n=120, test_size=20, seed_pool=10, seed_test=5,
                                       batch_size=10)) as p:
        yield p


def person(p, name):
    with p.store.session(readonly=True) as s:
        return s.query(Annotator).filter_by(name=name).one()


def test_revoke_rotate_readd_and_roles_in_the_store(project):
    p = project
    token = p.add_annotator("ann")
    boss = p.add_annotator("boss", "admin")
    with p.store.session() as s:
        with pytest.raises(InvalidParameterError, match="already exists.*rotate"):
            annotators.add(s, "ann")
    for bad in ("", " ann", "x" * 101, "tab\there"):
        with p.store.session() as s, pytest.raises(InvalidParameterError, match="annotator name"):
            annotators.add(s, bad)
    with p.store.session() as s:
        ann = annotators.active_by_token(s, token)
        session_id = sessions.start(s, ann, NOW)
    with p.store.session(readonly=True) as s:
        assert sessions.lookup(s, session_id, NOW + timedelta(hours=1), LIMITS)[0].name == "ann"
        assert sessions.lookup(s, session_id, NOW + timedelta(hours=13), LIMITS)[0] is None  # idle too long
        assert sessions.lookup(s, session_id, NOW + timedelta(days=15), LIMITS)[0] is None  # too old
    with p.store.session() as s:  # a new token ends the old one and its sessions
        new_token = annotators.rotate(s, "ann", NOW)
    with p.store.session(readonly=True) as s:
        assert annotators.active_by_token(s, token) is None and annotators.active_by_token(s, new_token) is not None
        assert sessions.lookup(s, session_id, NOW, LIMITS)[0] is None
    with p.store.session() as s:
        annotators.revoke(s, "ann", NOW)
        with pytest.raises(InvalidParameterError, match="already revoked"):
            annotators.revoke(s, "ann", NOW)
    with p.store.session(readonly=True) as s:
        assert annotators.active_by_token(s, new_token) is None
        listed = {r["name"]: r for r in annotators.listing(s, NOW)}
    assert listed["ann"]["revoked"] is not None and listed["boss"]["role"] == "admin"
    ann_id = person(p, "ann").id
    again = p.add_annotator("ann")  # a revoked name comes back under the same id, its answers kept
    assert person(p, "ann").id == ann_id and person(p, "ann").revoked_at is None and again != new_token
    for change in (lambda s: annotators.set_role(s, "boss", "annotator"), lambda s: annotators.revoke(s, "boss", NOW)):
        with p.store.session() as s, pytest.raises(InvalidParameterError, match="last admin"):
            change(s)
    with p.store.session() as s:
        assert annotators.set_role(s, "ann", "admin") == "annotator"
        with pytest.raises(InvalidParameterError, match="no annotator named 'nobody'"):
            annotators.revoke(s, "nobody", NOW)
    assert boss


def test_the_cli_manages_the_team(tmp_path):
    folder = make_sms_project(tmp_path, n=120, test_size=20, seed_pool=10, seed_test=5, batch_size=10)
    assert run_cli("annotator", "add", folder, "boss", "--role", "admin").returncode == 0
    out = run_cli("annotator", "add", folder, "ann")
    token = out.stdout.strip().splitlines()[-1]
    assert out.returncode == 0 and len(token) > 20
    one_line_error(run_cli("annotator", "add", folder, "ann"), "already exists")
    rotated = run_cli("annotator", "rotate", folder, "ann").stdout.strip().splitlines()[-1]
    assert rotated != token
    assert "'ann' was annotator, is now admin" in run_cli("annotator", "role", folder, "ann", "admin").stdout
    one_line_error(run_cli("annotator", "role", folder, "ann", "boss"), "role must be")
    assert "revoked 'ann'" in run_cli("annotator", "revoke", folder, "ann").stdout
    listing = run_cli("annotator", "list", folder)
    assert listing.returncode == 0 and "ann" in listing.stdout and "revoked" in listing.stdout
    one_line_error(run_cli("annotator", "revoke", folder, "ghost"), "no annotator named 'ghost'")


def test_the_admin_page_adds_rotates_and_revokes(tmp_path):
    folder = make_sms_project(tmp_path, n=120, test_size=20, seed_pool=10, seed_test=5, batch_size=10)
    with Project.open(folder) as p:
        boss, ann = p.add_annotator("boss", "admin"), p.add_annotator("ann")
    with TestClient(create_app(folder, retrain=False)) as c:
        assert c.get("/admin/annotators", headers=bearer(ann)).status_code == 403
        c.post("/login", data={"token": boss})
        page = c.get("/admin/annotators").text
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
        assert "ann" in page and "boss" in page
        added = c.post("/admin/annotators", data={"csrf": csrf, "action": "add", "name": "carol", "role": "annotator"})
        carol = re.search(r'<code id="token">([^<]+)</code>', added.text).group(1)
        assert c.get("/api/next", headers=bearer(carol)).status_code == 200
        rotated = c.post("/admin/annotators", data={"csrf": csrf, "action": "rotate", "name": "carol"})
        assert re.search(r'<code id="token">([^<]+)</code>', rotated.text).group(1) != carol
        assert c.get("/api/next", headers=bearer(carol)).status_code == 401  # the old token, at once
        revoked = c.post("/admin/annotators", data={"csrf": csrf, "action": "revoke", "name": "ann"})
        assert "ann is revoked" in revoked.text
        assert c.get("/api/next", headers=bearer(ann)).status_code == 401
        refused = c.post("/admin/annotators", data={"csrf": csrf, "action": "role", "name": "boss", "role": "annotator"})
        assert refused.status_code == 400 and "last admin" in refused.text
        assert c.post("/admin/annotators", data={"action": "revoke", "name": "boss"}).status_code == 403  # no CSRF


@pytest.mark.parametrize("name", ["evil\u202egnp.exe", "bob\u200b", "ann\x00", "two\u2028lines", "bo\u034fb",
                                  "\u115fann"])
def test_names_with_invisible_or_control_characters_are_refused(project, name):
    """A right-to-left override or a zero-width space would make one name look like another on every page."""
    with project.store.session() as s, pytest.raises(InvalidParameterError, match="control or invisible"):
        annotators.add(s, name)


def test_imported_annotator_names_with_invisible_characters_are_refused(tmp_path):
    folder = make_sms_project(tmp_path)
    items = pd.read_csv(tmp_path / "sms.csv")["id"][:2]
    pd.DataFrame({"id": items, "label": ["ham", "ham"], "who": ["ann", "bob\u200b"]}).to_csv(tmp_path / "w.csv",
                                                                                         index=False)
    one_line_error(run_cli("import-labels", folder, tmp_path / "w.csv", "--annotator-column", "who"), "w.csv",
                   "line 3", "invisible character")
