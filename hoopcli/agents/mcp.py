"""`hoop mcp`: an MCP server over stdio (the official `mcp` SDK) whose tools run aws commands
under a hoop session, through the same pipeline as the `aws` shim.

At start it opens a session as `hoop run` does (agent `mcp` unless --agent says otherwise) and,
on a `credentials: gateway` connection, gets the session's credential; every `call_aws` runs
`hoopcli.shim.main` in this process with the session's agent environment (no shell: one command
split into argv). It closes the session when the client disconnects.

The shim's pipeline installs signal handlers and swaps process-wide state (sys.stdout,
os.environ) for the in-process AWS CLI, so it runs on the main thread, one call at a time; the
MCP event loop runs on a second thread and hands calls over (`serve`).
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hoopcli.errors import HoopError
from hoopcli.exitcodes import ExitStatus
from hoopcli.paths import Layout

MAX_OUTPUT = 100 * 1024        # bytes of stdout and of stderr returned per call
MAX_WAIT = 60.0                # seconds a call may wait for an approval
_APPROVAL_ID = re.compile(r"\bapr_[0-9a-f]{16}\b")
_RULE = re.compile(r"denied by policy rule (\S+?)(?::|\s|$)|apr_[0-9a-f]{16} pending \(([^)\s]+)\)")


class _Capped(io.BytesIO):
    """Keeps the first `cap` bytes written and counts the rest."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap, self.size = cap, 0

    def write(self, data: Any) -> int:
        data = bytes(data)
        room = self.cap - self.size
        if room > 0:
            super().write(data[:room])
        self.size += len(data)
        return len(data)

    def text(self) -> str:
        return self.getvalue().decode("utf-8", "replace")


