"""Console sign-in: OIDC authorization code flow with PKCE (S256) against the configured
identity provider (or the built-in development one), a signed session cookie, CSRF tokens.

    GET  /auth/login?next=/path   -> 302 to the provider's authorization endpoint
    GET  /auth/login?next=/path&fresh=1
                                  the same with prompt=login&max_age=0: a fresh interactive sign-in
                                  (a step-up), whose ID token must carry an auth_time after it began
    GET  /auth/callback           <- code + state; exchanges the code, verifies the ID token
    POST /auth/logout             (CSRF) clears the session

The ID token is verified exactly like an API bearer token (signature, iss, aud, exp, algorithm
allowlist) plus the nonce sent with the request. The cookie is HttpOnly, SameSite=Lax, Secure
when the console is served over HTTPS, and lives 8 hours; roles are those at sign-in. The
session keeps the ID token's `auth_time`: a requester approving their own request needs one
later than the request (docs/approvals.md, "Self-approval").
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from hoopcli.server.identity.security import LEEWAY_SECONDS, InvalidToken, fetch_json, public
from hoopcli.server.identity.service import remember_user
from hoopcli.server.web.console import check_csrf, console_key, csrf_refused, current_user, message_page
from hoopcli.server.web.cookies import SESSION_COOKIE, SESSION_TTL, STATE_COOKIE, STATE_TTL, ConsoleUser, sign, unsign

router = APIRouter(tags=["console"])
PUBLIC = Depends(public("console sign-in: the flow that produces a session"))
HTTP_TIMEOUT = 10.0


def secure_cookies(request: Request) -> bool:
    return str(request.app.state.settings.public_url).startswith("https://")


def safe_next(value: str | None) -> str:
    """Only a path on this site: `/x`, never `//host`, `/\\host` or a scheme."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")) or len(value) > 2000:
        return "/sessions"
    if any(ord(c) < 32 for c in value):
        return "/sessions"
    return value


def _provider(request: Request) -> dict[str, Any]:
    cached = getattr(request.app.state, "console_oidc", None)
    if cached and cached[0] > time.time():
        return cached[1]
    settings = request.app.state.settings
    meta = fetch_json(settings.issuer.rstrip("/") + "/.well-known/openid-configuration", HTTP_TIMEOUT)
    if not isinstance(meta, dict) or "authorization_endpoint" not in meta or "token_endpoint" not in meta:
        raise InvalidToken("the identity provider's discovery document has no authorization endpoint")
    request.app.state.console_oidc = (time.time() + 300, meta)
    return meta


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


@router.get("/auth/login", dependencies=[PUBLIC])
async def login(request: Request, next: str | None = None, fresh: bool = False) -> Response:
    settings = request.app.state.settings
    meta = await run_in_threadpool(_provider, request)
    verifier, state, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    params = {"response_type": "code", "client_id": settings.client_id,
              "redirect_uri": settings.public_url.rstrip("/") + "/auth/callback",
              "scope": " ".join(settings.scopes), "state": state, "nonce": nonce,
              "code_challenge": _challenge(verifier), "code_challenge_method": "S256"}
    if fresh:      # OIDC Core 3.1.2.1: authenticate again even with a session, and say when
        params.update(prompt="login", max_age="0")
    resp = RedirectResponse(meta["authorization_endpoint"] + "?" + urlencode(params), status_code=302)
    cookie = sign(console_key(request), "signin", {"state": state, "nonce": nonce, "verifier": verifier,
                                                    "next": safe_next(next), "fresh": bool(fresh),
                                                    "started": time.time(), "exp": time.time() + STATE_TTL})
    resp.set_cookie(STATE_COOKIE, cookie, max_age=STATE_TTL, httponly=True, samesite="lax",
                    secure=secure_cookies(request), path="/auth")
    return resp


def _exchange(request: Request, code: str, verifier: str) -> dict[str, Any]:
    import requests

    settings = request.app.state.settings
    meta = _provider(request)
    try:
        resp = requests.post(meta["token_endpoint"], timeout=HTTP_TIMEOUT, allow_redirects=False, data={
            "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "client_id": settings.client_id, "redirect_uri": settings.public_url.rstrip("/") + "/auth/callback"})
        data = resp.json()
    except (requests.RequestException, ValueError) as exc:
        raise InvalidToken(f"token exchange failed: {type(exc).__name__}") from None
    if resp.status_code != 200 or not isinstance(data, dict) or not isinstance(data.get("id_token"), str):
        raise InvalidToken("the identity provider refused the sign-in")
    return data


@router.get("/auth/callback", dependencies=[PUBLIC])
async def callback(request: Request, code: str | None = None, state: str | None = None,
                   error: str | None = None) -> Response:
    pending = unsign(console_key(request), "signin", request.cookies.get(STATE_COOKIE))
    if error:
        return message_page(request, "Sign-in cancelled", "The identity provider did not sign you in.", 401)
    if not pending or not code or not state or not secrets.compare_digest(str(pending.get("state")).encode(), state.encode()):
        return message_page(request, "Sign-in expired",
                            "This sign-in did not start here or took too long. Start again.", 400,
                            link=("/auth/login", "Sign in"))
    try:
        tokens = await run_in_threadpool(_exchange, request, code, str(pending["verifier"]))
        token = tokens["id_token"]
        principal = await run_in_threadpool(request.app.state.verifier.verify, token)
        import jwt

        claims = jwt.decode(token, options={"verify_signature": False})   # verified just above
    except InvalidToken:
        return message_page(request, "Sign-in failed", "The identity provider's answer could not be verified.", 401,
                            link=("/auth/login", "Try again"))
    if claims.get("nonce") != pending.get("nonce"):
        return message_page(request, "Sign-in failed", "The sign-in answer does not match this request.", 401)
    raw_auth_time = claims.get("auth_time")
    auth_time = float(raw_auth_time) if isinstance(raw_auth_time, (int, float)) and \
        not isinstance(raw_auth_time, bool) else None
    if auth_time is not None and auth_time > time.time() + LEEWAY_SECONDS:
        auth_time = None                          # from the future: not believed
    if pending.get("fresh") and (auth_time is None or auth_time < float(pending.get("started") or 0) - LEEWAY_SECONDS):
        return message_page(request, "Sign-in was not fresh",
                            "The identity provider did not sign you in again (its answer has no auth_time "
                            "from this sign-in), so it cannot count as proof that you are here.", 401,
                            link=("/auth/login?fresh=1&next=" + quote(safe_next(pending.get("next")), safe=""),
                                  "Try again"))
    await run_in_threadpool(remember_user, request.app.state.db, principal)   # Slack matches approvers by it
    user = ConsoleUser(principal.subject, principal.email, principal.name, principal.groups,
                       principal.roles, principal.org, secrets.token_urlsafe(32), time.time() + SESSION_TTL,
                       auth_time=auth_time)
    resp = RedirectResponse(safe_next(pending.get("next")), status_code=303)
    resp.set_cookie(SESSION_COOKIE, sign(console_key(request), "session", user.to_cookie()), max_age=SESSION_TTL,
                    httponly=True, samesite="lax", secure=secure_cookies(request), path="/")
    resp.delete_cookie(STATE_COOKIE, path="/auth")
    return resp


@router.post("/auth/logout", dependencies=[PUBLIC])
async def logout(request: Request) -> Response:
    user = current_user(request)
    if user is not None and await check_csrf(request, user) is None:
        return csrf_refused(request)
    resp = message_page(request, "Signed out", "You are signed out of the hoop console.", 200,
                        link=("/auth/login", "Sign in again"))
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp
