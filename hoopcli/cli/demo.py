"""`hoop demo`"""

from __future__ import annotations

import click


@click.command()
@click.pass_context
def demo(ctx: click.Context) -> None:
    """Run the whole story on embedded defaults: a local server and AWS sandbox, a logged-in
    developer, an agent that lists, reads a secret (masked), deletes a bucket (approved by a
    second person) and creates an access key (denied), then the audit trail. All on loopback,
    all removed afterwards."""
    from rich.console import Console

    from hoopcli.demo.story import run_story

    ctx.exit(run_story(Console()))
