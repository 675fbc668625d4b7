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
    code, findings, _ = doctor(shim_world)
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


def test_a_launcher_from_an_older_hoop_is_a_warning_with_the_fix(shim_world):
    # what `hoop shim install` wrote before the launcher called hoopcli.shim.launch
    shim_world.shim_path.write_text(f"#!{sys.executable} -I\n# hoopcli-shim: old\nimport sys\n"
                                    "from hoopcli.shim import main\nsys.exit(main())\n")
    code, findings, _ = doctor(shim_world)
    assert code == 0
    assert findings["shim on PATH"]["status"] == "warn"
    assert "hoop shim install" in findings["shim on PATH"]["fix"]
    result = shim_world.exec("--version")         # the old launcher still works
    assert result.code == 0, result.stderr
