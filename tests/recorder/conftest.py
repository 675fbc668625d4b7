"""Fixtures of the recorder tests: a private HOOP_HOME, a spool, a real ingest server, records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hoopcli import recorder
from hoopcli.paths import Layout
from recorder_helpers import Ingest


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Layout:
    home = tmp_path / "home"
    monkeypatch.setenv("HOOP_HOME", str(home))
    for key in ("HOOP_SERVER", "HOOP_SESSION_ID", "HOOP_TOKEN_STORE"):
        monkeypatch.delenv(key, raising=False)
    return Layout(home).ensure()


@pytest.fixture
def spool(layout: Layout) -> recorder.Spool:
    return recorder.Spool(layout)


@pytest.fixture
def ingest() -> Iterator[Ingest]:
    server = Ingest().start()
    yield server
    server.stop()
