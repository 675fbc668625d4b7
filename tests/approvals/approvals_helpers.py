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
           justification: bool = False, expiry: int = 1800, presence: str = "fresh") -> Decision:
    return Decision("review", "review-writes", "changes are reviewed",
                    ReviewSpec(approvers=approvers, channels=channels, expiry=expiry, wait=600,
                               require_justification=justification, presence=presence))


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
                    "HOOP_SERVER_LOG_LEVEL": "warning",
                    # each process's SigV4 gateway on a port of its own (the default is 8010)
                    "HOOP_SERVER_GATEWAY_LISTEN": f"127.0.0.1:{free_port()}"})
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
    data: dict[str, Any] = {"connections": {"default": {"credentials": "vend", "role_arn": ROLE, "region": "us-east-1"}}}
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


# -- the person at the console: a step-up sign-in over plain HTTP (the browser tests are tests/web) --

PASSWORDS = {"alice": "alice-signs-in-again", "bob": "bob-approves-things", "dave": "dave-develops"}


def local_users(groups: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """The server config's `users:` (the dev IdP's accounts) for these names, passwords above."""
    from hoopcli.server.idp.users import config_entry

    users: dict[str, Any] = {}
    for name, member_of in groups.items():
        users.update(config_entry(name, PASSWORDS[name], member_of, f"{name}@example.com"))
    return users


def _field(html: str, name: str) -> str:
    import re

    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} in the page: {html[:500]}"
    return found.group(1)


class ConsoleSession:
    """A console session signed in at the dev IdP by filling its form, as a person would."""

    def __init__(self, url: str, user: str, next_path: str = "/approvals", fresh: bool = False) -> None:
        import httpx

        self.url, self.user = url.rstrip("/"), user
        self.http = httpx.Client(follow_redirects=False, timeout=15)
        self.sign_in(next_path, fresh)

    def sign_in(self, next_path: str, fresh: bool) -> None:
        params = {"next": next_path, **({"fresh": "1"} if fresh else {})}
        r = self.http.get(self.url + "/auth/login", params=params)
        assert r.status_code == 302, r.text
        authorize = r.headers["location"]
        if fresh:
            assert "prompt=login" in authorize and "max_age=0" in authorize
        page = self.http.get(authorize)
        assert page.status_code == 200, page.text
        r = self.http.post(authorize, data={"csrf_token": _field(page.text, "csrf_token"),
                                            "username": self.user, "password": PASSWORDS[self.user]})
        assert r.status_code == 302, r.text
        r = self.http.get(r.headers["location"])          # the console's /auth/callback
        assert r.status_code == 303 and r.headers["location"] == next_path, (r.status_code, r.text[:300])

    def page(self, approval_id: str) -> str:
        r = self.http.get(f"{self.url}/approvals/{approval_id}")
        assert r.status_code == 200, r.text
        return r.text

    def decide(self, approval_id: str, approve: bool = True, reason: str = "") -> Any:
        """POST the approval page's form; the answer (303 back to the page, or the refusal page)."""
        html = self.page(approval_id)
        return self.http.post(f"{self.url}/approvals/{approval_id}/decision", headers={"Origin": self.url},
                              data={"csrf_token": _field(html, "csrf_token"), "call_hash": _field(html, "call_hash"),
                                    "decision": "approve" if approve else "deny", "reason": reason})


def approve_with_fresh_sign_in(url: str, user: str, approval_id: str) -> None:
    """The requester opens the approval's URL, signs in again (step-up) and approves."""
    time.sleep(1.05 - time.time() % 1.0)    # auth_time counts whole seconds: sign in after the request's
    session = ConsoleSession(url, user, f"/approvals/{approval_id}", fresh=True)
    r = session.decide(approval_id)
    assert r.status_code == 303, r.text
