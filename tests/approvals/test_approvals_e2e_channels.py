"""The agent's command released through Slack and through the terminal, end to end: the real
shim (in process for Slack; as a real executable in its own terminal session for the prompt),
a real server, real moto_server, the fake Slack Web API."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from approvals_helpers import approve_with_fresh_sign_in, local_users
from fakes.slack import FakeSlack, interaction_payload, signed_interaction
from test_approvals_e2e import ROLE, World, in_thread, s3

from hoopcli.agents.shimfile import install_shim

SECRET = "e2e-signing-secret"


@pytest.fixture
def slack() -> Any:
    with FakeSlack(token="xoxb-e2e", users={"bob@example.com": "U0BOB"}) as fake:
        yield fake


@pytest.fixture
def world(make_server: Any, moto_endpoint: str, tmp_path: Path, slack: FakeSlack) -> World:
    server = make_server(
        connections={"default": {"credentials": "vend", "role_arn": ROLE, "region": "us-east-1", "endpoint_url": moto_endpoint}},
        slack={"bot_token": "xoxb-e2e", "signing_secret": SECRET, "channel": "C0E2E", "api_url": slack.api_url},
        users=local_users({"alice": ("developers",)}))
    w = World(server, moto_endpoint, tmp_path)
    w.login("alice", ("developers",))
    w.login("bob", ("approvers",))
    w.client("bob", ("approvers",)).get("/api/v1/approvals")     # bob has signed in once
    return w


def test_slack_approve_releases_the_agents_command(world: World, slack: FakeSlack) -> None:
    args = ("iam", "create-role", "--role-name", "slack-e2e", "--assume-role-policy-document", "{}")
    thread, box = in_thread(world.aws, *args, env={"HOOP_APPROVAL_WAIT": "60", "HOOP_REASON": "OPS-9"})
    item = world.pending()
    deadline = time.monotonic() + 30
    while not slack.calls_to("chat.postMessage") and time.monotonic() < deadline:
        time.sleep(0.05)
    posted = slack.calls_to("chat.postMessage")[0]
    assert "OPS-9" in str(posted["blocks"]) and item["id"] in str(posted["blocks"])
    ts = next(iter(slack.messages))
    import urllib.request

    body, headers = signed_interaction(SECRET, interaction_payload(item["id"], "approve", "U0BOB",
                                                                   channel="C0E2E", message_ts=ts))
    req = urllib.request.Request(world.server.url + "/api/v1/slack/interactions", data=body,
                                 headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    thread.join(60)
    code, out, err = box["r"]
    assert code == 0, err
    assert "approved by bob@example.com via slack" in err and '"RoleName": "slack-e2e"' in out
    assert "Approved* by bob@example.com via slack" in str(slack.messages[ts]["blocks"])


def _spawn_in_terminal(argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int, int]:
    """Run argv as a session leader whose controlling terminal is a fresh pty (like a person's
    terminal); its stdin/stdout/stderr are pipes (like an agent's). Returns (process, master, slave);
    the parent keeps the slave open so reading the master never hits EIO before the child opens it."""
    import pty

    master, slave = pty.openpty()
    slave_name = os.ttyname(slave)

    def take_terminal() -> None:     # runs in the child after setsid(): opening the tty claims it
        fd = os.open(slave_name, os.O_RDWR)
        os.close(fd)

    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, start_new_session=True, preexec_fn=take_terminal)
    return proc, master, slave


def test_terminal_prompt_on_the_controlling_terminal_not_the_pipes(world: World, tmp_path: Path) -> None:
    shim = install_shim(tmp_path / "bin", python=sys.executable)
    env = {"HOOP_HOME": str(world.homes["alice"]), "HOOP_SERVER": world.server.url, "HOOP_APPROVAL_WAIT": "60",
           "PATH": os.pathsep.join([str(shim.parent), os.path.dirname(sys.executable), "/usr/bin", "/bin"]),
           "HOME": str(tmp_path)}
    proc, master, slave = _spawn_in_terminal([str(shim), "s3", "mb", "s3://tty-e2e"], env)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"Type n and Enter" not in seen and time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
        if b"Type n and Enter" not in seen:
            proc.kill()
            o, e = proc.communicate()
            raise AssertionError((seen, proc.returncode, o[-2000:], e[-3000:]))
        assert b"aws s3 mb s3://tty-e2e" in seen and b"s3:CreateBucket" in seen
        url = f"{world.server.url}/approvals/{world.pending()['id']}"
        assert f"to approve, open {url} and sign in again there".encode() in seen
        os.write(master, b"y\n")            # typed at the terminal: not an approval (an agent could type it)
        deadline = time.monotonic() + 30
        while b"approving needs the browser" not in seen and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                seen += os.read(master, 4096)
        assert b"approving needs the browser" in seen and world.pending()["status"] == "pending"
        approve_with_fresh_sign_in(world.server.url, "alice", world.pending()["id"])
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        os.close(slave)
    assert proc.returncode == 0, err.decode(errors="replace")
    assert b"Type n and Enter" not in out + err               # never on the agent's pipes
    assert b"via web" in err
    assert "tty-e2e" in [b["Name"] for b in s3(world).list_buckets()["Buckets"]]
