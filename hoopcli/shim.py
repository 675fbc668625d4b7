"""The `aws` shim: the hot path, top to bottom.

    parse -> decide -> approve -> credentials -> record start -> run (+ per-call checks, masking)
    -> record result -> kick the uploader -> exit with the real CLI's code

Module-level imports are stdlib only (tests pin them): everything heavy is imported when needed.
Every hoop outcome is one `hoop: ...` line on stderr and an exit code from hoopcli.exitcodes.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import sys
import time
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import TypedDict

    class _StartFields(TypedDict):
        """The fields every command.start record of a call shares (record_start's keywords)."""

        session_id: str
        user: str | None
        agent: str | None
        host: str | None
        cwd: str | None
        connection: str | None
        argv: list[str]

from hoopcli import launcher
from hoopcli.errors import INTERNAL_HINT, HoopError, PolicyDenied, RecursionRefused
from hoopcli.exitcodes import ExitStatus
from hoopcli.paths import Layout
from hoopcli.record.session import implicit_session, next_seq
from hoopcli.runner import restore_signals

DATA_STREAM_OPS = frozenset({"cp", "mv"})
_GLOBAL_WITH_VALUE = frozenset({"--profile"})


class Environment:
    """Everything the shim takes from the outside world, injectable for tests. (Plain classes on
    the hot path: a dataclass costs about half a millisecond to create at import.)"""

    __slots__ = ("environ", "stdin", "stdout", "stderr", "cwd", "argv0")

    def __init__(self, environ: dict[str, str], stdin: IO[Any], stdout: IO[Any], stderr: IO[Any],
                 cwd: str, argv0: str = "aws") -> None:
        self.environ = environ
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.cwd = cwd
        self.argv0 = argv0

    @classmethod
    def from_os(cls) -> Environment:
        return cls(dict(os.environ), sys.stdin, sys.stdout, sys.stderr, os.getcwd(),
                   sys.argv[0] if sys.argv else "aws")


class Timer:
    """Wall time of each stage, in ms, for the result record."""

    __slots__ = ("marks", "_t")

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.marks[name + "_ms"] = round((now - self._t) * 1000, 3)
        self._t = now


def main(argv: list[str] | None = None, env: Environment | None = None) -> int:
    """Entry point of the shim: the one error funnel of the hot path."""
    env = env or Environment.from_os()
    args = list(sys.argv[1:] if argv is None else argv)
    from hoopcli.runner import Terminated, terminate_gracefully

    previous = terminate_gracefully()
    try:
        return Shim(env).run(args)
    except Terminated as exc:
        return 128 + exc.signum
    except HoopError as exc:
        _say(env, exc.line())
        return int(exc.exit_status)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # last resort: never a traceback to the agent
        from hoopcli.errors import log_internal_error, where

        log = log_internal_error(Layout.from_env(env.environ).home, exc, "shim-errors.log")
        _say(env, f"hoop: internal error ({type(exc).__name__}); {INTERNAL_HINT}"
                  + (f" and {log}" if log else ""))
        if env.environ.get("HOOP_DEBUG"):   # frames only: an exception's message may hold a secret
            for line in where(exc)[1:]:
                _say(env, "hoop:   at " + line)
        return int(ExitStatus.INTERNAL)
    finally:
        restore_signals(previous)


def launch(home: str | None = None) -> None:
    """Entry point of the `aws` launcher (shims/aws and the one `hoop shim install` writes).

    `home`: the HOOP_HOME whose bin directory holds the launcher, used when HOOP_HOME is unset.

    A launcher is a short-lived process, so it skips work only a long-lived one needs: the
    launcher pauses the cyclic GC before importing hoop (the runner resumes it, over a frozen
    heap, just before the command runs: launcher.resume_gc), the pipeline runs from a frame
    with room above it (launcher.call_with_room), and once the command's result record is on
    disk the process ends without tearing the interpreter down (launcher.fast_exit). HOOP_FAST_EXIT=0
    turns all three off. docs/benchmarks.md has what each saves.
    """
    env = Environment.from_os()
    if home and not env.environ.get("HOOP_HOME"):
        env.environ["HOOP_HOME"] = home
    if env.environ.get("HOOP_FAST_EXIT") == "0":
        import gc

        gc.enable()
        sys.exit(main(env=env))
    launcher.pause_gc()
    code = launcher.call_with_room(lambda: main(env=env))
    launcher.fast_exit(code)


def _say(env: Environment, line: str) -> None:
    try:
        env.stderr.write(line + "\n")
        env.stderr.flush()
    except (OSError, ValueError):
        pass


def strip_profile(args: list[str]) -> list[str]:
    """`--profile NAME` selects the hoop connection; the real CLI never sees it."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "--profile":
            skip = True
            continue
        if arg.startswith("--profile="):
            continue
        out.append(arg)
    return out


def token_claims(token: str) -> dict[str, Any]:
    """The ID token's claims, unverified: only to label the record and build the policy context.
    The server verifies every token it receives."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        data = json.loads(base64.urlsafe_b64decode(payload))
        return data if isinstance(data, dict) else {}
    except (IndexError, ValueError):
        return {}


class Shim:
    def __init__(self, env: Environment) -> None:
        self.env = env
        self.environ = env.environ
        self.timer = Timer()

    # -- the pipeline -------------------------------------------------------------------------
    def run(self, args: list[str]) -> int:
        from hoopcli.runner import ACTIVE_ENV

        if self.environ.get(ACTIVE_ENV):
            raise RecursionRefused("the hoop shim was started by the CLI it runs (nested shim)")
        from hoopcli import config
        from hoopcli.parse import parse

        layout = Layout.from_env(self.environ)
        cfg = config.load(self.environ, layout)
        self.stored_config = cfg.extra  # issue 15: the runner comes from hoop's config (runner_choice)
        inv = parse(args)
        self.timer.lap("parse")
        cli_args = strip_profile(args)
        if inv.kind in ("help", "version") or not args:
            return self._run_plain(cli_args)
        if self.environ.get("HOOP_ISOLATED") == "1":
            return self._run_token_free(inv, cli_args, layout)

        connection = inv.globals.profile or self.environ.get("AWS_PROFILE") or cfg.connection
        from hoopcli.identity import tokens as auth

        token = auth.id_token(layout, cfg, self.environ)
        claims = token_claims(token)
        from hoopcli.client import Client

        client = Client(cfg.server, token=token, timeout=float(self.environ.get("HOOP_TIMEOUT", "10")))
        from hoopcli import policy as policy_mod

        pol = policy_mod.ensure_fresh(layout, client)
        groups = claims.get("groups") or []
        ctx = policy_mod.Context(
            user=str(claims.get("email") or claims.get("sub") or "unknown"),
            groups=tuple(groups) if isinstance(groups, list) else (),
            agent=cfg.agent, connection=connection, region=inv.globals.region,
            endpoint_url=inv.globals.endpoint_url,
        )
        session_id = cfg.session_id or implicit_session(layout, self.environ)
        from hoopcli.masking import Masker, load_key, whole_output_secret

        masker = Masker(load_key(layout))
        from hoopcli.record import shapes as recorder
        from hoopcli.record.spool import Spool
        from hoopcli.record.uploader import kick_uploader

        spool = Spool(layout)
        base: _StartFields = {
            "session_id": session_id, "user": ctx.user, "agent": cfg.agent,
            "host": socket.gethostname(), "cwd": self.env.cwd, "connection": connection,
            "argv": masker.mask_argv(args),
        }
        command_id = recorder.new_id()
        seq = next_seq(layout, session_id)
        started_at = time.time()
        decision: Any = None
        approval: Any = None
        try:
            decision = pol.evaluate(inv, ctx)     # may fail closed (Unavailable) when offline too long
            self.timer.lap("decide")
            if decision.effect == "deny":
                raise PolicyDenied(deny_line(inv, decision))
            gateway = self._gateway(client, layout, connection, session_id) if inv.api_calls else None
            if decision.effect == "review" and gateway is None:
                # Through the gateway the server holds the call itself (HoopApprovalPending).
                approval = self._approve(client, inv, decision, ctx, connection, session_id, cfg)
            self.timer.lap("approve")
            vended = gateway or self._credentials(client, layout, ctx, connection, session_id, inv, args,
                                                  approval, decision, cfg)
            self.timer.lap("credentials")
        except HoopError as exc:
            # Refused before running: the refusal is recorded too (start + result), then reported.
            rec = recorder.record_start(command_id=command_id, seq=seq, invocation=inv.to_dict(),
                                        decision=_decision_dict(decision, exc), approval=_approval_dict(approval),
                                        credentials=None, **base)
            spool.append(rec)
            spool.append(recorder.record_result(command_id=command_id, session_id=session_id, seq=seq,
                                                exit_code=int(exc.exit_status), api_calls=[],
                                                stdout=None, stderr={"text": exc.line(), "size": len(exc.line()), "truncated": False},
                                                started_at=started_at, ended_at=time.time(),
                                                timings=self.timer.marks))
            kick_uploader(layout, self.environ, cfg.server)
            raise

        rec = recorder.record_start(command_id=command_id, seq=seq, invocation=inv.to_dict(),
                                    decision=_decision_dict(decision), approval=_approval_dict(approval),
                                    credentials=vended.public() if vended else None, **base)
        spool.append(rec)          # write-ahead: on disk (fsync) before the real CLI runs
        self.timer.lap("record")
        from hoopcli.runner import Terminated

        try:
            exit_code, calls, out_cap, err_cap, blocked = self._execute(
                inv, cli_args, vended, masker, whole_output_secret(inv), pol, ctx)
        except Terminated as exc:  # stopped before the CLI got going: still record the end
            exit_code, calls, out_cap, err_cap, blocked = 128 + exc.signum, [], None, None, None
        self.timer.lap("run")
        # A SIGTERM now waits until the result is on disk, then ends the shim (exit 143).
        import signal

        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGHUP})
        try:
            spool.append(recorder.record_result(
                command_id=command_id, session_id=session_id, seq=seq, exit_code=exit_code,
                api_calls=calls, stdout=out_cap, stderr=err_cap, started_at=started_at,
                ended_at=time.time(), timings=self.timer.marks))
        except HoopError as exc:
            # The command already ran: say the result could not be kept (its start record is,
            # so the server shows it as incomplete) and still return the real CLI's status.
            _say(self.env, exc.line())
        finally:
            kick_uploader(layout, self.environ, cfg.server)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGHUP})
        if blocked:
            _say(self.env, f"hoop: {blocked}")
            return int(ExitStatus.DENIED)
        if gateway is not None:
            return _gateway_exit(exit_code, calls, err_cap)
        return exit_code

    def _run_token_free(self, inv: Any, cli_args: list[str], layout: Layout) -> int:
        """Inside `hoop run --isolate` (HOOP_ISOLATED=1) the user's HOOP_HOME, and their login with
        it, is hidden, so there is no token to use. The agent's environment carries its session's
        gateway credential: the call goes to the gateway with it, and the server decides (the
        policy cannot be fetched without the user's token, so there is no local pre-check), holds a
        reviewed call, masks and records it. The shim still masks what it prints and keeps hoop's
        exit codes (77 denied, 75 pending). It writes no client records: nothing could upload
        them, and the gateway's server-observed records are the session's trail."""
        from hoopcli.credentials import Vended
        from hoopcli.errors import NotLoggedIn
        from hoopcli.masking import Masker, load_key, whole_output_secret
        from hoopcli.runner import Credentials, Terminated

        url = self.environ.get("HOOP_GATEWAY_URL") or ""
        key = self.environ.get("AWS_ACCESS_KEY_ID") or ""
        secret = self.environ.get("AWS_SECRET_ACCESS_KEY") or ""
        if not (url and key.startswith("HOOP") and secret):
            raise NotLoggedIn("inside `hoop run --isolate` your hoop login is hidden, and this environment has no "
                              "gateway session credential (HOOP_GATEWAY_URL, AWS_ACCESS_KEY_ID=HOOP..., "
                              "AWS_SECRET_ACCESS_KEY) to send the call with",
                              hint="run the agent with `hoop run --isolate` on a connection with `credentials: gateway`")
        region = self.environ.get("AWS_REGION") or self.environ.get("AWS_DEFAULT_REGION")
        vended = Vended(Credentials(key, secret), time.time() + 3600, region, url, None, None, {"mode": "gateway"})
        masker = Masker(load_key(layout))
        try:
            exit_code, calls, _out, err_cap, _blocked = self._execute(
                inv, cli_args, vended, masker, whole_output_secret(inv), None, None)
        except Terminated as exc:
            return 128 + exc.signum
        return _gateway_exit(exit_code, calls, err_cap)

    # -- stages ---------------------------------------------------------------------------------
    def _approve(self, client: Any, inv: Any, decision: Any, ctx: Any, connection: str,
                 session_id: str, cfg: Any) -> Any:
        from hoopcli.approval.request import request_and_wait
        from hoopcli.launcher import resume_gc

        resume_gc()   # a wait for a person may be long: collect as usual meanwhile
        wait = self.environ.get("HOOP_APPROVAL_WAIT")
        return request_and_wait(client, inv, decision, ctx, connection=connection,
                                 session_id=session_id, reason=cfg.reason,
                                 wait_seconds=float(wait) if wait else None,
                                 tty=controlling_tty(self.environ), stream=self.env.stderr,
                                 server=cfg.server, environ=self.environ)

    def _gateway(self, client: Any, layout: Layout, connection: str, session_id: str) -> Any:
        """On a gateway connection the real CLI sends its calls to hoop's gateway with a session
        credential (the server decides, masks and records each one, and holds a reviewed call
        itself) and no STS key is vended to this machine. Under `hoop run` the credential is in
        the agent's environment; otherwise the server issues one for this session (cached)."""
        from hoopcli.credentials import Vended, gateway_for
        from hoopcli.runner import Credentials

        url = self.environ.get("HOOP_GATEWAY_URL")
        key = self.environ.get("AWS_ACCESS_KEY_ID") or ""
        secret = self.environ.get("AWS_SECRET_ACCESS_KEY") or ""
        if url and key.startswith("HOOP") and secret:
            region = self.environ.get("AWS_REGION") or self.environ.get("AWS_DEFAULT_REGION")
            return Vended(Credentials(key, secret), time.time() + 3600, region, url, None, None,
                          {"mode": "gateway"})
        return gateway_for(client, layout, connection=connection, session_id=session_id, env=self.environ)

    def _credentials(self, client: Any, layout: Layout, ctx: Any, connection: str, session_id: str,
                     inv: Any, args: list[str], approval: Any, decision: Any, cfg: Any) -> Any:
        if not inv.api_calls:
            return None
        from hoopcli.credentials import ReviewRequired, obtain

        kw = dict(user=ctx.user, connection=connection, session_id=session_id, argv=args,
                  actions=inv.actions, resources=inv.resources, region=inv.globals.region,
                  endpoint_url=inv.globals.endpoint_url, env=self.environ)
        try:
            return obtain(client, layout, approval_id=getattr(approval, "id", None), **kw)
        except ReviewRequired as exc:
            if approval is not None:
                raise
            # The server's policy is stricter than our cache: it wins. Refresh, then ask a human.
            from hoopcli import policy as policy_mod

            pol = policy_mod.ensure_fresh(layout, client, force=True)
            server_decision = pol.evaluate(inv, ctx)
            if server_decision.effect == "deny":
                raise PolicyDenied(deny_line(inv, server_decision)) from exc
            approval = self._approve(client, inv, server_decision, ctx, connection, session_id, cfg)
            return obtain(client, layout, approval_id=getattr(approval, "id", None), **kw)

    def _execute(self, inv: Any, cli_args: list[str], vended: Any, masker: Any, whole_secret: bool,
                 pol: Any, ctx: Any) -> tuple[int, list[dict[str, Any]], dict[str, Any], dict[str, Any], str | None]:
        from hoopcli.masking.streams import Capture, MaskedBinary, MaskedTextStream, WholeSecret
        from hoopcli.runner import (
            InProcessRunner,
            RunRequest,
            SubprocessRunner,
            find_real_aws,
            runner_choice,
        )

        args = list(cli_args)
        if vended is not None and vended.endpoint_url and not inv.globals.endpoint_url:
            args = ["--endpoint-url", vended.endpoint_url, *args]
        region = inv.globals.region or (vended.region if vended else None)
        out_cap, err_cap = Capture(), Capture()
        out_raw = _binary(self.env.stdout)
        err_raw = _binary(self.env.stderr)
        out_sink = MaskedBinary(out_raw, out_cap, WholeSecret(masker) if whole_secret else masker.stream())
        err_sink = MaskedBinary(err_raw, err_cap, masker.stream(debug=inv.globals.debug))
        req = RunRequest(args=args, credentials=vended.credentials if vended else None, region=region,
                         env=self.environ)
        runner_name, find_env = runner_choice(self.environ, getattr(self, "stored_config", {}))
        if runner_name == "subprocess":
            exe = find_real_aws(find_env, self.env.argv0)
            passthrough = out_raw if _is_data_stream(inv) else None
            result = SubprocessRunner(exe).run(req, _binary(self.env.stdin), out_sink.write_masked,
                                               err_sink.write_masked, passthrough_stdout=passthrough)
        else:
            def check_call(service: str, operation: str, params: dict[str, Any]) -> str | None:
                from hoopcli.parse import call_for

                call = call_for(service, operation, params, inv.globals.region)
                d = pol.evaluate_call(call, inv, ctx)
                if d.effect == "deny":
                    return deny_line_call(call, d)
                if d.effect == "review":  # issue 15: actions, resources and params, as approved
                    from hoopcli.parse.scope import outside_approval

                    return outside_approval(call, inv)
                return None

            if pol is not None:     # token-free (hoop run --isolate): the gateway checks each call
                req.check_call = check_call
            # Customisations (ecr get-login-password, s3, eks ...) consume parsed responses
            # themselves: masking those would break them. Their output is masked as text, or
            # whole when it is a secret; API commands get their parsed responses masked.
            req.mask_parsed = masker.mask_parsed if inv.kind == "api" and not whole_secret else None
            req.mask_params = masker.mask_params
            req.masker = masker    # --debug log records masked where they are made
            out_text = MaskedTextStream(out_sink, self.env.stdout)
            err_text = MaskedTextStream(err_sink, self.env.stderr)
            result = InProcessRunner().run(req, out_text, err_text)
        out_sink.close()
        err_sink.close()
        calls = [c.to_dict() for c in result.calls]
        return result.exit_code, calls, out_cap.to_dict(), err_cap.to_dict(), result.blocked

    def _run_plain(self, cli_args: list[str]) -> int:
        """help / --version: no credentials, nothing secret; still the real CLI's own output."""
        from hoopcli.runner import InProcessRunner, RunRequest, SubprocessRunner, find_real_aws, runner_choice

        req = RunRequest(args=cli_args, credentials=None, env=self.environ)
        runner_name, find_env = runner_choice(self.environ, getattr(self, "stored_config", {}))
        if runner_name == "subprocess":
            exe = find_real_aws(find_env, self.env.argv0)
            out, err = _binary(self.env.stdout), _binary(self.env.stderr)
            return SubprocessRunner(exe).run(req, _binary(self.env.stdin), _writer(out), _writer(err)).exit_code
        return InProcessRunner().run(req, self.env.stdout, self.env.stderr).exit_code


