"""Signed cookies for the console: the signed-in session and the short-lived sign-in state.

A cookie is `base64url(json) "." base64url(HMAC-SHA256(key, purpose "|" json))`. The key is 32
random bytes in the server's home (0600), created on first start; the purpose binds a value to
the cookie it was issued as, so a sign-in state cookie can never pass for a session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SESSION_COOKIE = "hoop_console"
STATE_COOKIE = "hoop_signin"
SESSION_TTL = 8 * 3600
STATE_TTL = 600
MAX_COOKIE = 3800


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_key(home: Path) -> bytes:
    path = Path(home) / "console.key"
    try:
        data = path.read_bytes()
        if len(data) == 32:
            return data
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = path.with_name(f".console.key.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    try:
        os.link(tmp, path)          # first writer wins; a concurrent start reads the winner's key
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return path.read_bytes()


def sign(key: bytes, purpose: str, value: dict[str, Any]) -> str:
    body = json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")
    mac = hmac.new(key, purpose.encode() + b"|" + body, hashlib.sha256).digest()
    return f"{_b64(body)}.{_b64(mac)}"


def unsign(key: bytes, purpose: str, token: str | None) -> dict[str, Any] | None:
    """The value, or None for anything missing, malformed, forged or expired."""
    if not token or len(token) > MAX_COOKIE or token.count(".") != 1:
        return None
    body_part, mac_part = token.split(".")
    try:
        body, mac = _unb64(body_part), _unb64(mac_part)
    except (ValueError, TypeError):
        return None
    expected = hmac.new(key, purpose.encode() + b"|" + body, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("exp"), (int, float)):
        return None
    if value["exp"] < time.time():
        return None
    return value


@dataclass
class ConsoleUser:
    subject: str
    email: str | None
    name: str | None
    groups: tuple[str, ...]
    roles: frozenset[str]
    org: str
    csrf: str
    exp: float
    extra: dict[str, Any] = field(default_factory=dict)
    auth_time: float | None = None      # when the person signed in at the IdP (the ID token's auth_time)

    def display(self) -> str:
        return self.email or self.name or self.subject

    def has(self, role: str) -> bool:
        return role in self.roles or "admin" in self.roles

    def to_cookie(self) -> dict[str, Any]:
        return {"sub": self.subject, "email": self.email, "name": self.name, "groups": list(self.groups),
                "roles": sorted(self.roles), "org": self.org, "csrf": self.csrf, "exp": self.exp,
                "auth_time": self.auth_time}

    @classmethod
    def from_cookie(cls, value: dict[str, Any]) -> ConsoleUser | None:
        try:
            auth_time = value.get("auth_time")
            return cls(str(value["sub"]), value.get("email"), value.get("name"),
                       tuple(str(g) for g in value.get("groups") or ()),
                       frozenset(str(r) for r in value.get("roles") or ()), str(value.get("org") or "default"),
                       str(value["csrf"]), float(value["exp"]),
                       auth_time=float(auth_time) if isinstance(auth_time, (int, float)) else None)
        except (KeyError, TypeError, ValueError):
            return None
