"""`hoop sessions list | show | export | verify | replay | end`: the auditor's commands, and
ending a session (its owner or an admin).

Developers see their own sessions; auditors and admins see everyone's in their organisation.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    import urllib.request

import click

from hoopcli.cli.display import printable

FILTERS = ("user", "agent", "connection", "since", "until", "action", "decision", "status", "exit_code")


def _client() -> Any:
    from hoopcli.client import for_user

    return for_user(timeout=60.0)


def _filter_options(fn: Any) -> Any:
    opts = [
        click.option("--user", help="Only sessions of this user (subject or email)."),
        click.option("--agent", help="Only sessions of this agent."),
        click.option("--connection", help="Only sessions on this connection."),
        click.option("--since", help="Sessions started at or after this RFC 3339 time."),
        click.option("--until", help="Sessions started before this RFC 3339 time."),
        click.option("--action", help="Sessions with a command whose IAM action matches this glob (s3:Get*)."),
        click.option("--decision", type=click.Choice(["allow", "review", "deny"]),
                     help="Sessions with a command that got this decision."),
        click.option("--status", type=click.Choice(["ok", "failed", "incomplete"]),
                     help="ok: every command finished with exit 0; failed: some exited non-zero "
                          "(or a gateway call got HTTP >= 400); incomplete: some never reported a result."),
        click.option("--exit-code", "exit_code", type=int, help="Sessions with a command that exited with this code."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _params(kw: dict[str, Any]) -> dict[str, Any]:
    return {k: kw.get(k) for k in FILTERS if kw.get(k) is not None}




@click.group()
def sessions() -> None:
    """List, inspect, export, verify and replay recorded agent sessions."""


@sessions.command("list")
@_filter_options
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="How many sessions (newest first).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of session objects.")
def list_cmd(limit: int, as_json: bool, **kw: Any) -> None:
    """List sessions, newest first (keyset-paginated on the server)."""
    client = _client()
    params = _params(kw)
    items: list[dict[str, Any]] = []
    cursor = None
    while len(items) < limit:
        page = client.get("/api/v1/sessions", params={**params, "limit": min(500, limit - len(items)),
                                                      "cursor": cursor}).json()
        items += page.get("items", [])
        cursor = page.get("next")
        if not cursor:
            break
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    if not items:
        click.echo("no sessions")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col in ("STARTED", "SESSION", "USER", "AGENT", "CONNECTION", "CMDS", "STATUS", "DENIED"):
        table.add_column(col, no_wrap=True, overflow="ellipsis", min_width=len(col))
    style = {"ok": "green", "failed": "red", "incomplete": "yellow"}
    for s in items:
        table.add_row(printable(s.get("started_at"))[:19].replace("T", " "), printable(s.get("id"), 36),
                      printable(s.get("user_email") or s.get("user"), 40), printable(s.get("agent"), 20),
                      printable(s.get("connection"), 20), str(s.get("commands")),
                      f"[{style.get(str(s.get('status')), 'white')}]{printable(s.get('status'))}[/]",
                      str(s.get("denied") or ""))
    # piped output keeps whole rows (a terminal gets rich's fitting to its width)
    Console(highlight=False, width=None if sys.stdout.isatty() else 220).print(table)
    if cursor:
        click.echo(f"(more sessions: raise --limit; showing {len(items)})")


def _fetch_session(client: Any, session_id: str) -> dict[str, Any]:
    data = client.get(f"/api/v1/sessions/{_quote(session_id)}").json()
    nxt = data.get("next")
    while nxt is not None:
        more = client.get(f"/api/v1/sessions/{_quote(session_id)}", params={"after": nxt}).json()
        data["commands"] = _merge(data["commands"], more.get("commands", []))
        nxt = more.get("next")
    return data


def _quote(value: str) -> str:
    import urllib.parse

    return urllib.parse.quote(value, safe="")


def _merge(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id = {c["command_id"]: c for c in a}
    for c in b:
        old = by_id.get(c["command_id"])
        if old is None:
            a.append(c)
            by_id[c["command_id"]] = c
        else:
            old["start"] = old["start"] or c["start"]
            old["result"] = old["result"] or c["result"]
            if old["start"] and old["result"]:
                old["status"] = "ok" if old["result"].get("exit_code") == 0 else "failed"
    return _by_time(a)


def _when(entry: dict[str, Any]) -> float | None:
    from datetime import datetime, timezone

    rec = entry.get("call") or entry.get("start") or entry.get("result") or {}
    try:
        when = datetime.fromisoformat(str(rec.get("time")).replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def _by_time(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The server's order across pages: commands in their order, each gateway call (kind
    api.call) before the first command that started later than it."""
    calls = sorted((c for c in entries if c.get("kind") == "api.call"),
                   key=lambda c: _when(c) or float("inf"))
    if not calls:
        return entries
    out: list[dict[str, Any]] = []
    i = 0
    for c in entries:
        if c.get("kind") == "api.call":
            continue
        when = _when(c)
        while i < len(calls) and when is not None and (_when(calls[i]) or float("inf")) < when:
            out.append(calls[i])
            i += 1
        out.append(c)
    return out + calls[i:]


