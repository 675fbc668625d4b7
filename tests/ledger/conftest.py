"""Ledger fixtures: a real hoop server on SQLite and PostgreSQL with an auditor group."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from ledger_factory import AUDITORS, BODY, Ledger  # shared with tests that import it by name


@pytest.fixture
def ledger(make_server: Callable[..., Any], database_url: str) -> Ledger:
    return Ledger(make_server(database_url=database_url, roles=AUDITORS, max_body_bytes=BODY))


@pytest.fixture
def sqlite_ledger(make_server: Callable[..., Any]) -> Ledger:
    return Ledger(make_server(roles=AUDITORS, max_body_bytes=BODY))


@pytest.fixture
def login(monkeypatch: pytest.MonkeyPatch, clean_env: Any) -> Callable[..., None]:
    """login(ledger, sub, groups): what `hoop login` leaves behind, with a real signed token."""
    import json
    import os
    import time

    from hoopcli.identity.tokens import session_file
    from hoopcli.paths import Layout, ensure_dir

    def do(ledger: Ledger, sub: str = "audrey", groups: tuple[str, ...] = ("auditors",)) -> None:
        monkeypatch.setenv("HOOP_SERVER", ledger.url)
        layout = Layout.from_env(os.environ)
        path = session_file(layout)
        ensure_dir(path.parent)
        token = ledger.srv.token(sub, email=f"{sub}@example.com", groups=groups)
        path.write_text(json.dumps({"server": ledger.url, "id_token": token,
                                    "expires_at": time.time() + 3600}))

    return do


@pytest.fixture
def hoop(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """hoop(*args) -> (exit code, stdout, stderr), through the real entry point and error funnel."""
    from hoopcli.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run
