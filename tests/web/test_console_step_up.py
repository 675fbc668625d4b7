"""Self-approval in a real browser (headless Chromium): the requester proves presence with a fresh
sign-in (prompt=login, max_age=0) after the request was opened, at both identity providers: the
built-in development one and node `oidc-provider` (an independent, standards-compliant one).

An agent running as the requester holds the requester's stored login (and can refresh it), but it
cannot sign in at the identity provider; a console sign-in from before the request does not count
either (issue 14, "The agent is not its user")."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from console_kit import PASSWORDS, sign_in
from test_console import client_home, start_waiting_shim, wait_pending

OIDC_DIR = Path(__file__).resolve().parents[1] / "e2e" / "oidc"


def step_up_and_approve(page: Any, url: str, approval_id: str, fill_sign_in: Any) -> None:
    """On the approval page: no Approve button yet, the step-up link, a fresh sign-in, Approve."""
    page.goto(f"{url}/approvals/{approval_id}")
    page.wait_for_selector("#step-up")
    assert page.locator("button.approve").count() == 0
    assert "This is your own request" in page.locator("#step-up").inner_text()
    page.click("#step-up-sign-in")
    fill_sign_in(page)
    page.wait_for_url(f"{url}/approvals/{approval_id}")
    assert page.locator("#step-up").count() == 0, page.locator("#step-up").inner_text()
    page.fill("#reason", "I am here")
    page.click("button.approve")
    page.wait_for_selector("#status[data-status=approved]")


def test_self_approval_with_a_fresh_sign_in_at_the_dev_idp(console: Any, new_page: Any, tmp_path: Path) -> None:
    page = new_page()
    sign_in(page, console, "bob", "/policy")             # a console session from before the request
    time.sleep(1.1)
    env = client_home(console, tmp_path, "bob")
    proc = start_waiting_shim(env, "s3", "mb", "s3://stepped-up")
    pending = wait_pending(console)
    assert pending["requester"] == "bob@example.test" and "self" in pending["approvers"]
    # auth_time counts whole seconds: a person never signs in within the request's own second
    time.sleep(1.1)

    def fill(p: Any) -> None:
        p.wait_for_selector("#username")
        assert "prompt=login" in p.url and "max_age=0" in p.url
        p.fill("#username", "bob")
        p.fill("#password", PASSWORDS["bob"])
        p.click("button[type=submit]")

    step_up_and_approve(page, console.url, pending["id"], fill)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err                  # the held command ran
    assert f"approval {pending['id']} approved by bob@example.test via web" in err
    final = requests.get(f"{console.url}/api/v1/approvals/{pending['id']}", timeout=10,
                         headers=console.headers("bob", groups=["developers"])).json()
    assert final["consumed_at"], final          # the held call got credentials for exactly itself
    approved = next(e for e in final["events"] if e["event"] == "approved")
    assert approved["channel"] == "web" and "[presence: sign-in at " in approved["detail"]


# -- node oidc-provider ---------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def external(make_server: Any) -> Iterator[tuple[str, Any]]:
    """node oidc-provider on a free port, and a hoop server that uses it (its console's callback
    registered at the provider). -> (issuer, server)"""
    node = shutil.which("node")
    if node is None or not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("node and the npm package oidc-provider are needed (`make node-deps`)")
    port = _free_port()
    issuer = f"http://127.0.0.1:{port}"
    srv = make_server(oidc={"issuer": issuer, "client_id": "hoop-cli",
                            "scopes": ["openid", "email", "profile", "groups"]},
                      roles={"admin": ["admins"]},
                      connections={"default": {"credentials": "vend",
                                               "role_arn": "arn:aws:iam::123456789012:role/dev"}})
    proc = subprocess.Popen([node, str(OIDC_DIR / "provider.mjs"), str(port), srv.url + "/auth/callback"],
                            cwd=OIDC_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, (line, proc.stderr.read() if proc.stderr else "")
        yield issuer, srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def device_login(issuer: str, login: str) -> str:
    """`hoop login` at the provider, the person's part played over HTTP -> an ID token."""
    http = requests.Session()
    start = http.post(issuer + "/device/auth", timeout=10,
                      data={"client_id": "hoop-cli", "scope": "openid email profile groups offline_access"}).json()
    page = http.get(start["verification_uri_complete"], timeout=10)
    for _ in range(8):
        forms = re.findall(r'<form[^>]*action="([^"]*)"[^>]*>(.*?)</form>', page.text, re.S)
        if not forms:
            break
        action, inner = forms[0]
        fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', inner))
        if 'name="login"' in inner:
            fields.update({"login": login, "password": "any"})
        page = http.post(requests.compat.urljoin(page.url, action), data=fields, timeout=10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = http.post(issuer + "/token", timeout=10, data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": start["device_code"],
            "client_id": "hoop-cli"}).json()
        if "id_token" in answer:
            return str(answer["id_token"])
        time.sleep(1)
    raise AssertionError(f"no token from the device flow: {answer}")


