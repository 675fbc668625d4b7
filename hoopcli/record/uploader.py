"""The detached background uploader (`python -m hoopcli.record.uploader`) and the shim's cheap probe of it.

Stdlib-only at import: the shim calls `kick_uploader` after every command. The uploader holds an
flock on spool/.uploader.lock while it runs, so a probe of that lock tells whether one runs (a few
microseconds). It sends pending records in batches (hoopcli.record.upload), retries with exponential backoff and jitter
while the server is unreachable, and exits once the spool stays empty for a short linger.

The server's ingest is idempotent by record id, so sending a record twice (two uploaders, `hoop
sync` racing the background uploader, a crash between send and ack) stores it once.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from hoopcli.errors import HoopError, NotLoggedIn
from hoopcli.paths import Layout, ensure_dir

LOCK_NAME = ".uploader.lock"
STATE_NAME = ".uploader.state"
LOG_NAME = "uploader.log"
LOG_MAX_BYTES = 1 << 20
LINGER = 10.0                    # seconds an idle uploader waits for the agent's next command


# --------------------------------------------------------------------------------------------------
# lock probe and spawn (hot path)

def uploader_pid(layout: Layout) -> int | None:
    """The pid of the running background uploader (0 if unknown), or None when none runs."""
    import fcntl

    try:
        fd = os.open(layout.spool_dir / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


_CHILDREN: list[int] = []   # pids of uploaders this process started (tests and benchmarks reap them)


def kick_uploader(layout: Layout, env: Mapping[str, str] | None = None,
                  server_url: str | None = None) -> bool:
    """Start the background uploader unless one runs; True when one was spawned. Never raises.

    When one runs this is an open + flock probe + close. A record that arrives while an uploader
    is about to exit is not stranded: the uploader re-checks the spool after releasing its lock.
    """
    import fcntl

    try:
        directory = ensure_dir(layout.spool_dir)
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    try:
        return _spawn(layout, os.environ if env is None else env, server_url)
    except (OSError, ValueError):
        return False


# The child drops the working directory from sys.path before importing hoopcli: the agent's cwd is
# not trusted (a `hoopcli/` directory there must not be imported by a process holding our token).
_BOOT = ("import os, sys\n"
         "if sys.path and sys.path[0] in ('', os.getcwd()): del sys.path[0]\n"
         "os.chdir(os.environ['HOOP_HOME'])\n"
         "from hoopcli.record.uploader import main\n"
         "sys.exit(main())\n")


def _inherited_fds() -> list[int]:
    """Open, inheritable descriptors above 2 (the agent's pipes the uploader must not hold open)."""
    for listing in ("/proc/self/fd", "/dev/fd"):
        try:
            names = os.listdir(listing)
        except OSError:
            continue
        fds = []
        for name in names:
            if name.isdigit() and int(name) > 2:
                try:
                    if os.get_inheritable(int(name)):
                        fds.append(int(name))
                except OSError:
                    pass
        return fds
    raise OSError("cannot list open file descriptors")


def _spawn(layout: Layout, env: Mapping[str, str], server_url: str | None) -> bool:
    """Start `hoopcli.record.uploader` detached (own session, stdin /dev/null, output to uploader.log).

    os.posix_spawn rather than subprocess: importing subprocess alone costs the shim 10-30 ms.
    """
    # The uploader needs HOOP_* and the interpreter's environment, never AWS credentials.
    child_env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
    child_env["HOOP_HOME"] = str(layout.home)
    if server_url:
        child_env["HOOP_SERVER"] = server_url
    python = sys.executable
    if not python:
        return False                  # no interpreter path to start: `hoop sync` sends the records
    log = os.open(layout.home / LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        actions: list[tuple[Any, ...]] = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, log, 1),
            (os.POSIX_SPAWN_DUP2, log, 2),
        ]
        actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in _inherited_fds() if fd != log]
        try:
            pid = os.posix_spawn(python, [python, "-c", _BOOT], child_env, file_actions=actions,
                                 setsid=True)
        except (NotImplementedError, AttributeError):   # a platform without POSIX_SPAWN_SETSID
            import subprocess

            pid = subprocess.Popen([python, "-c", _BOOT], stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=log, env=child_env, start_new_session=True).pid
    finally:
        os.close(log)
    _CHILDREN.append(pid)
    return True


# --------------------------------------------------------------------------------------------------
# one upload pass (hoop sync and the uploader)

# --------------------------------------------------------------------------------------------------
# state shown by `hoop status`

def write_state(layout: Layout, **state: Any) -> None:
    path = layout.spool_dir / STATE_NAME
    tmp = layout.spool_dir / f"{STATE_NAME}.{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"pid": os.getpid(), "updated": time.time(), **state}, fh)
        os.replace(tmp, path)
    except OSError:
        pass


