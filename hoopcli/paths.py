"""Where hoop keeps client state. Everything lives under HOOP_HOME (0700)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def hoop_home(env: Mapping[str, str] | None = None) -> Path:
    """HOOP_HOME, else the platform's user data dir for `hoop` (platformdirs, imported lazily)."""
    env = os.environ if env is None else env
    value = env.get("HOOP_HOME")
    if value:
        return Path(value).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("hoop", appauthor=False))


def ensure_dir(path: Path) -> Path:
    """Create `path` (and parents) with mode 0700; tighten it if it exists with looser bits."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o700)
    except OSError:
        pass
    return path


class Layout:
    """The files under one HOOP_HOME."""

    def __init__(self, home: Path) -> None:
        self.home = home

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Layout:
        return cls(hoop_home(env))

    @property
    def config_file(self) -> Path:
        return self.home / "config.json"

    @property
    def token_file(self) -> Path:
        return self.home / "tokens.json"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def policy_cache(self) -> Path:
        return self.cache_dir / "policy.json"

    @property
    def credentials_dir(self) -> Path:
        return self.cache_dir / "credentials"

    @property
    def spool_dir(self) -> Path:
        return self.home / "spool"

    def ensure(self) -> Layout:
        ensure_dir(self.home)
        return self


def write_private(path: Path, data: bytes, *, fsync: bool = False) -> None:
    """Atomically replace `path` with `data`, readable by the owner only (0600), in a 0700
    directory. The temporary file is unique per process and thread, never follows a symlink,
    and is removed if anything fails. `fsync` makes the content durable before the rename."""
    import threading

    ensure_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
