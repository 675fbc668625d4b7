"""`hoop explain [--json] -- AWS_ARGS...` and `hoop explain --json -` (batch from stdin)."""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import click

from hoopcli.errors import UsageError


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per line with -).")
@click.option("--user", default=None, help="Decide as this user (policy rules may match users).")
@click.option("--group", "groups", multiple=True, help="A group of that user (repeatable).")
@click.option("--agent", envvar="HOOP_AGENT", default=None, help="Decide for this agent [HOOP_AGENT].")
@click.option("--connection", envvar="HOOP_CONNECTION", default=None,
              help="Decide for this connection [HOOP_CONNECTION].")
@click.argument("aws_args", nargs=-1, type=click.UNPROCESSED)
def explain(as_json: bool, user: str | None, groups: tuple[str, ...], agent: str | None,
            connection: str | None, aws_args: tuple[str, ...]) -> None:
    """Show what an aws command line would do: service, operation, API calls, IAM actions,
    access level, resources, and the policy decision, without running it.

    \b
    hoop explain -- s3 rm --recursive s3://bucket/logs/
    hoop explain --json -- aws lambda invoke --function-name f out.json
    printf 'aws s3 ls\\naws ec2 run-instances --image-id ami-1\\n' | hoop explain --json -
    """
    from hoopcli.parse import explain as lib

    decide = lib.make_decider(user=user, groups=groups, agent=agent, connection=connection)
    if list(aws_args) == ["-"]:
        if not as_json:
            raise UsageError("reading commands from stdin needs --json: `hoop explain --json -`")
        stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="surrogateescape")
        lib.write_jsonl(lib.explain_lines(stdin, decide), sys.stdout)
        return
    argv = list(aws_args)
    if argv[:1] == ["aws"]:
        argv = argv[1:]
    if not argv:
        raise UsageError("nothing to explain: `hoop explain -- s3 ls` or `hoop explain --json -`")
    result = lib.explain(argv, decide)
    if as_json:
        click.echo(json.dumps(result))
    else:
        _render(result)


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(32), *range(127, 160)]}


def _render(result: dict[str, Any]) -> None:
    """A readable summary. Every value from the command line is hostile input: control
    characters are shown as \\xNN (no terminal escape sequences) and nothing is read as markup."""
    from rich.console import Console
    from rich.markup import escape as markup_escape
    from rich.table import Table

    def escape(text: str) -> str:
        return markup_escape(text.translate(_CONTROL))

    console = Console(highlight=False)
    effect = str(result.get("decision") or "?")
    color = {"allow": "green", "review": "yellow", "deny": "red"}.get(effect, "white")
    title = " ".join(x for x in (result["service"], result["operation"] or "") if x) or "aws"
    console.print(f"[bold]aws {escape(title)}[/bold]  ({escape(result['kind'])})")
    console.print(f"access level: [bold]{escape(result['access_level'])}[/bold]   "
                  f"decision: [bold {color}]{escape(effect)}[/bold {color}]   "
                  f"rule: {escape(str(result.get('rule')))}")
    if result.get("reason"):
        console.print(f"reason: {escape(str(result['reason']))}")
    if result["globals"]:
        console.print("globals: " + escape(", ".join(f"{k}={v}" for k, v in result["globals"].items())))
    if result["api_calls"]:
        table = Table(show_header=True, header_style="bold")
        for col in ("API call", "IAM actions", "access level", "resources"):
            table.add_column(col, overflow="fold")
        for call in result["api_calls"]:
            name = f"{call['service']}:{call['operation']}"
            if call.get("dependent_of"):  # a dependent action (docs/explain.md)
                name = f"  + {call['actions'][0] if call['actions'] else name} (needed by {call['dependent_of']})"
            table.add_row(escape(name),
                          "\n".join(escape(a) for a in call["actions"]) or "-", escape(call["access_level"]),
                          "\n".join(escape(r) for r in call["resources"]) or "-")
        console.print(table)
        for call in result["api_calls"]:
            if call.get("note"):
                console.print(f"[yellow]note:[/yellow] {escape(', '.join(call['actions']))} for "
                              f"{escape(str(call.get('dependent_of')))}: {escape(call['note'])}")
        for item in result.get("may_need") or []:
            console.print(f"AWS also lists for {escape(item['for'])} (with some parameters; not "
                          f"granted): {escape(', '.join(item['actions']))}")
    else:
        console.print("no AWS API call")
