"""`hoop doctor` against a real server and a real shim on PATH."""

from __future__ import annotations

import json
import subprocess
import sys


def doctor(world, env=None):
    proc = subprocess.run([sys.executable, "-m", "hoopcli", "doctor", "--json"],
                          env={**world.environ, **(env or {})}, capture_output=True, text=True, timeout=60)
    return proc.returncode, {f["check"]: f for f in json.loads(proc.stdout)}, proc


def test_all_good(shim_world):
    code, findings, proc = doctor(shim_world)
    bad = {k: v for k, v in findings.items() if v["status"] == "fail"}
    assert code == 0, bad
    assert findings["shim on PATH"]["status"] == "ok"
    assert findings["login"]["status"] == "ok"
    assert findings["server reachable"]["status"] == "ok"
    assert findings["clock skew"]["status"] == "ok"


def test_static_credentials_are_found_and_not_shown(shim_world, tmp_path):
    aws_dir = tmp_path / ".aws"
    aws_dir.mkdir(exist_ok=True)
    (aws_dir / "credentials").write_text(
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n")
    (aws_dir / "config").write_text("[profile x]\ncredential_process = /bin/echo\n")
    code, findings, proc = doctor(shim_world, {"AWS_SESSION_TOKEN": "tok"})
    assert code == 1
    assert findings["no ambient credentials (env)"]["status"] == "fail"
    creds = next(v for k, v in findings.items() if k.endswith("credentials") and k.startswith("no static"))
    assert creds["status"] == "fail" and "aws_secret_access_key" in creds["detail"]
    cfg = next(v for k, v in findings.items() if k.endswith("config") and k.startswith("no static"))
    assert "credential_process" in cfg["detail"]
    assert "wJalrXUtnFEMI" not in proc.stdout and "AKIAIOSFODNN7EXAMPLE" not in proc.stdout


def test_real_cli_first_on_path_and_server_down(shim_world):
    env = {"PATH": "/usr/bin:/bin", "HOOP_SERVER": "http://127.0.0.1:9"}
    code, findings, _ = doctor(shim_world, env)
    assert code == 1
    assert findings["shim on PATH"]["status"] == "fail"
    assert findings["server reachable"]["status"] == "fail"
    assert findings["login"]["status"] == "fail"
