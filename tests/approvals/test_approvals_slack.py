"""Slack: the Block Kit message, signed interactivity, lookup by email, in-place update.

A real hoop server talks to a local fake Slack Web API (tests/fakes/slack.py); interaction
payloads are signed exactly as Slack signs them.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from approvals_helpers import make_invocation, principal, review
from fakes.slack import FakeSlack, interaction_payload, sign, signed_interaction

from hoopcli.client import Client
from hoopcli.server.approvals import service as svc
from hoopcli.server.approvals.slack import build_blocks
from hoopcli.server.approvals.slack_service import slack_post

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
USERS = {"bob@example.com": "U0BOB", "carol@example.com": "U0CAROL", "alice@example.com": "U0ALICE"}


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(token="xoxb-test", users=USERS) as fake:
        yield fake


@pytest.fixture
def srv(make_server: Any, slack: FakeSlack) -> Any:
    srv = make_server(slack={"bot_token": "xoxb-test", "signing_secret": SECRET, "channel": "C0APPROVE",
                             "api_url": slack.api_url})
    # bob (approver) and carol (developer) have signed in once: the server knows their groups.
    for sub, groups in (("bob", ["approvers"]), ("carol", [])):
        Client(srv.url, token=srv.token(sub, email=f"{sub}@example.com", groups=groups)).get("/api/v1/approvals")
    return srv


def request(srv: Any, approvers: tuple[str, ...] = ("role:approver",), who: Any = None, bucket: str = "a") -> Any:
    row, _ = svc.create(srv.db, srv.settings, who or principal("alice"), invocation=make_invocation(bucket),
                        decision=review(approvers=approvers), connection="default",
                        reason="drop the temp bucket", agent="claude-code")
    slack_post(srv.db, srv.settings, row.id)          # what POST /approvals schedules
    return svc.get(srv.db, row.org, row.id)


def click(srv: Any, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(srv.url + "/api/v1/slack/interactions", data=body, headers=headers,
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def press(srv: Any, row: Any, action: str, user: str, ts: int | None = None) -> tuple[int, dict[str, Any]]:
    payload = interaction_payload(row.id, action, user, channel=row.slack_channel or "C0APPROVE",
                                  message_ts=row.slack_ts or "1.1")
    return click(srv, *signed_interaction(SECRET, payload, ts))


def test_message_layout_has_everything_an_approver_needs(srv: Any, slack: FakeSlack) -> None:
    row = request(srv)
    posted = slack.calls_to("chat.postMessage")
    assert len(posted) == 1 and posted[0]["channel"] == "C0APPROVE"
    blocks = posted[0]["blocks"]
    text = json.dumps(blocks)
    for needle in ("Approval requested", "*Requester*\\nalice@example.com", "*Agent*\\nclaude-code",
                   "aws s3 rb s3://a", "`s3:DeleteBucket`", "`arn:aws:s3:::a`", "drop the temp bucket"):
        assert needle in text
    buttons = blocks[-1]["elements"]
    assert [(b["action_id"], b["value"], b["style"]) for b in buttons] == [
        ("hoop_approve", row.id, "primary"), ("hoop_deny", row.id, "danger")]
    assert row.slack_ts and row.slack_channel == "C0APPROVE"


def test_untrusted_text_cannot_inject_slack_markup() -> None:
    view = {"id": "apr_0000000000000000", "status": "pending", "command": "aws s3 rb s3://a ```<!channel>",
            "justification": "<https://evil.example|click me> & <@U0BOB>", "actions": ["<!here>"]}
    text = json.dumps(build_blocks(view))
    assert "<!channel>" not in text and "<!here>" not in text and "<https://evil" not in text
    assert "&lt;!channel&gt;" in text and "&amp;" in text


def test_approver_click_approves_and_updates_the_message(srv: Any, slack: FakeSlack) -> None:
    row = request(srv)
    status, body = press(srv, row, "approve", "U0BOB")
    assert (status, body["ok"], body["status"]) == (200, True, "approved")
    final = svc.get(srv.db, "default", row.id)
    assert (final.status, final.decided_by, final.decision_channel) == ("approved", "bob", "slack")
    assert any(c.get("email") == "bob@example.com" for c in slack.calls_to("users.lookupByEmail"))
    updated = slack.messages[row.slack_ts]
    assert "Approval approved" in json.dumps(updated["blocks"])
    assert "Approved* by bob@example.com via slack" in json.dumps(updated["blocks"])
    assert all(b["type"] != "actions" for b in updated["blocks"])      # buttons gone


def test_deny_click_rejects_with_the_reason(srv: Any, slack: FakeSlack) -> None:
    row = request(srv)
    status, body = press(srv, row, "deny", "U0BOB")
    assert (status, body["status"]) == (200, "rejected")
    assert svc.get(srv.db, "default", row.id).decision_reason == "via Slack by bob@example.com"


def test_bad_signature_is_refused(srv: Any, slack: FakeSlack) -> None:
    row = request(srv)
    body, headers = signed_interaction("not-the-secret", interaction_payload(row.id, "approve", "U0BOB"))
    assert click(srv, body, headers)[0] == 401
    body, headers = signed_interaction(SECRET, interaction_payload(row.id, "approve", "U0BOB"))
    tampered = body.replace(b"U0BOB", b"U0BOC")
    assert click(srv, tampered, headers)[0] == 401
    for bad in ({}, {"X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=00"},
                {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": ""}):
        assert click(srv, body, {"Content-Type": "application/x-www-form-urlencoded", **bad})[0] == 401
    assert svc.get(srv.db, "default", row.id).status == "pending"
    assert slack.calls_to("users.lookupByEmail") == []


@pytest.mark.parametrize("skew", [-320, +320, -3600])
def test_timestamp_outside_five_minutes_is_refused(srv: Any, skew: int) -> None:
    row = request(srv)
    status, _ = press(srv, row, "approve", "U0BOB", ts=int(time.time()) + skew)
    assert status == 401
    assert svc.get(srv.db, "default", row.id).status == "pending"


def test_replayed_click_after_the_decision_is_refused(srv: Any, slack: FakeSlack) -> None:
    row = request(srv)
    payload = interaction_payload(row.id, "deny", "U0BOB")
    body, headers = signed_interaction(SECRET, payload)
    assert click(srv, body, headers)[1]["status"] == "rejected"
    status, again = click(srv, body, headers)          # the very same signed request, replayed
    assert status == 200 and again["ok"] is False and "already rejected" in again["error"]
    flipped, headers2 = signed_interaction(SECRET, interaction_payload(row.id, "approve", "U0BOB"))
    assert click(srv, flipped, headers2)[1]["ok"] is False
    final = svc.get(srv.db, "default", row.id)
    assert final.status == "rejected"
    assert [e["event"] for e in svc.events(srv.db, "default", row.id)].count("refused") == 2


def test_unknown_approval_is_refused(srv: Any, slack: FakeSlack) -> None:
    for bogus in ("apr_00000000deadbeef", "'; drop table approvals; --", ""):
        status, body = click(srv, *signed_interaction(SECRET, interaction_payload(bogus, "approve", "U0BOB")))
        assert status == 200 and body["ok"] is False and "no approval" in body["error"]
    assert slack.calls_to("chat.postEphemeral")


def test_non_approver_click_is_refused_and_recorded(srv: Any, slack: FakeSlack) -> None:
    row = request(srv)
    status, body = press(srv, row, "approve", "U0CAROL")      # carol is a hoop user, not an approver
    assert status == 200 and body["ok"] is False and "does not match a hoop user who can approve" in body["error"]
    status, body = press(srv, row, "approve", "U0STRANGER")   # not a hoop user at all
    assert body["ok"] is False
    assert svc.get(srv.db, "default", row.id).status == "pending"
    refused = [e for e in svc.events(srv.db, "default", row.id) if e["event"] == "refused"]
    assert [e["actor"] for e in refused] == ["slack:U0CAROL", "slack:U0STRANGER"]
    notes = slack.calls_to("chat.postEphemeral")
    assert [n["user"] for n in notes] == ["U0CAROL", "U0STRANGER"]


def test_requester_cannot_approve_own_request_from_slack(srv: Any) -> None:
    Client(srv.url, token=srv.token("alice", email="alice@example.com", groups=["approvers"])).get("/api/v1/approvals")
    row = request(srv)
    _, body = press(srv, row, "approve", "U0ALICE")
    assert body["ok"] is False and "own requests" in body["error"]
    assert svc.get(srv.db, "default", row.id).status == "pending"


def test_another_orgs_approval_cannot_be_decided_from_slack(srv: Any) -> None:
    row = request(srv, who=principal("mallory", org="other"))
    _, body = press(srv, row, "approve", "U0BOB")          # bob is in org "default"
    assert body["ok"] is False
    assert svc.get(srv.db, "other", row.id).status == "pending"


def test_garbage_body_with_a_valid_signature(srv: Any) -> None:
    ts = str(int(time.time()))
    for raw in (b"payload=not-json", b"nothing=here", b"\xff\xfe"):
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
                   "X-Slack-Signature": sign(SECRET, raw.decode("latin-1"), ts)}
        status, _ = click(srv, raw, headers)
        assert status in (400, 401)


def test_cli_and_slack_racing_exactly_one_wins(srv: Any) -> None:
    bob_cli = Client(srv.url, token=srv.token("bob", email="bob@example.com", groups=["approvers"]))
    for i in range(4):
        row = request(srv, bucket=f"race{i}")
        barrier = threading.Barrier(2)
        results: dict[str, Any] = {}

        # the round's values are bound now: a thread outliving its join must not see the next round's
        def via_cli(barrier: threading.Barrier = barrier, row: Any = row,
                    results: dict[str, Any] = results) -> None:
            barrier.wait()
            r = bob_cli.post(f"/api/v1/approvals/{row.id}/decision", json={"decision": "approve"}, expect=(409,))
            results["cli"] = r.status == 200

        def via_slack(barrier: threading.Barrier = barrier, row: Any = row,
                      results: dict[str, Any] = results) -> None:
            barrier.wait()
            results["slack"] = press(srv, row, "deny", "U0BOB")[1]["ok"]

        threads = [threading.Thread(target=via_cli), threading.Thread(target=via_slack)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(results.values()) == [False, True], results
        final = svc.get(srv.db, "default", row.id)
        assert final.decision_channel == ("cli" if results["cli"] else "slack")


def test_no_slack_configured_means_404(server: Any) -> None:
    body, headers = signed_interaction(SECRET, interaction_payload("apr_00000000deadbeef", "approve", "U0BOB"))
    assert click(server, body, headers)[0] == 404
