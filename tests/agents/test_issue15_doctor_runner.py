"""Issue 15: `hoop doctor` reports the runner the way the shim chooses it (runner.runner_choice):
HOOP_HOME/config.json under a hoop session, never the agent's HOOP_RUNNER / HOOP_REAL_AWS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def real_cli_finding(home: Path, **env: str) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("HOOP_RUNNER", "HOOP_REAL_AWS", "HOOP_SESSION"))}
    full.update(HOOP_HOME=str(home), HOOP_SERVER="http://127.0.0.1:9", **env)
    out = subprocess.run([sys.executable, "-m", "hoopcli", "doctor", "--json"], capture_output=True, text=True,
                         timeout=120, env=full, check=False)
    return next(f for f in json.loads(out.stdout) if f["check"] == "real AWS CLI")


def fake_v2(tmp_path: Path) -> Path:
    path = tmp_path / "aws-v2"
    path.write_text("#!/bin/sh\necho aws-cli/2.0.0\n")
    path.chmod(0o755)
    return path


def test_under_a_session_the_agent_environment_does_not_choose(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    found = real_cli_finding(home, HOOP_SESSION_ID="s1", HOOP_RUNNER="subprocess",
                             HOOP_REAL_AWS=str(fake_v2(tmp_path)))
    assert found["status"] == "ok" and found["detail"].startswith("in-process runner (the default; "
                                                                  "HOOP_RUNNER/HOOP_REAL_AWS are ignored")


def test_hoop_config_chooses_the_subprocess_runner(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    real = fake_v2(tmp_path)
    (home / "config.json").write_text(json.dumps({"real_aws": str(real)}))
    found = real_cli_finding(home, HOOP_SESSION_ID="s1")
    assert found == {"check": "real AWS CLI", "status": "ok", "fix": "",
                     "detail": f"subprocess runner (chosen by HOOP_HOME/config.json) uses {real}"}
    outside = real_cli_finding(home, HOOP_RUNNER="inprocess")   # no session: the user's own choice
    assert outside["detail"].startswith("in-process runner (chosen by HOOP_RUNNER/HOOP_REAL_AWS")