def read_state(layout: Layout) -> dict[str, Any]:
    try:
        data = json.loads((layout.spool_dir / STATE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _log(layout: Layout, message: str) -> None:
    """One line to HOOP_HOME/uploader.log (kept under ~1 MiB). Messages carry no record content."""
    path = layout.home / LOG_NAME
    try:
        if path.stat().st_size > LOG_MAX_BYTES:
            os.replace(path, path.with_suffix(".log.1"))
    except OSError:
        pass
    line = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} pid={os.getpid()} {message}\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(line)
    except OSError:
        pass


# --------------------------------------------------------------------------------------------------
# the background process

class Backoff:
    """Exponential backoff with equal jitter: attempt n waits in [d/2, d], d = min(cap, base*2**n)."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, rng: Any = None) -> None:
        import random

        self.base, self.cap, self.attempt = base, cap, 0
        self.rng = rng or random.Random()

    def next(self) -> float:
        d = min(self.cap, self.base * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return float(d / 2 + self.rng.uniform(0, d / 2))

    def reset(self) -> None:
        self.attempt = 0


def _acquire(fd: int, wait: float) -> bool:
    import fcntl

    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)


def run(layout: Layout, client_factory: Callable[[], Any], *, linger: float = LINGER,
        give_up_after: float = 900.0, backoff: Backoff | None = None) -> int:
    """Upload until the spool is empty (then linger) or the server stays unreachable too long."""
    import fcntl

    from hoopcli.record.spool import Spool
    from hoopcli.record.upload import upload

    spool = Spool(layout)
    ensure_dir(layout.spool_dir)
    fd = os.open(layout.spool_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    if not _acquire(fd, 0.05):
        os.close(fd)
        return 0                      # another uploader runs
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    backoff = backoff or Backoff()
    failing_since: float | None = None
    last_error: str | None = None          # kept in the state while retrying, for `hoop status`
    total = 0
    client = client_factory()
    try:
        while True:
            spool.clean_tmp()
            idle_until = time.monotonic() + linger
            while not spool.pending():
                if time.monotonic() >= idle_until:
                    break
                time.sleep(min(0.05, linger))
            if not spool.pending():
                # Release, then look again: a shim that appended while we held the lock saw an
                # uploader running and did not spawn one, so its record is ours to send.
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
                if not spool.pending() or not _acquire(fd, 0.2):
                    write_state(layout, state="stopped", sent=total, last_error=None)
                    _log(layout, f"done: {total} records sent")
                    return 0
                os.pwrite(fd, str(os.getpid()).encode(), 0)
            write_state(layout, state="uploading", sent=total, last_error=last_error)
            try:
                sent, failed = upload(spool, client)
            except NotLoggedIn as exc:
                write_state(layout, state="stopped", sent=total, last_error=exc.line())
                _log(layout, f"stopped: {exc.line()}")
                return 0
            except HoopError as exc:
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > give_up_after:
                    write_state(layout, state="stopped", sent=total, last_error=exc.line())
                    _log(layout, f"gave up after {give_up_after:.0f}s: {exc.line()}")
                    return 1
                delay = backoff.next()
                last_error = exc.line()
                write_state(layout, state="backoff", sent=total, last_error=last_error,
                            next_retry=time.time() + delay)
                _log(layout, f"retry in {delay:.1f}s: {exc.line()}")
                time.sleep(delay)
                continue
            total += sent
            failing_since = None
            last_error = None
            backoff.reset()
            write_state(layout, state="uploading", sent=total, last_success=time.time())
            if sent == 0 and failed:
                time.sleep(backoff.next())   # the server keeps not confirming: do not spin
    finally:
        os.close(fd)


def make_client_factory(layout: Layout, env: Mapping[str, str]) -> Callable[[], Any]:
    def factory() -> Any:
        from hoopcli.client import for_user

        return for_user(env, layout=layout)

    return factory


def _env_float(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if 0 <= value <= 3600 else default


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m hoopcli.record.uploader",
                                     description="Upload the hoop spool in the background.")
    parser.add_argument("--linger", type=float, default=_env_float("HOOP_UPLOADER_LINGER", LINGER),
                        help="seconds to wait for more records once the spool is empty")
    parser.add_argument("--give-up-after", type=float, default=900.0,
                        help="stop after the server is unreachable this long (records stay spooled)")
    parser.add_argument("--max-delay", type=float, default=30.0, help="longest wait between retries")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    layout = Layout.from_env(env)
    try:
        return run(layout, make_client_factory(layout, env), linger=args.linger,
                   give_up_after=args.give_up_after, backoff=Backoff(cap=args.max_delay))
    except Exception as exc:  # a detached process: log and leave the spool as it is
        _log(layout, f"crashed: {type(exc).__name__}")
        return 70


if __name__ == "__main__":
    sys.exit(main())