class Session:
    """One hoop session and the aws commands run in it."""

    def __init__(self, layout: Layout, client: Any, session_id: str, env: dict[str, str],
                 gateway: bool, claims: Mapping[str, Any], connection: str) -> None:
        self.layout, self.client, self.session_id, self.env = layout, client, session_id, env
        self.gateway, self.claims, self.connection = gateway, claims, connection
        self.pending: dict[tuple[str, ...], str] = {}      # argv -> the approval it waits for
        self.terminated = False                             # SIGTERM/SIGHUP arrived during a call

    @classmethod
    def open(cls, environ: Mapping[str, str], agent: str = "mcp", connection: str | None = None) -> Session:
        from hoopcli import config, policy
        from hoopcli.agents.run import (
            RunInput,
            agent_env,
            gateway_vars,
            open_session,
            session_credential,
            write_aws_config,
        )
        from hoopcli.client import for_user
        from hoopcli.identity.tokens import id_token, jwt_claims

        environ = dict(environ)
        layout = Layout.from_env(environ).ensure()
        cfg = config.load(environ, layout)
        client = for_user(environ, layout=layout)
        claims = jwt_claims(id_token(layout, cfg, environ))          # NotLoggedIn before anything starts
        name = connection or cfg.connection
        session_id = open_session(client, RunInput(command=["hoop-mcp"], agent=agent, connection=connection), name)
        env = agent_env(environ, layout.home / "bin", session_id, agent, connection)
        for name in ("HOOP_GATEWAY_URL", "AWS_ENDPOINT_URL"):       # an outer session's, if any
            env.pop(name, None)
        credential = session_credential(client, session_id)
        if credential is not None:
            env.update(gateway_vars(credential, write_aws_config(layout, session_id, credential)))
        env["HOOP_NO_PROMPT"] = "1"           # never the terminal: stdin and stdout are the protocol
        from hoopcli.agents.shellwords import load_bashlex

        load_bashlex(layout.cache_dir)        # here, before explain_aws parses on a worker thread
        try:
            policy.refresh(layout, client)    # explain_aws and call_aws decide with the server's policy
        except HoopError:
            pass
        return cls(layout, client, session_id, env, credential is not None, claims, name)

    def close(self) -> None:
        """End the session (its gateway credential stops at once), then send what is spooled."""
        from hoopcli.record.spool import Spool
        from hoopcli.record.upload import upload

        try:
            self.client.post(f"/api/v1/sessions/{self.session_id}/close", json={"exit_code": 0})
        except HoopError:
            pass
        try:
            upload(Spool(self.layout), self.client)
        except HoopError:
            pass                              # the background uploader keeps trying

    # -- tools --------------------------------------------------------------------------------
    def explain(self, command: str) -> dict[str, Any]:
        try:
            return self._explain(self.argv(command))
        except ValueError as exc:
            return {"error": str(exc)}
        except Exception as exc:
            return {"error": self._internal(exc)}

    def call(self, command: str, wait_seconds: float = 0.0) -> dict[str, Any]:
        try:
            return self._call(command, wait_seconds)
        except Exception as exc:
            return self._result(ExitStatus.INTERNAL, "", self._internal(exc), False, {})

    def _internal(self, exc: Exception) -> str:
        """The last resort, as in the shim: type and frames to HOOP_HOME/logs, never the message."""
        from hoopcli.errors import INTERNAL_HINT, log_internal_error

        log = log_internal_error(self.layout.home, exc, "mcp-errors.log")
        return f"hoop: internal error ({type(exc).__name__}); {INTERNAL_HINT}" + (f" and {log}" if log else "")

    def _call(self, command: str, wait_seconds: float) -> dict[str, Any]:
        wait = min(max(float(wait_seconds or 0.0), 0.0), MAX_WAIT)
        deadline = time.monotonic() + wait
        try:
            argv = self.argv(command)
            self._check_paths(argv)
        except ValueError as exc:
            return self._result(ExitStatus.USAGE, "", f"hoop: {exc}", False, {})
        explained = self._explain(argv)
        code, out, err, truncated = self._run(argv, wait)
        key = tuple(argv)
        approval_id = _first(_APPROVAL_ID, err) or self.pending.get(key)
        if code == ExitStatus.PENDING and approval_id and self.gateway and time.monotonic() < deadline:
            from hoopcli.approval.api import Approval, wait_for

            # The gateway held the call and answered HoopApprovalPending: wait on, then send it again.
            if wait_for(self.client, Approval(id=approval_id, status="pending"), deadline).status == "approved":
                code, out, err, truncated = self._run(argv, 0.0)
                approval_id = _first(_APPROVAL_ID, err) or approval_id
        if approval_id is None and code == 0 and self.gateway and explained.get("decision") == "review":
            approval_id = self._approval_in_ledger()      # approved while the gateway held the call
        approval = self._approval(approval_id, code) if approval_id else None
        if approval is not None and approval["status"] == "pending":
            self.pending[key] = approval["id"]
        else:
            self.pending.pop(key, None)
        return self._result(code, out, err, truncated, explained, approval)

    # -- steps --------------------------------------------------------------------------------
    def argv(self, command: str) -> list[str]:
        from hoopcli.agents.shellwords import single_command

        if not isinstance(command, str) or not command.strip():
            raise ValueError("give an aws command, for example `aws s3 ls`")
        argv = single_command(command, self.layout.cache_dir)
        if argv and argv[0].rsplit("/", 1)[-1] == "aws":
            argv = argv[1:]
        if not argv:
            raise ValueError("give an aws command, for example `aws s3 ls`")
        return argv

    def _check_paths(self, argv: list[str]) -> None:
        """Local paths the AWS CLI would read or write (file://, fileb://, and any argument that
        starts like a path: ~, /, ./, ../, e.g. s3 cp sources and get-object outfiles) must not be
        hoop's own state or the user's AWS configuration."""
        roots = [p.resolve() for p in (self.layout.home, Path.home() / ".aws")]
        for arg in argv:
            value = arg.split("=", 1)[-1] if arg.startswith("--") else arg
            if value.startswith(("file://", "fileb://")):
                value = value.split("://", 1)[1]
            elif not value.startswith(("~", "/", "./", "../")) and value not in (".", ".."):
                continue
            path = Path(os.path.expandvars(os.path.expanduser(value))).resolve()
            for root in roots:
                if path == root or root in path.parents or path in root.parents:
                    raise ValueError(f"{value} is or holds {root}, which call_aws does not read or write")

    def _explain(self, argv: list[str]) -> dict[str, Any]:
        from hoopcli.parse.explain import explain, make_decider

        groups = self.claims.get("groups")
        decide = make_decider(self.env, user=self.claims.get("email") or self.claims.get("sub"),
                              groups=tuple(map(str, groups)) if isinstance(groups, list) else (),
                              agent=self.env.get("HOOP_AGENT"), connection=self.connection)
        try:
            return explain(argv, decide)
        except HoopError as exc:
            return {"error": exc.message}

    def _run(self, argv: list[str], wait: float) -> tuple[int, str, str, bool]:
        from hoopcli.shim import Environment, main

        out, err = _Capped(MAX_OUTPUT), _Capped(MAX_OUTPUT)
        environ = {**self.env, "HOOP_APPROVAL_WAIT": f"{wait:g}"}
        stdout, stderr = io.TextIOWrapper(out, write_through=True), io.TextIOWrapper(err, write_through=True)
        env = Environment(environ, io.TextIOWrapper(io.BytesIO(b"")), stdout, stderr, os.getcwd())
        code = main(list(argv), env=env)
        self.terminated = self.terminated or code in (128 + 1, 128 + 15)
        stdout.flush()
        stderr.flush()
        return code, out.text(), err.text(), out.size > out.cap or err.size > err.cap

    def _approval(self, approval_id: str, code: int) -> dict[str, Any]:
        from hoopcli.approval.api import Approval

        try:
            found = Approval.from_json(self.client.get(f"/api/v1/approvals/{approval_id}").json() or {})
        except HoopError:
            found = Approval(id=approval_id, status="pending" if code == ExitStatus.PENDING else "unknown")
        return {"id": approval_id, "status": found.status,
                "url": found.url or f"{self.client.base_url.rstrip('/')}/approvals/{approval_id}"}

    def _approval_in_ledger(self) -> str | None:
        """The approval on the session's latest gateway record: a call approved while the gateway
        held it goes through without naming its approval to the client."""
        import json

        try:
            body = self.client.get("/api/v1/export", params={"session_id": self.session_id}).body
        except HoopError:
            return None
        for line in reversed(body.decode("utf-8", "replace").splitlines()):
            try:
                record = json.loads(line).get("record") or {}
            except (ValueError, AttributeError):
                continue
            if record.get("type") == "api.call":
                found = (record.get("approval") or {}).get("id")
                return found if isinstance(found, str) else None
        return None

    def _result(self, code: int, out: str, err: str, truncated: bool, explained: Mapping[str, Any],
                approval: dict[str, Any] | None = None) -> dict[str, Any]:
        decision, rule = explained.get("decision"), explained.get("rule")
        match = _RULE.search(err)
        if match:
            rule = match.group(1) or match.group(2)
        if approval is not None:
            decision = "review"
        elif code == ExitStatus.DENIED:
            decision = "deny"
        return {"exit_code": int(code), "stdout": out, "stderr": err, "truncated": truncated,
                "decision": decision, "rule": rule, "reason": explained.get("reason"),
                "approval": approval, "session_id": self.session_id}


