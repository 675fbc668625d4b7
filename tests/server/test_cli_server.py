"""`hoop server` as a real process: starts, serves, logs access lines without secrets, refuses
bad config with one clear line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"hoop server exited: {proc.communicate()[1]}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")

HOOP = [sys.executable, "-m", "hoopcli"]


def run_hoop(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HOOP, *args], capture_output=True, text=True, timeout=timeout, check=False, env=dict(os.environ))


def test_server_runs_and_logs_access_without_secrets(tmp_path: Path) -> None:
    port = free_port()
    # The gateway's default port is the API's + 1, which another process may hold: give it its own.
    env = {**os.environ, "HOOP_SERVER_GATEWAY_LISTEN": f"127.0.0.1:{free_port()}"}
    proc = subprocess.Popen([*HOOP, "server", "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/api/v1/health", proc=proc)
        config = httpx.get(url + "/api/v1/config").json()
        assert config["issuer"] == url + "/idp"
        from hoopcli.server.idp.keys import mint_id_token
        from hoopcli.server.settings import load_settings

        token = mint_id_token(load_settings(port=port), "alice")
        r = httpx.post(url + "/api/v1/sessions?code=hunter2", json={"agent": "x"},
                       headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 201, r.text
        assert httpx.post(url + "/api/v1/sessions", json={}, headers={"Authorization": "Bearer zzz.yyy.xxx"}).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert f"hoop server on {url}" in err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    sessions = [line for line in lines if line["path"] == "/api/v1/sessions"]
    assert [(line["method"], line["status"], line["user"]) for line in sessions] == [("POST", 201, "alice"), ("POST", 401, None)]
    assert token not in err and "hunter2" not in err and "zzz.yyy.xxx" not in err
    assert (tmp_path / "hoop-home" / "server" / "hoop.db").exists()


def test_invalid_yaml_is_one_clear_line(tmp_path: Path) -> None:
    cfg = tmp_path / "server.yaml"
    cfg.write_text("listen: 127.0.0.1:1\nconnections: {a: [}\n")
    result = run_hoop("server", "--config", str(cfg))
    assert result.returncode == 1
    assert result.stderr.startswith(f"hoop: invalid YAML in {cfg}:2:")
    assert result.stderr.count("\n") == 1


def test_unknown_key_is_named(tmp_path: Path) -> None:
    cfg = tmp_path / "server.yaml"
    cfg.write_text("oidc: {issuer: 'https://idp.example', clientid: x}\n")
    result = run_hoop("server", "--config", str(cfg))
    assert result.returncode == 1
    assert "unknown config key 'oidc.clientid'" in result.stderr


def test_database_from_a_newer_hoop_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "newer.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO alembic_version VALUES ('0099_future')"))
    engine.dispose()
    result = run_hoop("server", "--port", str(free_port()), "--database-url", f"sqlite:///{db}")
    assert result.returncode == 1
    assert "is at schema revision 0099_future, which this hoop version does not know" in result.stderr
    assert "upgrade hoop" in result.stderr


def test_help_lists_the_options() -> None:
    result = run_hoop("server", "--help")
    assert result.returncode == 0
    for option in ("--config", "--host", "--port", "--database-url"):
        assert option in result.stdout


@pytest.mark.parametrize("url", ["mysql://root@h/db", "postgresql://u:hunter2@127.0.0.1:1/x"])
def test_bad_database_urls(url: str) -> None:
    result = run_hoop("server", "--port", str(free_port()), "--database-url", url)
    assert result.returncode != 0
    assert result.stderr.startswith("hoop: ")
    assert "hunter2" not in result.stderr
