"""Issue 15, item 7: a login whose ID token lacks the configured groups claim says which claim,
scopes and provider to check (`hoop login` and `hoop doctor`), instead of silently leaving the
user without groups. A real hoop server whose `oidc` is another hoop server's built-in dev IdP,
configured with a groups claim name that IdP does not emit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from human import sign_in, wait_for_line

HOOP = [sys.executable, "-m", "hoopcli"]


def login(srv: Any) -> tuple[int, str, str]:
    proc = subprocess.Popen([*HOOP, "login", "--server", srv.url, "--no-browser"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert proc.stdout is not None
        sign_in(wait_for_line(proc.stdout, r"Or open: (\S+)").group(1), username="alice")
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err


def doctor_login() -> dict[str, str]:
    out = subprocess.run([*HOOP, "doctor", "--json"], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ), check=False)
    return next(f for f in json.loads(out.stdout) if f["check"] == "login")


def test_a_missing_groups_claim_is_named_at_login_and_by_doctor(idp_server: Any, make_server: Any,
                                                                clean_env: Path) -> None:
    srv = make_server(oidc={"issuer": idp_server.url + "/idp", "groups_claim": "cognito:groups"},
                      roles={"approver": ["admins"], "admin": ["admins"]})
    code, out, err = login(srv)
    assert code == 0, err
    assert "roles: developer" in out           # alice is in `admins`, but the server cannot see it
    assert "has no 'cognito:groups' claim (it has groups)" in err
    assert f"ID token from {idp_server.url}/idp" in err
    assert "scopes hoop requested (openid email profile offline_access)" in err and "client 'hoop-cli'" in err
    finding = doctor_login()
    assert finding["status"] == "warn" and "'cognito:groups'" in finding["detail"]


def test_no_warning_when_the_claim_is_there(idp_server: Any, clean_env: Path) -> None:
    code, _out, err = login(idp_server)
    assert code == 0, err
    assert "groups_claim" not in err
    assert doctor_login()["status"] == "ok"
