"""`hoop shim install`: put the `aws` shim ahead of the real CLI on PATH."""

from __future__ import annotations

from pathlib import Path

import click

from hoopcli.agents.shimfile import install_shim


@click.group()
def shim() -> None:
    """Manage the `aws` shim that agents run instead of the real AWS CLI."""


@shim.command("install")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Where to write the shim (default: HOOP_HOME/bin).")
def install(directory: Path | None) -> None:
    """Write an `aws` shim bound to this interpreter and print the PATH line to add."""
    path = install_shim(directory)
    click.echo(f"installed {path}")
    click.echo("Add this line to your shell profile (the shim must come before the real aws):")
    click.echo(f'export PATH="{path.parent}:$PATH"')
