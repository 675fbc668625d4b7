"""Checking a signed checkpoint of the ledger: Ed25519 over its canonical body, chained by the
SHA-256 of the previous body. The server signs (hoopcli.server.ledger.checkpoints); the server
and `hoop sessions verify` both check with these. Needs only `cryptography`."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hoopcli.canonical import canonical_json


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def body_bytes(body: dict[str, Any]) -> bytes:
    return canonical_json(body)


def checkpoint_hash(body: dict[str, Any]) -> str:
    """What the next checkpoint's `previous` must be."""
    return hashlib.sha256(body_bytes(body)).hexdigest()


def verify_signature(public_raw: bytes, body: dict[str, Any], signature_b64: str) -> bool:
    try:
        sig = base64.b64decode(signature_b64, validate=True)
        Ed25519PublicKey.from_public_bytes(public_raw).verify(sig, body_bytes(body))
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False


def parse_body(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("checkpoint body is not an object")
    return value
