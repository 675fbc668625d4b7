"""The one canonical JSON form hoop hashes: sorted keys, no spaces, UTF-8, no NaN or infinity.

Used for the approval call hash (hoopcli.approval.canonical), the ledger's leaves and checkpoints
(hoopcli.transcript) and policy versions (server). Stdlib only."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(obj: Any) -> bytes:
    """The byte form that is hashed; raises ValueError for NaN or infinity."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
