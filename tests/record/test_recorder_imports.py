"""The recorder is on the shim's hot path: importing it, appending and probing the uploader pull in
nothing outside the standard library and hoopcli's own stdlib-only modules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = r"""
import fcntl, json, os, sys
before = set(sys.modules)
from hoopcli.record import shapes as recorder
from hoopcli.record.spool import Spool
from hoopcli.record.uploader import kick_uploader
from hoopcli.paths import Layout
layout = Layout.from_env()
spool = Spool(layout)
spool.append(recorder.record_result(command_id=recorder.new_id(), session_id="s", seq=0, exit_code=0))
spool.dir.mkdir(exist_ok=True)
fd = os.open(spool.dir / ".uploader.lock", os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
spawned = kick_uploader(layout, {}, "http://127.0.0.1:9")
new = sorted(set(sys.modules) - before)
print(json.dumps({"spawned": spawned, "modules": new}))
"""


def test_hot_path_imports_only_the_standard_library(tmp_path: Path) -> None:
    env = {**os.environ, "HOOP_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env,
                         check=True).stdout
    got = json.loads(out)
    assert got["spawned"] is False
    stdlib = set(sys.stdlib_module_names)
    foreign = [m for m in got["modules"]
               if m.split(".")[0] not in stdlib and m.split(".")[0] != "hoopcli"]
    assert foreign == []
    ours = {m for m in got["modules"] if m.startswith("hoopcli")}
    assert ours <= {"hoopcli", "hoopcli.record", "hoopcli.record.shapes", "hoopcli.record.spool", "hoopcli.record.uploader", "hoopcli.errors",
                    "hoopcli.exitcodes", "hoopcli.paths"}
    # neither the HTTP client nor process spawning is loaded when an uploader already runs
    assert not {"subprocess", "urllib.request", "hoopcli.client"} & set(got["modules"])
