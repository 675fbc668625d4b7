"""`hoop server`: run the hoop server (FastAPI on uvicorn).

Subcommands (e.g. `hoop server add-user`) attach to the `server` group; with no subcommand the
group itself starts the server.
"""

from __future__ import annotations

from pathlib import Path

import click

from hoopcli.cli.server_users import add_user
from hoopcli.errors import ConfigError


@click.group(invoke_without_command=True)
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Server config YAML (default: $HOOP_SERVER_CONFIG, else none).")
@click.option("--host", help="Address to listen on (overrides `listen`).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port to listen on (overrides `listen`).")
@click.option("--database-url", help="sqlite:///PATH or postgresql://USER@HOST/DB (default: SQLite under HOOP_HOME).")
@click.pass_context
def server(ctx: click.Context, config_file: Path | None, host: str | None, port: int | None,
           database_url: str | None) -> None:
    """Run the hoop server: API, built-in development identity provider, web console.

    Precedence: flags > HOOP_SERVER_* environment > --config file > defaults.
    """
    ctx.ensure_object(dict)
    ctx.obj["config_file"] = config_file
    if ctx.invoked_subcommand is not None:
        return
    serve(config_file=config_file, host=host, port=port, database_url=database_url)


def serve(config_file: Path | None = None, host: str | None = None, port: int | None = None,
          database_url: str | None = None) -> None:
    try:
        import uvicorn

        from hoopcli.server.app import create_app
        from hoopcli.server.logging import configure
        from hoopcli.server.settings import load_settings
    except ImportError as exc:
        raise ConfigError(
            f"the server needs the `server` extra ({exc.name} is missing)",
            hint="pip install 'hoopcli[server]'",
        ) from None

    from hoopcli.server.app import serve_both

    settings = load_settings(config_file, host=host, port=port, database_url=database_url)
    configure(settings.log_level)
    app = create_app(settings)
    issuer = "built-in development IdP" if settings.dev_idp else settings.issuer
    click.echo(f"hoop server on {settings.public_url} (listening on {settings.listen}); "
               f"gateway on {settings.gateway.public_url} (listening on {settings.gateway.listen}); "
               f"identity provider: {issuer}; database: {app.state.db.safe_url}", err=True)
    serve_both(app, uvicorn)


server.add_command(add_user)
