"""The app under a security tester's hands: a real uvicorn process, real HTTP, and a real Chromium for CSRF.

Each finding of issue 11's security list is shown refused or fixed: sessions
instead of tokens in cookies, CSRF on every cookie-authenticated write,
security headers, a body cap before authentication, limits on token
guesses, no text from the address bar on the login page, a warning for plain
HTTP on a public address, 64-bit ids, and revocation that ends open sessions.
"""

import re
import select
import socket
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import httpx
import pytest
from helpers import Server, bearer, free_port, make_sms_project, run_cli, set_config
from playwright.sync_api import expect

from activelabel.project import Project
from activelabel.server.auth import Guard, Caller

@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """A trained project with two annotators and an admin, served by a real uvicorn for the whole module."""
    tmp = tmp_path_factory.mktemp("sec")
    folder = make_sms_project(tmp)
    with Project.open(folder) as p:
        tokens = {"ann": p.add_annotator("ann"), "bob": p.add_annotator("bob"), "boss": p.add_annotator("boss", "admin")}
    with Server(folder, log=tmp / "server.log") as server:
        yield folder, tokens, server


def log_in(url, token, **kw) -> httpx.Client:
    """An httpx client holding a login session, as a browser would after the login form."""
    c = httpx.Client(base_url=url, **kw)
    r = c.post("/login", data={"token": token})
    assert r.status_code == 303, r.text
    return c


def page_csrf(c: httpx.Client) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', c.get("/label").text).group(1)


def web_answers(folder) -> int:
    with Project.open(folder) as p:
        events = p.state().events
    return int((events["source"] == "web").sum())


def test_the_cookie_is_a_session_that_logout_ends(team):
    folder, tokens, server = team
    c = log_in(server.url, tokens["ann"])
    cookie = c.cookies.get("activelabel_session")
    assert cookie and tokens["ann"] not in str(c.cookies.jar) and tokens["ann"] not in cookie
    set_cookie = c.post("/login", data={"token": tokens["ann"]}).headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie and "max-age=" in set_cookie
    assert "secure" not in set_cookie  # plain HTTP from a client, no trusted proxy: a Secure cookie would be lost
    stolen = httpx.Client(base_url=server.url, cookies={"activelabel_session": c.cookies.get("activelabel_session")})
    assert stolen.get("/api/next").status_code == 200  # a copy of the cookie works while the session lives...
    assert c.post("/logout", data={"csrf": page_csrf(c)}).status_code == 303
    assert stolen.get("/api/next").status_code == 401  # ...and not after logout
    assert httpx.get(server.url + "/api/next", cookies={"activelabel_token": tokens["ann"]}).status_code == 401


