"""The spool under real processes: 50 concurrent writers, kill -9 mid-write, a full or read-only disk."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from recorder_helpers import WRITER, make_result

from hoopcli.errors import SpoolError
from hoopcli.paths import Layout
from hoopcli.record.spool import Spool
from hoopcli.record.uploader import kick_uploader

pytestmark = pytest.mark.e2e


def _writer(home: Path, count: int, size: int = 100) -> subprocess.Popen[str]:
    env = {**os.environ, "HOOP_HOME": str(home)}
    return subprocess.Popen([sys.executable, str(WRITER), str(count), str(size)], env=env,
                            stdout=subprocess.PIPE, text=True)


def test_fifty_concurrent_writers_lose_and_damage_nothing(layout: Layout) -> None:
    procs = [_writer(layout.home, 20, size=random.Random(i).randint(10, 5000)) for i in range(50)]
    promised: set[str] = set()
    for proc in procs:
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0
        promised.update(out.split())
    assert len(promised) == 1000
    spool = Spool(layout)
    stored = {rec["id"]: rec for _, rec in spool.records()}
    assert set(stored) == promised
    assert spool.quarantined() == []
    assert not [n for n in os.listdir(spool.dir) if n.startswith(".tmp.")]
    # each writer's records come back in its own order
    by_session: dict[str, list[int]] = {}
    for _, rec in spool.records():
        by_session.setdefault(rec["session_id"], []).append(rec["seq"])
    assert len(by_session) == 50
    assert all(seqs == sorted(seqs) for seqs in by_session.values())


@pytest.mark.parametrize("seed", range(6))
def test_kill_9_at_a_random_point_keeps_every_record_already_appended(layout: Layout, seed: int) -> None:
    rng = random.Random(seed)
    proc = _writer(layout.home, -1, size=rng.choice([100, 20_000, 300_000]))
    assert proc.stdout is not None
    promised: list[str] = []
    deadline = time.monotonic() + rng.uniform(0.05, 0.6)
    while time.monotonic() < deadline or not promised:
        promised.append(proc.stdout.readline().strip())
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate(timeout=30)
    promised += rest.split()       # written before the kill landed: promised too
    promised = [p for p in promised if p]
    spool = Spool(layout)
    stored = [rec["id"] for _, rec in spool.records()]
    assert set(promised) <= set(stored)
    assert stored[: len(promised)] == promised
    assert spool.quarantined() == []
    spool.clean_tmp()                # the dead writer's half-written temporary file, if any
    assert not [n for n in os.listdir(spool.dir) if n.startswith(".tmp.")]
    assert [rec["id"] for _, rec in spool.records()] == stored


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB tmpfs (needs root); unmounted afterwards."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mnt)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_raises_a_clear_spool_error_and_keeps_what_was_written(small_fs: Path) -> None:
    spool = Spool(Layout(small_fs / "home"))
    kept: list[str] = []
    with pytest.raises(SpoolError) as info:
        for i in range(100):
            rec = make_result(seq=i, stdout="x" * 6000)
            spool.append(rec)
            kept.append(rec["id"])
    assert 0 < len(kept) < 100
    assert info.value.line() == (
        f"hoop: cannot write the local spool at {spool.dir}: no space left on device; free space "
        "in HOOP_HOME or point HOOP_HOME at a writable directory; run `hoop status`")
    assert int(info.value.exit_status) == 70
    assert [rec["id"] for _, rec in spool.records()] == kept
    assert not [n for n in os.listdir(spool.dir) if n.startswith(".tmp.")]
    assert spool.quarantined() == []
    # space comes back: appends work again
    spool.ack(kept[:3])
    spool.append(make_result(stdout="small"))


def test_a_read_only_spool_raises_a_clear_spool_error(small_fs: Path) -> None:
    layout = Layout(small_fs / "home")
    spool = Spool(layout)
    first = spool.append(make_result())
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    with pytest.raises(SpoolError, match="read-only file system"):
        Spool(layout).append(make_result())
    assert spool.load(first) is not None
    assert kick_uploader(layout, {}) is False   # never raises on the hot path
