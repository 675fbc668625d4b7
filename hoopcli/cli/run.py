"""`hoop run -- CMD ...`"""

from __future__ import annotations

import click

from hoopcli.agents.run import RunInput, run_agent


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--agent", help="Agent name recorded with the session (default: the command's name).")
@click.option("--connection", help="hoop connection the agent's aws calls use (default: HOOP_CONNECTION or 'default').")
@click.option("--reason", help="Justification shown to approvers (sets HOOP_REASON for the agent).")
@click.option("--isolate", is_flag=True,
              help="Run the agent in a Linux mount namespace (bubblewrap or unshare) where your HOOP_HOME, "
                   "~/.aws and keyring are empty: the session credential is all it can reach. Needs a "
                   "gateway connection.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@click.pass_context
def run(ctx: click.Context, agent: str | None, connection: str | None, reason: str | None, isolate: bool,
        command: tuple[str, ...]) -> None:
    """Run an agent under a new hoop session.

    The `aws` shim comes first on PATH, HOOP_SESSION_ID and HOOP_AGENT are set, and ambient AWS
    credential variables are removed from the agent's environment. Exits with the agent's status.
    With --isolate the agent runs where your hoop login, AWS files and keyring cannot be read.
    """
    code = run_agent(RunInput(command=command, agent=agent, connection=connection, reason=reason,
                              isolate=isolate))
    ctx.exit(code)
