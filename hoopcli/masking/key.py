"""The per-installation masking key (HMAC key of the fingerprints)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hoopcli.paths import Layout

KEY_FILE_NAME = "masking.key"
KEY_BYTES = 32


def load_key(layout: Layout) -> bytes:
    """The installation's masking key: HOOP_HOME/masking.key (32 random bytes, 0600), created on
    first use. Concurrent first uses agree on one key (link-based create)."""
    from hoopcli.errors import ConfigError
    from hoopcli.paths import ensure_dir

    home = ensure_dir(layout.home)
    path = home / KEY_FILE_NAME
    for _ in range(3):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = None
        except OSError as exc:
            raise ConfigError(f"cannot read masking key {path}: {exc.strerror}") from exc
        if data is not None:
            if len(data) != KEY_BYTES:
                raise ConfigError(
                    f"masking key {path} is corrupt ({len(data)} bytes, expected {KEY_BYTES})",
                    hint="remove it to start a new key (old fingerprints will no longer match)",
                )
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)
            return data
        tmp = home / f".{KEY_FILE_NAME}.{os.getpid()}.{os.urandom(4).hex()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, os.urandom(KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won: read its key
        finally:
            os.unlink(tmp)
    raise ConfigError(f"cannot create masking key {path}")