def _gateway_exit(exit_code: int, calls: list[dict[str, Any]], err_cap: dict[str, Any] | None) -> int:
    """The gateway's own refusals keep the shim's exit codes (the message, from the server, is
    already on stderr in the real CLI's words)."""
    if exit_code == 0:
        return exit_code
    codes = {c.get("error_code") for c in calls}
    if "HoopApprovalPending" in codes:
        return int(ExitStatus.PENDING)
    if "AccessDenied" in codes and "hoop: " in str((err_cap or {}).get("text", "")):
        return int(ExitStatus.DENIED)
    return exit_code


def _writer(raw: IO[bytes]) -> Any:
    def write(data: bytes) -> None:
        raw.write(data)
        raw.flush()
    return write


def _binary(stream: IO[Any]) -> Any:
    return getattr(stream, "buffer", stream)


def _is_data_stream(inv: Any) -> bool:
    """`aws s3 cp s3://b/k -`: object bytes to stdout, passed through byte-exact."""
    return inv.service == "s3" and inv.operation in DATA_STREAM_OPS and bool(inv.argv) and "-" in inv.argv[2:]


def _decision_dict(decision: Any, exc: HoopError | None = None) -> dict[str, Any]:
    if decision is None:  # refused before a decision could be made (e.g. offline past the limit)
        out: dict[str, Any] = {"effect": "deny", "rule": None, "reason": exc.message if exc else None}
    else:
        out = {"effect": decision.effect, "rule": decision.rule, "reason": decision.reason}
    if exc is not None:
        out["outcome"] = type(exc).__name__
        out["exit_status"] = int(exc.exit_status)
    return out


