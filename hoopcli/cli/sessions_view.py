"""The events the server observed itself in `hoop sessions show`: session start and end, gateway
credentials issued, STS keys vended (vend mode), approval requests and decisions.

They come in the session's `observed` list (GET /api/v1/sessions/{id}), apart from the log's
records; `timeline` places them by time among the commands (client-reported) and the gateway's
calls (server-observed), and `observed_lines` prints one as SERVER lines."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from hoopcli.cli.display import printable

LEGEND = ("timeline: `$ aws` commands are client-reported (the shim's records); GATEWAY and SERVER "
          "entries are server-observed")


def when(value: Any) -> float | None:
    """An RFC 3339 time as epoch seconds, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()


def entry_time(entry: dict[str, Any]) -> str | None:
    """The time of a timeline entry: an observed event's, a gateway call's, a command's start."""
    rec = entry.get("call") or entry.get("start") or entry.get("result") or entry
    value = rec.get("time")
    return value if isinstance(value, str) else None


def timeline(commands: list[dict[str, Any]], observed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One list, oldest first: the commands and gateway calls in the server's order, each observed
    event placed before the first entry that happened after it (events without a time last). Each
    entry says where it comes from: `source` "client" (a command: what the shim reported) or
    "server" (a gateway call, or an observed event with its `kind` and `time`)."""
    events = sorted((dict(e) for e in observed if isinstance(e, dict)),
                    key=lambda e: when(e.get("time")) or float("inf"))
    out: list[dict[str, Any]] = []
    i = 0
    for c in commands:
        at = when(entry_time(c))
        while i < len(events) and at is not None and (when(events[i].get("time")) or float("inf")) <= at:
            out.append(events[i])
            i += 1
        out.append({**c, "source": "server" if c.get("kind") == "api.call" else "client",
                    "time": entry_time(c)})
    for e in events[i:]:
        out.append(e)
    for e in out:
        e.setdefault("source", "server")
    return out


def is_observed(entry: dict[str, Any]) -> bool:
    return entry.get("kind") not in ("command", "api.call")


def _list(value: Any, width: int = 300) -> str:
    return printable(", ".join(str(v) for v in value or []) or None, width)


def observed_lines(e: dict[str, Any]) -> list[str]:
    """An observed event as a SERVER head line and its details."""
    kind = e.get("kind")
    head = f"[{printable(e.get('time'))}] SERVER {printable(kind, 40)}"
    lines: list[str]
    if kind == "session.start":
        lines = [f"{head}: session opened by {printable(e.get('user_email') or e.get('user'))}",
                 f"  agent {printable(e.get('agent'))}  host {printable(e.get('host'))}  "
                 f"connection {printable(e.get('connection'))}  opened by {printable(e.get('opened_by'))}"]
    elif kind == "session.end":
        lines = [f"{head}: session closed, exit {printable(e.get('exit_code'))}"]
    elif kind == "session.credential":
        revoked = f"  revoked {printable(e.get('revoked_at'))}" if e.get("revoked_at") else ""
        lines = [f"{head}: gateway session credential issued, key {printable(e.get('access_key_id'), 40)}",
                 f"  connection {printable(e.get('connection'))}  agent {printable(e.get('agent'))}  "
                 f"expires {printable(e.get('expires_at'))}{revoked}"]
    elif kind == "credential.grant":
        found = e.get("decision")
        dec: dict[str, Any] = found if isinstance(found, dict) else {}
        approval = f"  approval {printable(e.get('approval_id'))}" if e.get("approval_id") else ""
        lines = [f"{head}: STS credentials vended to {printable(e.get('user'))} on "
                 f"{printable(e.get('connection'))}",
                 f"  role: {printable(e.get('assumed_role_arn'), 300)} ({printable(e.get('sts_session_name'))})",
                 f"  actions: {_list(e.get('actions'))}",
                 f"  decision: {printable(dec.get('effect'))}  rule: {printable(dec.get('rule'))}{approval}  "
                 f"expires {printable(e.get('expiration'))}"]
    elif kind == "approval.request":
        lines = [f"{head}: approval {printable(e.get('id'))} requested by {printable(e.get('requester'))}",
                 f"  command: {printable(e.get('command'), 300)}  rule: {printable(e.get('rule'))}",
                 f"  actions: {_list(e.get('actions'))}"]
        if e.get("justification"):
            lines.append(f"  justification: {printable(e.get('justification'), 300)}")
    elif kind == "approval.decision":
        lines = [f"{head}: approval {printable(e.get('id'))} {printable(e.get('status'))} by "
                 f"{printable(e.get('approver'))} via {printable(e.get('channel'))}"]
        if e.get("reason"):
            lines.append(f"  reason: {printable(e.get('reason'), 300)}")
    else:
        lines = [head]
    return [*lines, "  (server-observed)"]
