"""The agent is not its user (issue 14): decisions an agent running as its user cannot make.

The agent runs as the same OS user and reads the same HOOP_HOME: it holds the user's refresh
token and can mint fresh ID tokens at will. Each attack below succeeded before the fix:

- self-approval through the CLI (`hoop approvals approve` with the stored login);
- a decision POST that claims `"channel": "terminal"` (or "web") for a rule limited to it;
- self-approval with an ID token freshly minted from the stored refresh token;

and what still works: the requester approving in the console after a fresh sign-in (its
`auth_time` after the request), other approvers, `presence: none` on purpose (with a warning
from `hoop policy validate`), and a Slack click by an approver who has only run `hoop login`.
The same step-up in a real browser, at the dev IdP and at node `oidc-provider`, is
tests/web/test_console_step_up.py.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from approvals_helpers import PASSWORDS, ConsoleSession, approve_with_fresh_sign_in, local_users
from fakes.slack import FakeSlack, interaction_payload, signed_interaction

from hoopcli.cli import main as hoop_main
from hoopcli.client import Client
from hoopcli.identity import tokens as auth
from hoopcli.paths import Layout

ROLE = "arn:aws:iam::123456789012:role/hoop-agent"
POLICY = """\
version: 1
rules:
  - id: terminal-only
    effect: review
    match: {actions: ["s3:DeleteBucket"]}
    review: {approvers: [self], channels: [terminal]}
  - id: console-only
    effect: review
    match: {actions: ["s3:PutBucketTagging"]}
    review: {approvers: ["role:approver"], channels: [web]}
  - id: confirm-only
    effect: review
    match: {actions: ["s3:CreateBucket"]}
    review: {approvers: [self], presence: none}
"""


@pytest.fixture
def srv(make_server: Any, tmp_path: Path) -> Any:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    return make_server(policy_file=str(policy),
                       users=local_users({"alice": ("developers",), "bob": ("approvers",)}),
                       connections={"default": {"credentials": "vend", "role_arn": ROLE, "region": "us-east-1"}})


def device_login(srv: Any, user: str) -> dict[str, Any]:
    """`hoop login` as the person does it: device code, sign-in form, token. -> the token response."""
    http = requests.Session()
    start = http.post(srv.url + "/idp/device/code", data={"client_id": "hoop-cli",
                                                            "scope": "openid email profile groups offline_access"},
                      timeout=10).json()
    page = http.get(start["verification_uri_complete"], timeout=10)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    done = http.post(srv.url + "/idp/device", timeout=10, data={
        "csrf_token": csrf, "user_code": start["user_code"], "username": user, "password": PASSWORDS[user],
        "action": "approve"})
    assert done.status_code == 200, done.text
    tokens = http.post(srv.url + "/idp/token", timeout=10, data={
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": start["device_code"],
        "client_id": "hoop-cli"}).json()
    assert "refresh_token" in tokens and "id_token" in tokens, tokens
    return dict(tokens)


def claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def request(srv: Any, token: str, argv: list[str]) -> dict[str, Any]:
    item = Client(srv.url, token=token).post("/api/v1/approvals", json={"argv": argv, "connection": "default"}).json()
    assert item["status"] == "pending", item
    return dict(item)


def status(srv: Any, token: str, approval_id: str) -> str:
    return str(Client(srv.url, token=token).get(f"/api/v1/approvals/{approval_id}").json()["status"])


def logged_in_home(srv: Any, tmp_path: Path, monkeypatch: Any) -> tuple[Path, dict[str, Any]]:
    """alice's HOOP_HOME after a real device-flow login: what the agent running as her can read."""
    tokens = device_login(srv, "alice")
    home = tmp_path / "alice-home"
    meta = {"server": srv.url, "issuer": srv.url + "/idp", "client_id": "hoop-cli",
            "token_endpoint": srv.url + "/idp/token"}
    auth.store_tokens(Layout(home), "file", meta, tokens)
    monkeypatch.setenv("HOOP_HOME", str(home))
    monkeypatch.setenv("HOOP_SERVER", srv.url)
    monkeypatch.setenv("HOOP_TOKEN_STORE", "file")
    return home, tokens


