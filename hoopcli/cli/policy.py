"""`hoop policy show | validate FILE | test FILE --commands FILE | push FILE`."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from typing import Any

import click

from hoopcli.cli.display import printable
from hoopcli.errors import ConfigError, HoopError


def _layout_cfg(server: str | None = None) -> tuple[Any, Any]:
    from hoopcli import config
    from hoopcli.paths import Layout

    layout = Layout.from_env(os.environ)
    return layout, config.load(os.environ, layout, server=server)


def _client(server: str | None = None) -> tuple[Any, Any]:
    from hoopcli.client import for_user

    layout, _cfg = _layout_cfg(server)
    return for_user(server=server, layout=layout), layout


def _compile(path: str) -> tuple[dict[str, Any], list[Any]]:
    from hoopcli.policy.compiler import PolicyInvalid, check_source, read_policy_file

    compiled, problems = check_source(read_policy_file(path))
    for p in problems:
        click.echo(p.format(path), err=True)
    if compiled is None:
        raise PolicyInvalid(problems, path)
    return compiled, problems




@click.group()
def policy() -> None:
    """The policy: show the one in force, validate and test a file, push a new version."""


@policy.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print the server's answer as JSON.")
@click.option("--cached", is_flag=True, help="Describe the local cache instead (no network).")
@click.option("--default", "shipped", is_flag=True, help="Print hoop's shipped default policy.")
@click.option("--server", help="Server URL (default: HOOP_SERVER or the configured server).")
def show_cmd(as_json: bool, cached: bool, shipped: bool, server: str | None) -> None:
    """Show the policy in force on the server (version, who pushed it, its YAML)."""
    if shipped:
        from importlib import resources

        click.echo(resources.files("hoopcli.policy.data").joinpath("default.yaml").read_text("utf-8"), nl=False)
        return
    if cached:
        from hoopcli.policy import read_cached

        layout, _cfg = _layout_cfg(server)
        pol, problem = read_cached(layout)
        info: dict[str, Any] = {"path": str(layout.policy_cache)}
        if pol is None:
            info.update(source="default", problem=problem or "no cached policy yet (the shipped default applies)")
        else:
            age = time.time() - pol.checked_at if pol.checked_at is not None else None
            info.update(pol.summary(), age_seconds=round(age, 1) if age is not None else None,
                        cache_ttl=pol.cache_ttl, max_staleness=pol.max_staleness,
                        offline_reads=pol.offline_reads)
        if as_json:
            click.echo(json.dumps(info, indent=2))
        else:
            for key, value in info.items():
                click.echo(f"{key + ':':15}{printable(value)}")
        return
    client, layout = _client(server)
    body = client.get("/api/v1/policy").json()
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    who = f", pushed by {printable(body.get('created_by'))}" if body.get("created_by") else ""
    when = ""
    if body.get("created_at"):
        when = " at " + time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(body["created_at"]))
    click.echo(f"# version {body.get('version')} ({printable(body.get('origin'))}){who}{when}; etag {printable(body.get('etag'))}")
    click.echo(body.get("source") or "", nl=False)


@policy.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the problems as a JSON array.")
def validate_cmd(file: str, as_json: bool) -> None:
    """Check a policy file: errors (exit 1) and warnings, each with line and column."""
    from hoopcli.policy.compiler import check_source, read_policy_file

    compiled, problems = check_source(read_policy_file(file))
    if as_json:
        click.echo(json.dumps([dict(p.to_dict(), file=file) for p in problems], indent=2))
    else:
        for p in problems:
            click.echo(p.format(file), err=compiled is None)
    if compiled is None:
        errors = sum(1 for p in problems if p.severity == "error")
        raise ConfigError(f"{file}: invalid policy ({errors} error{'s' if errors != 1 else ''})")
    if not as_json:
        warnings = len(problems)
        custom = len((compiled.get("detections") or {}).get("rules") or [])
        extra = f", {custom} detection rule{'s' if custom != 1 else ''}" if "detections" in compiled else ""
        click.echo(f"{file}: ok ({len(compiled['rules'])} rules{extra}, {warnings} warning{'s' if warnings != 1 else ''})")


def _read_commands(path: str) -> list[tuple[int, str]]:
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as fh:
                text = fh.read(4 * 1024 * 1024 + 1)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read commands file {path}: {exc}") from exc
    if len(text) > 4 * 1024 * 1024:
        raise ConfigError(f"commands file {path} is larger than 4 MiB")
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)
            if line.strip() and not line.lstrip().startswith("#")]


def _test_one(pol: Any, ctx: Any, line: str, seen: list[tuple[int, Any, Any]] | None = None,
              number: int = 0) -> dict[str, Any]:
    from hoopcli.parse import parse

    try:
        args = shlex.split(line)
        if args and args[0] == "aws":
            args = args[1:]
        inv = parse(args)
        d = pol.evaluate(inv, ctx)
    except ValueError as exc:
        return {"error": f"cannot split the line: {exc}"}
    except HoopError as exc:
        return {"error": exc.message}
    except Exception as exc:  # one bad line must not hide the others' answers
        return {"error": f"hoop could not classify this command (internal error: {type(exc).__name__}); "
                         "please report it"}
    if seen is not None:
        seen.append((number, inv, d))
    out = inv.to_dict()
    out.pop("globals", None)
    out.update(decision=d.effect, rule=d.rule, reason=d.reason,
               review=d.review.to_dict() if d.review else None, calls=list(d.calls))
    return out


@policy.command("test")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--commands", "commands", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="One aws command line per line (shell quoting, optional leading `aws`, # comments); - for stdin.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines: one object per command, in order.")
@click.option("--user", help="Evaluate as this user (email).")
@click.option("--group", "groups", multiple=True, help="A group of the user (repeatable; role:NAME for a server role).")
@click.option("--agent", help="Agent name.")
@click.option("--connection", help="Connection name.")
@click.option("--region", help="Region when a command gives no --region.")
@click.option("--interval", type=click.FloatRange(0, 86400), default=1.0, show_default=True,
              help="Seconds between two commands, for the detections' windows.")
def test_cmd(file: str, commands: str, as_json: bool, user: str | None, groups: tuple[str, ...],
             agent: str | None, connection: str | None, region: str | None, interval: float) -> None:
    """What FILE's policy would do with each command of the commands file, and which detections
    the commands, run one after another in one session, would raise."""
    from hoopcli.detect.simulate import simulate
    from hoopcli.policy import Context, Policy

    compiled, _problems = _compile(file)
    pol = Policy(compiled, source="file")
    ctx = Context(user=user, groups=tuple(groups), agent=agent, connection=connection, region=region)
    rows = []
    seen: list[tuple[int, Any, Any]] = []
    for number, line in _read_commands(commands):
        rows.append((number, line, _test_one(pol, ctx, line, seen, number)))
    raised = simulate(compiled.get("detections"), seen, ctx, interval)
    if as_json:
        for number, _line, result in rows:
            extra = {} if "error" in result else {"detections": raised.get(number, [])}
            click.echo(json.dumps({"line": number, **result, **extra}, separators=(",", ":")))
        return
    click.echo(f"{'LINE':>4}  {'DECISION':8} {'ACCESS':12} {'RULE':28} COMMAND / REASON")
    for number, _line, r in rows:
        if "error" in r:
            click.echo(f"{number:>4}  {'error':8} {'-':12} {'-':28} {printable(r['error'], 100)}")
            continue
        level = "Permissions" if r["access_level"] == "Permissions management" else r["access_level"]
        command = " ".join(x for x in ("aws", r["service"], r["operation"]) if x)
        click.echo(f"{number:>4}  {r['decision']:8} {level:12} {printable(r['rule'], 28):28} {printable(command, 60)}")
        detail = r["reason"] if r["decision"] != "review" or not r["review"] else \
            f"approvers: {', '.join(r['review']['approvers'])}; channels: {', '.join(r['review']['channels'])}"
        click.echo(f"{'':56}{printable(detail, 100)}")
    _print_detections(raised)


def _print_detections(raised: dict[int, list[dict[str, Any]]]) -> None:
    if not raised:
        click.echo("detections: none would be raised")
        return
    click.echo("")
    click.echo(f"{'LINE':>4}  {'DETECTION':22} {'SEVERITY':9} {'ACTION':7} WHAT WAS SEEN")
    for number in sorted(raised):
        for d in raised[number]:
            click.echo(f"{number:>4}  {printable(d['rule'], 22):22} {d['severity']:9} {d['action']:7} "
                       f"{printable(d['summary'], 100)}")


@policy.command("push")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--comment", "-m", help="Why (kept in the policy history).")
@click.option("--server", help="Server URL (default: HOOP_SERVER or the configured server).")
def push_cmd(file: str, comment: str | None, server: str | None) -> None:
    """Validate FILE and publish it as the new policy version (needs the admin role)."""
    from hoopcli.policy import refresh
    from hoopcli.policy.compiler import read_policy_file

    _compile(file)   # the server validates again; this catches mistakes before the round trip
    source = read_policy_file(file).decode("utf-8")
    client, layout = _client(server)
    body = client.put("/api/v1/policy", json={"source": source, "comment": comment}).json()
    if not body.get("created"):
        click.echo(f"unchanged: version {body.get('version')} already has this content")
    else:
        diff = body.get("diff") or ""
        added = sum(1 for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++"))
        removed = sum(1 for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---"))
        click.echo(f"pushed version {body.get('version')} (+{added} -{removed} lines); etag {body.get('etag')}")
    try:
        refresh(layout, client, force=True)
    except HoopError:
        pass   # the push succeeded; the cache refreshes on the next command anyway


@policy.command("history")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of versions.")
@click.option("--diff", "diff_of", type=int, metavar="N", help="Print the diff that version N introduced.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--server", help="Server URL (default: HOOP_SERVER or the configured server).")
def history_cmd(as_json: bool, diff_of: int | None, limit: int, server: str | None) -> None:
    """Pushed policy versions: who pushed each, when, why (admin or auditor role)."""
    client, _layout = _client(server)
    if diff_of is not None:
        body = client.get(f"/api/v1/policy/versions/{diff_of}").json()
        click.echo(body.get("diff") or "", nl=False)
        return
    items = client.get("/api/v1/policy/versions", params={"limit": limit}).json() or []
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    if not items:
        click.echo("no pushed versions: the server enforces its built-in policy (version 0)")
        return
    click.echo(f"{'VERSION':>7}  {'PUSHED (UTC)':20} {'BY':28} COMMENT")
    for it in items:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(it.get("created_at") or 0))
        who = it.get("created_by_email") or it.get("created_by")
        click.echo(f"{it.get('version'):>7}  {when:20} {printable(who, 28):28} {printable(it.get('comment'), 60)}")
