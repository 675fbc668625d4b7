"""`hoop server add-user`: make a local account line for the built-in development IdP."""

from __future__ import annotations

import sys

import click


@click.command("add-user")
@click.argument("name")
@click.option("--groups", default="", metavar="G1,G2",
              help="Comma-separated groups (map them to roles under `roles:` in the server config).")
@click.option("--email", default=None, help="Email claim (default: NAME@localhost).")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input instead of prompting.")
def add_user(name: str, groups: str, email: str | None, password_stdin: bool) -> None:
    """Print the server-config entry (argon2id password hash) for a development IdP account.

    Paste the printed lines under `users:` in the server config file. The password itself is
    never printed or stored.
    """
    import yaml

    from hoopcli.errors import UsageError
    from hoopcli.server.idp.users import config_entry

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    if not password:
        raise UsageError("the password must not be empty")
    entry = config_entry(name, password, tuple(groups.split(",")), email)
    click.echo("# add under `users:` in the hoop server config")
    click.echo(yaml.safe_dump({"users": entry}, sort_keys=False).rstrip())
