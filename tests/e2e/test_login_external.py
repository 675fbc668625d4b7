"""`hoop login` against a real, independent OpenID Provider (node `oidc-provider`), not our own.

The provider runs on a free loopback port with the device authorization grant (RFC 8628),
refresh tokens and revocation; the hoop server is configured with `oidc.issuer` pointing at it.
`hoop login --no-browser` runs as a real subprocess; the test plays the person at the browser
by filling the provider's own HTML forms over HTTP.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

pytestmark = pytest.mark.e2e

OIDC_DIR = Path(__file__).parent / "oidc"
HOOP = [sys.executable, "-m", "hoopcli"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def oidc_provider() -> Iterator[str]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: the external-provider login test needs Node.js "
                    "(`make system-deps` installs it)")
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail(f"the npm package oidc-provider is not installed in {OIDC_DIR}: run "
                    "`make node-deps` (npm install there)")
    port = _free_port()
    proc = subprocess.Popen([node, str(OIDC_DIR / "provider.mjs"), str(port)], cwd=OIDC_DIR,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening on" not in line:
            proc.kill()
            pytest.fail(f"oidc-provider did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
        yield line.split("listening on", 1)[1].strip()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


class Forms(HTMLParser):
    """Every <form> of a page: action, method and the named inputs inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._current: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self._current = {"action": a.get("action") or "", "method": (a.get("method") or "get").lower(),
                             "fields": {}}
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and a.get("name"):
            self._current["fields"][a["name"]] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def play_the_person(url: str, login: str) -> str:
    """Open the complete verification URL and click through the provider's pages."""
    http = requests.Session()
    page = http.get(url, timeout=10)
    for _ in range(8):
        assert page.status_code == 200, (page.status_code, page.text[:500])
        parser = Forms()
        parser.feed(page.text)
        if not parser.forms:
            return page.text
        form = parser.forms[0]
        fields = dict(form["fields"])
        if "login" in fields or "password" in fields:
            fields.update({"login": login, "password": "any"})
        page = http.post(urljoin(page.url, form["action"]), data=fields, timeout=10)
    raise AssertionError("the provider's pages did not end")


def run_hoop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(HOOP + list(args), capture_output=True, text=True, timeout=120,
                          check=False, env=dict(os.environ))


def test_login_against_external_oidc_provider(oidc_provider: str, make_server: Any,
                                              clean_env: Path) -> None:
    issuer = oidc_provider
    doc = requests.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
    assert doc["device_authorization_endpoint"]

    srv = make_server(oidc={"issuer": issuer, "client_id": "hoop-cli",
                            "scopes": ["openid", "email", "profile", "offline_access", "groups"]},
                      roles={"admin": ["admins"]},
                      connections={"default": {"credentials": "vend", "role_arn": "arn:aws:iam::123456789012:role/dev"}})
    config = requests.get(srv.url + "/api/v1/config", timeout=10).json()
    assert config["issuer"] == issuer and config["dev_idp"] is False
    assert requests.get(srv.url + "/idp/.well-known/openid-configuration", timeout=10).status_code == 404

    proc = subprocess.Popen([*HOOP, "login", "--server", srv.url, "--no-browser"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        assert lines[0].startswith(f"To sign in, open {issuer}/device"), lines
        assert lines[1].startswith("and enter the code: "), lines
        complete = lines[2].split("Or open: ", 1)[1].strip()
        final = play_the_person(complete, "alice")
        assert "Sign-in Success" in final or "success" in final.lower()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"Logged in to {srv.url} as alice@example.test" in out

    session = json.loads((clean_env / "cache" / "session.json").read_text())
    assert session["issuer"] == issuer
    assert session["id_token"] not in out + err

    who = run_hoop("whoami", "--json")
    assert who.returncode == 0, who.stderr
    me = json.loads(who.stdout)
    assert me["subject"] == "alice" and me["email"] == "alice@example.test"
    assert me["groups"] == ["admins", "developers"] and "admin" in me["roles"]

    # an authenticated endpoint beyond whoami: open a session with the provider's token
    opened = requests.post(srv.url + "/api/v1/sessions", timeout=10,
                           headers={"Authorization": "Bearer " + session["id_token"]},
                           json={"agent": "e2e", "host": "localhost", "cwd": "/", "connection": "default"})
    assert opened.status_code in (200, 201), opened.text

    # silent refresh through the provider's token endpoint
    from hoopcli.config import load
    from hoopcli.identity import tokens as auth
    from hoopcli.paths import Layout

    session["expires_at"] = 0
    (clean_env / "cache" / "session.json").write_text(json.dumps(session))
    layout = Layout.from_env()
    renewed = auth.id_token(layout, load(layout=layout))
    # refreshed (the provider may mint the same bytes within one second, so check the session)
    assert json.loads((clean_env / "cache" / "session.json").read_text())["expires_at"] > 1e9
    assert requests.get(srv.url + "/api/v1/whoami", timeout=10,
                        headers={"Authorization": "Bearer " + renewed}).json()["subject"] == "alice"

    bye = run_hoop("logout")
    assert bye.returncode == 0 and "revoked" in bye.stdout, bye.stdout + bye.stderr
    assert run_hoop("whoami").returncode == 65
