"""Fixtures of the recorder tests: a private HOOP_HOME, a spool, a real ingest server, records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from recorder_helpers import Ingest

from hoopcli.paths import Layout
from hoopcli.record.spool import Spool


@pytest.fixture
def layout(clean_env: Path) -> Layout:
    """The HOOP_HOME that tests/conftest.py's clean_env set for this test."""
    return Layout(clean_env).ensure()


@pytest.fixture
def spool(layout: Layout) -> Spool:
    return Spool(layout)


@pytest.fixture
def ingest() -> Iterator[Ingest]:
    server = Ingest().start()
    yield server
    server.stop()
