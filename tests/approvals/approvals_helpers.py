"""Helpers for the approvals tests: real Invocations, Decisions and Principals (no parser needed)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ -> `fakes` importable

from hoopcli.parse.invocation import ApiCall, GlobalOptions, Invocation
from hoopcli.policy.model import Decision, ReviewSpec
from hoopcli.server.identity.security import Principal, roles_for
from hoopcli.server.settings import DEFAULT_ROLES


def make_invocation(bucket: str = "a", region: str | None = None, op: str = "rb") -> Invocation:
    """`aws s3 rb s3://BUCKET` as the parser describes it (built directly: no parser needed)."""
    call = ApiCall("s3", "DeleteBucket", ("s3:DeleteBucket",), "Write", (f"arn:aws:s3:::{bucket}",),
                   {"Bucket": bucket})
    return Invocation(argv=("s3", op, f"s3://{bucket}") + (("--region", region) if region else ()),
                      kind="s3", service="s3", operation=op, globals=GlobalOptions(region=region),
                      params={"paths": f"s3://{bucket}"}, api_calls=(call,))


def review(approvers: tuple[str, ...] = ("self",), channels: tuple[str, ...] = ("terminal", "cli", "slack", "web"),
           justification: bool = False, expiry: int = 1800) -> Decision:
    return Decision("review", "review-writes", "changes are reviewed",
                    ReviewSpec(approvers=approvers, channels=channels, expiry=expiry, wait=600,
                               require_justification=justification))


def principal(sub: str, groups: tuple[str, ...] = (), org: str = "default") -> Principal:
    return Principal(subject=sub, email=f"{sub}@example.com", name=sub, groups=groups,
                     roles=roles_for(groups, dict(DEFAULT_ROLES)), org=org)


# -- real `hoop server` processes (two-server tests and benchmarks/approval_latency.py) ----------

ROLE = "arn:aws:iam::123456789012:role/hoop-agent"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """`python -m hoopcli server` as a child process."""

    def __init__(self, home: Path, config: Path, database_url: str, public_url: str, port: int,
                 log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HOOP_", "AWS_"))}
        env.update({"HOOP_HOME": str(home), "HOOP_SERVER_PUBLIC_URL": public_url,
                    "HOOP_SERVER_LOG_LEVEL": "warning"})
        self.log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hoopcli", "server", "--config", str(config), "--host", "127.0.0.1",
             "--port", str(port), "--database-url", database_url],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hoop server exited {self.proc.returncode}: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/api/v1/config", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("hoop server did not come up") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def start_cluster(tmp: Path, database_url: str, count: int = 2, slack: dict[str, Any] | None = None
                  ) -> tuple[list[ServerProcess], Any]:
    """`count` hoop servers on one database, sharing the dev IdP key and public URL (as behind a
    load balancer). Returns (servers, settings to mint tokens with)."""
    import yaml

    from hoopcli.server.settings import load_settings

    home = tmp / "cluster-home"
    config = tmp / "server.yaml"
    data: dict[str, Any] = {"connections": {"default": {"role_arn": ROLE, "region": "us-east-1"}}}
    if slack:
        data["slack"] = slack
    config.write_text(yaml.safe_dump(data))
    ports = [free_port() for _ in range(count)]
    public = f"http://127.0.0.1:{ports[0]}"
    servers: list[ServerProcess] = []
    try:
        for i, port in enumerate(ports):   # one after the other: the first creates the IdP key
            servers.append(ServerProcess(home, config, database_url, public, port, tmp / f"server{i}.log"))
    except BaseException:
        for srv in servers:
            srv.stop()
        raise
    settings = load_settings(config, env={"HOOP_HOME": str(home), "HOOP_SERVER_PUBLIC_URL": public})
    return servers, settings


def fresh_pg_database(admin_url: str = "postgresql://postgres@127.0.0.1:5432/postgres") -> tuple[str, Any]:
    """(url, drop) for a brand-new PostgreSQL database."""
    import secrets

    import psycopg

    name = f"hoop_appr_{secrets.token_hex(5)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return admin_url.rsplit("/", 1)[0] + "/" + name, drop
