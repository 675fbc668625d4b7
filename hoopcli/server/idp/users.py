"""Local accounts of the development identity provider.

Accounts come from the server config (`users:`), each with an argon2id password hash made by
`hoop server add-user`; plain-text passwords are never accepted in the config. Verification
costs the same for a known and an unknown name, so a wrong name cannot be told from a wrong
password by timing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from hoopcli.errors import ConfigError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
GROUP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$")
MAX_PASSWORD = 1024

_hasher = PasswordHasher()
# Verified against when the name is unknown, so both paths do one argon2 verification.
_DUMMY_HASH = _hasher.hash("hoop-dev-idp-no-such-user")


@dataclass(frozen=True)
class LocalUser:
    name: str
    email: str
    groups: tuple[str, ...]


def hash_password(password: str) -> str:
    if not password:
        raise ConfigError("the password must not be empty")
    if len(password) > MAX_PASSWORD:
        raise ConfigError(f"the password is longer than {MAX_PASSWORD} characters")
    return _hasher.hash(password)


def validate_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise ConfigError(f"invalid user name {name!r}: use letters, digits and . _ @ - (max 64)")
    return name


def validate_groups(groups: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for group in groups:
        group = group.strip()
        if not group:
            continue
        if not GROUP_RE.match(group):
            raise ConfigError(f"invalid group name {group!r}")
        if group not in out:
            out.append(group)
    return tuple(out)


def _field(entry: Any, key: str, default: Any = None) -> Any:
    if isinstance(entry, Mapping):
        return entry.get(key, default)
    return getattr(entry, key, default)


def config_entry(name: str, password: str, groups: tuple[str, ...], email: str | None) -> dict[str, Any]:
    """The `users:` entry for one account, ready to paste under `users:` in the server config."""
    return {
        validate_name(name): {
            "password_hash": hash_password(password),
            "email": email or f"{name}@localhost",
            "groups": list(validate_groups(groups)),
        }
    }


def authenticate(users: Mapping[str, Any] | None, name: str, password: str) -> LocalUser | None:
    """The account if `password` is right for `name`, else None (same cost either way)."""
    users = users or {}
    name = (name or "").strip()
    password = password or ""
    entry = users.get(name) if NAME_RE.match(name) and len(password) <= MAX_PASSWORD else None
    stored = _field(entry, "password_hash") if entry is not None else None
    if not isinstance(stored, str) or not stored.startswith("$argon2"):
        stored, entry = _DUMMY_HASH, None
    ok: bool
    try:
        ok = _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    if not ok or entry is None:
        return None
    groups = _field(entry, "groups") or ()
    email = _field(entry, "email") or f"{name}@localhost"
    return LocalUser(name=name, email=str(email), groups=tuple(str(g) for g in groups))
