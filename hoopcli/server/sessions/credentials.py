"""Gateway session credentials: what `hoop run` and `hoop env` hand an agent instead of AWS keys.

A session credential is an access key id (`HOOP` + 16 base-32 characters, shaped like an AWS
key so every SDK accepts it) and a secret. It is bound to one session, user, connection and
agent, expires, can be revoked, and is worth nothing anywhere but at hoop's gateway: AWS has
never heard of it, and the gateway decides, masks and records every request signed with it.

The secret is HMAC-SHA256(gateway key, access key id), so the database holds no secret and a copy
of it mints nothing. The gateway key is 32 random bytes in `<server home>/gateway.key` (0600),
made on first use; replicas behind one database must share that file (docs/deployment.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select

from hoopcli.errors import ConfigError
from hoopcli.server.errors import Conflict, Forbidden, NotFound, Unprocessable
from hoopcli.server.identity.security import Principal
from hoopcli.server.identity.service import check_connection
from hoopcli.server.nonblocking import may_block
from hoopcli.server.settings import Settings
from hoopcli.server.singleflight import SingleFlight
from hoopcli.server.store.db import Database
from hoopcli.server.store.models import AgentSession, SessionCredential

KEY_FILE = "gateway.key"
KEY_PREFIX = "HOOP"
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_keys: dict[str, bytes] = {}
_keys_lock = threading.Lock()


def gateway_key(home: Path) -> bytes:
    """The server's gateway key, created 0600 under `home` on first use."""
    path = Path(home) / KEY_FILE
    cached = _keys.get(str(path))
    if cached is not None:
        return cached
    may_block("gateway key load")
    with _keys_lock:
        try:
            if not path.exists():
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(secrets.token_bytes(32))
                    fh.flush()
                    os.fsync(fh.fileno())
                try:
                    os.link(tmp, path)       # never replace a key another process just made
                except FileExistsError:
                    pass
                os.unlink(tmp)
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)
            key = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot load the gateway key {path}: {exc.strerror or exc}") from exc
        if len(key) != 32:
            raise ConfigError(f"the gateway key {path} is not 32 bytes; remove it to make a new one "
                              "(every session credential issued with it stops working)")
        _keys[str(path)] = key
        return key