def test_every_cookie_write_needs_the_csrf_token_json_included(team):
    folder, tokens, server = team
    c = log_in(server.url, tokens["bob"])
    csrf = page_csrf(c)
    item = c.get("/api/next").json()["item"]
    before = web_answers(folder)
    body = {"assignment_id": item["assignment_id"], "answer": "label", "label": "ham"}
    for method, path, kw in [("POST", "/api/answer", {"json": body}), ("POST", "/api/undo", {}),
                             ("POST", "/api/heartbeat", {}), ("POST", "/label/undo", {"data": {}}),
                             ("POST", "/logout", {"data": {}}), ("POST", "/api/answer", {"json": body,
                                                                                         "headers": {"X-CSRF-Token": "0" * 64}})]:
        r = c.request(method, path, **kw)
        assert r.status_code == 403 and "CSRF" in r.json()["detail"], (path, r.status_code, r.text)
    assert web_answers(folder) == before  # nothing written
    r = c.post("/api/answer", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json() == {"stored": True}
    assert c.post("/api/undo", headers={"X-CSRF-Token": csrf}).json()["undone_item"] == item["item_id"]
    assert web_answers(folder) == before + 2
    # a script with its Bearer token needs no CSRF token: a browser never sends that header by itself
    assert httpx.post(server.url + "/api/undo", headers=bearer(tokens["bob"])).status_code == 200


def test_security_headers_on_every_response(team):
    folder, tokens, server = team
    c = log_in(server.url, tokens["ann"])
    for path in ("/login", "/label", "/api/next", "/healthz", "/no-such-page"):
        h = c.get(path).headers
        csp = h["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in \
            csp.split("script-src")[1].split(";")[0], path
        assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff", path
        assert h["referrer-policy"] == "same-origin" and h["cache-control"] == "no-store", path
        assert "server" not in h, path
    static = c.get("/static/style.css").headers
    assert static["cache-control"] == "no-cache" and static["x-content-type-options"] == "nosniff"
    assert "<script>" not in c.get("/label").text.replace("<script src=", "")  # no inline script to allow


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS")).split()[1])


def send_big_body(port: int, chunked: bool, total: int = 100 * 2**20) -> bytes:
    """POST ``total`` bytes (declared, or chunked without a length) without a token; the server's first answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = "POST /api/answer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {total}\r\n\r\n"
        sock.sendall(head.encode())
        chunk = b"x" * 2**20
        sent = 0
        try:
            while sent < total:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                sent += len(chunk)
        except OSError:
            pass  # the server answered and closed: what we want
        return sock.recv(200)


def test_a_100_mb_body_is_refused_before_it_is_read(team):
    folder, tokens, server = team
    before = rss_kb(server.proc.pid)
    for chunked in (False, True):
        answer = send_big_body(server.port, chunked)
        assert answer.startswith(b"HTTP/1.1 413"), answer
    assert rss_kb(server.proc.pid) - before < 8_000  # KB: a few MB at most, not the 100 MB sent
    r = httpx.post(server.url + "/login", data={"token": "x" * 2_000_000})
    assert r.status_code == 413


def test_the_token_cache_stays_bounded():
    guard = Guard()
    for i in range(5_000):
        guard.remember(f"digest{i}", Caller(i, "x", "annotator", None))
    assert len(guard.found) == 1024 and guard.recall("digest4999") is not None and guard.recall("digest0") is None


def test_login_from_another_origin_and_nan_in_json(team):
    folder, tokens, server = team
    r = httpx.post(server.url + "/login", data={"token": tokens["ann"]}, headers={"Origin": "http://127.0.0.1:1"})
    assert r.status_code == 403 and "set-cookie" not in r.headers  # login CSRF: no session from a foreign page
    assert httpx.post(server.url + "/login", data={"token": tokens["ann"]},
                      headers={"Origin": server.url}).status_code == 303
    for body in ('{"assignment_id": NaN, "answer": "label"}', '{"assignment_id": 1e400, "answer": "label"}',
                 '{"assignment_id": true, "answer": "skip"}', '{"assignment_id": "1", "answer": "skip"}',
                 '{"assignment_id": 1, "answer": "label", "label": Infinity}'):
        r = httpx.post(server.url + "/api/answer", content=body,
                       headers={**bearer(tokens["boss"]), "content-type": "application/json"})
        assert r.status_code == 422 and r.headers["x-frame-options"] == "DENY", (body, r.status_code, r.text)
    r = httpx.post(server.url + "/login", data={"token": "t" * 5_000})
    assert r.status_code == 401 and "unknown token" in r.text  # the login page, not a JSON error


def test_no_text_from_the_address_bar_and_64_bit_ids(team):
    folder, tokens, server = team
    page = httpx.get(server.url + "/login", params={"error": "Your account is locked: call +1 555 0100"}).text
    assert "locked" not in page and "555" not in page
    r = httpx.post(server.url + "/api/answer", headers=bearer(tokens["boss"]),
                   json={"assignment_id": 2**70, "answer": "label", "label": "ham"})
    assert r.status_code == 422 and "assignment_id" in r.text
    c = log_in(server.url, tokens["ann"])
    r = c.post("/label/answer", data={"assignment_id": str(2**70), "answer": "skip", "csrf": page_csrf(c)})
    assert r.status_code == 400 and "no assignment" in r.text


def test_revoking_ends_an_open_session_at_its_next_request(team):
    folder, tokens, server = team
    c = log_in(server.url, tokens["bob"])
    assert c.get("/api/next").status_code == 200
    out = run_cli("annotator", "revoke", folder, "bob")
    assert out.returncode == 0 and "revoked 'bob'" in out.stdout, out.stderr
    assert c.get("/api/next").status_code == 401  # the session: at once
    assert c.get("/label", headers={"accept": "text/html"}).headers["location"] == "/login"
    time.sleep(2.1)  # the token: after the server's 2 s token cache
    assert httpx.get(server.url + "/api/next", headers=bearer(tokens["bob"])).status_code == 401
    assert httpx.post(server.url + "/login", data={"token": tokens["bob"]}).status_code == 401


class Attacker(BaseHTTPRequestHandler):
    """A page on another port of the same host that tries to undo and answer for whoever visits it."""
    target = ""

    def do_GET(self):
        page = f"""<!doctype html><body>
<form id="f" method="post" action="{self.target}/label/undo"></form>
<script>
fetch("{self.target}/api/undo", {{method: "POST", credentials: "include"}});
fetch("{self.target}/api/answer", {{method: "POST", credentials: "include", headers: {{"Content-Type": "text/plain"}},
  body: JSON.stringify({{assignment_id: 1, answer: "skip"}})}});
setTimeout(() => document.getElementById("f").submit(), 300);
</script></body>"""
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(page.encode())

    def log_message(self, *args):
        pass


def test_csrf_from_a_page_on_another_port_changes_nothing(team, browser):
    folder, tokens, server = team
    Attacker.target = server.url
    evil = ThreadingHTTPServer(("127.0.0.1", free_port()), Attacker)
    Thread(target=evil.serve_forever, daemon=True).start()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(server.url + "/login")
        page.fill("#token", tokens["ann"])
        page.click("button[type=submit]")
        page.wait_for_url(server.url + "/label")
        page.click("button.label >> nth=0")  # one real answer, which the attacker would like to undo
        expect(page.locator("#today")).not_to_have_text("0")
        before = web_answers(folder)
        responses = []
        attack = context.new_page()
        attack.on("response", lambda r: responses.append((r.url, r.status)))
        attack.goto(f"http://127.0.0.1:{evil.server_port}/")
        attack.wait_for_timeout(1500)
    finally:
        context.close()
        evil.shutdown()
    assert web_answers(folder) == before  # no undo, no answer
    hits = [(u, s) for u, s in responses if u.startswith(server.url)]
    assert hits and all(s == 403 for u, s in hits), hits  # the form post reached the server, and was refused


def test_secure_cookie_over_tls_and_through_a_trusted_proxy(tmp_path):
    folder = make_sms_project(tmp_path, n=120, test_size=20, seed_pool=10, seed_test=5, batch_size=10)
    with Project.open(folder) as p:
        token = p.add_annotator("ann")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", tmp_path / "key.pem", "-out", tmp_path / "cert.pem"], check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "activelabel.cli", "serve", folder, "--port", str(port),
                             "--ssl-certfile", tmp_path / "cert.pem", "--ssl-keyfile", tmp_path / "key.pem"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                r = httpx.post(f"https://127.0.0.1:{port}/login", data={"token": token}, verify=False)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert r.status_code == 303 and "secure" in r.headers["set-cookie"].lower()
    finally:
        proc.terminate()
        proc.wait(10)
    set_config(folder, trusted_proxies=["127.0.0.1"])
    with Server(folder) as server:  # behind a reverse proxy on this host that terminates TLS
        r = httpx.post(server.url + "/login", data={"token": token}, headers={"X-Forwarded-Proto": "https"})
        assert "secure" in r.headers["set-cookie"].lower()
        r = httpx.post(server.url + "/login", data={"token": token})
        assert "secure" not in r.headers["set-cookie"].lower()
    set_config(folder, trusted_proxies=[])
    with Server(folder) as server:  # nobody trusted: the header is a client's claim, not believed
        r = httpx.post(server.url + "/login", data={"token": token}, headers={"X-Forwarded-Proto": "https"})
        assert "secure" not in r.headers["set-cookie"].lower()


def test_plain_http_on_a_public_address_warns(tmp_path):
    folder = make_sms_project(tmp_path, n=120, test_size=20, seed_pool=10, seed_test=5, batch_size=10)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "activelabel.cli", "serve", folder, "--host", "0.0.0.0",
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, deadline = [], time.monotonic() + 30
    try:
        while time.monotonic() < deadline and not any("warning" in line for line in lines):
            if select.select([proc.stdout], [], [], 0.5)[0]:
                lines.append(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(10)
    assert any("warning: serving on 0.0.0.0 over plain HTTP" in line for line in lines), lines


def test_token_guesses_are_limited_per_client(team):
    """Last in the module: it uses up this client's guesses on the shared server for a minute."""
    folder, tokens, server = team
    codes = [httpx.get(server.url + "/api/next", headers=bearer(f"guess{i}")).status_code for i in range(25)]
    first_refusal = codes.index(429)  # earlier tests of the module spent a few of this minute's guesses
    assert 15 <= first_refusal <= 20 and set(codes[:first_refusal]) == {401} and set(codes[first_refusal:]) == {429}
    r = httpx.post(server.url + "/login", data={"token": "another guess"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    # only failures count: a right token still passes, so one stale script cannot lock out the team behind it
    assert httpx.get(server.url + "/api/next", headers=bearer(tokens["boss"])).status_code == 200
    assert httpx.post(server.url + "/login", data={"token": tokens["boss"]}).status_code == 303
