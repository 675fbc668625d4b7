"""The detached background uploader as the shim starts it: one at a time, retries while the server
is down, delivers everything exactly once when it is back, then exits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from recorder_helpers import Ingest, free_port, log_in, make_result, make_start

from hoopcli.cli.sync import spool_status
from hoopcli.paths import Layout
from hoopcli.record.spool import Spool
from hoopcli.record.uploader import kick_uploader, read_state, uploader_pid

pytestmark = pytest.mark.e2e


def wait_for(what: str, check: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return True


@pytest.fixture(autouse=True)
def short_linger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOP_UPLOADER_LINGER", "0.5")


def test_server_down_for_100_records_then_back_the_uploader_delivers_all_once(layout: Layout) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_in(layout, url, "test-token")
    spool = Spool(layout)
    env = dict(os.environ)
    ids = []
    for i in range(50):                         # 50 commands = 100 records, server down
        start = make_start(seq=i)
        result = make_result(seq=i)
        result["command_id"] = start["command_id"]
        for rec in (start, result):
            spool.append(rec)
            ids.append(rec["id"])
        kick_uploader(layout, env, url)
    wait_for("an uploader to run", lambda: uploader_pid(layout) is not None)
    pid = uploader_pid(layout)
    assert pid and pid != os.getpid()
    assert kick_uploader(layout, env, url) is False        # one runs: no second one
    wait_for("the uploader to back off", lambda: read_state(layout).get("state") == "backoff")
    state = read_state(layout)
    assert state["last_error"].startswith(f"hoop: cannot reach the hoop server at {url}")
    assert len(spool.pending()) == 100
    snapshots: list[dict[str, object]] = []   # what `hoop status --json` prints
    wait_for("status to show the backoff",
             lambda: snapshots.append(spool_status(layout)) or snapshots[-1]["uploader"] == "backoff")
    shown = snapshots[-1]
    assert (shown["pending"], shown["uploader_pid"]) == (100, pid)
    assert str(shown["last_error"]).startswith(f"hoop: cannot reach the hoop server at {url}")
    assert isinstance(shown["next_retry_in_seconds"], float)

    server = Ingest(port=port).start()
    try:
        wait_for("the spool to drain", lambda: not spool.pending())
        wait_for("the uploader to exit", lambda: _pid_gone(pid))
        assert set(server.stored) == set(ids) and len(server.stored) == 100
        assert set(server.posts.values()) == {1}
        assert uploader_pid(layout) is None
        assert read_state(layout)["state"] == "stopped"
        log = (layout.home / "uploader.log").read_text()
        assert "done: 100 records sent" in log and "test-token" not in log

        # later commands start a fresh uploader
        late = make_result(seq=99)
        spool.append(late)
        assert kick_uploader(layout, env, url) is True
        wait_for("the late record", lambda: late["id"] in server.stored)
        wait_for("the spool to drain", lambda: not spool.pending())
    finally:
        server.stop()


def test_an_uploader_that_is_not_logged_in_stops_and_says_why(layout: Layout, ingest: Ingest) -> None:
    spool = Spool(layout)
    spool.append(make_start())
    assert kick_uploader(layout, dict(os.environ), ingest.url) is True
    wait_for("the uploader to stop", lambda: read_state(layout).get("state") == "stopped"
             and uploader_pid(layout) is None)
    assert read_state(layout)["last_error"] == f"hoop: not logged in to {ingest.url}; run `hoop login`"
    assert len(spool.pending()) == 1 and ingest.stored == {}


def test_the_uploader_ignores_a_hoopcli_package_in_the_agents_directory(
        layout: Layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    evil = tmp_path / "repo"
    (evil / "hoopcli").mkdir(parents=True)
    marker = tmp_path / "pwned"
    (evil / "hoopcli" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (evil / "hoopcli" / "uploader.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.chdir(evil)
    Spool(layout).append(make_start())
    assert kick_uploader(layout, dict(os.environ), "http://127.0.0.1:9") is True
    wait_for("the uploader to stop", lambda: read_state(layout).get("state") == "stopped"
             and uploader_pid(layout) is None)
    assert not marker.exists()


def test_the_uploader_does_not_hold_the_agents_pipes_open(layout: Layout) -> None:
    """An agent reading the shim's output until EOF must not wait for the lingering uploader."""
    read_end, write_end = os.pipe()
    env = {**os.environ, "HOOP_UPLOADER_LINGER": "60"}
    code = ("import os, sys\n"
            "from hoopcli.record.uploader import kick_uploader\n"
            "from hoopcli.paths import Layout\n"
            "print(kick_uploader(Layout.from_env(), dict(os.environ), 'http://127.0.0.1:9'))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, pass_fds=(write_end,))
    os.close(write_end)
    try:
        out, _ = proc.communicate(timeout=60)     # EOF on stdout/stderr: nobody else holds them
        assert out.strip() == b"True"
        wait_for("the uploader to run", lambda: uploader_pid(layout) is not None)
        os.set_blocking(read_end, False)
        try:
            extra = os.read(read_end, 1)          # b"" = EOF: the uploader did not inherit fd
        except BlockingIOError:
            extra = None                          # still open somewhere: the uploader holds it
        assert extra == b""
    finally:
        os.close(read_end)
        pid = uploader_pid(layout)
        if pid:
            os.kill(pid, signal.SIGTERM)