def test_self_approval_with_a_fresh_sign_in_at_oidc_provider(external: tuple[str, Any], new_page: Any) -> None:
    issuer, srv = external
    page = new_page()

    def fill(p: Any) -> None:
        p.wait_for_selector("input[name=login]")
        p.fill("input[name=login]", "alice")
        p.fill("input[name=password]", "any")
        p.click("button.login-submit")

    # signed in to the console (an SSO session at the provider too), then the agent asks
    page.goto(srv.url + "/policy")                  # (not a live page: it would reload on a new request)
    fill(page)
    page.wait_for_url(srv.url + "/policy")
    time.sleep(1.1)
    token = device_login(issuer, "alice")          # the login in HOOP_HOME that the agent uses
    item = requests.post(srv.url + "/api/v1/approvals", timeout=10, headers={"Authorization": "Bearer " + token},
                         json={"argv": ["s3", "mb", "s3://ext-stepped-up"], "connection": "default"}).json()
    assert item["status"] == "pending" and "self" in item["approvers"], item
    refused = requests.post(f"{srv.url}/api/v1/approvals/{item['id']}/decision", timeout=10,
                            headers={"Authorization": "Bearer " + token},
                            json={"decision": "approve", "channel": "terminal"})
    assert refused.status_code == 403 and "needs proof that you are there" in refused.json()["detail"]

    # the provider has a session, yet prompt=login makes it ask again; its auth_time is then fresh
    # (auth_time counts whole seconds: a person never signs in within the request's own second)
    time.sleep(1.1)
    step_up_and_approve(page, srv.url, item["id"], fill)
    final = requests.get(f"{srv.url}/api/v1/approvals/{item['id']}", timeout=10,
                         headers={"Authorization": "Bearer " + token}).json()
    assert (final["status"], final["channel"], final["approver"]) == ("approved", "web", "alice@example.test")


# -- a passkey instead of signing in again (Chromium's virtual authenticator over CDP) ------------

class LocalhostServer:
    """A hoop server whose console is at http://localhost:PORT: WebAuthn needs a host name as its
    relying party, and 127.0.0.1 is not one."""

    def __init__(self, home: Path, **overrides: Any) -> None:
        import os
        import threading

        import boto3
        import uvicorn

        from hoopcli.server.app import create_app
        from hoopcli.server.settings import load_settings

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        port = self.sock.getsockname()[1]
        self.url = f"http://localhost:{port}"
        self.settings = load_settings(env=os.environ, listen=f"127.0.0.1:{port}", public_url=self.url,
                                      home=str(home), **overrides)
        self.app = create_app(self.settings, aws_session=boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"))
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False,
                                                    lifespan="on", timeout_graceful_shutdown=2))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)

    def headers(self, sub: str, groups: Any = ()) -> dict[str, str]:
        from hoopcli.server.idp.keys import mint_id_token

        return {"Authorization": "Bearer " + mint_id_token(self.settings, sub, f"{sub}@example.test", list(groups))}

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.app.state.db.dispose()


@pytest.fixture
def localhost_console(tmp_path: Path, clean_env: Path) -> Iterator[LocalhostServer]:
    from console_kit import users_config

    srv = LocalhostServer(tmp_path / "srv", users=users_config(),
                          connections={"default": {"credentials": "vend", "region": "us-east-1",
                                                   "role_arn": "arn:aws:iam::123456789012:role/agent"}})
    try:
        yield srv
    finally:
        srv.stop()


def test_self_approval_with_a_passkey(localhost_console: LocalhostServer, new_page: Any) -> None:
    srv = localhost_console
    page = new_page()
    cdp = page.context.new_cdp_session(page)             # a platform authenticator that verifies the user
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    sign_in(page, srv, "bob", "/passkeys")                  # a fresh sign-in may add a passkey
    page.click("#passkey-add")
    try:
        page.wait_for_selector("#passkey-list tbody td code")   # the page reloads with the new passkey
    except Exception:
        raise AssertionError(page.locator("#passkey-status").inner_text()) from None
    time.sleep(1.1)
    item = requests.post(srv.url + "/api/v1/approvals", timeout=10, headers=srv.headers("bob", ["developers"]),
                         json={"argv": ["s3", "mb", "s3://passkeyed"], "connection": "default"}).json()
    assert item["status"] == "pending" and "self" in item["approvers"], item
    page.goto(f"{srv.url}/approvals/{item['id']}")
    page.wait_for_selector("#step-up")
    assert page.locator("button.approve[value=approve]").count() == 0
    page.click("#passkey-approve")
    try:
        page.wait_for_selector("#status[data-status=approved]")
    except Exception:
        raise AssertionError(page.locator("#passkey-status").inner_text()) from None
    final = requests.get(f"{srv.url}/api/v1/approvals/{item['id']}", timeout=10,
                         headers=srv.headers("bob", ["developers"])).json()
    approved = next(e for e in final["events"] if e["event"] == "approved")
    assert (final["channel"], final["approver"]) == ("web", "bob@example.test")
    assert "[presence: passkey at " in approved["detail"]
