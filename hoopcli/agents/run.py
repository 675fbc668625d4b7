"""`hoop run`: run an agent under a new session with the shim first on PATH and no ambient AWS
credentials in its environment (aws-vault's exec hygiene: refuse to nest, clean the environment,
forward signals, return the child's status)."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hoopcli.agents.shimfile import install_shim
from hoopcli.errors import UsageError
from hoopcli.paths import Layout
from hoopcli.runner import AMBIENT_AWS_VARS, SignalForwarder, is_shim

# Beyond the variables the shim strips before the real CLI: an agent must not see these either.
AGENT_STRIPPED = (*AMBIENT_AWS_VARS, "AWS_CONFIG_FILE", "HOOP_REAL_AWS_CREDENTIALS")


@dataclass
class RunInput:
    command: Sequence[str]
    agent: str | None = None
    connection: str | None = None
    reason: str | None = None
    isolate: bool = False


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


def session_credential(client: Any, session_id: str, ttl_seconds: int | None = None) -> dict[str, Any] | None:
    """A gateway session credential for the session, or None when its connection vends STS
    credentials instead (`credentials: vend`)."""
    from hoopcli.client import Forbidden

    body: dict[str, Any] = {"ttl_seconds": ttl_seconds} if ttl_seconds else {}
    try:
        data = client.post(f"/api/v1/sessions/{session_id}/credentials", json=body).json()
    except Forbidden:
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in
                                             ("access_key_id", "secret_access_key", "endpoint_url")):
        raise UsageError("the server did not return a session credential")
    return data


def gateway_vars(credential: Mapping[str, Any], config_file: Path) -> dict[str, str]:
    """What SDKs and CLIs need to reach the gateway with the session credential. Every SDK that
    follows AWS's shared configuration reads these (AWS_ENDPOINT_URL since boto3 1.28, CLI v2
    2.13, JavaScript v3 3.410, Go v2 1.20, Java v2 2.20, terraform's provider 5.x)."""
    region = str(credential.get("region") or "us-east-1")
    return {
        "AWS_ENDPOINT_URL": str(credential["endpoint_url"]),
        "AWS_ACCESS_KEY_ID": str(credential["access_key_id"]),
        "AWS_SECRET_ACCESS_KEY": str(credential["secret_access_key"]),
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_CONFIG_FILE": str(config_file),
        "AWS_SHARED_CREDENTIALS_FILE": str(config_file.with_name("credentials")),
        "HOOP_GATEWAY_URL": str(credential["endpoint_url"]),
    }


def write_aws_config(layout: Layout, session_id: str, credential: Mapping[str, Any]) -> Path:
    """A hoop-written AWS config for the agent: region, the gateway as every service's endpoint,
    path-style S3 (unless the gateway serves a domain), and no profile, credential_process or
    cli_history of the user's. The credentials file beside it is empty."""
    from hoopcli.paths import ensure_dir

    return write_aws_config_in(ensure_dir(layout.home / "sessions" / session_id), credential)


def write_aws_config_in(folder: Path, credential: Mapping[str, Any]) -> Path:
    """`aws-config` and an empty `credentials` beside it, in `folder` (see write_aws_config)."""
    from hoopcli.paths import write_private

    config = folder / "aws-config"
    lines = ["[default]", f"region = {credential.get('region') or 'us-east-1'}",
             f"endpoint_url = {credential['endpoint_url']}", "s3 =", "    addressing_style = path", ""]
    write_private(config, "\n".join(lines).encode())
    write_private(folder / "credentials", b"")
    return config


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
    """Start the agent, forward SIGINT/SIGTERM/SIGHUP to it, and return its exit status. The
    forwarding is in place before the agent starts, so no signal ends `hoop run` alone."""
    forwarder = SignalForwarder()
    try:
        if forwarder.pending:          # stopped before the agent started: it does not start
            return 128 + forwarder.pending[0]
        try:
            proc = subprocess.Popen(list(run.command), env=dict(env))
        except FileNotFoundError as exc:
            raise UsageError(f"command not found: {run.command[0]}") from exc
        except PermissionError as exc:
            raise UsageError(f"command not executable: {run.command[0]}") from exc
        forwarder.started(proc)
        code = proc.wait()
    finally:
        forwarder.restore()
    return 128 - code if code < 0 else code


