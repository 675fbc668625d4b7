"""The development identity provider: oauthlib endpoints wired to our tables and config.

Development-grade: one public client, local accounts from the server config, in-memory rate
limits. Use a real OIDC provider (`oidc.issuer`) for anything shared.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from typing import Any

from oauthlib.oauth2 import BearerToken
from oauthlib.oauth2.rfc6749.endpoints import (
    AuthorizationEndpoint,
    RevocationEndpoint,
    TokenEndpoint,
)
from oauthlib.oauth2.rfc6749.grant_types import (
    AuthorizationCodeGrant,
    RefreshTokenGrant,
)
from oauthlib.oauth2.rfc8628.endpoints import DeviceAuthorizationEndpoint
from oauthlib.oauth2.rfc8628.grant_types import DeviceCodeGrant
from sqlalchemy import delete, select

from hoopcli.server.idp.validator import DEVICE_GRANT, Validator, digest
from hoopcli.server.store.idp import IdpAuthCode, IdpDeviceGrant, IdpRefreshToken

ID_TOKEN_TTL = 3600
# No vowels, no look-alikes (0/O, 1/I/L): 20**8 ≈ 2.6e10 codes, typed as XXXX-XXXX.
USER_CODE_ALPHABET = "BCDFGHJKMNPQRSTVWXZ"
USER_CODE_LEN = 8


def generate_user_code() -> str:
    raw = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LEN))
    return f"{raw[:4]}-{raw[4:]}"


def normalize_user_code(text: str) -> str:
    """What a person typed -> the canonical code: case, spaces and dashes do not matter."""
    cleaned = "".join(ch for ch in (text or "")[:64].upper() if ch.isalnum())
    return cleaned[:USER_CODE_LEN] if len(cleaned) == USER_CODE_LEN else ""


class RateLimiter:
    """At most `limit` failures per `window` seconds per key (in memory, per process)."""

    def __init__(self, limit: int = 10, window: float = 300.0) -> None:
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            hits = self._hits.get(key)
            while hits and now - hits[0] > self.window:
                hits.popleft()
            return hits is not None and len(hits) >= self.limit

    def fail(self, key: str) -> None:
        with self._lock:
            if len(self._hits) > 10000:
                self._hits.clear()
            self._hits.setdefault(key, deque()).append(time.monotonic())


class Provider:
    def __init__(self, settings: Any, db: Any) -> None:
        self.settings = settings
        self.db = db
        public = str(getattr(settings, "public_url", None) or "").rstrip("/")
        self.issuer = f"{public}/idp"
        self.client_id = "hoop-cli"
        self.redirect_uris = [f"{public}/auth/callback"]
        self.interval = 5
        self.expires_in = 600
        self.id_token_ttl = ID_TOKEN_TTL
        self.limiter = RateLimiter()                               # failed sign-ins
        self.device_limiter = RateLimiter(limit=60, window=60.0)   # device authorizations
        self.csrf_key = secrets.token_bytes(32)
        self.validator = Validator(self)
        bearer = BearerToken(self.validator, token_generator=self._access_token,
                             expires_in=lambda request: self.id_token_ttl,
                             refresh_token_generator=lambda request: secrets.token_urlsafe(32))
        self.token_endpoint = TokenEndpoint(
            default_grant_type="authorization_code",
            grant_types={
                "authorization_code": AuthorizationCodeGrant(self.validator),
                "refresh_token": RefreshTokenGrant(self.validator, issue_new_refresh_tokens=True),
                DEVICE_GRANT: DeviceCodeGrant(self.validator),
            },
            default_token_type=bearer)
        self.authorization_endpoint = AuthorizationEndpoint(
            default_response_type="code",
            response_types={"code": AuthorizationCodeGrant(self.validator)},
            default_token_type=bearer)
        self.revocation_endpoint = RevocationEndpoint(self.validator,
                                                      supported_token_types=("refresh_token",))

    # -- endpoints' URLs -----------------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"{self.issuer}{path}"

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.url("/authorize"),
            "token_endpoint": self.url("/token"),
            "device_authorization_endpoint": self.url("/device/code"),
            "revocation_endpoint": self.url("/revoke"),
            "jwks_uri": self.url("/jwks"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token", DEVICE_GRANT],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "groups", "offline_access"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "auth_time", "email",
                                 "name", "groups", "nonce"],
            # there is no single sign-on session: every authorization is an interactive sign-in,
            # so prompt=login and max_age (0 included) always hold
            "prompt_values_supported": ["login"],
            "token_endpoint_auth_methods_supported": ["none"],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "code_challenge_methods_supported": ["S256"],
        }

    # -- users ---------------------------------------------------------------------------------
    def users(self) -> dict[str, Any]:
        return dict(getattr(self.settings, "users", None) or {})

    def user_exists(self, name: Any) -> bool:
        return isinstance(name, str) and name in self.users()

    def _claims_of(self, name: str) -> tuple[str, list[str]]:
        entry = self.users().get(name)
        get = entry.get if isinstance(entry, dict) else (lambda k, d=None: getattr(entry, k, d))
        return str(get("email") or f"{name}@localhost"), [str(g) for g in (get("groups") or ())]

    def mint(self, name: str, nonce: str | None = None, auth_time: float | None = None) -> str:
        from hoopcli.server.idp.keys import mint_id_token

        email, groups = self._claims_of(name)
        extra: dict[str, Any] = {"name": name}
        if nonce:
            extra["nonce"] = nonce
        if auth_time is not None:
            extra["auth_time"] = int(auth_time)
        return str(mint_id_token(self.settings, name, email, groups, ttl=self.id_token_ttl, **extra))

    def _access_token(self, request: Any) -> str:
        # The ID token doubles as the access token: the hoop server accepts ID tokens as bearers.
        token = self.mint(request.user, getattr(request, "hoop_nonce", None),
                          getattr(request, "hoop_auth_time", None))
        request.extra_credentials = {"id_token": token}
        return token

    # -- device flow ---------------------------------------------------------------------------
    def device_authorization(self, uri: str, body: str, headers: dict[str, str]) -> tuple[dict[str, Any], int]:
        box: dict[str, str] = {}

        def user_code() -> str:
            box["user_code"] = generate_user_code()
            return box["user_code"]

        endpoint = DeviceAuthorizationEndpoint(
            self.validator, verification_uri=self.url("/device"), expires_in=self.expires_in,
            interval=self.interval,
            verification_uri_complete=lambda code: self.url(f"/device?user_code={code}"),
            user_code_generator=user_code)
        _headers, data, status = endpoint.create_device_authorization_response(
            uri, "POST", body, headers)
        if status != 200 or not isinstance(data, dict) or "device_code" not in data:
            return (data if isinstance(data, dict) else {"error": "invalid_request"}), (status if status != 200 else 400)
        now = time.time()
        with self.db.session() as s:
            self._purge(s, now)
            s.add(IdpDeviceGrant(
                device_code_hash=digest(data["device_code"]),
                user_code_hash=digest(normalize_user_code(data["user_code"])),
                client_id=self.client_id, scope=data.get("scope") or " ".join(
                    self.validator.get_default_scopes(self.client_id, None)),
                status="pending", poll_interval=self.interval, created_at=now,
                expires_at=now + self.expires_in))
        data.pop("scope", None)
        return data, 200

    @staticmethod
    def _purge(s: Any, now: float) -> None:
        """Drop grants, codes and refresh tokens that expired over an hour ago."""
        cutoff = now - 3600
        for model in (IdpDeviceGrant, IdpAuthCode, IdpRefreshToken):
            s.execute(delete(model).where(model.expires_at < cutoff))

    def pending_grant(self, user_code: str) -> bool:
        code = normalize_user_code(user_code)
        if not code:
            return False
        with self.db.session() as s:
            row = s.execute(select(IdpDeviceGrant).where(
                IdpDeviceGrant.user_code_hash == digest(code))).scalar_one_or_none()
            return row is not None and row.status == "pending" and row.expires_at > time.time()

    def decide(self, user_code: str, subject: str | None, approve: bool) -> bool:
        """Approve (as `subject`) or deny the pending grant with this user code."""
        code = normalize_user_code(user_code)
        if not code:
            return False
        with self.db.session() as s:
            row = s.execute(select(IdpDeviceGrant).where(
                IdpDeviceGrant.user_code_hash == digest(code))).scalar_one_or_none()
            if row is None or row.status != "pending" or row.expires_at <= time.time():
                return False
            row.status = "authorized" if approve else "denied"
            row.subject = subject if approve else None
            row.auth_time = time.time() if approve else None
            return True
