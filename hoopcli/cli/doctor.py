"""`hoop doctor`"""

from __future__ import annotations

import json

import click

from hoopcli.agents.doctor import FAIL, OK, run_checks


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the findings as one JSON array.")
@click.pass_context
def doctor(ctx: click.Context, as_json: bool) -> None:
    """Check that agents' `aws` calls can only go through hoop. Exits 1 when a check fails."""
    findings = run_checks()
    if as_json:
        click.echo(json.dumps([f.to_dict() for f in findings], indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="hoop doctor")
        for col in ("check", "status", "detail", "what to do"):
            table.add_column(col, overflow="fold")
        style = {OK: "green", FAIL: "red"}
        for f in findings:
            table.add_row(f.check, f"[{style.get(f.status, 'yellow')}]{f.status}[/]", f.detail, f.fix)
        Console().print(table)
    ctx.exit(1 if any(f.status == FAIL for f in findings) else 0)