def test_the_cli_cannot_approve_the_requesters_own_call(srv: Any, monkeypatch: Any, capsys: Any,
                                                        tmp_path: Path) -> None:
    """Attack: `hoop approvals approve` with the login in HOOP_HOME, the agent's only credential."""
    _home, tokens = logged_in_home(srv, tmp_path, monkeypatch)
    item = request(srv, tokens["id_token"], ["s3", "rm", "s3://mine/key"])   # defaults: review by self, any channel
    assert item["channels"] == ["terminal", "cli", "slack", "web"]
    capsys.readouterr()
    code = hoop_main(["approvals", "approve", item["id"]])
    err = capsys.readouterr().err
    assert code == 1
    assert err == (f"hoop: approving your own request needs proof that you are there, which a stored or "
                   f"refreshed login cannot give: open {item['id']} in the hoop console and sign in again "
                   f"(or use a passkey); open {srv.url}/approvals/{item['id']} in a browser\n")
    assert status(srv, tokens["id_token"], item["id"]) == "pending"
    # the person: opens the URL, signs in again, approves
    approve_with_fresh_sign_in(srv.url, "alice", item["id"])
    final = Client(srv.url, token=tokens["id_token"]).get(f"/api/v1/approvals/{item['id']}").json()
    assert (final["status"], final["channel"], final["approver"]) == ("approved", "web", "alice@example.com")
    assert [(e["event"], e["channel"]) for e in final["events"]] == [
        ("requested", None), ("refused", "cli"), ("approved", "web")]


def test_a_refreshed_token_cannot_approve_either(srv: Any, monkeypatch: Any, capsys: Any, tmp_path: Path) -> None:
    """Attack: the refresh token in HOOP_HOME mints a brand-new ID token after the request was
    opened; it carries the time of the original sign-in, so it proves nothing."""
    home, tokens = logged_in_home(srv, tmp_path, monkeypatch)
    time.sleep(1.1)
    item = request(srv, tokens["id_token"], ["s3", "rm", "s3://refreshed/key"])
    session = json.loads((home / "cache" / "session.json").read_text())
    session["expires_at"] = 0                       # make the CLI refresh before it calls the server
    (home / "cache" / "session.json").write_text(json.dumps(session))
    time.sleep(1.1)
    capsys.readouterr()
    code = hoop_main(["approvals", "approve", item["id"]])
    err = capsys.readouterr().err
    renewed = json.loads((home / "cache" / "session.json").read_text())["id_token"]
    assert renewed != tokens["id_token"] and claims(renewed)["iat"] > claims(tokens["id_token"])["iat"]
    assert claims(renewed)["iat"] > item_time(item)                                  # minted after the request
    assert code == 1 and "needs proof that you are there" in err
    assert claims(renewed)["auth_time"] == claims(tokens["id_token"])["auth_time"]   # a refresh is no sign-in
    # nor does the raw API with the fresh token, whatever channel it claims
    r = Client(srv.url, token=renewed).post(f"/api/v1/approvals/{item['id']}/decision", expect=(403,),
                                            json={"decision": "approve", "channel": "web"})
    assert r.status == 403
    assert status(srv, renewed, item["id"]) == "pending"


def item_time(item: dict[str, Any]) -> float:
    from datetime import datetime

    return datetime.fromisoformat(str(item["requested_at"]).replace("Z", "+00:00")).timestamp()


def test_a_decision_body_cannot_claim_its_channel(srv: Any) -> None:
    """Attack: the decision POST says `"channel": "terminal"` for a terminal-only rule (and
    `"web"` for a console-only one). The server takes the channel from the route: cli."""
    alice = srv.token("alice", email="alice@example.com", groups=["developers"])
    bob = srv.token("bob", email="bob@example.com", groups=["approvers"])
    mine = request(srv, alice, ["s3", "rb", "s3://terminal-only"])
    assert (mine["rule"], mine["channels"]) == ("terminal-only", ["terminal"])
    for claimed in ("terminal", "web", "cli"):
        r = Client(srv.url, token=alice).post(f"/api/v1/approvals/{mine['id']}/decision", expect=(403,),
                                              json={"decision": "approve", "channel": claimed})
        assert r.status == 403 and "needs proof that you are there" in r.json()["detail"]
    assert status(srv, alice, mine["id"]) == "pending"

    tagged = request(srv, alice, ["s3api", "put-bucket-tagging", "--bucket", "b", "--tagging",
                                  "TagSet=[{Key=k,Value=v}]"])
    assert tagged["rule"] == "console-only"
    r = Client(srv.url, token=bob).post(f"/api/v1/approvals/{tagged['id']}/decision", expect=(403,),
                                        json={"decision": "approve", "channel": "web"})
    assert r.status == 403 and r.json()["detail"] == "this rule takes decisions only via web"
    assert status(srv, alice, tagged["id"]) == "pending"
    # a channel the old API never knew is still bad input
    r = Client(srv.url, token=bob).post(f"/api/v1/approvals/{tagged['id']}/decision", expect=(422,),
                                        json={"decision": "approve", "channel": "slack"})
    assert r.status == 422
    # bob in the console: web, as the rule wants (no step-up: he is not the requester)
    answer = ConsoleSession(srv.url, "bob").decide(tagged["id"])
    assert answer.status_code == 303, answer.text
    assert status(srv, alice, tagged["id"]) == "approved"
    # and alice's terminal-only request: the step-up in the console is what `terminal` now means
    approve_with_fresh_sign_in(srv.url, "alice", mine["id"])
    assert status(srv, alice, mine["id"]) == "approved"


