"""Short-lived credentials vended by the server, cached per (server, user, connection, scope).

The cache lives in HOOP_HOME/cache/credentials (0700 dir, 0600 files), is keyed by the exact set
of actions and resources the credentials are scoped to, and is dropped a minute before expiry.
Credentials bound to an approval are single use and never cached. Nothing here is written to
~/.aws or to the agent's environment. Set HOOP_CREDENTIAL_CACHE=0 to keep them in memory only.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from hoopcli.client import Client, Forbidden, ServerError
from hoopcli.errors import PolicyDenied, Unavailable
from hoopcli.paths import Layout, ensure_dir, write_private
from hoopcli.runner import Credentials

REFRESH_MARGIN = 60.0  # seconds before expiry at which cached credentials are no longer used


class ReviewRequired(Exception):
    """The server's policy says review for a call the local cache allowed: the server wins."""

    def __init__(self, detail: Any) -> None:
        super().__init__("approval required")
        self.detail = detail


class Vended:
    """Credentials the server vended for one scope, with what may be recorded about them.
    (A plain class: this module is on the shim's hot path.)"""

    __slots__ = ("credentials", "expiration", "region", "endpoint_url", "assumed_role_arn",
                 "sts_session_name", "decision")

    def __init__(self, credentials: Credentials, expiration: float, region: str | None,
                 endpoint_url: str | None, assumed_role_arn: str | None,
                 sts_session_name: str | None, decision: dict[str, Any]) -> None:
        self.credentials = credentials
        self.expiration = expiration           # epoch seconds
        self.region = region
        self.endpoint_url = endpoint_url
        self.assumed_role_arn = assumed_role_arn
        self.sts_session_name = sts_session_name
        self.decision = decision

    def __repr__(self) -> str:  # never the keys
        return f"Vended(assumed_role_arn={self.assumed_role_arn!r}, expiration={self.expiration})"

    def public(self) -> dict[str, Any]:
        """What may be recorded: never the keys."""
        return {
            "assumed_role_arn": self.assumed_role_arn,
            "sts_session_name": self.sts_session_name,
            "expiration": datetime.fromtimestamp(self.expiration).astimezone().isoformat(),
        }


def _epoch(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()


def scope_key(server: str, user: str, connection: str, actions: Sequence[str],
              resources: Sequence[str], region: str | None, endpoint_url: str | None) -> str:
    material = json.dumps([server, user, connection, sorted(set(actions)), sorted(set(resources)),
                           region, endpoint_url], separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()


def _from_payload(data: Mapping[str, Any]) -> Vended:
    try:
        creds = Credentials(str(data["access_key_id"]), str(data["secret_access_key"]),
                            data.get("session_token"))
        return Vended(creds, _epoch(data["expiration"]), data.get("region"), data.get("endpoint_url"),
                      data.get("assumed_role_arn"), data.get("sts_session_name"),
                      dict(data.get("decision") or {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise ServerError("the server sent malformed credentials") from exc


def _read_cache(path: str) -> Vended | None:
    try:
        st = os.stat(path)
        if st.st_uid != os.getuid() or st.st_mode & 0o077:
            os.unlink(path)
            return None
        with open(path, encoding="utf-8") as fh:
            vended = _from_payload(json.load(fh))
    except (OSError, ValueError, ServerError):
        return None
    if vended.expiration - time.time() <= REFRESH_MARGIN:
        try:
            os.unlink(path)
        except OSError:
            pass
        return None
    return vended


def _write_cache(path: str, payload: Mapping[str, Any]) -> None:
    try:
        write_private(Path(path), json.dumps(dict(payload)).encode("utf-8"))
    except OSError:
        pass  # the cache is an optimisation: the next call asks the server again


def obtain(client: Client, layout: Layout, *, user: str, connection: str, session_id: str,
           argv: Sequence[str], actions: Sequence[str], resources: Sequence[str],
           region: str | None, endpoint_url: str | None, approval_id: str | None = None,
           env: Mapping[str, str] | None = None) -> Vended:
    """Cached credentials for this scope, else new ones from POST /api/v1/credentials."""
    use_cache = approval_id is None and (env or {}).get("HOOP_CREDENTIAL_CACHE", "1") != "0"
    path = None
    if use_cache:
        key = scope_key(client.base_url, user, connection, actions, resources, region, endpoint_url)
        path = os.path.join(layout.credentials_dir, key + ".json")
        cached = _read_cache(path)
        if cached is not None:
            return cached
    body: dict[str, Any] = {"connection": connection, "session_id": session_id, "argv": list(argv)}
    if approval_id:
        body["approval_id"] = approval_id
    try:
        data = client.post("/api/v1/credentials", json=body).json()
    except Forbidden as exc:
        raise PolicyDenied(f"denied by the server's policy: {exc.message}") from exc
    except ServerError as exc:
        if exc.status == 409:
            raise ReviewRequired(exc.detail) from exc
        raise
    if not isinstance(data, dict):
        raise ServerError("the server sent malformed credentials")
    vended = _from_payload(data)
    if path is not None:
        ensure_dir(layout.credentials_dir)
        _write_cache(path, data)
    return vended


GATEWAY_MODE_TTL = 300.0   # how long "this connection vends" is remembered before asking again


def gateway_for(client: Client, layout: Layout, *, connection: str, session_id: str,
                env: Mapping[str, str] | None = None) -> Vended | None:
    """The session credential for a gateway connection (cached per server, session and
    connection until a minute before it expires), or None when the connection vends STS keys
    (remembered for GATEWAY_MODE_TTL). A session credential works only at hoop's gateway, where
    every request is decided and recorded, so the cache holds nothing AWS would accept."""
    directory = os.path.join(layout.credentials_dir, "gateway")
    modes = os.path.join(str(layout.cache_dir), "connections")   # no secret: outside credentials/
    mode_path = os.path.join(modes, "vend-" + hashlib.sha256(
        f"{client.base_url}|{connection}".encode()).hexdigest()[:32])
    try:
        if time.time() - os.stat(mode_path).st_mtime < GATEWAY_MODE_TTL:
            return None
    except OSError:
        pass
    key = hashlib.sha256(f"{client.base_url}|{session_id}|{connection}".encode()).hexdigest()
    path = os.path.join(directory, key + ".json")
    cached = _read_cache(path)
    if cached is not None:
        return cached
    try:
        data = client.post(f"/api/v1/sessions/{session_id}/credentials", json={"connection": connection}).json()
    except Forbidden:
        ensure_dir(Path(modes))
        _write_cache(mode_path, {})
        return None
    except Unavailable:
        # Server down: the vend path decides (its cache, or the same clear failure); a gateway
        # connection is refused there by the server anyway, and the gateway is down with it.
        return None
    if not isinstance(data, dict) or not isinstance(data.get("expires_at"), str):
        raise ServerError("the server sent a malformed session credential")
    payload = {"access_key_id": data.get("access_key_id"), "secret_access_key": data.get("secret_access_key"),
               "expiration": data["expires_at"], "region": data.get("region"),
               "endpoint_url": data.get("endpoint_url"), "decision": {"mode": "gateway"}}
    vended = _from_payload(payload)
    if (env or {}).get("HOOP_CREDENTIAL_CACHE", "1") != "0":
        ensure_dir(Path(directory))
        _write_cache(path, payload)
    return vended
