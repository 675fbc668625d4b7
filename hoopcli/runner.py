"""Run the real AWS CLI: awscli v1 in process (default) or a real `aws` binary as a subprocess.

In process, botocore event hooks see every API call with its final parameters, can stop a call
before it is sent, record request id / status / error / duration, and mask parsed responses
before awscli formats them (so `--query` and `--output text|table` only ever see masked data).
The subprocess runner (an `aws` v2 binary, or any real CLI) decides on argv alone and masks the
output streams.

Credentials are handed to the CLI in memory (in process) or through the child's environment only
(subprocess); never written anywhere.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import Protocol

    class TextStream(Protocol):
        """What InProcessRunner installs as sys.stdout/sys.stderr: a real text stream, or the
        shim's hoopcli.masking.streams.MaskedTextStream, which is duck-typed (awscli writes,
        flushes and asks isatty(); binary output goes to its `buffer`)."""

        def write(self, text: str, /) -> int: ...
        def flush(self) -> None: ...
        def isatty(self) -> bool: ...

from hoopcli.errors import RealCliNotFound, RecursionRefused
from hoopcli.launcher import resume_gc

SHIM_MARKER = b"hoopcli-shim"          # written into every shim launcher
ACTIVE_ENV = "HOOP_SHIM_ACTIVE"        # set for the real CLI; a shim that sees it refuses to nest

# Variables that select or carry AWS credentials: removed before the real CLI runs, so the only
# credentials it can use are the ones hoop vended for this call.
AMBIENT_AWS_VARS = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CREDENTIAL_EXPIRATION",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
    "AWS_SHARED_CREDENTIALS_FILE", "AWS_EC2_METADATA_DISABLED",
)


# Plain classes rather than dataclasses: this module is imported on every `aws` call and each
# dataclass costs about half a millisecond to create.

class Credentials:
    __slots__ = ("access_key_id", "secret_access_key", "session_token")

    def __init__(self, access_key_id: str, secret_access_key: str, session_token: str | None = None) -> None:
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Credentials):
            return NotImplemented
        return (self.access_key_id, self.secret_access_key, self.session_token) == (
            other.access_key_id, other.secret_access_key, other.session_token)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaces

    def __repr__(self) -> str:  # never show the secret, even in a traceback
        return f"Credentials(access_key_id={self.access_key_id[:4]}..., secret=***)"


class CallRecord:
    __slots__ = ("service", "operation", "params", "started", "duration_ms", "request_id",
                 "http_status", "error_code", "blocked")

    def __init__(self, service: str, operation: str, params: dict[str, Any], started: float) -> None:
        self.service = service
        self.operation = operation
        self.params = params
        self.started = started
        self.duration_ms: float | None = None
        self.request_id: str | None = None
        self.http_status: int | None = None
        self.error_code: str | None = None
        self.blocked: str | None = None

    def __repr__(self) -> str:
        return f"CallRecord({self.service}:{self.operation}, status={self.http_status})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service, "operation": self.operation, "params": self.params,
            "request_id": self.request_id, "http_status": self.http_status,
            "error_code": self.error_code, "duration_ms": self.duration_ms,
            **({"blocked": self.blocked} if self.blocked else {}),
        }


class RunRequest:
    """What to run: the arguments after `aws` as the real CLI gets them, the credentials, and the
    in-process hooks (check_call -> refusal text or None; mask_parsed; mask_params) and the masker
    whose debug masking every log record gets while awscli runs (hoopcli.masking.debuglog)."""

    __slots__ = ("args", "credentials", "region", "env", "check_call", "mask_parsed", "mask_params",
                 "masker")

    def __init__(self, args: list[str], credentials: Credentials | None, region: str | None = None,
                 env: Mapping[str, str] | None = None,
                 check_call: Callable[[str, str, dict[str, Any]], str | None] | None = None,
                 mask_parsed: Callable[[str, str, Any], Any] | None = None,
                 mask_params: Callable[[str, str, dict[str, Any]], dict[str, Any]] | None = None) -> None:
        self.args = args
        self.credentials = credentials
        self.region = region
        self.env = {} if env is None else env
        self.check_call = check_call
        self.mask_parsed = mask_parsed
        self.mask_params = mask_params
        self.masker: Any = None


class RunResult:
    __slots__ = ("exit_code", "calls", "blocked")

    def __init__(self, exit_code: int, calls: list[CallRecord] | None = None, blocked: str | None = None) -> None:
        self.exit_code = exit_code
        self.calls = [] if calls is None else calls
        self.blocked = blocked           # the first refusal made by check_call, if any

    def __repr__(self) -> str:
        return f"RunResult(exit_code={self.exit_code}, calls={len(self.calls)}, blocked={self.blocked!r})"


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM/SIGHUP so the run ends through the normal path and
    its result is recorded (BaseException: awscli's `except Exception` must not swallow it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, _frame: Any) -> None:
    raise Terminated(signum)


def terminate_gracefully() -> dict[int, Any]:
    """Turn SIGTERM/SIGHUP into Terminated in the main thread; returns the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, _raise_terminated) for sig in (signal.SIGTERM, signal.SIGHUP)}