def test_a_console_session_from_before_the_request_does_not_count(srv: Any) -> None:
    """A sign-in older than the request is no proof of presence: the page asks for a new one and
    an Approve posted anyway is refused; after signing in again it goes through."""
    alice = srv.token("alice", email="alice@example.com", groups=["developers"])
    console = ConsoleSession(srv.url, "alice")          # signed in, then the agent asks
    time.sleep(1.1)
    item = request(srv, alice, ["s3", "rb", "s3://old-session"])
    page = console.page(item["id"])
    assert 'id="step-up-sign-in"' in page and "Sign in again to approve" in page
    assert 'value="approve"' not in page and 'value="deny"' in page
    refused = console.decide(item["id"])
    assert refused.status_code == 403 and "older than this request" in refused.text
    assert status(srv, alice, item["id"]) == "pending"
    time.sleep(1.1)                                    # auth_time counts whole seconds
    console.sign_in(f"/approvals/{item['id']}", fresh=True)
    assert 'id="step-up"' not in console.page(item["id"])
    assert console.decide(item["id"]).status_code == 303
    assert status(srv, alice, item["id"]) == "approved"


def test_presence_none_is_a_deliberate_confirmation(srv: Any, tmp_path: Path, capsys: Any) -> None:
    alice = srv.token("alice", email="alice@example.com", groups=["developers"])
    item = request(srv, alice, ["s3", "mb", "s3://confirm-only"])
    assert (item["rule"], item["presence"]) == ("confirm-only", "none")
    decided = Client(srv.url, token=alice).post(f"/api/v1/approvals/{item['id']}/decision",
                                                json={"decision": "approve"}).json()
    assert (decided["status"], decided["channel"]) == ("approved", "cli")
    # and `hoop policy validate` says what it gives up
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY)
    capsys.readouterr()
    assert hoop_main(["policy", "validate", str(policy)]) == 0
    captured = capsys.readouterr()
    err = captured.out + captured.err
    assert f"{policy}:14:43: warning: rule 'confirm-only'.review: presence: none lets the requester's " \
           "stored login approve their own request" in err
    assert "not against a hostile agent" in err


def test_the_dev_idp_reports_auth_time_and_keeps_it_on_refresh(srv: Any) -> None:
    before = int(time.time())
    tokens = device_login(srv, "bob")
    first = claims(tokens["id_token"])
    assert before - 1 <= first["auth_time"] <= int(time.time()) + 1
    time.sleep(1.1)
    refreshed = requests.post(srv.url + "/idp/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": "hoop-cli"}).json()
    again = claims(refreshed["id_token"])
    assert again["iat"] > first["iat"] and again["auth_time"] == first["auth_time"]
    doc = requests.get(srv.url + "/idp/.well-known/openid-configuration", timeout=10).json()
    assert "auth_time" in doc["claims_supported"] and doc["prompt_values_supported"] == ["login"]


def test_a_slack_approver_who_only_ran_hoop_login_is_known(make_server: Any) -> None:
    """`hoop login` ends with GET /api/v1/whoami: that is enough for the server to match the
    approver's Slack click by email (before, they had to call an approvals endpoint first)."""
    secret = "presence-slack-secret"
    with FakeSlack(token="xoxb-p", users={"bob@example.com": "U0BOB"}) as slack:
        srv = make_server(slack={"bot_token": "xoxb-p", "signing_secret": secret, "channel": "C0P",
                                 "api_url": slack.api_url},
                          connections={"default": {"credentials": "vend", "role_arn": ROLE, "region": "us-east-1"}})
        bob = srv.token("bob", email="bob@example.com", groups=["approvers"])
        assert Client(srv.url, token=bob).get("/api/v1/whoami").json()["subject"] == "bob"   # = hoop login
        alice = srv.token("alice", email="alice@example.com", groups=["developers"])
        item = Client(srv.url, token=alice).post("/api/v1/approvals", json={
            "argv": ["iam", "attach-role-policy", "--role-name", "r", "--policy-arn",
                     "arn:aws:iam::aws:policy/ReadOnlyAccess"], "connection": "default", "reason": "OPS-1"}).json()
        assert item["approvers"] == ["role:approver"]
        import urllib.request

        body, headers = signed_interaction(secret, interaction_payload(item["id"], "approve", "U0BOB",
                                                                       channel="C0P", message_ts="1.1"))
        req = urllib.request.Request(srv.url + "/api/v1/slack/interactions", data=body, headers=headers,
                                     method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.loads(resp.read())["ok"] is True
        final = Client(srv.url, token=alice).get(f"/api/v1/approvals/{item['id']}").json()
        assert (final["status"], final["approver"], final["channel"]) == ("approved", "bob@example.com", "slack")
