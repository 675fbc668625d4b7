"""Every `hoop` command has help text and an entry in docs/ (sqlite-utils' test_docs idea)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hoopcli.cli import COMMANDS, LazyGroup, cli

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _all_commands() -> list[tuple[str, click.Command]]:
    found = []
    ctx = click.Context(cli)
    for name in sorted(COMMANDS):
        cmd = cli.get_command(ctx, name)
        assert cmd is not None, name
        found.append((name, cmd))
        if isinstance(cmd, click.Group) and not isinstance(cmd, LazyGroup):
            for sub_name, sub in sorted(cmd.commands.items()):
                found.append((f"{name} {sub_name}", sub))
    return found


ALL = _all_commands()


@pytest.mark.parametrize("path,cmd", ALL, ids=[p for p, _ in ALL])
def test_command_has_help_text(path: str, cmd: click.Command) -> None:
    assert (cmd.help or "").strip(), f"`hoop {path}` has no help text"
    result = CliRunner().invoke(cli, [*path.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output


@pytest.mark.parametrize("path", [p for p, _ in ALL])
def test_command_is_documented(path: str) -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in DOCS.glob("*.md"))
    assert f"hoop {path}" in text, f"`hoop {path}` is not mentioned in docs/"


def test_unknown_command_is_a_usage_error() -> None:
    from hoopcli.cli import main

    assert main(["no-such-command"]) == 2