def derive_secret(key: bytes, access_key_id: str) -> str:
    digest = hmac.new(key, b"hoop-session-credential-v1\x00" + access_key_id.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()[:40]


def new_access_key_id() -> str:
    return KEY_PREFIX + "".join(secrets.choice(_B32) for _ in range(16))


@dataclass(frozen=True)
class LiveCredential:
    """A credential the gateway accepted: whose it is and where it may go."""

    access_key_id: str
    org: str
    session_id: str
    connection: str
    agent: str | None
    principal: Principal
    expires_at: float


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def issue(db: Database, settings: Settings, principal: Principal, session_id: str,
          ttl_seconds: int | None = None, connection_name: str | None = None) -> dict[str, Any]:
    """A new credential for the caller's own open session on a gateway connection. A session
    the shim minted locally (not yet on the server) is claimed for the caller on `connection`."""
    if connection_name is not None:
        from hoopcli.server.sessions.service import SESSION_ID_RE, claim

        if not SESSION_ID_RE.match(session_id):
            raise Unprocessable("session id: use letters, digits, '-' and '_' (at most 64)")
        if check_connection(settings, connection_name).credentials != "gateway":
            raise Forbidden(f"connection {connection_name!r} vends STS credentials (credentials: vend); "
                            "session credentials are for gateway connections")
        claim(db, principal, session_id, connection_name)
    with db.session() as s:
        row = s.get(AgentSession, session_id) if len(session_id) <= 64 else None
        if row is None or row.org != principal.org or row.user != principal.subject:
            raise NotFound("no such session")
        if row.closed_at is not None:
            raise Conflict("the session is closed; open a new one")
        if not row.connection:
            raise Unprocessable("the session names no connection")
        connection = check_connection(settings, row.connection)
        if connection.credentials != "gateway":
            raise Forbidden(f"connection {connection.name!r} vends STS credentials (credentials: vend); "
                            "session credentials are for gateway connections")
        agent = row.agent
    ttl = min(ttl_seconds or settings.gateway.credential_ttl_seconds, settings.gateway.credential_ttl_seconds)
    now = datetime.now(timezone.utc)
    access_key_id = new_access_key_id()
    with db.session() as s:
        s.add(SessionCredential(
            access_key_id=access_key_id, org=principal.org, session_id=session_id, user=principal.subject,
            user_email=principal.email, groups=list(principal.groups), roles=sorted(principal.roles),
            agent=agent, connection=connection.name, created_at=now, expires_at=now + timedelta(seconds=ttl),
        ))
    secret = derive_secret(gateway_key(settings.home), access_key_id)
    return {
        "access_key_id": access_key_id, "secret_access_key": secret,
        "expires_at": (now + timedelta(seconds=ttl)).isoformat().replace("+00:00", "Z"),
        "session_id": session_id, "connection": connection.name, "region": connection.region,
        "endpoint_url": settings.gateway.public_url,
    }


class Lookup:
    """access key id -> (secret, LiveCredential) for the gateway, or a reason it is refused.

    Rows are cached for `ttl` seconds (a revocation takes effect within that time on every
    replica); the secret is derived each time from the key, never cached with the row."""

    def __init__(self, db: Database, settings: Settings, ttl: float = 1.0) -> None:
        self.db = db
        self.settings = settings
        self.ttl = ttl
        # access key id -> (fetched at, row, the row as a LiveCredential unless revoked)
        self._cache: dict[str, tuple[float, SessionCredential | None, LiveCredential | None]] = {}
        self._lock = threading.Lock()
        # requests in flight that find the same entry expired share one read
        self._reads: SingleFlight[tuple[float, SessionCredential | None, LiveCredential | None]] = SingleFlight()

    def _entry(self, access_key_id: str) -> tuple[float, SessionCredential | None, LiveCredential | None]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(access_key_id)
        if hit is not None and now - hit[0] < self.ttl:
            return hit
        may_block("session credential lookup")
        return self._reads.do(access_key_id, lambda: self._read(access_key_id, now))

    def _read(self, access_key_id: str, now: float) -> tuple[float, SessionCredential | None,
                                                               LiveCredential | None]:
        row = None
        if access_key_id.startswith(KEY_PREFIX) and len(access_key_id) == 20:
            with self.db.session() as s:
                row = s.execute(select(SessionCredential).where(
                    SessionCredential.access_key_id == access_key_id)).scalar_one_or_none()
                if row is not None:
                    s.expunge(row)
        live = None
        if row is not None and row.revoked_at is None:
            principal = Principal(subject=row.user, email=row.user_email, name=None,
                                  groups=tuple(row.groups or ()), roles=frozenset(row.roles or ()), org=row.org)
            live = LiveCredential(row.access_key_id, row.org, row.session_id, row.connection, row.agent,
                                  principal, _aware(row.expires_at).timestamp())
        entry = (now, row, live)
        with self._lock:
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[access_key_id] = entry
        return entry

    def row(self, access_key_id: str) -> SessionCredential | None:
        return self._entry(access_key_id)[1]

    def state(self, access_key_id: str) -> tuple[str, LiveCredential | None]:
        """("live", credential) | ("unknown" | "revoked" | "expired", None)."""
        _at, row, live = self._entry(access_key_id)
        if row is None:
            return "unknown", None
        if live is None:
            return "revoked", None
        if live.expires_at <= time.time():
            return "expired", None
        return "live", live

    def secret(self, access_key_id: str) -> str | None:
        """What the SigV4 verifier needs: the secret of a live credential, else None."""
        status, _ = self.state(access_key_id)
        if status != "live":
            return None
        return self.derive(access_key_id)

    def derive(self, access_key_id: str) -> str:
        """The secret of `access_key_id` (derived from the server's key; check `state` first)."""
        return derive_secret(gateway_key(self.settings.home), access_key_id)
