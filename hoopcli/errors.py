"""One exception tree; one funnel turns it into exit codes and stderr lines.

    HoopError                       exit 70 unless a subclass says otherwise
    ├── UsageError                  bad input to hoop itself (exit 2)
    │   └── InvocationError         an aws command line hoop cannot classify (exit 2)
    ├── ConfigError                 bad config / policy file (exit 1)
    ├── NotLoggedIn                 exit 65
    ├── Unavailable                 server unreachable, failing closed (exit 69)
    ├── ApprovalPending             exit 75
    ├── ApprovalRejected            exit 76
    ├── PolicyDenied                exit 77
    ├── RealCliNotFound             exit 70
    ├── RecursionRefused            exit 70
    └── SpoolError                  the local spool cannot be written (disk full, read-only) (exit 70)

Library errors (requests, botocore, sqlalchemy, ...) are translated where they enter hoop's code,
with ``raise ... from exc``; nothing else decides an exit code.
"""

from __future__ import annotations

from pathlib import Path

from hoopcli.exitcodes import ExitStatus


class HoopError(Exception):
    """Root of every error hoop reports on purpose."""

    exit_status: int = ExitStatus.INTERNAL
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def line(self) -> str:
        """The single stderr line: `hoop: <message>[; <hint>]`, no newlines inside."""
        text = self.message if not self.hint else f"{self.message}; {self.hint}"
        return "hoop: " + " ".join(text.split())


class UsageError(HoopError):
    exit_status = ExitStatus.USAGE


class InvocationError(UsageError):
    """An aws command line that cannot be parsed or classified."""


class ConfigError(HoopError):
    exit_status = ExitStatus.ERROR


class NotLoggedIn(HoopError):
    exit_status = ExitStatus.NOT_LOGGED_IN
    hint = "run `hoop login`"


class Unavailable(HoopError):
    exit_status = ExitStatus.UNAVAILABLE
    hint = "retry later; the record is kept in the local spool"


class ApprovalPending(HoopError):
    exit_status = ExitStatus.PENDING


class ApprovalRejected(HoopError):
    exit_status = ExitStatus.REJECTED


class PolicyDenied(HoopError):
    exit_status = ExitStatus.DENIED


class RealCliNotFound(HoopError):
    exit_status = ExitStatus.INTERNAL
    hint = "install the AWS CLI or set HOOP_REAL_AWS to its path"


class RecursionRefused(HoopError):
    exit_status = ExitStatus.INTERNAL
    hint = "HOOP_REAL_AWS or PATH points back at the hoop shim; point it at the real AWS CLI"


class SpoolError(HoopError):
    """The local spool cannot take a record (disk full, read-only or unwritable HOOP_HOME)."""

    exit_status = ExitStatus.INTERNAL
    hint = "free space in HOOP_HOME or point HOOP_HOME at a writable directory; run `hoop status`"


INTERNAL_HINT = "this is a bug in hoop; please report it with `hoop doctor` output"


def where(exc: BaseException) -> list[str]:
    """Where `exc` happened, for the logs of internal errors: its type, then one line per frame
    of its traceback. Never its message or any local (either may hold a secret)."""
    import traceback

    lines = [f"{type(exc).__module__}.{type(exc).__name__}"]
    lines += [f"{f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(exc.__traceback__)]
    return lines


def log_internal_error(home: Path, exc: BaseException, log_name: str) -> str | None:
    """Append where `exc` happened (a timestamp, then `where(exc)`) to HOOP_HOME/logs/<log_name>,
    created 0600; returns the log's path, or None when it cannot be written (best effort)."""
    import os
    import time

    from hoopcli.paths import ensure_dir

    try:
        path = ensure_dir(home / "logs") / log_name
        lines = [time.strftime("%Y-%m-%dT%H:%M:%S%z"), *("  " + line for line in where(exc))]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        return str(path)
    except Exception:
        return None
