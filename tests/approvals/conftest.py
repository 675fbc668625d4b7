"""Fixtures for the approvals tests: real settings and a fresh, migrated database (SQLite and PostgreSQL)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ -> `fakes` importable


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    from hoopcli.server.settings import load_settings

    return load_settings(env={}, home=str(tmp_path / "srv"))


@pytest.fixture
def db(database_url: str) -> Any:
    from hoopcli.server.store.db import Database

    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()
