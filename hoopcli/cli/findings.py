"""`hoop findings list | show ID | release SESSION`: what the detections raised (docs/detections.md)."""

from __future__ import annotations

import json
import re
import urllib.parse
from datetime import datetime, timedelta, timezone
from typing import Any

import click

from hoopcli.cli.display import printable, printable_or_dash
from hoopcli.errors import UsageError

_AGO = re.compile(r"^(\d{1,6})\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _client() -> Any:
    from hoopcli.client import for_user

    return for_user()


def since_param(value: str | None, now: datetime | None = None) -> str | None:
    """--since: an RFC 3339 time, or an age such as 30m, 2h, 7d (that long ago)."""
    if not value:
        return None
    m = _AGO.match(value.strip())
    if m:
        when = (now or datetime.now(timezone.utc)) - timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
        return when.isoformat(timespec="seconds").replace("+00:00", "Z")
    if not re.match(r"^\d{4}-\d{2}-\d{2}", value):
        raise UsageError(f"--since: give an RFC 3339 time (2026-11-27T04:00:00Z) or an age (30m, 2h, 7d), "
                         f"not {value[:40]!r}")
    return value


@click.group()
def findings() -> None:
    """Findings the detection rules raised: list them, look at one, release a held session."""


@findings.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of finding objects.")
@click.option("--session", "session_id", help="Only this session's findings.")
@click.option("--since", help="Only findings raised since T: an RFC 3339 time, or an age (30m, 2h, 7d).")
@click.option("--limit", type=click.IntRange(1, 500), default=100, show_default=True)
def list_cmd(as_json: bool, session_id: str | None, since: str | None, limit: int) -> None:
    """Recent findings, newest first (approvers, auditors and admins see everyone's; others their own)."""
    params = {"session_id": session_id, "since": since_param(since), "limit": limit}
    items = _client().get("/api/v1/findings", params={k: v for k, v in params.items() if v}).json() or []
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    if not items:
        click.echo("no findings")
        return
    click.echo(f"{'ID':21} {'RULE':22} {'SEVERITY':8} {'ACTION':14} {'SESSION':18} {'RAISED':21} WHAT WAS SEEN")
    for f in items:
        action = printable_or_dash(f.get("action")) + (" (held)" if f.get("held") else "")
        click.echo(f"{printable(f.get('id'), 21):21} {printable(f.get('rule'), 22):22} {printable(f.get('severity'), 8):8} "
                   f"{action:14} {printable(f.get('session_id'), 18):18} {printable(f.get('raised_at'), 21):21} "
                   f"{printable(f.get('summary'), 100)}")


@findings.command("show")
@click.argument("finding_id")
@click.option("--json", "as_json", is_flag=True, help="Print the finding as one JSON object.")
def show_cmd(finding_id: str, as_json: bool) -> None:
    """One finding: what was seen, the action taken, the hold, and the records that raised it."""
    f = _client().get(f"/api/v1/findings/{urllib.parse.quote(finding_id, safe='')}").json() or {}
    if as_json:
        click.echo(json.dumps(f, indent=2))
        return
    rows = [("id", f.get("id")), ("rule", f.get("rule")), ("title", f.get("title")), ("severity", f.get("severity")),
            ("action", f.get("action")), ("outcome", f.get("outcome")), ("seen", f.get("summary")),
            ("session", f.get("session_id")), ("user", f.get("user_email") or f.get("user")),
            ("agent", f.get("agent")), ("at", f.get("at")), ("raised", f.get("raised_at")),
            ("window", f.get("window")), ("threshold", f.get("threshold")), ("count", f.get("count")),
            ("values", ", ".join(str(v) for v in f.get("values") or [])), ("url", f.get("url"))]
    for key, value in rows:
        if value not in (None, ""):
            click.echo(f"{key + ':':11}{printable(value, 2000)}")
    hold = f.get("hold") or {}
    if hold:
        state = "HELD" if hold.get("held") else f"released by {printable(hold.get('released_by'))}"
        click.echo(f"{'hold:':11}{state} ({printable(hold.get('reason'), 300)})")
    entries = f.get("record_entries") or []
    click.echo(f"records:   {len(entries)}")
    for e in entries:
        r = e.get("record") or {}
        what = f"{r.get('service')}.{r.get('operation')} -> {r.get('http_status')}" if r.get("type") == "api.call" \
            else "aws " + " ".join(str(a) for a in r.get("argv") or [])
        err = f" {r['error_code']}" if r.get("error_code") else ""
        click.echo(f"  #{e.get('index')} {printable(r.get('time'))} {printable(r.get('type'))} {printable(what, 200)}{err}")


@findings.command("release")
@click.argument("session_id")
@click.option("--reason", help="Why the session may go on (kept with the hold).")
def release_cmd(session_id: str, reason: str | None) -> None:
    """End a held session's hold: its calls follow the policy again (approver role; not the
    session's own user)."""
    out = _client().post(f"/api/v1/sessions/{urllib.parse.quote(session_id, safe='')}/release",
                         json={"reason": reason}).json() or {}
    click.echo(f"released session {printable(out.get('session_id'))} (held by {printable(out.get('finding'))}, "
               f"{printable(out.get('rule'))})")
