"""load_key: a 32-byte 0600 key in HOOP_HOME, stable, concurrent-safe, corrupt files refused."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from hoopcli.errors import ConfigError
from hoopcli.masking import KEY_FILE_NAME, Masker, load_key
from hoopcli.paths import Layout


def test_created_once_0600_and_stable(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "home")
    key = load_key(layout)
    path = layout.home / KEY_FILE_NAME
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(layout.home.stat().st_mode) == 0o700
    assert load_key(layout) == key
    assert Masker(key).fingerprint("x") == Masker(load_key(layout)).fingerprint("x")


def test_loose_permissions_tightened(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    load_key(layout)
    os.chmod(tmp_path / KEY_FILE_NAME, 0o644)
    load_key(layout)
    assert stat.S_IMODE((tmp_path / KEY_FILE_NAME).stat().st_mode) == 0o600


@pytest.mark.parametrize("content", [b"", b"short", b"x" * 33])
def test_corrupt_key_refused(tmp_path: Path, content: bytes) -> None:
    (tmp_path / KEY_FILE_NAME).write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_key(Layout(tmp_path))
    assert "masking key" in err.value.line()


def _load(home: str, queue: multiprocessing.Queue[bytes]) -> None:
    queue.put(load_key(Layout(Path(home))))


def test_concurrent_first_use_agrees(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_load, args=(str(tmp_path / "h"), queue)) for _ in range(8)]
    for p in procs:
        p.start()
    keys = {queue.get(timeout=30) for _ in procs}
    for p in procs:
        p.join(timeout=30)
    assert len(keys) == 1
    assert [f for f in os.listdir(tmp_path / "h") if f != KEY_FILE_NAME] == []


def test_short_key_rejected() -> None:
    with pytest.raises(ValueError):
        Masker(b"short")
