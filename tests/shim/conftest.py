"""A world for the shim: a real hoop server whose `default` connection points at a real
moto_server, a logged-in user in a fresh HOOP_HOME, and ways to run the shim in process
(hoopcli.shim.main with an injected Environment) and as a real executable."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from hoopcli.agents.shimfile import install_shim
from hoopcli.identity import tokens as auth
from hoopcli.paths import Layout
from hoopcli.shim import Environment, main

ROLE = "arn:aws:iam::123456789012:role/hoop-agent"


@dataclass
class Outcome:
    code: int
    out: bytes
    err: bytes

    @property
    def stdout(self) -> str:
        return self.out.decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return self.err.decode("utf-8", "replace")


@dataclass
class ShimWorld:
    server: Any
    moto: str
    home: Path
    environ: dict[str, str]
    shim_path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def layout(self) -> Layout:
        return Layout(self.home)

    def login(self, sub: str = "alice", groups: tuple[str, ...] = ("developers",), email: str | None = None) -> None:
        token = self.server.token(sub, email=email or f"{sub}@example.com", groups=list(groups))
        meta = {"server": self.server.url, "issuer": self.server.url + "/idp", "client_id": "hoop-cli",
                "token_endpoint": self.server.url + "/idp/token"}
        auth.store_tokens(self.layout, "file", meta, {"id_token": token})

    def run(self, *args: str, stdin: bytes = b"", env: dict[str, str] | None = None) -> Outcome:
        """The shim in this process, through its injectable Environment."""
        out, err = io.BytesIO(), io.BytesIO()
        environ = {**self.environ, **(env or {})}
        e = Environment(environ=environ, stdin=io.TextIOWrapper(io.BytesIO(stdin)),
                        stdout=io.TextIOWrapper(out, write_through=True),
                        stderr=io.TextIOWrapper(err, write_through=True), cwd=str(self.home),
                        argv0=str(self.shim_path))
        code = main(list(args), env=e)
        e.stdout.flush()
        e.stderr.flush()
        return Outcome(code, out.getvalue(), err.getvalue())

    def exec(self, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None,
             timeout: float = 120) -> Outcome:
        """The shim as a real executable, the way an agent runs it."""
        proc = subprocess.run([str(self.shim_path), *args], input=stdin, capture_output=True,
                              env={**self.environ, **(env or {})}, timeout=timeout)
        return Outcome(proc.returncode, proc.stdout, proc.stderr)

    def s3(self) -> Any:
        return boto3.client("s3", endpoint_url=self.moto, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def shim_world(make_server, moto_endpoint, clean_env, tmp_path) -> ShimWorld:
    server = make_server(connections={"default": {"credentials": "vend", "role_arn": ROLE, "region": "us-east-1",
                                                  "endpoint_url": moto_endpoint}})
    return make_world(server, moto_endpoint, tmp_path, HOOP_DEBUG="1")


def make_world(server: Any, moto_endpoint: str, tmp_path: Path, **extra_env: str) -> ShimWorld:
    """A logged-in user with the shim installed, in front of `server` (vend or gateway)."""
    home = tmp_path / "client-home"
    shim_path = install_shim(tmp_path / "shimbin", python=sys.executable)
    environ = {
        "HOOP_HOME": str(home), "HOOP_SERVER": server.url, "HOOP_NO_PROMPT": "1",
        "PATH": os.pathsep.join([str(shim_path.parent), os.path.dirname(sys.executable), "/usr/bin", "/bin"]),
        "HOME": str(tmp_path), **extra_env,
    }
    world = ShimWorld(server, moto_endpoint, home, environ, shim_path)
    world.login()
    return world


def isolate_world(server: Any, moto_endpoint: str, tmp_path: Path) -> ShimWorld:
    """make_world for `hoop run --isolate`: the file token store and sbin on PATH (bwrap, unshare)."""
    path = os.pathsep.join([str(tmp_path / "shimbin"), os.path.dirname(sys.executable), "/usr/bin", "/bin",
                            "/usr/sbin", "/sbin"])
    return make_world(server, moto_endpoint, tmp_path, HOOP_TOKEN_STORE="file", AWS_EC2_METADATA_DISABLED="true",
                      PATH=path)
