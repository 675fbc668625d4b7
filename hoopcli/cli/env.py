"""`hoop env`: open a session for use elsewhere (a CI job, a remote sandbox) and print its
gateway session credential as `export` lines or JSON."""

from __future__ import annotations

import json
import shlex

import click

from hoopcli.agents.run import open_gateway_session


@click.command("env")
@click.option("--agent", default="hoop-env", show_default=True, help="Agent name recorded with the session.")
@click.option("--connection", help="hoop connection (default: HOOP_CONNECTION or 'default'); it must use "
              "`credentials: gateway`.")
@click.option("--ttl", "ttl", default="12h", show_default=True,
              help="How long the credential lives: seconds, or a number with s, m, h or d.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of export lines.")
def env(agent: str, connection: str | None, ttl: str, as_json: bool) -> None:
    """Open a session and print the environment that sends AWS SDKs and CLIs to hoop's gateway.

    The credential works only at the gateway, where every request is decided, masked and
    recorded. `hoop sessions end ID` revokes it.
    """
    values = open_gateway_session(agent=agent, connection=connection, ttl_seconds=_seconds(ttl))
    if as_json:
        click.echo(json.dumps(values, sort_keys=True))
        return
    for name, value in values.items():
        click.echo(f"export {name}={shlex.quote(value)}")


def _seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    if not number.isdigit() or not 60 <= int(number) * units[unit] <= 7 * 86400:
        raise click.BadParameter("give 60s to 7d, as seconds or a number with s, m, h or d", param_hint="--ttl")
    return int(number) * units[unit]
