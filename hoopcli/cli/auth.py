"""`hoop login`, `hoop logout`, `hoop whoami`: thin commands over hoopcli.identity.tokens / hoopcli.identity.device."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import click


def _context(server: str | None = None) -> tuple[Any, Any]:
    from hoopcli.config import load
    from hoopcli.paths import Layout

    layout = Layout.from_env()
    return layout, load(layout=layout, server=server)


def _when(epoch: Any) -> str:
    if not isinstance(epoch, (int, float)):
        return "unknown"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _can_open_browser() -> bool:
    if not sys.stdout.isatty():
        return False
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        return False  # headless: do not start a text-mode browser inside the terminal
    return True


def _show_code(auth: Any) -> None:
    complete = auth.verification_uri_complete
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.panel import Panel

        lines = [f"Open [bold]{auth.verification_uri}[/bold]",
                 f"and enter the code [bold cyan]{auth.user_code}[/bold cyan]"]
        if complete:
            lines.append(f"or open [link={complete}]{complete}[/link]")
        lines.append(f"The code expires in {auth.expires_in // 60} minutes.")
        Console().print(Panel("\n".join(lines), title="hoop login", expand=False))
        return
    click.echo(f"To sign in, open {auth.verification_uri}")
    click.echo(f"and enter the code: {auth.user_code}")
    if complete:
        click.echo(f"Or open: {complete}")
    click.echo(f"The code expires in {auth.expires_in // 60} minutes. Waiting for sign-in ...")


@click.command()
@click.option("--server", "server_url", metavar="URL",
              help="hoop server URL (default: $HOOP_SERVER, else the saved one, else http://127.0.0.1:8009).")
@click.option("--no-browser", is_flag=True, help="Do not try to open a web browser.")
def login(server_url: str | None, no_browser: bool) -> None:
    """Sign in with the identity provider your hoop server uses (OAuth device flow).

    Prints a URL and a code; sign in there (on any device) and hoop stores the tokens: the
    refresh token in the OS keyring (or a 0600 file in HOOP_HOME, see HOOP_TOKEN_STORE).
    """
    from hoopcli.client import Client
    from hoopcli.identity import tokens as auth

    layout, cfg = _context(server_url)

    def open_url(url: str) -> None:
        if no_browser or not _can_open_browser():
            return
        import webbrowser

        try:
            webbrowser.open(url, new=1)
        except webbrowser.Error:
            pass

    session = auth.login(layout, cfg, show=_show_code, open_url=open_url,
                         warn=lambda m: click.echo(m, err=True))
    me = Client(cfg.server, token=session["id_token"]).get("/api/v1/whoami").json() or {}
    who = me.get("email") or me.get("subject") or session.get("subject")
    roles = ", ".join(me.get("roles") or []) or "developer"
    click.echo(f"Logged in to {cfg.server} as {who} (roles: {roles}); the session renews "
               f"itself until the provider ends it (ID token valid until {_when(session['expires_at'])}).")


@click.command()
@click.option("--server", "server_url", metavar="URL", help="hoop server URL (default: the saved one).")
def logout(server_url: str | None) -> None:
    """Revoke the refresh token (where the provider supports it) and delete local tokens."""
    from hoopcli.identity import tokens as auth

    layout, cfg = _context(server_url)
    revoked = auth.logout(layout, cfg)
    click.echo(f"Logged out of {cfg.server}" + ("; the refresh token was revoked." if revoked else "."))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--server", "server_url", metavar="URL", help="hoop server URL (default: the saved one).")
def whoami(as_json: bool, server_url: str | None) -> None:
    """Show who you are to the hoop server: subject, email, groups, roles, login expiry."""
    from hoopcli.client import Client
    from hoopcli.identity import tokens as auth

    layout, cfg = _context(server_url)
    token = auth.id_token(layout, cfg)
    me = Client(cfg.server, token=token).get("/api/v1/whoami").json() or {}
    state = auth.status(layout, cfg) or {}
    out = {
        "server": cfg.server, "issuer": state.get("issuer"),
        "subject": me.get("subject"), "email": me.get("email"), "name": me.get("name"),
        "groups": me.get("groups") or [], "roles": me.get("roles") or [],
        "expires_at": _when(state.get("expires_at")), "token_store": state.get("store"),
    }
    if as_json:
        click.echo(json.dumps(out, sort_keys=True))
        return
    for key in ("server", "issuer", "subject", "email", "name"):
        if out[key]:
            click.echo(f"{key + ':':<12} {out[key]}")
    click.echo(f"{'groups:':<12} {', '.join(out['groups']) or '-'}")
    click.echo(f"{'roles:':<12} {', '.join(out['roles']) or '-'}")
    click.echo(f"{'expires:':<12} {out['expires_at']} (renewed automatically)")