def _approval_dict(approval: Any) -> dict[str, Any] | None:
    if approval is None:
        return None
    to_dict = getattr(approval, "to_dict", None)
    return to_dict() if callable(to_dict) else {"id": getattr(approval, "id", None)}


def deny_line(inv: Any, decision: Any) -> str:
    action = ", ".join(inv.actions) or f"{inv.service} {inv.operation}"
    resource = ", ".join(inv.resources) or "*"
    reason = f": {decision.reason}" if decision.reason else ""
    return f"denied by policy rule {decision.rule or 'default'} for {action} on {resource}{reason}"


def deny_line_call(call: Any, decision: Any) -> str:
    action = ", ".join(call.actions) or f"{call.service}:{call.operation}"
    resource = ", ".join(call.resources) or "*"
    reason = f": {decision.reason}" if decision.reason else ""
    return f"denied by policy rule {decision.rule or 'default'} for {action} on {resource}{reason}"


def controlling_tty(environ: Mapping[str, str]) -> str | None:
    """/dev/tty when this process has a controlling terminal a person could answer on, else None
    (never the agent's pipes). HOOP_NO_PROMPT=1 disables the terminal prompt."""
    if environ.get("HOOP_NO_PROMPT") == "1":
        return None
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None
    os.close(fd)
    return "/dev/tty"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
