"""A throwaway local stack: moto_server as the AWS sandbox and a real `hoop server` (SQLite,
built-in development identity provider) on free loopback ports, in a temporary directory.

Used by `hoop demo` and by the benchmarks. Users log in through the real device flow; the
"browser" that enters the user code is played over HTTP against the dev IdP's page.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hoopcli.errors import HoopError

ROLE_ARN = "arn:aws:iam::123456789012:role/hoop-demo-agent"
SANDBOX_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1"}


class StackError(HoopError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            args = proc.args
            program = os.fsdecode(args if isinstance(args, (str, bytes, os.PathLike)) else args[0])
            raise StackError(f"{program} exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise StackError(f"{url} did not answer within {timeout:.0f} s")


@dataclass
class DemoUser:
    name: str
    password: str
    groups: tuple[str, ...]


@dataclass
class Stack:
    root: Path
    moto_url: str
    server_url: str
    users: dict[str, DemoUser]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def client_env(self, user: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment of a person (or agent) on the client side: own HOOP_HOME, no AWS keys."""
        env = {k: v for k, v in (os.environ if base is None else base).items()
               if not k.startswith("AWS_") and not k.startswith("HOOP_")}
        env.update({"HOOP_HOME": str(self.root / "clients" / user), "HOOP_SERVER": self.server_url,
                    "HOOP_TOKEN_STORE": "file"})
        return env

    def login(self, user: str) -> dict[str, Any]:
        """The real device flow for `user`: start it, enter the code on the IdP page, poll."""
        import requests

        from hoopcli.identity import device as login
        from hoopcli.identity import tokens as auth
        from hoopcli.paths import Layout

        env = self.client_env(user)
        layout = Layout(Path(env["HOOP_HOME"])).ensure()
        info = login.discover(self.server_url)
        grant = login.start(info)
        sign_in_browser(grant.verification_uri_complete or grant.verification_uri, grant.user_code,
                        user, self.users[user].password, requests.Session())
        tokens = login.poll(info, grant)
        auth.store_tokens(layout, "file", info.meta(), tokens)
        from hoopcli import config

        config.save(layout, server=self.server_url)
        return {"user": user, "user_code": grant.user_code, "verification_uri": grant.verification_uri}


def sign_in_browser(url: str, user_code: str, username: str, password: str, http: Any) -> None:
    """What a person does in the browser: open the page, sign in, approve the device."""
    page = http.get(url, timeout=10)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if page.status_code != 200 or not match:
        raise StackError("the identity provider's verification page did not load")
    form = {"csrf_token": match.group(1), "user_code": user_code, "username": username,
            "password": password, "action": "approve"}
    resp = http.post(url.split("?")[0], data=form, timeout=10)
    if resp.status_code >= 400:
        raise StackError(f"signing in as {username} failed (HTTP {resp.status_code})")


def _moto_bin() -> str:
    candidate = Path(sys.executable).with_name("moto_server")
    found = str(candidate) if candidate.exists() else shutil.which("moto_server")
    if not found:
        raise StackError("moto_server is not installed", hint="pip install 'moto[server]'")
    return found


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def local_stack(users: Mapping[str, tuple[str, ...]] | None = None,
                policy_file: Path | None = None, keep: bool = False) -> Iterator[Stack]:
    """Start moto_server and `hoop server` on loopback; yield the Stack; stop and delete all."""
    import yaml

    from hoopcli.server.idp.users import config_entry

    users = users or {"dev": ("developers",), "approver": ("developers", "approvers"),
                      "auditor": ("auditors",)}
    root = Path(tempfile.mkdtemp(prefix="hoop-demo-"))
    stack_users = {name: DemoUser(name, f"{name}-demo-{os.urandom(4).hex()}", tuple(groups))
                   for name, groups in users.items()}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        moto_port, server_port, gateway_port = free_port(), free_port(), free_port()
        moto_url = f"http://127.0.0.1:{moto_port}"
        logs = root / "logs"
        logs.mkdir()
        with open(logs / "moto.log", "wb") as log:   # the child keeps its own copy of the fd
            moto = subprocess.Popen([_moto_bin(), "-H", "127.0.0.1", "-p", str(moto_port)],
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(moto)
        wait_http(moto_url + "/moto-api/", moto)
        server_url = f"http://127.0.0.1:{server_port}"
        config: dict[str, Any] = {
            "listen": f"127.0.0.1:{server_port}", "public_url": server_url,
            "roles": {"approver": ["approvers"], "auditor": ["auditors"], "admin": ["admins"]},
            "connections": {"default": {"credentials": "vend", "role_arn": ROLE_ARN, "region": "us-east-1",
                                        "endpoint_url": moto_url, "duration_seconds": 900},
                            "gateway": {"role_arn": ROLE_ARN, "region": "us-east-1",
                                        "endpoint_url": moto_url, "credentials": "gateway"}},
            "gateway": {"listen": f"127.0.0.1:{gateway_port}", "hold_seconds": 20},
            "users": {},
        }
        for u in stack_users.values():
            config["users"].update(config_entry(u.name, u.password, u.groups, f"{u.name}@demo.local"))
        if policy_file is not None:
            config["policy_file"] = str(policy_file)
        cfg_path = root / "server.yaml"
        cfg_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        os.chmod(cfg_path, 0o600)
        server_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HOOP_"))}
        server_env.update(SANDBOX_KEYS)     # the server's own credentials, for moto's STS
        server_env["HOOP_HOME"] = str(root / "server-home")
        with open(logs / "server.log", "wb") as log:
            server = subprocess.Popen([sys.executable, "-m", "hoopcli", "server", "--config", str(cfg_path)],
                                      env=server_env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        procs.append(server)
        wait_http(server_url + "/api/v1/config", server)
        yield Stack(root, moto_url, server_url, stack_users, procs)
    finally:
        for proc in reversed(procs):
            _stop(proc)
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