@sessions.command("show")
@click.argument("session_id")
@click.option("--json", "as_json", is_flag=True, help="Print the session and its commands as JSON.")
@click.option("--full", is_flag=True, help="Print whole outputs (default: the first 20 lines).")
def show_cmd(session_id: str, as_json: bool, full: bool) -> None:
    """The timeline of a session: each command, its decision, approval, API calls and output,
    each AWS request the hoop gateway observed (GATEWAY lines), and what the server observed
    itself (SERVER lines: session start and end, credentials issued or vended, approvals)."""
    from hoopcli.cli.sessions_view import LEGEND, is_observed, observed_lines, timeline

    data = _fetch_session(_client(), session_id)
    # commands (client-reported), gateway calls and the events the server observed, by time
    data["timeline"] = timeline(data.get("commands") or [], data.get("observed") or [])
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    s = data["session"]
    click.echo(f"session {printable(s['id'])}  user {printable(s.get('user_email') or s.get('user'))}  "
               f"agent {printable(s.get('agent'))}  host {printable(s.get('host'))}  "
               f"connection {printable(s.get('connection'))}")
    gateway = sum(1 for c in data["commands"] if c.get("kind") == "api.call")
    click.echo(f"started {s['started_at']}  last {s['last_at']}  {s['commands']} commands, "
               f"{s['failed']} failed, {s['incomplete']} incomplete, {s['denied']} denied"
               + (f"  ({gateway} gateway calls, server-observed)" if gateway else ""))
    click.echo(LEGEND)
    findings: dict[str, list[dict[str, Any]]] = {}
    for f in data.get("findings") or []:
        findings.setdefault(str(f.get("trigger_record") or ""), []).append(f)
    for c in data["timeline"]:
        if is_observed(c):
            click.echo("")
            for line in observed_lines(c):
                click.echo(line)
            continue
        ids = [str((c.get(k) or {}).get("id") or "").replace("-", "").lower() for k in ("call", "start", "result")]
        if c.get("kind") == "api.call":
            _show_call(c, full)
            _show_findings(findings, ids)
            continue
        start, result = c.get("start") or {}, c.get("result") or {}
        click.echo("")
        when = printable(start.get("time") or result.get("time"))
        click.echo(f"[{when}] $ aws {printable(' '.join(map(str, start.get('argv') or ['?'])))}")
        dec = start.get("decision") or {}
        if dec:
            click.echo(f"  decision: {printable(dec.get('effect'))}  rule: {printable(dec.get('rule'))}"
                       + (f"  reason: {printable(dec.get('reason'), 200)}" if dec.get("reason") else ""))
        appr = start.get("approval") or {}
        if appr:
            click.echo(f"  approval: {printable(appr.get('id'))} by {printable(appr.get('approver'))} via "
                       f"{printable(appr.get('channel'))} at {printable(appr.get('decided_at'))}")
        cred = start.get("credentials") or {}
        if cred.get("assumed_role_arn"):
            click.echo(f"  role: {printable(cred['assumed_role_arn'])} ({printable(cred.get('sts_session_name'))})")
        if c.get("status") == "incomplete" or not result:
            click.echo("  status: INCOMPLETE (no result recorded)")
            continue
        for call in result.get("api_calls") or []:
            err = f" {printable(call.get('error_code'))}" if call.get("error_code") else ""
            click.echo(f"  api: {printable(call.get('service'))}.{printable(call.get('operation'))} -> "
                       f"{printable(call.get('http_status'))}{err} ({printable(call.get('duration_ms'))} ms, "
                       f"request {printable(call.get('request_id'))})")
        for name in ("stdout", "stderr"):
            stream = result.get(name) or {}
            text = str(stream.get("text") or "")
            if not text:
                continue
            lines = text.splitlines()
            click.echo(f"  {name}:" + (f" (truncated; original {stream.get('size')} bytes)"
                                       if stream.get("truncated") else ""))
            for line in lines if full else lines[:20]:
                click.echo("    " + printable(line))
            if not full and len(lines) > 20:
                click.echo(f"    … {len(lines) - 20} more lines (--full)")
        click.echo(f"  exit: {result.get('exit_code')}  ({c.get('status')})")
        _show_findings(findings, ids)
    _show_findings(findings, list(findings))