def run_agent(run: RunInput, environ: Mapping[str, str] | None = None) -> int:
    from hoopcli import config
    from hoopcli.client import for_user

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
    if run.isolate:
        return _run_isolated(run, environ, layout, client, connection)
    session_id = open_session(client, run, connection)
    env = agent_env(environ, ensure_shim(layout), session_id, run.agent, run.connection)
    credential = session_credential(client, session_id)
    if credential is not None:
        env.update(gateway_vars(credential, write_aws_config(layout, session_id, credential)))
    if run.reason:
        env["HOOP_REASON"] = run.reason
    code = exec_agent(run, env)
    _close(client, session_id, code)
    return code


def _close(client: Any, session_id: str, code: int | None) -> None:
    from hoopcli.client import ServerError

    try:
        client.post(f"/api/v1/sessions/{session_id}/close", json={"exit_code": code})
    except ServerError:
        pass


def _run_isolated(run: RunInput, environ: Mapping[str, str], layout: Layout, client: Any, connection: str) -> int:
    """`hoop run --isolate`: the agent in its own mount namespace (agents/isolate.py) with the
    session credential and a directory of its own (its HOOP_HOME, the AWS config, hoop's shim as
    its `aws`, token-free there), removed afterwards. Needs a gateway connection: with
    `credentials: vend` the shim would need the user's token to get STS keys, which the namespace
    hides, so that is refused before anything starts."""
    import shutil
    import tempfile

    from hoopcli.agents import isolate

    folder = Path(tempfile.mkdtemp(prefix="hoop-isolated-"))
    try:
        (folder / "home").mkdir(mode=0o700)
        plan = isolate.plan(environ, layout.home, keep=[folder, Path(os.getcwd())])
        isolate.probe(plan)          # before a session is opened: no namespaces, no session
        session_id = open_session(client, run, connection)
        credential = session_credential(client, session_id)
        if credential is None:
            _close(client, session_id, None)
            raise UsageError(f"--isolate needs a gateway connection; {connection!r} vends STS credentials "
                             "(credentials: vend), which needs the user's token the namespace hides")
        bindir = isolate.aws_launcher(folder)
        env = agent_env(environ, bindir, session_id, run.agent, run.connection)
        env.update(gateway_vars(credential, write_aws_config_in(folder, credential)))
        env = isolate.agent_environment(env, agent_home=folder / "home")
        if run.reason:
            env["HOOP_REASON"] = run.reason
        code = exec_agent(RunInput(command=isolate.command(plan, list(run.command)), agent=run.agent), env)
        _close(client, session_id, code)
        return code
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def open_gateway_session(*, agent: str, connection: str | None, ttl_seconds: int,
                         environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`hoop env`: a new session on a gateway connection -> the variables for its agent."""
    from hoopcli import config
    from hoopcli.client import for_user

    environ = dict(os.environ if environ is None else environ)
    layout = Layout.from_env(environ).ensure()
    cfg = config.load(environ, layout)
    name = connection or cfg.connection
    client = for_user(environ, layout=layout)
    session_id = open_session(client, RunInput(command=[agent], agent=agent), name)
    credential = session_credential(client, session_id, ttl_seconds)
    if credential is None:
        raise UsageError(f"connection {name!r} vends STS credentials (credentials: vend); `hoop env` needs a "
                         "connection with `credentials: gateway`")
    region = str(credential.get("region") or "us-east-1")
    return {"HOOP_SESSION_ID": session_id, "AWS_ENDPOINT_URL": str(credential["endpoint_url"]),
            "AWS_ACCESS_KEY_ID": str(credential["access_key_id"]),
            "AWS_SECRET_ACCESS_KEY": str(credential["secret_access_key"]), "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region, "HOOP_CREDENTIAL_EXPIRES": str(credential.get("expires_at") or "")}
