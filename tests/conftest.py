"""Shared fixtures: a clean environment, real databases, a real moto_server, real hoop servers.

- clean_env (autouse): no AWS_* / HOOP_* from the developer's shell; HOOP_HOME is a tmp dir.
- pg_url (session): a throwaway PostgreSQL database hoop_test_<random> on 127.0.0.1:5432,
  dropped at the end of the run.
- database_url: parametrized "sqlite" / "postgres"; a fresh, empty database per test (for
  PostgreSQL a fresh schema inside pg_url's database, selected through search_path).
- moto_endpoint (session): a real `moto_server` subprocess -> "http://127.0.0.1:PORT".
- make_server(**settings_overrides) / server: a real hoop server (uvicorn in a thread on a free
  port, fresh SQLite database unless database_url= is given) with .url, .settings, .app, .db
  and .token(sub="alice", email=None, groups=(), **claims) minting real signed ID tokens.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

PG_ADMIN_URL = os.environ.get("HOOP_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
FAKE_AWS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


# -- environment --------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith(("AWS_", "HOOP_")):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "hoop-home"
    monkeypatch.setenv("HOOP_HOME", str(home))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return home


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- PostgreSQL -----------------------------------------------------------------------------------

def _pg_admin() -> Any:
    import psycopg

    return psycopg.connect(PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://"),
                           autocommit=True, connect_timeout=5)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test run: postgresql://.../hoop_test_<random>."""
    try:
        admin = _pg_admin()
    except Exception as exc:
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required for the storage tests: {exc}")
    name = f"hoop_test_{secrets.token_hex(6)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh empty database per test, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    import psycopg

    base = request.getfixturevalue("pg_url")
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# -- moto ---------------------------------------------------------------------------------------

def _moto_server_bin() -> str:
    local = Path(sys.executable).with_name("moto_server")
    return str(local) if local.exists() else (shutil.which("moto_server") or "moto_server")


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered
        except Exception as exc:
            last = exc
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up in {timeout}s: {last}")


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real moto_server on a free loopback port. The port is free when picked, not when moto
    binds it: if another process took it meanwhile, moto exits and a new port is tried."""
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HOOP_"))}
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1"})
    for attempt in range(5):
        port = free_port()
        proc = subprocess.Popen([_moto_server_bin(), "-H", "127.0.0.1", "-p", str(port)],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(url + "/moto-api/", proc=proc)
            time.sleep(0.2)
            if proc.poll() is None:          # moto answered, not a process that took its port
                break
        except RuntimeError:
            if proc.poll() is None or attempt == 4:
                proc.kill()
                raise
    else:
        raise RuntimeError("moto_server did not keep a port in 5 attempts")
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# -- hoop server --------------------------------------------------------------------------------

class RunningServer:
    """A hoop server running in this process (uvicorn in a thread)."""

    def __init__(self, settings: Any, app: Any, server: Any, thread: threading.Thread,
                 gateway: tuple[Any, threading.Thread] | None = None) -> None:
        self.settings = settings
        self.app = app
        self._server = server
        self._thread = thread
        self._gateway = gateway
        self.url = settings.public_url
        self.gateway_url = settings.gateway.public_url if gateway else None

    @property
    def db(self) -> Any:
        return self.app.state.db

    def token(self, sub: str = "alice", email: str | None = None, groups: Any = (), **claims: Any) -> str:
        from hoopcli.server.idp.keys import mint_id_token

        return mint_id_token(self.settings, sub, email, groups, **claims)

    def headers(self, sub: str = "alice", groups: Any = (), **claims: Any) -> dict[str, str]:
        return {"Authorization": "Bearer " + self.token(sub, groups=groups, **claims)}

    def stop(self) -> None:
        if self._gateway is not None:
            self._gateway[0].should_exit = True
            self._gateway[1].join(timeout=15)
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self.app.state.db.dispose()


def bound_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _serve_in_thread(config: Any, sock: socket.socket, what: str = "the server") -> tuple[Any, threading.Thread]:
    import uvicorn

    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.01)
    return server, thread


def start_server(settings: Any, aws_session: Any = None, sock: socket.socket | None = None,
                 gateway_sock: socket.socket | None = None) -> RunningServer:
    import uvicorn

    from hoopcli.server.app import create_app, uvicorn_configs

    sock = sock or bound_socket(settings.host, settings.port)
    app = create_app(settings, aws_session=aws_session)
    gateway = None
    if gateway_sock is not None:
        _api, gw_config = uvicorn_configs(app, uvicorn)
        gw_config.log_level = "warning"
        gateway = _serve_in_thread(gw_config, gateway_sock)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", http="h11",
                            timeout_graceful_shutdown=2)  # long-polls must not hold up teardown
    server, thread = _serve_in_thread(config, sock, "the hoop server")
    return RunningServer(settings, app, server, thread, gateway)


@pytest.fixture
def make_server(clean_env: Path) -> Iterator[Callable[..., RunningServer]]:
    """make_server(**settings_overrides) -> RunningServer. Overrides use the config-file keys
    (connections={...}, roles={...}, database_url=..., users={...}, ...). The broker's own AWS
    credentials are moto's fake keys unless aws_session= is given. `with_gateway=True` also starts
    the SigV4 gateway on its own port (RunningServer.gateway_url)."""
    running: list[RunningServer] = []

    def make(aws_session: Any = None, with_gateway: bool = False, **overrides: Any) -> RunningServer:
        import boto3

        from hoopcli.server.settings import load_settings

        sock = bound_socket()
        gateway_sock = bound_socket() if with_gateway else None
        overrides.setdefault("listen", f"127.0.0.1:{sock.getsockname()[1]}")
        overrides.setdefault("home", str(clean_env / f"server-{len(running)}"))
        if gateway_sock is not None:
            overrides["gateway"] = {"listen": f"127.0.0.1:{gateway_sock.getsockname()[1]}",
                                    **(overrides.get("gateway") or {})}
        try:
            settings = load_settings(env=os.environ, **overrides)
            srv = start_server(settings, aws_session or boto3.session.Session(**FAKE_AWS), sock, gateway_sock)
        except BaseException:
            sock.close()
            if gateway_sock is not None:
                gateway_sock.close()
            raise
        running.append(srv)
        return srv

    yield make
    for srv in running:
        srv.stop()


@pytest.fixture
def server(make_server: Callable[..., RunningServer]) -> RunningServer:
    return make_server()
