"""Signed checkpoints of the ledger: Ed25519 over {org, seq, size, root, time, previous}.

Each checkpoint names the SHA-256 of the previous checkpoint's signed body, so the checkpoints
form a chain (as CloudTrail digest files do): removing or re-signing one breaks the next.

The signing key is generated on first use and kept 0600 at ``<settings.home>/ledger_ed25519.pem``.
Checking a checkpoint (`body_bytes`, `checkpoint_hash`, `verify_signature`, `key_id`,
`parse_body`) is hoopcli.transcript.checkpoints, shared with `hoop sessions verify`.
"""

from __future__ import annotations

import base64
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
)

from hoopcli.errors import ConfigError
from hoopcli.transcript.checkpoints import key_id

KEY_FILE = "ledger_ed25519.pem"
CHECKPOINT_INTERVAL_SECONDS = 60.0
_lock = threading.Lock()





class SigningKey:
    """The server's checkpoint key (private part never leaves this object)."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public_raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id = key_id(self.public_raw)

    @classmethod
    def load_or_create(cls, home: Path) -> SigningKey:
        path = Path(home) / KEY_FILE
        with _lock:
            try:
                if not path.exists():
                    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                    private = Ed25519PrivateKey.generate()
                    pem = private.private_bytes(serialization.Encoding.PEM,
                                                serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption())
                    tmp = path.with_suffix(".tmp")
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(pem)
                        fh.flush()
                        os.fsync(fh.fileno())
                    os.replace(tmp, path)
                    return cls(private)
                if path.stat().st_mode & 0o077:
                    os.chmod(path, 0o600)
                loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
            except (OSError, ValueError, TypeError) as exc:
                raise ConfigError(f"cannot load the ledger signing key {path}: {exc}") from exc
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ConfigError(f"the ledger signing key {path} is not an Ed25519 key")
        return cls(loaded)

    def sign(self, data: bytes) -> str:
        return base64.b64encode(self._private.sign(data)).decode("ascii")

    def public_info(self) -> dict[str, str]:
        return {"algorithm": "Ed25519", "key_id": self.key_id,
                "public_key": base64.b64encode(self.public_raw).decode("ascii")}


def utc_iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def make_body(org: str, seq: int, size: int, root_hex: str, time: datetime,
              previous: str | None, kid: str) -> dict[str, Any]:
    return {"v": 1, "kind": "hoop.checkpoint", "org": org, "seq": seq, "size": size,
            "root": root_hex, "time": utc_iso(time), "previous": previous, "key_id": kid}
