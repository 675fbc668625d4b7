"""`hoop run`: a real agent process under a session, with a real server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from hoopcli.runner import is_shim


def hoop_run(world, *args, env=None, **kw):
    full = {**world.environ, "AWS_ACCESS_KEY_ID": "AKIAAMBIENTAMBIENT00", "AWS_SECRET_ACCESS_KEY": "ambient",
            "AWS_PROFILE": "prod", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.2/creds",
            **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "hoopcli", "run", *args], env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_agent_gets_shim_first_and_no_ambient_credentials(shim_world):
    proc = hoop_run(shim_world, "--agent", "probe", "--", "sh", "-c", "env; command -v aws")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert "AWS_ACCESS_KEY_ID" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert "AWS_PROFILE" not in env and "AWS_CONTAINER_CREDENTIALS_FULL_URI" not in env
    assert len(env["HOOP_SESSION_ID"]) >= 16
    assert env["HOOP_AGENT"] == "probe"
    aws = out.strip().splitlines()[-1]
    assert is_shim(aws)
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(aws)


def test_agent_exit_code_is_returned(shim_world):
    proc = hoop_run(shim_world, "--", "sh", "-c", "exit 7")
    proc.communicate(timeout=60)
    assert proc.returncode == 7


def test_agent_aws_calls_land_in_the_session(shim_world):
    shim_world.s3().create_bucket(Bucket="run-session")
    proc = hoop_run(shim_world, "--agent", "lister", "--", "sh", "-c", "aws s3 ls && echo SID=$HOOP_SESSION_ID")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "run-session" in out
    sid = out.strip().splitlines()[-1].split("=", 1)[1]
    from hoopcli.record.spool import Spool

    spooled = [rec for _p, rec in Spool(shim_world.layout).records()]
    from hoopcli.server.store.ledger import LedgerRecord

    with shim_world.server.db.session() as db:
        delivered = [r.session_id for r in db.query(LedgerRecord).all()]
    assert sid in delivered + [r["session_id"] for r in spooled]


def test_signals_are_forwarded_to_the_agent(shim_world):
    proc = hoop_run(shim_world, "--", "sh", "-c", "trap 'exit 42' TERM; echo ready; while :; do sleep 0.1; done")
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 42


def test_refuses_to_nest(shim_world):
    proc = hoop_run(shim_world, "--", "true", env={"HOOP_SESSION_ID": "abc"})
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.startswith("hoop: already inside a hoop session")


def test_missing_command_is_a_clear_error(shim_world):
    proc = hoop_run(shim_world, "--", "no-such-agent-binary")
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "command not found: no-such-agent-binary" in err


def test_not_logged_in_is_65(shim_world):
    os.unlink(shim_world.layout.cache_dir / "session.json")
    proc = hoop_run(shim_world, "--", "true")
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 65
    assert "hoop login" in err


def test_session_is_closed_with_the_agents_status(shim_world):
    from hoopcli.server.store.models import AgentSession

    proc = hoop_run(shim_world, "--agent", "closer", "--", "sh", "-c", "echo $HOOP_SESSION_ID; exit 3")
    out, _err = proc.communicate(timeout=60)
    assert proc.returncode == 3
    sid = out.strip()
    with shim_world.server.db.session() as db:
        row = db.get(AgentSession, sid)
        assert row is not None and row.agent == "closer"
        assert row.closed_at is not None and row.exit_code == 3
    import requests

    again = requests.post(shim_world.server.url + f"/api/v1/sessions/{sid}/close", json={"exit_code": 0},
                          headers=shim_world.server.headers("alice", email="alice@example.com"), timeout=10)
    assert again.status_code == 409
    other = requests.post(shim_world.server.url + f"/api/v1/sessions/{sid}/close", json={},
                          headers=shim_world.server.headers("mallory"), timeout=10)
    assert other.status_code == 404


def test_records_take_a_larger_body_than_other_routes(shim_world):
    import requests

    big = b"x" * (3 * 1024 * 1024)
    srv = shim_world.server
    headers = {**srv.headers("alice"), "Content-Type": "application/json"}
    other = requests.post(srv.url + "/api/v1/sessions", data=b'{"agent": "' + big + b'"}', headers=headers, timeout=30)
    assert other.status_code == 413
    records = requests.post(srv.url + "/api/v1/records", data=b'{"records": [], "pad": "' + big + b'"}',
                            headers=headers, timeout=30)
    assert records.status_code != 413


SIGNAL_AT_START = r"""
import io, os, signal, subprocess, sys
from hoopcli import runner

real_popen = subprocess.Popen

def popen_then_signal(*args, **kwargs):
    proc = real_popen(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGTERM)  # lands after the child started, before anything else
    return proc

subprocess.Popen = popen_then_signal
if sys.argv[1] == "hoop-run":
    from hoopcli.agents import run as agent_run
    code = agent_run.exec_agent(agent_run.RunInput(command=sys.argv[2:]), dict(os.environ))
else:  # the shim's subprocess runner, with the shim's own SIGTERM handling in place
    runner.terminate_gracefully()
    result = runner.SubprocessRunner(sys.argv[2]).run(
        runner.RunRequest(["s3", "ls"], None, env=dict(os.environ)), None, lambda b: None, lambda b: None)
    code = result.exit_code
print("returned", code, flush=True)
"""
AGENT = "trap 'exit 42' TERM; i=0; while [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done"


def test_a_signal_as_the_agent_starts_still_reaches_it():
    """A SIGTERM that arrives just after the agent was started (before `hoop run` got to its
    handlers) must still go to the agent: before the fix it killed `hoop run` alone and left the
    agent running, orphaned."""
    proc = subprocess.run([sys.executable, "-c", SIGNAL_AT_START, "hoop-run", "sh", "-c", AGENT],
                          capture_output=True, text=True, timeout=60, check=False)
    # 143: the agent was ended by the SIGTERM before its trap was set; 42: by its trap.
    assert proc.stdout.strip() in ("returned 143", "returned 42"), (proc.returncode, proc.stderr[-2000:])


def test_a_signal_as_the_real_cli_starts_still_reaches_it(tmp_path):
    """The same for the shim's subprocess runner and the real CLI it starts: before the fix the
    shim's own handler ended the shim and left the CLI running."""
    fake_aws = tmp_path / "aws"
    fake_aws.write_text(f"#!/bin/sh\n{AGENT}\n")
    fake_aws.chmod(0o755)
    proc = subprocess.run([sys.executable, "-c", SIGNAL_AT_START, "runner", str(fake_aws)],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "HOME": str(tmp_path)})
    assert proc.stdout.strip() in ("returned 143", "returned 42"), (proc.returncode, proc.stderr[-2000:])
