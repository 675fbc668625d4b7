"""Session numbering: the implicit session of an agent that runs `aws` without `hoop run`, and
the sequence number of each command in its session. Stdlib only (the shim imports it on every
call)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from hoopcli.paths import Layout, ensure_dir
from hoopcli.record.shapes import new_id


def implicit_session(layout: Layout, environ: Mapping[str, str]) -> str:
    """A session for an agent that runs `aws` without `hoop run`: one per parent process, minted
    locally so the hot path makes no extra round trip (the server learns it from the records)."""
    ppid = os.getppid()
    directory = ensure_dir(layout.cache_dir / "sessions")
    path = directory / f"ppid-{ppid}"
    try:
        st = path.stat()
        if time.time() - st.st_mtime < 12 * 3600:
            value = path.read_text(encoding="ascii").strip()
            if len(value) == 32 and all(c in "0123456789abcdef" for c in value):
                return value
    except (OSError, ValueError):
        pass
    value = new_id()
    tmp = path.with_name(path.name + f".{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        os.replace(tmp, path)
    except OSError:
        pass
    return value


def next_seq(layout: Layout, session_id: str) -> int:
    """Sequence number of this command in its session, safe across concurrent shims."""
    import fcntl

    directory = ensure_dir(layout.cache_dir / "seq")
    path = directory / session_id
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        raw = os.read(fd, 32)
        try:
            value = int(raw.decode() or "0") + 1
        except ValueError:
            value = 1
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, str(value).encode())
        return value
    finally:
        os.close(fd)
