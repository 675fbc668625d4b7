"""HTTP surface of the development identity provider, mounted under /idp.

Protocol endpoints (discovery, JWKS, device authorization, token, revocation, authorize) speak
JSON/OAuth; the two pages (device verification, console sign-in) are HTML forms protected by a
CSRF token bound to an HttpOnly cookie, with a per-address failure rate limit.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from oauthlib.oauth2.rfc6749.errors import FatalClientError, OAuth2Error
from starlette.concurrency import run_in_threadpool

from hoopcli.server.errors import NotFound
from hoopcli.server.identity.security import public
from hoopcli.server.idp.provider import Provider, normalize_user_code
from hoopcli.server.idp.users import authenticate


def dev_idp_only(request: Request) -> None:
    """The built-in IdP exists only when no external `oidc.issuer` is configured."""
    if getattr(request.app.state.settings, "oidc", None) is not None:
        raise NotFound("Not Found")


router = APIRouter(
    prefix="/idp", tags=["development identity provider"],
    dependencies=[Depends(public("the identity provider's own protocol endpoints and sign-in "
                                 "pages authenticate people, not bearers")),
                  Depends(dev_idp_only)])

MAX_BODY = 16 * 1024
CHALLENGE_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
CSRF_COOKIE = "hoop_idp_csrf"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
PAGE_HEADERS = {
    **NO_STORE,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
_templates = Environment(loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
                         autoescape=select_autoescape(["html"]))


_create_lock = threading.Lock()


def provider_for(app: Any) -> Provider:
    """The app's dev IdP (created on first use; tests tune `interval` / `expires_in` on it)."""
    state = app.state
    with _create_lock:
        provider = getattr(state, "idp", None)
        if provider is None:
            provider = Provider(state.settings, state.db)
            state.idp = provider
    return provider


def get_provider(request: Request) -> Provider:
    return provider_for(request.app)


async def _body(request: Request) -> str | None:
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        return None
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            return None
    return raw.decode("utf-8", "replace")


def _oauth_response(headers: dict[str, str] | None, body: Any, status: int) -> Response:
    out = {**NO_STORE, **{k: v for k, v in (headers or {}).items() if k.lower() != "content-type"}}
    if isinstance(body, dict):
        body = json.dumps(body)
    return Response(content=body or "", status_code=status, headers=out,
                    media_type="application/json")


def _too_large() -> Response:
    return JSONResponse({"error": "invalid_request", "error_description": "body too large"},
                        status_code=413, headers=NO_STORE)


def _uri(request: Request, provider: Provider) -> str:
    # oauthlib wants the request URI; use the public one (the server may sit behind a proxy).
    query = request.url.query
    return provider.issuer + request.url.path.removeprefix("/idp") + (f"?{query}" if query else "")


def _headers(request: Request) -> dict[str, str]:
    return {"Content-Type": request.headers.get("content-type", "")}


# -- protocol endpoints ---------------------------------------------------------------------------
@router.get("/.well-known/openid-configuration")
def discovery(request: Request) -> JSONResponse:
    return JSONResponse(get_provider(request).discovery())


@router.get("/jwks")
def jwks(request: Request) -> JSONResponse:
    from hoopcli.server.idp.keys import jwks as keys_jwks

    data = keys_jwks(request.app.state.settings)
    return JSONResponse(data, headers={"Cache-Control": "public, max-age=300"})


@router.post("/device/code")
async def device_code(request: Request) -> Response:
    provider = get_provider(request)
    key = _client_key(request)
    if provider.device_limiter.blocked(key):
        return JSONResponse({"error": "temporarily_unavailable",
                             "error_description": "too many device authorization requests"},
                            status_code=429, headers={**NO_STORE, "Retry-After": "60"})
    provider.device_limiter.fail(key)
    body = await _body(request)
    if body is None:
        return _too_large()
    try:
        data, status = await run_in_threadpool(
            provider.device_authorization, _uri(request, provider), body, _headers(request))
    except (OAuth2Error, FatalClientError) as exc:
        return _oauth_response(None, exc.json, exc.status_code)
    return _oauth_response(None, data, status)


