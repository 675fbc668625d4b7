"""`hoop mcp`: an MCP server over stdio whose tools run aws commands under a hoop session."""

from __future__ import annotations

import click


@click.command()
@click.option("--agent", default="mcp", show_default=True, help="Agent name recorded with the session.")
@click.option("--connection", help="hoop connection the calls use (default: HOOP_CONNECTION or 'default').")
@click.pass_context
def mcp(ctx: click.Context, agent: str, connection: str | None) -> None:
    """Serve the Model Context Protocol on stdin/stdout for an agent that speaks it.

    Opens a hoop session (closed when the client disconnects) and offers two tools: call_aws
    runs one aws command through hoop's pipeline (policy, approvals, masking, recording) and
    explain_aws says what a command would do. Register it with the agent, e.g.
    `claude mcp add hoop -- hoop mcp`.
    """
    from hoopcli.agents.mcp import serve

    ctx.exit(serve(agent=agent, connection=connection))
