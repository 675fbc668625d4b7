"""oauthlib RequestValidator of the development identity provider.

oauthlib runs the protocol (RFC 6749 token endpoint, RFC 7636 PKCE, RFC 8628 device grant,
RFC 7009 revocation); this class answers its questions from our tables and the server config.
One public client (`hoop-cli`, no secret). Secrets are looked up by SHA-256 only.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

from oauthlib.oauth2.rfc8628.grant_types import DeviceCodeGrant
from oauthlib.oauth2.rfc8628.request_validator import RequestValidator
from sqlalchemy import update

from hoopcli.server.store.idp import IdpAuthCode, IdpDeviceGrant, IdpRefreshToken

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
GRANT_TYPES = ("authorization_code", "refresh_token", DEVICE_GRANT)
SCOPES = ("openid", "profile", "email", "groups", "offline_access")
DEFAULT_SCOPES = ["openid", "profile", "email", "groups", "offline_access"]
REFRESH_TTL = 30 * 24 * 3600
CODE_TTL = 120


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


class Client:
    def __init__(self, client_id: str) -> None:
        self.client_id = client_id


class Validator(RequestValidator):
    def __init__(self, provider: Any) -> None:
        super().__init__()
        self.provider = provider

    # -- clients -------------------------------------------------------------------------------
    @property
    def db(self) -> Any:
        return self.provider.db

    def _client_ok(self, client_id: str | None) -> bool:
        return bool(client_id) and client_id == self.provider.client_id

    def client_authentication_required(self, request: Any, *a: Any, **kw: Any) -> bool:
        return False  # public client (RFC 8252 native app, RFC 8628 device)

    def authenticate_client_id(self, client_id: str, request: Any, *a: Any, **kw: Any) -> bool:
        if not self._client_ok(client_id):
            return False
        request.client = Client(client_id)
        return True

    def validate_client_id(self, client_id: str, request: Any, *a: Any, **kw: Any) -> bool:
        if not self._client_ok(client_id):
            return False
        request.client = Client(client_id)
        return True

    def validate_grant_type(self, client_id: str, grant_type: str, client: Any, request: Any,
                            *a: Any, **kw: Any) -> bool:
        return self._client_ok(client_id) and grant_type in GRANT_TYPES

    def validate_scopes(self, client_id: str, scopes: list[str], client: Any, request: Any,
                        *a: Any, **kw: Any) -> bool:
        return all(s in SCOPES for s in scopes)

    def get_default_scopes(self, client_id: str, request: Any, *a: Any, **kw: Any) -> list[str]:
        return list(DEFAULT_SCOPES)

    # -- authorization code + PKCE (web console) -----------------------------------------------
    def validate_redirect_uri(self, client_id: str, redirect_uri: str, request: Any,
                              *a: Any, **kw: Any) -> bool:
        return redirect_uri in self.provider.redirect_uris

    def get_default_redirect_uri(self, client_id: str, request: Any, *a: Any, **kw: Any) -> str:
        return self.provider.redirect_uris[0]

    def validate_response_type(self, client_id: str, response_type: str, client: Any,
                               request: Any, *a: Any, **kw: Any) -> bool:
        return response_type == "code"

    def is_pkce_required(self, client_id: str, request: Any) -> bool:
        return True

    def save_authorization_code(self, client_id: str, code: dict[str, Any], request: Any,
                                *a: Any, **kw: Any) -> None:
        now = time.time()
        with self.db.session() as s:
            s.add(IdpAuthCode(
                code_hash=digest(code["code"]), client_id=client_id,
                redirect_uri=request.redirect_uri or self.provider.redirect_uris[0],
                code_challenge=request.code_challenge,
                code_challenge_method=request.code_challenge_method,
                scope=" ".join(request.scopes or []), nonce=request.nonce,
                subject=request.user, auth_time=getattr(request, "hoop_auth_time", None),
                created_at=now, expires_at=now + CODE_TTL))

    def _code(self, code: str) -> IdpAuthCode | None:
        with self.db.session() as s:
            row = s.get(IdpAuthCode, digest(code or ""))
            if row is not None:
                s.expunge(row)
            return row

    def validate_code(self, client_id: str, code: str, client: Any, request: Any,
                      *a: Any, **kw: Any) -> bool:
        now = time.time()
        with self.db.session() as s:
            # consume atomically: a code works once, even under concurrent redemption
            done = s.execute(
                update(IdpAuthCode)
                .where(IdpAuthCode.code_hash == digest(code or ""), IdpAuthCode.used_at.is_(None),
                       IdpAuthCode.client_id == client_id, IdpAuthCode.expires_at > now)
                .values(used_at=now)).rowcount
            if done != 1:
                return False
            row = s.get(IdpAuthCode, digest(code))
            assert row is not None
            request.user = row.subject
            request.scopes = row.scope.split()
            request.hoop_nonce = row.nonce
            request.hoop_auth_time = row.auth_time
        return self.provider.user_exists(request.user)

    def get_code_challenge(self, code: str, request: Any) -> str | None:
        row = self._code(code)
        return row.code_challenge if row else None

    def get_code_challenge_method(self, code: str, request: Any) -> str | None:
        row = self._code(code)
        return row.code_challenge_method if row else None

    def confirm_redirect_uri(self, client_id: str, code: str, redirect_uri: str, client: Any,
                             request: Any, *a: Any, **kw: Any) -> bool:
        row = self._code(code)
        return row is not None and row.redirect_uri == redirect_uri

    def invalidate_authorization_code(self, client_id: str, code: str, request: Any,
                                      *a: Any, **kw: Any) -> None:
        pass  # consumed in validate_code

    # -- device grant ---------------------------------------------------------------------------
    def validate_device_code(self, client_id: str, code: str, request: Any,
                             *a: Any, **kw: Any) -> str | None:
        now = time.time()
        with self.db.session() as s:
            row = s.get(IdpDeviceGrant, digest(code or ""))
            if row is None or row.client_id != client_id or row.status == "consumed":
                return None
            if row.expires_at <= now:
                return DeviceCodeGrant.DEVICE_CODE_EXPIRED
            if row.status == "denied":
                return DeviceCodeGrant.DEVICE_CODE_DENIED
            if row.status == "pending":
                last, row.last_poll_at = row.last_poll_at, now
                if last is not None and now - last < row.poll_interval:
                    row.poll_interval += 5  # RFC 8628 3.5: +5 s for this and later requests
                    return DeviceCodeGrant.DEVICE_CODE_SLOW_DOWN
                return DeviceCodeGrant.DEVICE_CODE_PENDING
            consumed = s.execute(
                update(IdpDeviceGrant)
                .where(IdpDeviceGrant.device_code_hash == row.device_code_hash,
                       IdpDeviceGrant.status == "authorized")
                .values(status="consumed")).rowcount
            if consumed != 1:
                return None
            request.user = row.subject
            request.scopes = row.scope.split()
            request.hoop_auth_time = row.auth_time
        if not self.provider.user_exists(request.user):
            return None
        return DeviceCodeGrant.DEVICE_CODE_AUTHORIZED

    # -- refresh tokens ------------------------------------------------------------------------
    def validate_refresh_token(self, refresh_token: str, client: Any, request: Any,
                               *a: Any, **kw: Any) -> bool:
        now = time.time()
        with self.db.session() as s:
            used = s.execute(
                update(IdpRefreshToken)
                .where(IdpRefreshToken.token_hash == digest(refresh_token or ""),
                       IdpRefreshToken.client_id == client.client_id,
                       IdpRefreshToken.used_at.is_(None), IdpRefreshToken.revoked_at.is_(None),
                       IdpRefreshToken.expires_at > now)
                .values(used_at=now)).rowcount
            row = s.get(IdpRefreshToken, digest(refresh_token or ""))
            if used != 1:
                if row is not None and row.used_at is not None and row.revoked_at is None:
                    # a rotated-away token came back: it was copied. End that whole login.
                    s.execute(update(IdpRefreshToken)
                              .where(IdpRefreshToken.family == row.family,
                                     IdpRefreshToken.revoked_at.is_(None))
                              .values(revoked_at=now))
                return False
            assert row is not None
            request.user = row.subject
            request.hoop_family = row.family
            request.hoop_auth_time = row.auth_time     # a refresh is not a sign-in: keep the login's time
            request.hoop_original_scopes = row.scope.split()
        return self.provider.user_exists(request.user)

    def get_original_scopes(self, refresh_token: str, request: Any, *a: Any, **kw: Any) -> list[str]:
        return list(getattr(request, "hoop_original_scopes", []))

    def rotate_refresh_token(self, request: Any) -> bool:
        return True

    def revoke_token(self, token: str, token_type_hint: str | None, request: Any,
                     *a: Any, **kw: Any) -> None:
        with self.db.session() as s:
            s.execute(update(IdpRefreshToken)
                      .where(IdpRefreshToken.token_hash == digest(token or ""),
                             IdpRefreshToken.client_id == request.client_id,
                             IdpRefreshToken.revoked_at.is_(None))
                      .values(revoked_at=time.time()))

    # -- issuing -------------------------------------------------------------------------------
    def save_bearer_token(self, token: dict[str, Any], request: Any, *a: Any, **kw: Any) -> None:
        refresh = token.get("refresh_token")
        if not refresh:
            return
        now = time.time()
        with self.db.session() as s:
            s.add(IdpRefreshToken(
                token_hash=digest(refresh), client_id=request.client_id, subject=request.user,
                family=getattr(request, "hoop_family", None) or secrets.token_hex(16),
                scope=" ".join(request.scopes or []), auth_time=getattr(request, "hoop_auth_time", None),
                created_at=now, expires_at=now + REFRESH_TTL))
