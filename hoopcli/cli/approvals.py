"""`hoop approvals list | show ID | approve ID | deny ID`: the CLI channel for approvals."""

from __future__ import annotations

import json
from typing import Any

import click

from hoopcli.cli.display import printable_or_dash


def _client() -> Any:
    from hoopcli.client import for_user

    return for_user()




def _show(item: dict[str, Any]) -> None:
    rows = [
        ("id", item.get("id")), ("status", item.get("status")), ("requester", item.get("requester")),
        ("agent", item.get("agent")), ("command", item.get("command")),
        ("actions", ", ".join(item.get("actions") or []) or "-"),
        ("resources", ", ".join(item.get("resources") or []) or "-"),
        ("access level", item.get("access_level")), ("connection", item.get("connection")),
        ("justification", item.get("justification")), ("rule", item.get("rule")),
        ("approvers", ", ".join(item.get("approvers") or []) or "approver role"),
        ("requested", item.get("requested_at")), ("expires", item.get("expires_at")),
        ("decided", item.get("decided_at")), ("decided by", item.get("approver")),
        ("channel", item.get("channel")), ("reason", item.get("reason")),
        ("used", item.get("consumed_at")), ("call hash", item.get("call_hash")), ("url", item.get("url")),
    ]
    for key, value in rows:
        if value not in (None, ""):
            click.echo(f"{key + ':':15}{printable_or_dash(value, 2000)}")
    events = item.get("events") or []
    if events:
        click.echo("events:")
        for ev in events:
            detail = f" - {printable_or_dash(ev.get('detail'), 200)}" if ev.get("detail") else ""
            via = f" via {ev['channel']}" if ev.get("channel") else ""
            click.echo(f"  {ev.get('at')}  {ev.get('event'):9} {printable_or_dash(ev.get('actor'), 60)}{via}{detail}")


@click.group()
def approvals() -> None:
    """Approval requests: list them, look at one, approve or deny it."""


@approvals.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of approval objects.")
@click.option("--status", type=click.Choice(["pending", "approved", "rejected", "expired"]),
              help="Only approvals in this state.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
def list_cmd(as_json: bool, status: str | None, limit: int) -> None:
    """List recent approval requests (approvers and auditors see everyone's; others their own)."""
    items = _client().get("/api/v1/approvals", params={"status": status, "limit": limit}).json() or []
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    if not items:
        click.echo("no approvals" + (f" with status {status}" if status else ""))
        return
    click.echo(f"{'ID':22} {'STATUS':9} {'REQUESTER':24} {'REQUESTED':21} COMMAND")
    for it in items:
        click.echo(f"{printable_or_dash(it.get('id'), 22):22} {printable_or_dash(it.get('status'), 9):9} "
                   f"{printable_or_dash(it.get('requester'), 24):24} {printable_or_dash(it.get('requested_at'), 21):21} "
                   f"{printable_or_dash(it.get('command'), 80)}")


@approvals.command("show")
@click.argument("approval_id")
@click.option("--json", "as_json", is_flag=True, help="Print the approval as one JSON object.")
def show(approval_id: str, as_json: bool) -> None:
    """Show one approval request with its event trail."""
    item = _client().get(f"/api/v1/approvals/{_safe_id(approval_id)}").json() or {}
    if as_json:
        click.echo(json.dumps(item, indent=2))
    else:
        _show(item)


def _safe_id(approval_id: str) -> str:
    import re

    from hoopcli.errors import UsageError

    if not re.fullmatch(r"apr_[0-9a-f]{16}", approval_id):
        raise UsageError(f"not an approval id: {approval_id!r} (they look like apr_0123456789abcdef)")
    return approval_id


def _decide(approval_id: str, approve: bool, reason: str | None) -> None:
    from hoopcli.client import Forbidden

    client = _client()
    path = f"/api/v1/approvals/{_safe_id(approval_id)}"
    current = client.get(path).json() or {}
    # Bind the decision to the call we just showed: a different call can never slip through.
    # The server records the channel (cli) from the route; the body never names it.
    body = {"decision": "approve" if approve else "deny", "reason": reason, "call_hash": current.get("call_hash")}
    try:
        item = client.post(path + "/decision", json=body).json() or {}
    except Forbidden as exc:
        if approve and current.get("url") and "sign in again" in exc.message:
            exc.hint = f"open {current['url']} in a browser"
        raise
    verb = "approved" if approve else "denied"
    click.echo(f"{verb} {item.get('id')}: {printable_or_dash(item.get('command'), 500)}")


@approvals.command("approve")
@click.argument("approval_id")
@click.option("--reason", help="Why; shown to the requester and kept in the record.")
def approve(approval_id: str, reason: str | None) -> None:
    """Approve a pending request (single use, for exactly the command it names)."""
    _decide(approval_id, True, reason)


@approvals.command("deny")
@click.argument("approval_id")
@click.option("--reason", help="Why; the agent sees it in its error line.")
def deny(approval_id: str, reason: str | None) -> None:
    """Deny a pending request; the waiting command exits 76 with your reason."""
    _decide(approval_id, False, reason)