@router.post("/token")
async def token(request: Request) -> Response:
    provider = get_provider(request)
    body = await _body(request)
    if body is None:
        return _too_large()
    try:
        headers, payload, status = await run_in_threadpool(
            provider.token_endpoint.create_token_response, _uri(request, provider), "POST", body,
            _headers(request))
    except (OAuth2Error, FatalClientError) as exc:
        return _oauth_response(None, exc.json, exc.status_code)
    return _oauth_response(headers, payload, status)


@router.post("/revoke")
async def revoke(request: Request) -> Response:
    provider = get_provider(request)
    body = await _body(request)
    if body is None:
        return _too_large()
    try:
        headers, payload, status = await run_in_threadpool(
            provider.revocation_endpoint.create_revocation_response, _uri(request, provider),
            "POST", body, _headers(request))
    except (OAuth2Error, FatalClientError) as exc:
        return _oauth_response(None, exc.json, exc.status_code)
    return _oauth_response(headers, payload or "{}", status)


# -- pages ------------------------------------------------------------------------------------------
def _csrf_pair(request: Request, provider: Provider) -> tuple[str, str]:
    """(cookie value, form token): the form token is an HMAC of the cookie under a server key."""
    cookie = request.cookies.get(CSRF_COOKIE) or ""
    if len(cookie) != 43:
        cookie = secrets.token_urlsafe(32)
    token = hmac.new(provider.csrf_key, cookie.encode(), hashlib.sha256).hexdigest()
    return cookie, token


def _csrf_ok(request: Request, provider: Provider, form_token: str) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE) or ""
    if not cookie or not form_token:
        return False
    expected = hmac.new(provider.csrf_key, cookie.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), form_token.encode())


def _page(request: Request, provider: Provider, template: str, status: int = 200,
          **ctx: Any) -> HTMLResponse:
    cookie, token = _csrf_pair(request, provider)
    html = _templates.get_template(template).render(csrf_token=token, **ctx)
    response = HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
    response.set_cookie(CSRF_COOKIE, cookie, httponly=True, samesite="strict", path="/idp",
                        secure=provider.issuer.startswith("https://"))
    return response


def _message(request: Request, provider: Provider, title: str, message: str, kind: str,
             status: int = 200) -> HTMLResponse:
    return _page(request, provider, "message.html", status=status, title=title, message=message,
                 kind=kind)


def _form(body: str) -> dict[str, str]:
    parsed = parse_qs(body, keep_blank_values=True, max_num_fields=20)
    return {k: v[0] for k, v in parsed.items() if v}


