"""Findings where people look: `hoop findings list/show/release`, the session's timeline
(`hoop sessions show`, the API), the console's findings pages, and Slack's approvals channel."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from detections_helpers import AUDITOR, Script, findings, settle

SECRETS = [f"prod/s{i}" for i in range(20)]


@pytest.fixture
def hoop(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str, str]]:
    from hoopcli.cli import main

    def run(srv: Any, sub: str, groups: tuple[str, ...], *args: str) -> tuple[int, str, str]:
        from hoopcli.identity.tokens import session_file
        from hoopcli.paths import Layout, ensure_dir

        monkeypatch.setenv("HOOP_SERVER", srv.url)
        path = session_file(Layout.from_env(os.environ))
        ensure_dir(path.parent)
        path.write_text(json.dumps({"server": srv.url, "expires_at": time.time() + 3600,
                                    "id_token": srv.token(sub, email=f"{sub}@example.com", groups=groups)}))
        capsys.readouterr()
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def held(make_server: Any) -> tuple[Any, Script]:
    srv = make_server(roles=AUDITOR)
    s = Script(srv)
    s.gateway(s.call("s3", "ListBuckets"), *[s.call("secretsmanager", "GetSecretValue", {"SecretId": n})
                                             for n in SECRETS])
    settle(srv)
    return srv, s


def test_findings_list_show_and_release(held: tuple[Any, Script], hoop: Callable[..., tuple[int, str, str]]) -> None:
    srv, s = held
    code, out, _ = hoop(srv, "audrey", ("auditors",), "findings", "list", "--json", "--session", s.session,
                        "--since", "1h")
    assert code == 0
    [f] = json.loads(out)
    assert (f["rule"], f["held"], f["session_id"]) == ("mass-secret-reads", True, s.session)
    code, out, _ = hoop(srv, "audrey", ("auditors",), "findings", "list")
    assert code == 0 and f["id"] in out and "hold (held)" in out and "secrets read: 20 in 10m" in out
    code, out, _ = hoop(srv, "audrey", ("auditors",), "findings", "list", "--since", "2999-01-01T00:00:00Z")
    assert (code, out) == (0, "no findings\n")
    code, _out, err = hoop(srv, "audrey", ("auditors",), "findings", "list", "--since", "yesterday")
    assert code == 2 and err.startswith("hoop: --since: give an RFC 3339 time")

    code, out, _ = hoop(srv, "audrey", ("auditors",), "findings", "show", f["id"])
    assert code == 0
    assert f"id:        {f['id']}" in out and "hold:      HELD (hoop: session held by finding" in out
    assert "records:   20" in out and "secretsmanager.GetSecretValue -> 200" in out
    code, out, _ = hoop(srv, "audrey", ("auditors",), "findings", "show", f["id"], "--json")
    shown = json.loads(out)
    assert shown["hold"]["held"] is True and len(shown["record_entries"]) == 20

    code, _out, err = hoop(srv, "alice", ("approvers",), "findings", "release", s.session)
    assert code != 0 and "released by an approver other than its own user" in err
    code, out, _ = hoop(srv, "bob", ("approvers",), "findings", "release", s.session, "--reason", "ok")
    assert code == 0 and out == f"released session {s.session} (held by {f['id']}, mass-secret-reads)\n"
    code, _out, err = hoop(srv, "bob", ("approvers",), "findings", "release", s.session)
    assert code != 0 and "is not held" in err
    assert findings(srv, s.session)[0]["held"] is False


def test_findings_in_the_sessions_timeline(held: tuple[Any, Script], hoop: Callable[..., tuple[int, str, str]]) -> None:
    srv, s = held
    body = httpx.get(f"{srv.url}/api/v1/sessions/{s.session}", headers=srv.headers("alice"), timeout=10).json()
    assert [f["rule"] for f in body["findings"]] == ["mass-secret-reads"]
    code, out, _ = hoop(srv, "alice", (), "sessions", "show", s.session)
    assert code == 0
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if "FINDING fnd_" in line)
    assert "mass-secret-reads (high, session held, held): secrets read: 20 in 10m" in lines[at]
    assert '"SecretId": "prod/s19"' in "\n".join(lines[at - 3:at])       # right after the 20th read
    assert sum("FINDING" in line for line in lines) == 1


def _console(srv: Any, sub: str, roles: tuple[str, ...]) -> httpx.Client:
    from hoopcli.server.web.console import console_key
    from hoopcli.server.web.cookies import SESSION_COOKIE, ConsoleUser, sign

    class _Req:
        app = srv.app

    user = ConsoleUser(sub, f"{sub}@example.com", sub, (), frozenset(roles), "default", "csrf-" + sub,
                       time.time() + 600)
    cookie = sign(console_key(_Req()), "session", user.to_cookie())  # type: ignore[arg-type]
    return httpx.Client(base_url=srv.url, cookies={SESSION_COOKIE: cookie}, timeout=10, follow_redirects=False)


def test_console_findings_pages_and_release(held: tuple[Any, Script]) -> None:
    srv, s = held
    [f] = findings(srv, s.session)
    with _console(srv, "audrey", ("auditor",)) as c:
        page = c.get("/findings")
        assert page.status_code == 200 and f["id"] in page.text and "mass-secret-reads" in page.text
        assert 'href="/findings" aria-current="page"' in page.text
        detail = c.get(f"/findings/{f['id']}")
        assert detail.status_code == 200 and "Records that raised it (20)" in detail.text
        assert "Release the session" not in detail.text                  # auditors do not release
        session = c.get(f"/sessions/{s.session}")
        assert "Findings (1)" in session.text and f"/findings/{f['id']}" in session.text
        assert c.get("/findings/fnd_0000000000000000").status_code == 404
    with _console(srv, "bob", ("approver",)) as c:
        detail = c.get(f"/findings/{f['id']}")
        assert "Release the session" in detail.text
        refused = c.post(f"/findings/release/{s.session}", data={"csrf_token": "wrong"})
        assert refused.status_code == 403
        done = c.post(f"/findings/release/{s.session}", data={"csrf_token": "csrf-bob", "reason": "fine",
                                                               "back": f"/findings/{f['id']}"})
        assert done.status_code == 303 and done.headers["location"] == f"/findings/{f['id']}"
        assert "Released" in c.get(f"/findings/{f['id']}").text


def test_a_finding_is_posted_to_the_approvals_channel(make_server: Any) -> None:
    from tests.fakes.slack import FakeSlack

    with FakeSlack(token="xoxb-test") as slack:
        srv = make_server(roles=AUDITOR, slack={"bot_token": "xoxb-test", "signing_secret": "s", "channel": "C1",
                                                "api_url": slack.api_url})
        s = Script(srv)
        s.gateway(s.call("cloudtrail", "DeleteTrail", {"Name": "org"}, effect="deny"))
        settle(srv)
        deadline = time.monotonic() + 5
        while not slack.messages and time.monotonic() < deadline:
            time.sleep(0.02)
        [msg] = slack.messages.values()
        assert msg["channel"] == "C1" and "defence-evasion" in json.dumps(msg["blocks"])
        assert "hoop findings release" in json.dumps(msg["blocks"])
        assert findings(srv, s.session)[0]["id"] in msg["text"]


def test_malformed_ids_are_4xx(make_server: Any) -> None:
    srv = make_server(roles=AUDITOR)
    h = srv.headers("bob", groups=("approvers",))
    assert httpx.get(srv.url + "/api/v1/findings", params={"session_id": "a\x00b"}, headers=h).status_code == 400
    assert httpx.get(srv.url + "/api/v1/findings/fnd_%00", headers=h).status_code == 404
    assert httpx.get(srv.url + "/api/v1/findings/fnd_0123456789abcdef", headers=h).status_code == 404
    assert httpx.post(srv.url + "/api/v1/sessions/a%00b/release", json={}, headers=h).status_code == 404
    assert httpx.post(srv.url + "/api/v1/sessions/s1/release", json={},
                      headers=srv.headers("alice")).status_code == 403          # not an approver