def _first(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    return match.group(0) if match else None


def serve(agent: str = "mcp", connection: str | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the MCP server on stdin/stdout until the client disconnects (or SIGTERM/SIGHUP)."""
    import queue
    import signal
    import threading
    from collections.abc import Callable

    try:
        import anyio

        from hoopcli.agents.mcp_tools import build_server
    except ImportError as exc:
        from hoopcli.errors import UsageError

        raise UsageError(f"`hoop mcp` needs the MCP SDK ({exc.name} is missing): "
                         "pip install 'hoopcli[agents]'") from exc
    session = Session.open(os.environ if environ is None else environ, agent, connection)
    jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
    server = build_server(session, jobs.put)

    def loop() -> None:
        try:
            anyio.run(server.run_stdio_async)
        finally:
            jobs.put(None)

    def stop(*_: Any) -> None:
        raise KeyboardInterrupt

    # The shim puts its own SIGTERM/SIGHUP handlers in place during a call (it records, then exits 143).
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    threading.Thread(target=loop, name="hoop-mcp-protocol", daemon=True).start()
    try:
        while not session.terminated and (job := jobs.get()) is not None:
            job()
    except KeyboardInterrupt:
        pass
    finally:
        for sig in previous:                  # the client stops waiting after a while, then signals
            signal.signal(sig, signal.SIG_IGN)
        session.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
