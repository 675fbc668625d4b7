"""Real processes for the reliability and security suites.

- ProcServer: a real `hoop server` subprocess (SQLite or PostgreSQL) that can be killed with
  SIGKILL and restarted on the same port and database; its stdout/stderr (the server's log at
  INFO, access lines included) go to a file the tests read back.
- RecordingProxy: a loopback HTTP reverse proxy in front of moto_server that keeps every response
  body, so a test learns the secrets AWS (moto) generated (vended keys, session tokens, new access
  keys) without hooking into hoop.
- Client helpers: a logged-in client HOOP_HOME, the shim in process and as an executable, `hoop`
  CLI commands as subprocesses, and a search of files, databases and text for needles.
"""

from __future__ import annotations

import http.client
import http.server
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROLE = "arn:aws:iam::123456789012:role/hoop-agent"
SANDBOX = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
ALLOW_ALL = """\
version: 1
description: everything allowed (security tests exercise secret-bearing writes too)
defaults: {list: allow, read: allow, tagging: allow, write: allow, permissions: allow, unknown: review}
rules: []
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HOOP_"))}


# -- hoop server as a process ---------------------------------------------------------------------

class ProcServer:
    def __init__(self, root: Path, database_url: str, aws_endpoint: str,
                 policy: str | None = None, port: int | None = None) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.log_path = root / "server.log"
        self.config = root / "server.yaml"
        self.gateway_port = free_port()
        cfg: dict[str, Any] = {
            "listen": f"127.0.0.1:{self.port}", "public_url": self.url, "database_url": database_url,
            "gateway": {"listen": f"127.0.0.1:{self.gateway_port}"},
            "home": str(root / "server-home"), "log_level": "info",
            "roles": {"approver": ["approvers"], "auditor": ["auditors"], "admin": ["admins"]},
            "connections": {"default": {"credentials": "vend", "role_arn": ROLE, "region": "us-east-1",
                                        "endpoint_url": aws_endpoint}},
        }
        if policy is not None:
            (root / "policy.yaml").write_text(policy, encoding="utf-8")
            cfg["policy_file"] = str(root / "policy.yaml")
        self.config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 60.0) -> ProcServer:
        env = {**base_env(), **SANDBOX, "HOOP_HOME": str(self.root / "server-home")}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "hoopcli", "server", "--config", str(self.config)],
                                     env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.starts += 1
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hoop server exited {self.proc.returncode}: {self.log()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/api/v1/config", timeout=2):
                    return self
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError("hoop server did not come up: " + self.log()[-2000:]) from None
                time.sleep(0.1)

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace") if self.log_path.exists() else ""

    def token(self, sub: str = "alice", groups: tuple[str, ...] = ("developers",), **claims: Any) -> str:
        from hoopcli.server.idp.keys import mint_id_token
        from hoopcli.server.settings import load_settings

        settings = load_settings(self.config, env={})
        return mint_id_token(settings, sub, f"{sub}@example.com", list(groups), **claims)


# -- a recording proxy in front of moto -----------------------------------------------------------

class RecordingProxy:
    """Forwards every request to `upstream` and keeps the response bodies (bytes)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.bodies: list[tuple[bytes, bytes]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection", "keep-alive", "transfer-encoding")}
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                with proxy._lock:
                    proxy.bodies.append(((self.path.encode() + b"\n" + (body or b"")), data))
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def exchanges(self) -> list[tuple[bytes, bytes]]:
        """(request path + body, response body) pairs, oldest first."""
        with self._lock:
            return list(self.bodies)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- the client side ------------------------------------------------------------------------------

@dataclass
class Outcome:
    code: int
    out: bytes
    err: bytes

    @property
    def stderr(self) -> str:
        return self.err.decode("utf-8", "replace")


@dataclass
class ClientHome:
    """A person's (or agent's) HOOP_HOME logged in to `server_url` with a token from `mint`."""

    home: Path
    server_url: str
    token: str
    shim_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from hoopcli.identity import tokens as auth
        from hoopcli.paths import Layout

        layout = Layout(self.home).ensure()
        meta = {"server": self.server_url, "issuer": self.server_url + "/idp", "client_id": "hoop-cli",
                "token_endpoint": self.server_url + "/idp/token"}
        auth.store_tokens(layout, "file", meta, {"id_token": self.token})

    @property
    def layout(self) -> Any:
        from hoopcli.paths import Layout

        return Layout(self.home)

    @property
    def environ(self) -> dict[str, str]:
        env = base_env()
        env.update({"HOOP_HOME": str(self.home), "HOOP_SERVER": self.server_url, "HOOP_NO_PROMPT": "1",
                    "HOME": str(self.home.parent), "AWS_CONFIG_FILE": str(self.home.parent / "no-aws"),
                    "AWS_SHARED_CREDENTIALS_FILE": str(self.home.parent / "no-aws-creds"),
                    "AWS_EC2_METADATA_DISABLED": "true", "HOOP_TOKEN_STORE": "file",
                    "PATH": os.pathsep.join([str(self.shim_path.parent), os.path.dirname(sys.executable),
                                             "/usr/bin", "/bin"])})
        env.update(self.extra_env)
        return env

    def run(self, *args: str, env: dict[str, str] | None = None) -> Outcome:
        """The shim in this process (hoopcli.shim.main with an injected Environment)."""
        from hoopcli.shim import Environment, main

        out, err = io.BytesIO(), io.BytesIO()
        e = Environment(environ={**self.environ, **(env or {})}, stdin=io.TextIOWrapper(io.BytesIO(b"")),
                        stdout=io.TextIOWrapper(out, write_through=True),
                        stderr=io.TextIOWrapper(err, write_through=True), cwd=str(self.home),
                        argv0=str(self.shim_path))
        code = main(list(args), env=e)
        e.stdout.flush()
        e.stderr.flush()
        return Outcome(code, out.getvalue(), err.getvalue())

    def exec(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Outcome:
        """The shim as a real executable, the way an agent runs `aws`."""
        proc = subprocess.run([str(self.shim_path), *args], capture_output=True, stdin=subprocess.DEVNULL, check=False,
                              env={**self.environ, **(env or {})}, timeout=timeout)
        return Outcome(proc.returncode, proc.stdout, proc.stderr)

    def hoop(self, *args: str, timeout: float = 120) -> Outcome:
        """A `hoop` CLI command as a subprocess."""
        proc = subprocess.run([sys.executable, "-m", "hoopcli", *args], capture_output=True,
                              stdin=subprocess.DEVNULL, env=self.environ, timeout=timeout, check=False)
        return Outcome(proc.returncode, proc.stdout, proc.stderr)


# -- searching --------------------------------------------------------------------------------------

def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


def hits_in_files(root: Path, needles: list[str], skip: set[Path] = frozenset()) -> list[tuple[str, str]]:
    """(file, needle-prefix) for every needle found in any file under root (raw bytes)."""
    found = []
    encoded = [(n, n.encode()) for n in needles]
    for path in files_under(root):
        if path in skip:
            continue
        data = path.read_bytes()
        for text, raw in encoded:
            if raw in data:
                found.append((str(path.relative_to(root)), text[:12]))
    return found


def dump_database(url: str) -> str:
    """Every row of every table, every column as text (SQLite or PostgreSQL)."""
    import sqlalchemy as sa

    from hoopcli.server.store.db import Database

    db = Database(url)
    try:
        chunks = []
        inspector = sa.inspect(db.engine)
        with db.engine.connect() as conn:
            for table in inspector.get_table_names():
                rows = conn.execute(sa.text(f'SELECT * FROM "{table}"')).fetchall()
                chunks.append(f"## {table} ({len(rows)} rows)")
                for row in rows:
                    chunks.append(repr([c.decode("latin-1") if isinstance(c, (bytes, memoryview)) and
                                        not isinstance(c, memoryview) else
                                        (bytes(c).decode("latin-1") if isinstance(c, memoryview) else str(c))
                                        for c in row]))
        return "\n".join(chunks)
    finally:
        db.dispose()
