"""The web console end to end in headless Chromium: sign-in, sessions, approvals, policy.

Screenshots of each page are written to docs/console/ for docs/console.md."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import boto3
import requests
from console_kit import shot, sign_in

from hoopcli.agents.shimfile import install_shim
from hoopcli.identity import tokens as auth
from hoopcli.paths import Layout
from hoopcli.record import shapes as recorder

XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


def seed_session(server, sub: str, agent: str, argv: list[str], stdout: str = "", exit_code: int = 0,
                 decision: str = "allow") -> str:
    session_id = uuid.uuid4().hex
    command_id = uuid.uuid4().hex
    start = recorder.record_start(
        command_id=command_id, session_id=session_id, seq=1, user=f"{sub}@example.test", agent=agent,
        host="laptop", cwd="/work", connection="default", argv=argv,
        invocation={"service": argv[0], "operation": argv[1] if len(argv) > 1 else None,
                    "actions": ["s3:ListAllMyBuckets"], "access_level": "List", "api_operations": ["ListBuckets"]},
        decision={"effect": decision, "rule": "allow-reads", "reason": "reads are fine"})
    result = recorder.record_result(command_id=command_id, session_id=session_id, seq=1,
                                    exit_code=exit_code, stdout=stdout, stderr="",
                                    started_at=time.time() - 1, ended_at=time.time(),
                                    api_calls=[{"service": "s3", "operation": "ListBuckets", "params": {},
                                                "request_id": "REQ1", "http_status": 200, "error_code": None,
                                                "duration_ms": 12.5}])
    resp = requests.post(server.url + "/api/v1/records", json={"records": [start, result]},
                         headers=server.headers(sub, email=f"{sub}@example.test",
                                                groups=["developers"]), timeout=10)
    assert resp.status_code == 200 and len(resp.json()["accepted"]) == 2, resp.text
    seal = requests.post(server.url + "/api/v1/checkpoints", headers=server.headers("carol", groups=["auditors"]),
                         timeout=10)
    assert seal.status_code == 200, seal.text
    return session_id


def client_home(server, tmp_path, sub: str, groups=("developers",)) -> dict[str, str]:
    home = tmp_path / f"home-{sub}"
    token = server.token(sub, email=f"{sub}@example.test", groups=list(groups))
    meta = {"server": server.url, "issuer": server.url + "/idp", "client_id": "hoop-cli",
            "token_endpoint": server.url + "/idp/token"}
    auth.store_tokens(Layout(home), "file", meta, {"id_token": token})
    shim = install_shim(tmp_path / f"bin-{sub}", python=sys.executable)
    return {"HOOP_HOME": str(home), "HOOP_SERVER": server.url, "HOOP_NO_PROMPT": "1", "HOOP_APPROVAL_WAIT": "60",
            "PATH": f"{shim.parent}:/usr/bin:/bin", "HOME": str(tmp_path), "SHIM": str(shim)}


def start_waiting_shim(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([env["SHIM"], *args], env={k: v for k, v in env.items() if k != "SHIM"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_pending(server, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = requests.get(server.url + "/api/v1/approvals?status=pending",
                             headers=server.headers("alice", groups=["approvers"]), timeout=10).json()
        if items:
            return items[0]
        time.sleep(0.3)
    raise AssertionError("no pending approval appeared")


def test_sign_in_comes_back_and_finds_a_session_by_filter(console, new_page):
    mine = seed_session(console, "bob", "claude", ["s3", "ls"], stdout="2026-11-27 demo-logs\n")
    seed_session(console, "alice", "codex", ["sts", "get-caller-identity"])
    page = new_page()
    sign_in(page, console, "carol", "/sessions?agent=claude")
    assert "agent=claude" in page.url
    rows = page.locator("table.list tbody tr")
    assert rows.count() == 1
    assert "claude" in rows.first.inner_text()
    shot(page, "sessions")
    page.click(f"a[href='/sessions/{mine}']")
    page.wait_for_selector("#verification")
    assert page.locator("#verification").inner_text() == "verified", page.locator(".facts").inner_text()
    assert "$ aws s3 ls" in page.locator(".timeline").inner_text()
    assert "s3.ListBuckets" in page.locator(".calls").inner_text()
    page.select_option("#speed", "0")
    page.click("#play")
    page.wait_for_function("document.getElementById('terminal').textContent.includes('end of session')")
    assert "demo-logs" in page.locator("#terminal").inner_text()
    shot(page, "session")


def test_developer_sees_only_own_sessions(console, new_page):
    own = seed_session(console, "bob", "claude", ["s3", "ls"])
    other = seed_session(console, "alice", "codex", ["s3", "ls"])
    page = new_page()
    sign_in(page, console, "bob")
    text = page.locator("table.list").inner_text()
    assert own[:12] in text and other[:12] not in text
    resp = page.goto(console.url + f"/sessions/{other}")
    assert resp.status == 404


def test_approving_in_the_browser_lets_the_waiting_shim_proceed(console, new_page, tmp_path, moto_endpoint):
    env = client_home(console, tmp_path, "bob")
    proc = start_waiting_shim(env, "s3", "mb", "s3://console-approved")
    pending = wait_pending(console)
    page = new_page()
    sign_in(page, console, "alice", "/approvals")
    assert pending["id"] in page.locator("main").inner_text()
    shot(page, "approvals")
    page.click(f"a[href='/approvals/{pending['id']}']")
    page.wait_for_selector("form.decide")
    shot(page, "approval")
    page.fill("#reason", "fine for the test")
    page.click("button.approve")
    page.wait_for_selector("#status[data-status=approved]")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="y")
    assert "console-approved" in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_denying_with_a_reason_gives_the_agent_76(console, new_page, tmp_path):
    env = client_home(console, tmp_path, "bob")
    proc = start_waiting_shim(env, "s3", "rb", "s3://keep-me")
    pending = wait_pending(console)
    page = new_page()
    sign_in(page, console, "alice", f"/approvals/{pending['id']}")
    page.fill("#reason", "that bucket holds the audit logs")
    page.click("button.deny")
    page.wait_for_selector("#status[data-status=rejected]")
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 76
    assert "that bucket holds the audit logs" in err
    assert err.strip().splitlines()[-1].startswith("hoop: ")


def test_live_update_when_another_channel_decides(console, new_page, tmp_path):
    env = client_home(console, tmp_path, "bob")
    proc = start_waiting_shim(env, "s3", "mb", "s3://decided-elsewhere")
    pending = wait_pending(console)
    page = new_page()
    sign_in(page, console, "alice", f"/approvals/{pending['id']}")
    resp = requests.post(console.url + f"/api/v1/approvals/{pending['id']}/decision",
                         json={"decision": "approve", "reason": "from the CLI"},
                         headers=console.headers("alice", groups=["approvers"]), timeout=10)
    assert resp.status_code == 200, resp.text
    page.wait_for_selector("#status[data-status=approved]", timeout=15000)
    assert "cli" in page.locator("main").inner_text()
    proc.communicate(timeout=60)


def test_post_without_csrf_or_from_another_origin_is_refused(console, new_page, tmp_path):
    env = client_home(console, tmp_path, "bob")
    proc = start_waiting_shim(env, "s3", "mb", "s3://csrf-target")
    pending = wait_pending(console)
    page = new_page()
    sign_in(page, console, "alice", f"/approvals/{pending['id']}")
    url = console.url + f"/approvals/{pending['id']}/decision"
    no_token = page.request.post(url, form={"decision": "approve"})
    assert no_token.status == 403
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    cross = page.request.post(url, form={"decision": "approve", "csrf_token": token},
                              headers={"Origin": "http://evil.example"})
    assert cross.status == 403
    still = requests.get(console.url + f"/api/v1/approvals/{pending['id']}",
                         headers=console.headers("alice", groups=["approvers"]), timeout=10).json()
    assert still["status"] == "pending"
    proc.kill()
    proc.communicate()


def test_auditor_cannot_approve(console, new_page, tmp_path):
    env = client_home(console, tmp_path, "bob")
    proc = start_waiting_shim(env, "s3", "mb", "s3://auditor-target")
    pending = wait_pending(console)
    page = new_page()
    sign_in(page, console, "carol", f"/approvals/{pending['id']}")
    assert page.locator("form.decide").count() == 0
    assert "cannot decide" in page.locator("#why-not").inner_text()
    token = page.locator("form[action='/auth/logout'] input[name=csrf_token]").get_attribute("value")
    forced = page.request.post(console.url + f"/approvals/{pending['id']}/decision",
                               form={"decision": "approve", "csrf_token": token})
    assert forced.status == 403
    proc.kill()
    proc.communicate()


def test_hostile_content_is_shown_as_text(console, new_page, tmp_path):
    sid = seed_session(console, "bob", XSS, ["s3", "ls", XSS], stdout=XSS + "\n", exit_code=1)
    resp = requests.post(console.url + "/api/v1/approvals",
                         json={"argv": ["s3", "mb", "s3://x"], "connection": "default", "reason": XSS, "agent": XSS},
                         headers=console.headers("bob", email="bob@example.test", groups=["developers"]), timeout=10)
    assert resp.status_code in (200, 201), resp.text
    approval_id = resp.json()["id"]
    page = new_page()
    sign_in(page, console, "carol", f"/sessions?agent={requests.utils.quote(XSS)}")
    page.goto(console.url + f"/sessions/{sid}")
    page.select_option("#speed", "0")
    page.click("#play")
    page.wait_for_function("document.getElementById('terminal').textContent.includes('end of session')")
    page.goto(console.url + f"/approvals/{approval_id}")
    page.goto(console.url + "/approvals")
    assert page.evaluate("window.__pwned") is None
    assert XSS in page.locator("main").inner_text()


def test_a_stale_page_cannot_approve_an_expired_request(make_server, new_page, tmp_path):
    from console_kit import users_config

    server = make_server(users=users_config(), approval_ttl_seconds=10,
                         connections={"default": {"credentials": "vend", "role_arn": "arn:aws:iam::123456789012:role/agent",
                                                  "region": "us-east-1"}})
    resp = requests.post(server.url + "/api/v1/approvals",
                         json={"argv": ["s3", "mb", "s3://late"], "connection": "default"},
                         headers=server.headers("bob", email="bob@example.test", groups=["developers"]), timeout=10)
    assert resp.status_code in (200, 201), resp.text
    approval_id = resp.json()["id"]
    # a page left open without its live updates (JavaScript off): the form is stale
    page = new_page(javascript=False)
    sign_in(page, server, "alice", f"/approvals/{approval_id}")
    page.wait_for_selector("form.decide")
    time.sleep(11)
    page.click("button.approve")
    assert "expired" in page.locator("main").inner_text().lower()
    after = requests.get(server.url + f"/api/v1/approvals/{approval_id}",
                         headers=server.headers("alice", groups=["approvers"]), timeout=10).json()
    assert after["status"] == "expired"


def test_policy_page_shows_versions_and_diffs(console, new_page):
    admin = console.headers("root", email="root@example.test", groups=["admins"])
    for extra in ("", "\n  - id: deny-rb\n    effect: deny\n    match: {actions: [s3:DeleteBucket]}\n    reason: keep buckets\n"):
        body = ("version: 1\nrules:\n  - id: allow-reads\n    effect: allow\n"
                "    match: {access_levels: [List, Read]}\n" + extra)
        resp = requests.put(console.url + "/api/v1/policy", json={"source": body}, headers=admin, timeout=10)
        assert resp.status_code in (200, 201), resp.text
    page = new_page()
    sign_in(page, console, "carol", "/policy")
    assert "deny-rb" in page.locator("pre.source").inner_text()
    assert "+  - id: deny-rb" in page.locator("pre.diff").inner_text()
    assert page.locator("table.list tbody tr").count() == 2
    shot(page, "policy")
    page.click("a[href='/policy?version=1']")
    assert "deny-rb" not in page.locator("pre.source").inner_text()


def test_sign_out_and_unsigned_feed(console, new_page):
    page = new_page()
    sign_in(page, console, "bob")
    page.click("form[action='/auth/logout'] button")
    page.wait_for_selector("text=You are signed out")
    assert requests.get(console.url + "/approvals/feed", timeout=10).status_code == 401
    resp = requests.get(console.url + "/sessions", allow_redirects=False, timeout=10)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/auth/login?next=")
    forged = requests.get(console.url + "/sessions", cookies={"hoop_console": "e30.AAAA"},
                          allow_redirects=False, timeout=10)
    assert forged.status_code == 303


def test_gateway_calls_show_in_the_timeline_with_a_badge(console, new_page):
    from hoopcli.server.ledger import checkpoints as cp
    from hoopcli.server.ledger.calls import append_api_calls, gateway_record

    sid = seed_session(console, "bob", "claude", ["s3", "ls"], stdout="2026-11-27 demo-logs\n")
    later = time.time() + 5
    calls = [gateway_record(session_id=sid, service="s3", operation="DeleteObject", user="bob",
                            time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(later)),
                            decision={"effect": "allow", "rule": "allow-deletes", "reason": None},
                            actions=["s3:DeleteObject"], resources=["arn:aws:s3:::demo-logs/old.txt"],
                            params={"Bucket": "demo-logs", "Key": "old.txt"}, http_status=204,
                            request_id="GW-REQ-1", duration_ms=12.0, region="us-east-1"),
             gateway_record(session_id=sid, service="iam", operation="DeleteRole", user="bob",
                            time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(later + 1)),
                            decision={"effect": "deny", "rule": "no-iam", "reason": XSS},
                            error_code=XSS, params={"RoleName": XSS}, response_text=XSS,
                            http_status=403, duration_ms=1.5)]
    key = cp.SigningKey.load_or_create(console.settings.home)
    assert len(append_api_calls(console.db, key, "default", calls).result(timeout=30).accepted) == 2
    seal = requests.post(console.url + "/api/v1/checkpoints", headers=console.headers("carol", groups=["auditors"]),
                         timeout=10)
    assert seal.status_code == 200, seal.text
    page = new_page()
    sign_in(page, console, "carol", f"/sessions/{sid}")
    assert page.locator("#verification").inner_text() == "verified"
    assert "3 (1 denied, 0 incomplete)" in page.locator(".facts").inner_text()
    items = page.locator(".timeline > li")
    assert items.count() == 3
    assert "$ aws s3 ls" in items.nth(0).inner_text()
    first = items.nth(1)
    assert first.locator(".badge.gateway").inner_text() == "gateway"
    text = first.inner_text()
    assert "s3.DeleteObject" in text and "HTTP 204" in text and "GW-REQ-1" in text and "observed by the server" in text
    assert "ok" in first.locator(".badge.ok").inner_text()
    denied = items.nth(2)
    assert "iam.DeleteRole" in denied.inner_text() and denied.locator(".badge.denied").inner_text() == "denied"
    assert "denied" in (denied.get_attribute("class") or "")
    assert page.evaluate("window.__pwned") is None and XSS in denied.inner_text()
    page.select_option("#speed", "0")
    page.click("#play")
    page.wait_for_function("document.getElementById('terminal').textContent.includes('end of session')")
    terminal = page.locator("#terminal").inner_text()
    assert "$ aws s3 ls" in terminal and "# gateway: s3.DeleteObject allow -> 204" in terminal
    assert terminal.index("demo-logs") < terminal.index("# gateway: s3.DeleteObject")
    first.scroll_into_view_if_needed()
    shot(page, "session-gateway")
