"""`hoop run`: run an agent under a new session with the shim first on PATH and no ambient AWS
credentials in its environment (aws-vault's exec hygiene: refuse to nest, clean the environment,
forward signals, return the child's status)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hoopcli.agents.shimfile import install_shim
from hoopcli.errors import UsageError
from hoopcli.paths import Layout
from hoopcli.runner import AMBIENT_AWS_VARS, is_shim

# Beyond the variables the shim strips before the real CLI: an agent must not see these either.
AGENT_STRIPPED = (*AMBIENT_AWS_VARS, "AWS_CONFIG_FILE", "HOOP_REAL_AWS_CREDENTIALS")


@dataclass
class RunInput:
    command: Sequence[str]
    agent: str | None = None
    connection: str | None = None
    reason: str | None = None


def agent_env(base: Mapping[str, str], shim_dir: Path, session_id: str, agent: str | None,
              connection: str | None) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in AGENT_STRIPPED}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p) != shim_dir]
    env["PATH"] = os.pathsep.join([str(shim_dir), *path])
    env["HOOP_SESSION_ID"] = session_id
    if agent:
        env["HOOP_AGENT"] = agent
    if connection:
        env["HOOP_CONNECTION"] = connection
    # The agent sees the shim as `aws`; make sure the shim never mistakes itself for the real CLI.
    env.pop("HOOP_SHIM_ACTIVE", None)
    return env


def ensure_shim(layout: Layout) -> Path:
    path = layout.home / "bin" / "aws"
    if not is_shim(str(path)):
        path = install_shim(layout.home / "bin")
    return path.parent


def open_session(client: Any, run: RunInput, connection: str) -> str:
    data = client.post("/api/v1/sessions", json={
        "agent": run.agent or Path(run.command[0]).name, "host": socket.gethostname(),
        "cwd": os.getcwd(), "connection": connection,
    }).json()
    session_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(session_id, str) or not session_id:
        raise UsageError("the server did not return a session id")
    return session_id


def exec_agent(run: RunInput, env: Mapping[str, str]) -> int:
    """Start the agent, forward SIGINT/SIGTERM/SIGHUP to it, and return its exit status."""
    try:
        proc = subprocess.Popen(list(run.command), env=dict(env))
    except FileNotFoundError as exc:
        raise UsageError(f"command not found: {run.command[0]}") from exc
    except PermissionError as exc:
        raise UsageError(f"command not executable: {run.command[0]}") from exc

    def forward(signum: int, _frame: Any) -> None:
        try:
            proc.send_signal(signum)
        except ProcessLookupError:
            pass

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code


def run_agent(run: RunInput, environ: Mapping[str, str] | None = None) -> int:
    from hoopcli import config
    from hoopcli.client import ServerError, for_user

    environ = dict(os.environ if environ is None else environ)
    if not run.command:
        raise UsageError("nothing to run: give the agent's command after `--`")
    if environ.get("HOOP_SESSION_ID") and environ.get("HOOP_RUN_NESTED") != "1":
        raise UsageError("already inside a hoop session (HOOP_SESSION_ID is set); "
                         "refusing to nest `hoop run`")
    layout = Layout.from_env(environ).ensure()
    cfg = config.load(environ, layout)
    connection = run.connection or cfg.connection
    client = for_user(environ, layout=layout)
    session_id = open_session(client, run, connection)
    env = agent_env(environ, ensure_shim(layout), session_id, run.agent, run.connection)
    if run.reason:
        env["HOOP_REASON"] = run.reason
    code = exec_agent(run, env)
    try:
        client.post(f"/api/v1/sessions/{session_id}/close", json={"exit_code": code})
    except ServerError:
        pass
    return code
