"""Signing keys of the built-in development identity provider.

RSA-2048 keys live in `<settings.home>/idp/keys/<kid>.pem` (directory 0700, files 0600), created
on first use. The newest key signs; the JWKS publishes the newest few so tokens signed before a
`rotate_key()` stay valid until they expire.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from hoopcli.errors import ConfigError
from hoopcli.paths import ensure_dir

if TYPE_CHECKING:
    from hoopcli.server.settings import Settings

ALGORITHM = "RS256"
KEEP_KEYS = 3
_lock = threading.Lock()
# path -> (mtime_ns, key): parsing and validating an RSA key costs ~100 ms; tokens are minted
# and verified on every request.
_loaded: dict[Path, tuple[int, SigningKey]] = {}


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    def public_jwk(self) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        jwk.update({"kid": self.kid, "alg": ALGORITHM, "use": "sig"})
        return jwk


def keys_dir(settings: Settings) -> Path:
    return Path(settings.home) / "idp" / "keys"


def _new_kid() -> str:
    # Sortable by creation time, unique across processes.
    return f"{time.time_ns():020d}-{secrets.token_hex(4)}"


def _write_key(directory: Path) -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = _new_kid()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = directory / f".{kid}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    path = directory / f"{kid}.pem"
    os.replace(tmp, path)
    signing = SigningKey(kid, key)
    _loaded[path] = (path.stat().st_mtime_ns, signing)
    return signing


def _load(path: Path) -> SigningKey:
    try:
        stat = path.stat()
        cached = _loaded.get(path)
        if cached is not None and cached[0] == stat.st_mtime_ns:
            return cached[1]
        if stat.st_mode & 0o077:
            os.chmod(path, 0o600)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read the dev IdP signing key {path}: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"the dev IdP signing key {path} is not an RSA key")
    loaded = SigningKey(path.stem, key)
    _loaded[path] = (stat.st_mtime_ns, loaded)
    return loaded


def signing_keys(settings: Settings) -> list[SigningKey]:
    """All published keys, newest first; creates the first key when there is none."""
    directory = ensure_dir(keys_dir(settings))
    with _lock:
        paths = sorted(directory.glob("*.pem"), reverse=True)
        if not paths:
            return [_write_key(directory)]
        return [_load(p) for p in paths[:KEEP_KEYS]]


def current_key(settings: Settings) -> SigningKey:
    return signing_keys(settings)[0]


def rotate_key(settings: Settings) -> SigningKey:
    """Create a new signing key; it signs from now on. Keys beyond the newest KEEP_KEYS are removed."""
    directory = ensure_dir(keys_dir(settings))
    with _lock:
        key = _write_key(directory)
        for old in sorted(directory.glob("*.pem"), reverse=True)[KEEP_KEYS:]:
            try:
                old.unlink()
            except OSError:
                pass
        return key


def jwks(settings: Settings) -> dict[str, Any]:
    """The public JSON Web Key Set the dev IdP publishes."""
    return {"keys": [k.public_jwk() for k in signing_keys(settings)]}


def mint_id_token(
    settings: Settings,
    sub: str,
    email: str | None = None,
    groups: Any = (),
    ttl: int = 3600,
    **claims: Any,
) -> str:
    """A real RS256-signed ID token from the dev IdP for `sub`.

    `claims` are added last, so tests may override iss/aud/exp/nbf to forge bad tokens.
    """
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": settings.issuer,
        "sub": sub,
        "aud": settings.client_id,
        "iat": now,
        "nbf": now,
        "exp": now + int(ttl),
        "jti": uuid.uuid4().hex,
    }
    if email:
        payload["email"] = email
    payload[settings.groups_claim] = list(groups or ())
    payload.update(claims)
    key = current_key(settings)
    return jwt.encode(payload, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
