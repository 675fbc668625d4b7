"""kill -9 of the real shim (a real `aws` process through hoop, real server, real moto_server) at
random points: every record the spool holds is intact and reaches the server; a command killed
between its start and its result is shown as incomplete."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hoopcli.client import Client
from hoopcli.identity import tokens as auth
from hoopcli.paths import Layout
from hoopcli.record.spool import Spool

pytestmark = pytest.mark.e2e

ROLE = "arn:aws:iam::123456789012:role/hoop-agent"
SESSION = "kill-9-session"


@pytest.fixture
def world(make_server: Any, moto_endpoint: str, layout: Layout, tmp_path: Path) -> tuple[Any, dict[str, str]]:
    server = make_server(connections={"default": {"credentials": "vend", "role_arn": ROLE, "region": "us-east-1",
                                                  "endpoint_url": moto_endpoint}})
    token = server.token("alice", email="alice@example.com", groups=["developers"])
    meta = {"server": server.url, "issuer": server.url + "/idp", "client_id": "hoop-cli",
            "token_endpoint": server.url + "/idp/token"}
    auth.store_tokens(layout, "file", meta, {"id_token": token})
    env = {"HOOP_HOME": str(layout.home), "HOOP_SERVER": server.url, "HOOP_NO_PROMPT": "1",
           "HOOP_SESSION_ID": SESSION, "HOOP_AGENT": "kill-test", "HOME": str(tmp_path),
           "HOOP_UPLOADER_LINGER": "0.5",
           "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/bin", "/bin"])}
    return server, env


def shim(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "hoopcli.shim", "s3api", "list-buckets"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_kill_9_of_the_shim_loses_nothing_already_spooled(world: tuple[Any, dict[str, str]],
                                                         layout: Layout) -> None:
    server, env = world
    t0 = time.monotonic()
    proc = shim(env)
    _, err = proc.communicate(timeout=120)
    took = time.monotonic() - t0
    assert proc.returncode == 0, err.decode()
    spool = Spool(layout)
    seen: set[str] = set()
    rng = random.Random(9)
    for _ in range(8):
        proc = shim(env)
        time.sleep(rng.uniform(0.0, took * 1.1))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        seen.update(rec["id"] for _, rec in spool.records())   # what the spool promised to keep
        assert spool.quarantined() == []
    sync = subprocess.run([sys.executable, "-m", "hoopcli", "sync"], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert sync.returncode == 0, sync.stderr
    assert spool.pending() == []
    client = Client(server.url, token=server.token("alice", email="alice@example.com"))
    shown = client.get(f"/api/v1/sessions/{SESSION}").json()
    stored = {r["id"] for c in shown["commands"] for r in (c["start"], c["result"]) if r}
    assert seen <= stored
    statuses = [c["status"] for c in shown["commands"]]
    assert statuses[0] == "ok"
    for c in shown["commands"]:
        assert (c["status"] == "incomplete") == (c["result"] is None)
        assert c["start"] is not None           # a result is never written without its start


def test_a_full_disk_under_the_spool_stops_the_shim_with_a_clear_line(
        make_server: Any, moto_endpoint: str, tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mnt)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        server = make_server(connections={"default": {"credentials": "vend", "role_arn": ROLE, "region": "us-east-1",
                                                      "endpoint_url": moto_endpoint}})
        layout = Layout(mnt / "home").ensure()
        meta = {"server": server.url, "issuer": server.url + "/idp", "client_id": "hoop-cli",
                "token_endpoint": server.url + "/idp/token"}
        auth.store_tokens(layout, "file", meta, {"id_token": server.token("alice", email="a@example.com")})
        env = {"HOOP_HOME": str(layout.home), "HOOP_SERVER": server.url, "HOOP_NO_PROMPT": "1",
               "HOOP_SESSION_ID": "full-disk", "HOME": str(tmp_path), "HOOP_UPLOADER_LINGER": "0.5",
               "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/bin", "/bin"])}
        ok = shim(env)                       # warm every cache while there is room
        assert ok.wait(timeout=120) == 0
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        proc = shim(env)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 70
        assert f"hoop: cannot write the local spool at {layout.spool_dir}: no space left on device" \
            in err.decode()
        assert Spool(layout).quarantined() == []
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