def _show_findings(findings: dict[str, list[dict[str, Any]]], ids: list[str]) -> None:
    """The findings a timeline entry raised (FINDING lines), each printed once."""
    for rid in ids:
        for f in findings.pop(rid, []):
            held = ", held" if f.get("held") else ""
            click.echo(f"  FINDING {printable(f.get('id'))} {printable(f.get('rule'))} ({printable(f.get('severity'))}, "
                       f"{printable(f.get('outcome') or f.get('action'))}{held}): {printable(f.get('summary'), 300)}")


def _ms(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.0f}ms" if value >= 10 else f"{value:.2g}ms"
    return "-"


def call_line(call: dict[str, Any]) -> str:
    """The head line of a gateway call: `GATEWAY s3.DeleteObject allow 204 12ms`."""
    dec = call.get("decision") or {}
    status = call.get("http_status")
    err = f" {printable(call.get('error_code'), 80)}" if call.get("error_code") else ""
    return (f"GATEWAY {printable(call.get('service'), 60)}.{printable(call.get('operation'), 80)} "
            f"{printable(dec.get('effect'))} {printable(status)}{err} {_ms(call.get('duration_ms'))}")


def _show_call(c: dict[str, Any], full: bool) -> None:
    """A gateway call (one server-observed api.call record) in the timeline."""
    call = c.get("call") or {}
    click.echo("")
    click.echo(f"[{printable(call.get('time'))}] {call_line(call)}")
    dec = call.get("decision") or {}
    if dec.get("rule") or dec.get("reason"):
        click.echo(f"  decision: {printable(dec.get('effect'))}  rule: {printable(dec.get('rule'))}"
                   + (f"  reason: {printable(dec.get('reason'), 200)}" if dec.get("reason") else ""))
    appr = call.get("approval") or {}
    if appr:
        click.echo(f"  approval: {printable(appr.get('id'))} by {printable(appr.get('approver'))} via "
                   f"{printable(appr.get('channel'))} at {printable(appr.get('decided_at'))}")
    actions = [str(a) for a in call.get("actions") or []]
    if actions:
        click.echo(f"  actions: {printable(', '.join(actions), 300)}  ({printable(call.get('access_level'))})")
    resources = [str(r) for r in call.get("resources") or []]
    if resources:
        click.echo(f"  resources: {printable(', '.join(resources), 300)}")
    click.echo(f"  region {printable(call.get('region'))}  connection {printable(call.get('connection'))}  "
               f"request {printable(call.get('request_id'))}  bytes in {printable(call.get('bytes_in'))} "
               f"out {printable(call.get('bytes_out'))}")
    if call.get("params"):
        click.echo(f"  params: {printable(json.dumps(call['params'], sort_keys=True), None if full else 300)}")
    resp = call.get("response") or {}
    text = str(resp.get("text") or "")
    if text:
        lines = text.splitlines()
        click.echo("  response:" + (f" (truncated; original {resp.get('size')} bytes)" if resp.get("truncated") else ""))
        for line in lines if full else lines[:20]:
            click.echo("    " + printable(line))
        if not full and len(lines) > 20:
            click.echo(f"    … {len(lines) - 20} more lines (--full)")
    click.echo(f"  status: {printable(c.get('status'))}  (gateway: observed by the server)")


@sessions.command("export")
@_filter_options
@click.option("--session", "session_id", help="Only this session.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
              help="Write to this file instead of stdout.")
def export_cmd(session_id: str | None, fmt: str, output: str | None, **kw: Any) -> None:
    """Stream every record of the matching sessions (any size) as JSON Lines or CSV."""
    import urllib.request

    client = _client()
    params = {**_params(kw), "format": fmt, "session_id": session_id}
    req = urllib.request.Request(client.url("/api/v1/export", params),
                                 headers={"Authorization": f"Bearer {client._bearer()}"})
    if output:
        with open(output, "wb") as sink:
            _download(client, req, sink)
    else:
        try:
            _download(client, req, sys.stdout.buffer)
        finally:
            sys.stdout.buffer.flush()


def _download(client: Any, req: urllib.request.Request, sink: BinaryIO) -> None:
    """Copy the export to `sink`; the server's refusals become hoop's errors."""
    import shutil
    import urllib.error
    import urllib.request

    from hoopcli.client import Forbidden, ServerError
    from hoopcli.errors import NotLoggedIn, Unavailable

    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            shutil.copyfileobj(resp, sink, 64 * 1024)
    except urllib.error.HTTPError as exc:
        detail = _detail(exc.read())
        if exc.code == 401:
            raise NotLoggedIn("not logged in, or the login expired") from None
        if exc.code == 403:
            raise Forbidden(detail or "forbidden", status=403) from None
        if exc.code >= 500:
            raise Unavailable(f"the hoop server failed (HTTP {exc.code})") from None
        raise ServerError(detail or f"HTTP {exc.code}", status=exc.code) from None
    except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
        raise Unavailable(f"cannot reach the hoop server at {client.base_url} "
                          f"({getattr(exc, 'reason', exc)})") from exc


