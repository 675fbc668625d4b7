"""The CLI's error funnel of last resort: type and frames, never an exception's message."""

from __future__ import annotations

import stat
from pathlib import Path

import click
import pytest

from hoopcli.cli import run_command


@click.command()
def broken() -> None:
    raise RuntimeError("token=s3cr3t-canary")


def test_an_unexpected_exception_prints_its_type_never_its_message(
        clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command(broken, [], "hoop") == 70
    err = capsys.readouterr().err
    assert err.startswith("hoop: internal error (RuntimeError)") and err.count("\n") == 1
    assert "s3cr3t" not in err
    log = clean_env / "logs" / "cli-errors.log"
    assert str(log) in err
    text = log.read_text()
    assert "builtins.RuntimeError" in text and "in broken" in text and "s3cr3t" not in text
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
