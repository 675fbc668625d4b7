"""`hoop run --isolate`: the agent runs where the user's hoop token, ~/.aws and keyring cannot be
read (not through their paths, not through /proc/PID/root of a process outside), and the session
credential in its environment still works through the gateway. Where user namespaces are not
available the command says so and runs nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hoopcli.identity import tokens as auth
from tests.gateway.gateway_helpers import gateway_server, session_records
from tests.shim.conftest import ShimWorld, isolate_world

pytestmark = pytest.mark.e2e
TOOLS = [t for t in ("bwrap", "unshare") if shutil.which(t)]

PROBE = r"""
for f in "$USER_TOKEN" "$USER_AWS/credentials" "/proc/$OUTSIDE_PID/root$USER_TOKEN"; do
  if cat "$f" >/dev/null 2>&1; then echo "READ $f"; else echo "HIDDEN $f"; fi
done
echo "LISTING $(ls -A "$USER_HOOP_HOME" 2>/dev/null | tr '\n' ' ')"
aws s3api list-buckets --query 'Buckets[].Name' --output json
echo "SID=$HOOP_SESSION_ID"
exit "${PROBE_EXIT:-0}"
"""


@pytest.fixture
def gw_world(make_server: Any, moto_endpoint: str, clean_env: Path, tmp_path: Path) -> ShimWorld:
    server = gateway_server(make_server, tmp_path, moto_endpoint)
    world = isolate_world(server, moto_endpoint, tmp_path)
    aws = tmp_path / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text("[default]\naws_access_key_id = AKIAUSERSOWNKEY00000\n")
    import boto3

    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket="isolated-sees-me")
    return world


def hoop_run(world: ShimWorld, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    token = auth.session_file(world.layout)
    assert token.is_file() and "id_token" in token.read_text()
    full = {**world.environ, "USER_TOKEN": str(token), "USER_AWS": str(Path(world.environ["HOME"]) / ".aws"),
            "USER_HOOP_HOME": str(world.home), "OUTSIDE_PID": str(os.getpid()), **env}
    return subprocess.run([sys.executable, "-m", "hoopcli", "run", *args, "--", "sh", "-c", PROBE],
                          env=full, capture_output=True, text=True, timeout=180)


def test_without_isolate_the_agent_reads_the_users_token(gw_world: ShimWorld) -> None:
    """The control: what --isolate takes away is there without it (the same user's files)."""
    proc = hoop_run(gw_world)
    assert proc.returncode == 0, proc.stderr
    assert f"READ {auth.session_file(gw_world.layout)}" in proc.stdout


@pytest.mark.parametrize("tool", TOOLS)
def test_isolate_hides_the_users_token_aws_files_and_other_processes(gw_world: ShimWorld, tool: str) -> None:
    proc = hoop_run(gw_world, "--isolate", "--agent", "isolated", HOOP_ISOLATE_TOOL=tool, PROBE_EXIT="7")
    assert proc.returncode == 7, proc.stderr          # the agent's own status
    lines = proc.stdout.splitlines()
    assert not [line for line in lines if line.startswith("READ ")], proc.stdout
    assert len([line for line in lines if line.startswith("HIDDEN ")]) == 3
    assert "LISTING " in lines            # the user's HOOP_HOME is there, and empty
    # the session credential is all it holds, and it works: through the gateway, recorded there
    start = proc.stdout.index("[")
    assert "isolated-sees-me" in json.loads(proc.stdout[start:proc.stdout.index("]", start) + 1])
    sid = lines[-1].split("=", 1)[1]
    calls = [r for r in session_records(gw_world.server, sid) if r["type"] == "api.call"]
    assert [(c["operation"], c["agent"]) for c in calls] == [("ListBuckets", "isolated")]
    # the token is still where the user keeps it
    assert "id_token" in auth.session_file(gw_world.layout).read_text()


def test_isolate_says_so_where_user_namespaces_are_refused(gw_world: ShimWorld, tmp_path: Path) -> None:
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "bwrap").write_text("#!/bin/sh\necho 'bwrap: No permissions to creating new namespace, likely "
                                "because the kernel does not allow non-privileged user namespaces.' >&2\nexit 1\n")
    (fake / "bwrap").chmod(0o755)
    proc = hoop_run(gw_world, "--isolate", HOOP_ISOLATE_TOOL="bwrap",
                    PATH=f"{fake}{os.pathsep}{gw_world.environ['PATH']}")
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stdout == ""
    line, = proc.stderr.strip().splitlines()
    assert line.startswith("hoop: --isolate: bwrap cannot create a user and mount namespace here (bwrap: No "
                           "permissions to creating new namespace"), line
    assert "user namespaces are disabled on this system" in line
    with gw_world.server.db.session() as db:       # nothing was started: no session opened
        from hoopcli.server.store.models import AgentSession

        assert db.query(AgentSession).count() == 0


def test_isolate_needs_a_gateway_connection(make_server: Any, moto_endpoint: str, clean_env: Path,
                                            tmp_path: Path) -> None:
    from tests.gateway.gateway_helpers import ROLE

    server = gateway_server(make_server, tmp_path, moto_endpoint, connections={
        "default": {"role_arn": ROLE, "region": "us-east-1", "endpoint_url": moto_endpoint, "credentials": "vend"}})
    home = tmp_path / "client-home"
    world = ShimWorld(server, moto_endpoint, home, {
        "HOOP_HOME": str(home), "HOOP_SERVER": server.url, "HOOP_TOKEN_STORE": "file", "HOME": str(tmp_path),
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/bin", "/bin"])}, tmp_path / "none")
    world.login()
    proc = hoop_run(world, "--isolate")
    assert proc.returncode == 2 and proc.stdout == "", (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.strip() == ("hoop: --isolate needs a gateway connection; 'default' vends STS credentials "
                                   "(credentials: vend), which needs the user's token the namespace hides")


def test_what_isolate_hides(tmp_path: Path) -> None:
    from hoopcli.agents import isolate

    home, runtime, user_home = tmp_path / "home", tmp_path / "run", tmp_path / "hoop"
    for d in (home / ".aws", runtime / "keyring", home / ".local" / "share" / "python_keyring", user_home,
              home / ".local" / "share" / "hoop"):
        d.mkdir(parents=True)
    (runtime / "bus").write_text("")          # a socket stands for itself: a file, covered by /dev/null
    environ = {"HOME": str(home), "XDG_RUNTIME_DIR": str(runtime), "PATH": os.environ["PATH"],
               "HOOP_ISOLATE_TOOL": "unshare"}
    plan = isolate.plan(environ, user_home, keep=[tmp_path / "agent-dir"])
    assert set(plan.hidden_dirs) == {user_home, home / ".aws", runtime / "keyring",
                                     home / ".local" / "share" / "python_keyring", home / ".local" / "share" / "hoop"}
    assert plan.hidden_files == (runtime / "bus",)
    # the agent's own directory under a hidden one would vanish with it: refused
    with pytest.raises(isolate.UsageError, match=r"hides .*, which holds"):
        isolate.plan(environ, user_home, keep=[user_home / "work"])
    # the environment names no keyring or session bus, and no HOOP_HOME but the agent's own
    env = isolate.agent_environment({"DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/0/bus", "HOOP_HOME": "/u",
                                     "GNOME_KEYRING_CONTROL": "/run/user/0/keyring", "PATH": "/bin"},
                                    agent_home=tmp_path / "a")
    assert env == {"HOOP_HOME": str(tmp_path / "a"), "PATH": "/bin", "HOOP_ISOLATED": "1"}

