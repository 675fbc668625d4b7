"""A finding in Slack: one message in the approvals channel (the approvals' Slack bridge), with
what was seen, the action taken and, for a held session, how it is released. Slack failures are
logged by the bridge and never affect the finding."""

from __future__ import annotations

from typing import Any

from hoopcli.server.approvals.slack import _esc, bridge_for
from hoopcli.server.settings import Settings
from hoopcli.server.store.db import Database
from hoopcli.server.store.detections import Finding

SEVERITY_EMOJI = {"low": ":large_blue_circle:", "medium": ":large_orange_circle:", "high": ":red_circle:",
                  "critical": ":rotating_light:"}


def finding_blocks(view: dict[str, Any]) -> list[dict[str, Any]]:
    """Block Kit blocks for a finding (`view` = service.to_json output)."""
    head = f"hoop finding: {view.get('title')} ({view.get('severity')})"
    fields = [{"type": "mrkdwn", "text": f"*{name}*\n{_esc(value or '-')}"} for name, value in (
        ("User", view.get("user_email") or view.get("user")), ("Agent", view.get("agent")),
        ("Session", view.get("session_id")), ("Action", view.get("outcome") or view.get("action")))]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": head[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": SEVERITY_EMOJI.get(str(view.get("severity")), "")
                                     + " " + _esc(view.get("summary") or "")[:2800]}},
        {"type": "section", "fields": fields},
    ]
    if view.get("action") in ("hold", "revoke"):
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _esc(
            "Every further call of this session waits for an approver (the approval requests appear "
            f"here). Release the session with `hoop findings release {view.get('session_id')}` or in the console.")}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _esc(
        f"{view.get('id')} · rule {view.get('rule')} · {view.get('at')} · {view.get('url')}")}]})
    return blocks


def post_finding(db: Database, settings: Settings, finding_id: str, view: dict[str, Any]) -> None:
    """Post the finding (`view`: service.to_json of it) once; remember the message."""
    bridge = bridge_for(settings)
    if bridge is None:
        return
    text = f"hoop finding {view['id']}: {view['title']} ({view['severity']}) in session {view['session_id']}: " \
           f"{view['summary']}"
    posted = bridge.post_message(text, finding_blocks(view))
    if posted:
        with db.session() as s:
            stored = s.get(Finding, finding_id)
            if stored is not None:
                stored.slack_channel, stored.slack_ts = posted[0][:64], posted[1][:64]