class _Http403:
    """The stand-in HTTP response botocore gets for a call hoop stops before sending."""

    status_code = 403
    content = b""
    text = ""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}   # botocore may write to it: one per stopped call


def clean_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in AMBIENT_AWS_VARS}


# --- who chooses the runner, and the config the real CLI reads (issue 15, item 4) ---------------

def runner_choice(env: Mapping[str, str], stored: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """("inprocess" | "subprocess", the environment to find the real CLI with).

    HOOP_RUNNER and HOOP_REAL_AWS come from hoop's configuration (HOOP_HOME/config.json keys
    `runner` and `real_aws`). Outside a hoop session the user's own environment may set them too;
    under one (HOOP_SESSION_ID set, as `hoop run` does) the agent's environment is not asked: an
    agent must not switch the per-call checks off by choosing the subprocess runner."""
    runner = stored.get("runner") if isinstance(stored.get("runner"), str) else None
    real = stored.get("real_aws") if isinstance(stored.get("real_aws"), str) else None
    if not env.get("HOOP_SESSION_ID"):
        runner = env.get("HOOP_RUNNER") or runner
        real = env.get("HOOP_REAL_AWS") or real
    found = {k: v for k, v in env.items() if k != "HOOP_REAL_AWS"}
    if real:
        found["HOOP_REAL_AWS"] = real
    name = runner or ("subprocess" if real else "inprocess")
    return ("subprocess" if name == "subprocess" else "inprocess"), found


# Settings of the agent's AWS config file the real CLI may keep: output and transfer tuning. Not
# kept: cli_history (it writes responses and the session token to ~/.aws/cli/history),
# credential_process, role_arn/source_profile, sso_*, keys, endpoint_url and every other profile.
CONFIG_KEPT = frozenset({"region", "output", "cli_binary_format", "cli_timestamp_format",
                         "cli_follow_urlparam", "parameter_validation", "retry_mode",
                         "max_attempts", "s3", "ca_bundle", "tcp_keepalive"})


def hoop_config_text(source: str) -> str:
    """The `[default]` section of an AWS config file reduced to CONFIG_KEPT (nested `s3 =` lines
    follow their key). A line parser: configparser costs an import on every call."""
    out = ["[default]"]
    in_default = keep = False
    for line in source.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if stripped.startswith("["):
            in_default, keep = stripped.replace(" ", "") == "[default]", False
            continue
        if not in_default:
            continue
        if line[:1] in (" ", "\t"):
            if keep:
                out.append("    " + stripped)
            continue
        key = stripped.partition("=")[0].strip().lower()
        keep = key in CONFIG_KEPT
        if keep:
            out.append(stripped)
    return "\n".join(out) + "\n"


def hoop_config_file(env: Mapping[str, str]) -> str:
    """A config file hoop writes for the real CLI (HOOP_HOME/run/aws-config, 0600), from the
    agent's AWS_CONFIG_FILE or ~/.aws/config reduced by hoop_config_text."""
    from hoopcli.paths import Layout, write_private

    source = env.get("AWS_CONFIG_FILE") or os.path.join(
        env.get("HOME") or os.path.expanduser("~"), ".aws", "config")
    try:
        with open(source, encoding="utf-8", errors="replace") as fh:
            text = hoop_config_text(fh.read(1024 * 1024))
    except OSError:
        text = "[default]\n"
    path = Layout.from_env(env).home / "run" / "aws-config"
    try:
        current = path.read_text(encoding="utf-8")
    except OSError:
        current = None
    if current != text:
        write_private(path, text.encode("utf-8"))
    return str(path)


def shadowing_alias(env: Mapping[str, str], args: list[str]) -> str | None:
    """The name of an alias in ~/.aws/cli/alias that the real CLI would run instead of the
    command hoop read (an alias may replace a service name), or None."""
    from hoopcli.parse.aliases import alias_names

    names = alias_names(env)
    if not names:
        return None
    from hoopcli.parse.parser import command_words

    words = command_words(args)
    return words[0] if words and words[0] in names else None


# --- in process --------------------------------------------------------------------------------

class InProcessRunner:
    """awscli v1 inside the shim's own process."""

    name = "inprocess"

    def run(self, req: RunRequest, stdout: TextStream, stderr: TextStream) -> RunResult:
        from awscli.clidriver import create_clidriver  # heavy: imported only when running

        result = RunResult(exit_code=0)
        lock = threading.Lock()
        pending: dict[int, CallRecord] = {}

        saved_env = dict(os.environ)
        saved_logging = _logging_state()
        debugging: list[Any] = []      # the run's DebugLog, once awscli has parsed --debug
        # awscli sets AWS_DATA_PATH to its own models when first imported; keep it set.
        data_path = os.environ.get("AWS_DATA_PATH") or _awscli_data_path()
        os.environ.clear()
        os.environ.update(clean_env(req.env))
        if data_path:
            os.environ["AWS_DATA_PATH"] = data_path
        # No shared credentials/config file may supply keys: hoop's are the only ones.
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
        os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
        os.environ["AWS_CONFIG_FILE"] = hoop_config_file(req.env)
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = stdout, stderr
        try:
            driver = create_clidriver()
            from awscli.alias import AliasLoader

            # hoop read argv as is: no alias file (a path that cannot exist)
            driver.alias_loader = AliasLoader(alias_filename=os.path.join(os.devnull, "no-aliases"))
            session = driver.session
            if req.credentials is not None:
                c = req.credentials
                session.set_credentials(c.access_key_id, c.secret_access_key, c.session_token)
            if req.region:
                session.set_config_variable("region", req.region)


            def on_params(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
                service = model.service_model.service_name
                shown = dict(params)
                if req.mask_params is not None:
                    shown = req.mask_params(service, model.name, shown)
                if debugging:
                    from hoopcli.masking.debuglog import changed_members

                    debugging[0].note_call(context, service, model.name, shown, changed_members(params, shown))
                record = CallRecord(service, model.name, _jsonable(shown), time.monotonic())
                context["hoop_record"] = record
                refusal = req.check_call(service, model.name, dict(params)) if req.check_call else None
                if refusal:
                    record.blocked = refusal
                    context["hoop_blocked"] = refusal
                with lock:
                    result.calls.append(record)
                    pending[id(record)] = record
                    if refusal and result.blocked is None:
                        result.blocked = refusal

            def before_call(model: Any, params: Any, context: dict[str, Any], **_: Any) -> Any:
                refusal = context.get("hoop_blocked")
                if refusal:
                    return _Http403(), {
                        "Error": {"Code": "HoopPolicyDenied", "Message": refusal},
                        "ResponseMetadata": {"HTTPStatusCode": 403},
                    }
                return None

            def after_call(http_response: Any, parsed: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
                record = context.get("hoop_record")
                if record is not None:
                    record.duration_ms = round((time.monotonic() - record.started) * 1000, 3)
                    record.http_status = getattr(http_response, "status_code", None)
                    if isinstance(parsed, dict):
                        meta = parsed.get("ResponseMetadata") or {}
                        record.request_id = meta.get("RequestId")
                        err = parsed.get("Error") or {}
                        record.error_code = err.get("Code") if isinstance(err, dict) else None
                if req.mask_parsed is not None and isinstance(parsed, dict) and "Error" not in parsed:
                    masked = req.mask_parsed(model.service_model.service_name, model.name, parsed)
                    if masked is not parsed and isinstance(masked, dict):
                        parsed.clear()
                        parsed.update(masked)

            events = session.get_component("event_emitter")
            events.register("before-parameter-build", on_params)
            events.register_last("before-call", before_call)
            events.register_first("after-call", after_call)

            def on_top_level_args(parsed_args: Any, **_: Any) -> None:
                # awscli's own parse of its global options (any spelling of --debug), emitted just
                # before it turns debug logging on: only then is the debug masking set up, so a
                # call without --debug pays nothing for it
                if not getattr(parsed_args, "debug", False) or debugging:
                    return
                log = _debug_log(req.masker, session)
                if log is not None:
                    events.register("before-parse", log.expect_response_event)
                    events.register("building-argument-table", log.expect_operation_event)
                    log.install()
                    debugging.append(log)

            events.register("top-level-args-parsed", on_top_level_args)
            previous = terminate_gracefully()
            resume_gc()
            try:
                result.exit_code = int(driver.main(list(req.args)) or 0)
            except SystemExit as exc:  # argparse errors exit 252 in awscli
                code = exc.code
                result.exit_code = code if isinstance(code, int) else (0 if code is None else 255)
            except Terminated as exc:
                result.exit_code = 128 + exc.signum
            finally:
                restore_signals(previous)
        finally:
            for record in pending.values():
                if record.duration_ms is None:
                    record.duration_ms = round((time.monotonic() - record.started) * 1000, 3)
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            for log in debugging:
                log.uninstall()
            _restore_logging(saved_logging)
            sys.stdout, sys.stderr = old_out, old_err
            os.environ.clear()
            os.environ.update(saved_env)
        return result


# awscli's --debug adds a stream handler (to the sys.stderr of the run) on each of these loggers
# and sets them to DEBUG; they are put back after the run, so a later run in the same process
# (hoop mcp, tests) neither logs to this run's streams nor at this run's level.
DEBUG_LOGGERS = ("", "botocore", "awscli", "s3transfer", "urllib3")


def _logging_state() -> dict[str, tuple[int, list[Any]]]:
    import logging

    return {name: (logging.getLogger(name).level, list(logging.getLogger(name).handlers))
            for name in DEBUG_LOGGERS}


def _restore_logging(saved: Mapping[str, tuple[int, list[Any]]]) -> None:
    import logging

    for name, (level, handlers) in saved.items():
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if handler not in handlers:
                logger.removeHandler(handler)
        logger.setLevel(level)


def _debug_log(masker: Any, session: Any) -> Any:
    """The --debug log masking for this run (hoopcli.masking.debuglog), or None without a masker.
    Response bodies are parsed again, with the session's own parser settings, to be masked by
    the operation's paths."""
    if masker is None:
        return None
    from hoopcli.masking.debuglog import DebugLog

    factory = session.get_component("response_parser_factory")

    def parse_response(operation_model: Any, response_dict: Any) -> Any:
        parser = factory.create_parser(operation_model.service_model.resolved_protocol)
        return parser.parse(response_dict, operation_model.output_shape)

    return DebugLog(masker, parse_response)


def _awscli_data_path() -> str:
    import awscli

    return os.path.join(os.path.dirname(awscli.__file__), "data")


def _jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of API parameters (bytes and streams summarised, never read)."""
    if depth > 20:
        return "…"
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return f"<{type(value).__name__}>"


# --- subprocess ----------------------------------------------------------------------------------

def is_shim(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return SHIM_MARKER in fh.read(1024)
    except OSError:
        return False


def find_real_aws(env: Mapping[str, str], self_path: str | None = None) -> str:
    """HOOP_REAL_AWS, else the first `aws` on PATH that is not a hoop shim (and not ourselves)."""
    explicit = env.get("HOOP_REAL_AWS")
    me = os.path.realpath(self_path) if self_path else None
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise RealCliNotFound(f"HOOP_REAL_AWS={explicit} is not an executable file")
        if is_shim(explicit) or (me and os.path.realpath(explicit) == me):
            raise RecursionRefused(f"HOOP_REAL_AWS={explicit} is a hoop shim, not the real AWS CLI")
        return explicit
    seen: set[str] = set()
    for directory in env.get("PATH", "").split(os.pathsep):
        if not directory:
            continue
        candidate = os.path.join(directory, "aws")
        real = os.path.realpath(candidate)
        if real in seen:
            continue
        seen.add(real)
        if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
            continue
        if (me and real == me) or is_shim(candidate):
            continue
        return candidate
    raise RealCliNotFound("the real AWS CLI was not found on PATH (every `aws` found is a hoop shim)")


class SubprocessRunner:
    """A real `aws` binary (v2 or v1) as a child process; argv-level decisions only."""

    name = "subprocess"

    def __init__(self, executable: str) -> None:
        self.executable = executable

    def run(self, req: RunRequest, stdin: IO[bytes] | None, stdout_sink: Callable[[bytes], None],
            stderr_sink: Callable[[bytes], None], passthrough_stdout: IO[bytes] | None = None) -> RunResult:
        env = clean_env(req.env)
        env[ACTIVE_ENV] = "1"
        env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
        env["AWS_EC2_METADATA_DISABLED"] = "true"
        env["AWS_CONFIG_FILE"] = hoop_config_file(req.env)
        alias = shadowing_alias(req.env, list(req.args))
        if alias is not None:
            return RunResult(exit_code=77, blocked=(
                f"`{alias}` is an alias in ~/.aws/cli/alias that the real CLI would run instead "
                f"of the command hoop checked; remove the alias or run the command it stands for"))
        if req.credentials is not None:
            env["AWS_ACCESS_KEY_ID"] = req.credentials.access_key_id
            env["AWS_SECRET_ACCESS_KEY"] = req.credentials.secret_access_key
            if req.credentials.session_token:
                env["AWS_SESSION_TOKEN"] = req.credentials.session_token
        if req.region:
            env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = req.region
        resume_gc()
        forwarder = SignalForwarder()
        threads: list[threading.Thread] = []
        try:
            if forwarder.pending:      # stopped before the CLI started: it does not start
                return RunResult(exit_code=128 + forwarder.pending[0])
            proc = subprocess.Popen(
                [self.executable, *req.args], env=env, stdin=stdin,
                stdout=passthrough_stdout if passthrough_stdout is not None else subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            forwarder.started(proc)
            if passthrough_stdout is None:
                threads.append(threading.Thread(target=_pump, args=(proc.stdout, stdout_sink), daemon=True))
            threads.append(threading.Thread(target=_pump, args=(proc.stderr, stderr_sink), daemon=True))
            for t in threads:
                t.start()
            code = proc.wait()
        finally:
            for t in threads:
                t.join()
            forwarder.restore()
        if code < 0:  # killed by a signal: report it the way a shell does
            code = 128 - code
        return RunResult(exit_code=code)


def _pump(stream: IO[bytes] | None, sink: Callable[[bytes], None]) -> None:
    if stream is None:
        return
    read = getattr(stream, "read1", stream.read)
    while True:
        chunk = read(65536)
        if not chunk:
            break
        sink(chunk)


class SignalForwarder:
    """Send SIGINT/SIGTERM/SIGHUP to a child process. Installed before the child starts (in the
    main thread; elsewhere it does nothing): a signal that lands while the child is being started
    is kept and sent once it runs, instead of ending this process alone and leaving the child
    running, orphaned."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.pending: list[int] = []
        self.previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            self.previous = {sig: signal.signal(sig, self._forward)
                             for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}

    def _forward(self, signum: int, _frame: Any) -> None:
        if self.proc is None:
            self.pending.append(signum)
            return
        try:
            self.proc.send_signal(signum)
        except ProcessLookupError:
            pass

    def started(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        # from here on `_forward` sends a signal itself, so `pending` no longer grows
        for signum in self.pending:
            proc.send_signal(signum)

    def restore(self) -> None:
        restore_signals(self.previous)


def restore_signals(previous: Mapping[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