def _client_key(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _no_accounts(provider: Provider) -> str | None:
    if provider.users():
        return None
    return ("This server has no local accounts yet. Create one with `hoop server add-user NAME "
            "--groups ...`, add the printed lines to the server config and restart the server.")


@router.get("/device", response_class=HTMLResponse)
def device_page(request: Request, user_code: str = "") -> HTMLResponse:
    provider = get_provider(request)
    code = normalize_user_code(user_code)
    shown = f"{code[:4]}-{code[4:]}" if code else ""
    return _page(request, provider, "device.html", title="Sign in", action=provider.url("/device"),
                 user_code=shown, username="", error=_no_accounts(provider))


@router.post("/device", response_class=HTMLResponse)
async def device_submit(request: Request) -> HTMLResponse:
    provider = get_provider(request)
    body = await _body(request)
    if body is None:
        return _message(request, provider, "Request too large", "The form was too large.",
                        "error", 413)
    form = _form(body)
    if not _csrf_ok(request, provider, form.get("csrf_token", "")):
        return _message(request, provider, "Session expired",
                        "This form has expired or did not come from this page. Reload the page "
                        "and try again.", "error", 403)
    key = _client_key(request)
    if provider.limiter.blocked(key):
        return _message(request, provider, "Too many attempts",
                        "Too many failed attempts. Wait a few minutes and try again.", "error", 429)
    user_code, username = form.get("user_code", ""), form.get("username", "")[:64]

    def retry(error: str, status: int) -> HTMLResponse:
        provider.limiter.fail(key)
        return _page(request, provider, "device.html", status=status, title="Sign in",
                     action=provider.url("/device"), user_code=user_code[:16],
                     username=username, error=error)

    if not await run_in_threadpool(provider.pending_grant, user_code):
        return retry("That code is not valid or has expired. Check the code in your terminal.", 400)
    if form.get("action") == "deny":
        await run_in_threadpool(provider.decide, user_code, None, False)
        return _message(request, provider, "Request denied",
                        "The sign-in request was denied. You can close this window.", "ok")
    user = await run_in_threadpool(authenticate, provider.users(), username,
                                   form.get("password", ""))
    if user is None:
        return retry("Wrong user name or password.", 401)
    if not await run_in_threadpool(provider.decide, user_code, user.name, True):
        return retry("That code is not valid or has expired. Check the code in your terminal.", 400)
    return _message(request, provider, "Signed in",
                    f"You are signed in as {user.name}. Return to your terminal; you can close "
                    "this window.", "ok")


# -- authorization code + PKCE (web console sign-in) ------------------------------------------------
def _authorize_error(request: Request, provider: Provider, exc: Exception) -> HTMLResponse:
    description = getattr(exc, "description", None) or "invalid request"
    return _message(request, provider, "Sign-in request refused", str(description), "error", 400)


def _check_authorize(provider: Provider, request: Request, query: str) -> None:
    params = parse_qs(query, max_num_fields=30)
    if params.get("code_challenge_method", [""])[0] != "S256":
        raise FatalClientError(description="code_challenge_method must be S256")
    if not CHALLENGE_RE.match(params.get("code_challenge", [""])[0]):
        raise FatalClientError(description="code_challenge must be a base64url SHA-256 (RFC 7636)")
    provider.authorization_endpoint.validate_authorization_request(
        f"{provider.url('/authorize')}?{query}", "GET", None, {})


@router.get("/authorize", response_class=HTMLResponse)
def authorize_page(request: Request) -> HTMLResponse:
    provider = get_provider(request)
    query = request.url.query
    try:
        _check_authorize(provider, request, query)
    except (OAuth2Error, FatalClientError) as exc:
        return _authorize_error(request, provider, exc)
    return _page(request, provider, "authorize.html", title="Sign in",
                 action=provider.url("/authorize") + "?" + query, username="",
                 error=_no_accounts(provider))


@router.post("/authorize", response_class=HTMLResponse)
async def authorize_submit(request: Request) -> Response:
    provider = get_provider(request)
    query = request.url.query
    body = await _body(request)
    if body is None:
        return _too_large()
    form = _form(body)
    if not _csrf_ok(request, provider, form.get("csrf_token", "")):
        return _message(request, provider, "Session expired",
                        "This form has expired or did not come from this page.", "error", 403)
    try:
        _check_authorize(provider, request, query)
    except (OAuth2Error, FatalClientError) as exc:
        return _authorize_error(request, provider, exc)
    key = _client_key(request)
    if provider.limiter.blocked(key):
        return _message(request, provider, "Too many attempts",
                        "Too many failed attempts. Wait a few minutes and try again.", "error", 429)
    username = form.get("username", "")[:64]
    user = await run_in_threadpool(authenticate, provider.users(), username,
                                   form.get("password", ""))
    if user is None:
        provider.limiter.fail(key)
        return _page(request, provider, "authorize.html", status=401, title="Sign in",
                     action=provider.url("/authorize") + "?" + query, username=username,
                     error="Wrong user name or password.")
    nonce = parse_qs(query).get("nonce", [None])[0]
    try:
        headers, _body_out, _status = await run_in_threadpool(
            provider.authorization_endpoint.create_authorization_response,
            f"{provider.url('/authorize')}?{query}", "GET", None, {}, None,
            {"user": user.name, "nonce": nonce, "hoop_auth_time": time.time()})
    except (OAuth2Error, FatalClientError) as exc:
        return _authorize_error(request, provider, exc)
    return RedirectResponse(headers["Location"], status_code=302, headers=NO_STORE)


def authorize_url(provider: Provider, **params: str) -> str:
    """Helper for tests and the console: the authorize URL with `params`."""
    return provider.url("/authorize") + "?" + urlencode(params)