def _detail(body: bytes) -> str:
    try:
        detail = json.loads(body).get("detail")
        return detail if isinstance(detail, str) else json.dumps(detail)
    except (ValueError, AttributeError):
        return ""


@sessions.command("verify")
@click.option("--session", "session_id", help="Also check the server's inclusion proof of each "
                                             "record of this session.")
@click.option("--accept-new-key", is_flag=True, help="Trust (and pin) the server's current "
                                                   "checkpoint key even if it differs from the pinned one.")
@click.option("--no-seal", is_flag=True, help="Do not ask the server to sign a fresh checkpoint first.")
@click.option("--json", "as_json", is_flag=True, help="Print {ok, failures, warnings, notes} as JSON.")
@click.pass_context
def verify_cmd(ctx: click.Context, session_id: str | None, accept_new_key: bool, no_seal: bool,
               as_json: bool) -> None:
    """Check signatures, the checkpoint chain, every record's hash, the recomputed tree and the
    consistency between checkpoints; exit 1 if anything fails, naming what."""
    from hoopcli.audit.verify import verify
    from hoopcli.paths import Layout, ensure_dir

    layout = Layout.from_env(os.environ)
    ensure_dir(layout.home)
    report = verify(_client(), layout, accept_new_key=accept_new_key, seal=not no_seal,
                    session_id=session_id)
    if as_json:
        click.echo(json.dumps({"ok": report.ok, "failures": report.failures,
                               "warnings": report.warnings, "notes": report.notes}, indent=2))
    else:
        for line in report.notes:
            click.echo(f"ok: {line}")
        for line in report.warnings:
            click.echo(f"warning: {line}", err=True)
        for line in report.failures[:200]:
            click.echo(f"FAIL: {line}")
        if len(report.failures) > 200:
            click.echo(f"FAIL: … and {len(report.failures) - 200} more")
        click.echo("verified: the log is intact" if report.ok
                   else f"verification FAILED: {len(report.failures)} problem(s)")
    if not report.ok:
        ctx.exit(1)


@sessions.command("replay")
@click.argument("session_id")
@click.option("--speed", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Playback speed factor; 0 plays with no waits.")
@click.option("--max-wait", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Longest pause between commands, in seconds after the speed factor.")
@click.option("--endpoint-url", help="Re-run the recorded commands against this sandbox endpoint "
                                     "(e.g. moto_server) and compare exit codes and output shapes.")
@click.option("--region", help="Region for the re-run (default: as recorded, else us-east-1).")
@click.option("--json", "as_json", is_flag=True, help="With --endpoint-url: print the comparison as JSON.")
@click.pass_context
def replay_cmd(ctx: click.Context, session_id: str, speed: float, max_wait: float,
               endpoint_url: str | None, region: str | None, as_json: bool) -> None:
    """Play a session back with its original timing, or re-run it against a sandbox.

    Gateway calls are shown in playback; a re-run covers the recorded commands only."""
    from hoopcli.audit import replay

    data = _fetch_session(_client(), session_id)
    if not endpoint_url:
        replay.play(data["commands"], speed=speed, max_wait=max_wait)
        return
    results = replay.rerun(data["commands"], endpoint_url, region=region)
    mismatches = sum(1 for r in results if r.exit_match is False or r.shape_match is False)
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in results], indent=2))
    else:
        mark = {True: "same", False: "DIFFERENT", None: "n/a"}
        for r in results:
            click.echo(f"#{r.seq} aws {printable(' '.join(r.argv), 80)}")
            click.echo(f"    exit: {r.original_exit} -> {r.exit_code} ({mark[r.exit_match]})   "
                       f"output shape: {mark[r.shape_match]}" + (f"   {r.note}" if r.note else ""))
        click.echo(f"{len(results)} commands re-run against {endpoint_url}: "
                   + ("all match" if not mismatches else f"{mismatches} differ"))
    if mismatches:
        ctx.exit(1)


@sessions.command("end")
@click.argument("session_id")
def end_cmd(session_id: str) -> None:
    """End a session now: it is closed and its gateway credentials stop working (within a
    second on every server)."""
    data = _client().post(f"/api/v1/sessions/{session_id}/close", json={}).json()
    revoked = data.get("revoked_credentials", 0) if isinstance(data, dict) else 0
    click.echo(f"session {printable(session_id, 64)} ended; {revoked} credential(s) revoked")
