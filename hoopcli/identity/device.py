"""The OAuth side of the client: discovery, RFC 8628 device flow, refresh, revocation.

Used by `hoop login` / `hoop logout` and, lazily, by `hoopcli.identity.tokens.refresh`. Speaks to any
standards-compliant OIDC provider the hoop server advertises (GET /api/v1/config -> issuer ->
/.well-known/openid-configuration). Plain http is accepted only for loopback addresses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from oauthlib.oauth2 import DeviceClient, WebApplicationClient

from hoopcli import __version__
from hoopcli.errors import HoopError, Unavailable, UsageError
from hoopcli.exitcodes import ExitStatus
from hoopcli.urls import is_loopback_host

TIMEOUT = (5.0, 15.0)
DEFAULT_INTERVAL = 5
SLOW_DOWN_STEP = 5
MAX_INTERVAL = 60
DEFAULT_SCOPES = ("openid", "profile", "email", "offline_access")
UNREACHABLE_HINT = "check the URL and that it is running, then retry"


class LoginFailed(HoopError):
    """The device flow ended without tokens (expired, denied, refused)."""

    exit_status = ExitStatus.NOT_LOGGED_IN


class ProviderRefused(Exception):
    """The provider refused a refresh (the refresh token is no longer valid)."""


def check_url(url: Any, what: str) -> str:
    """https anywhere; plain http only for loopback (local development)."""
    if not isinstance(url, str) or not url:
        raise LoginFailed(f"the {what} URL is missing")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return url
    raise UsageError(f"refusing the {what} URL {url!r}: only https, or plain http to a loopback "
                     "address, is allowed")


def _session() -> requests.Session:
    http = requests.Session()
    http.headers["User-Agent"] = f"hoop/{__version__}"
    http.trust_env = True
    return http


def _get_json(http: requests.Session, url: str, what: str) -> dict[str, Any]:
    try:
        resp = http.get(url, timeout=TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        raise Unavailable(f"cannot reach the {what} at {url}: {type(exc).__name__}",
                          hint=UNREACHABLE_HINT) from exc
    if resp.status_code != 200:
        raise LoginFailed(f"the {what} at {url} answered HTTP {resp.status_code}")
    try:
        data = resp.json()
    except ValueError as exc:
        raise LoginFailed(f"the {what} at {url} did not return JSON") from exc
    if not isinstance(data, dict):
        raise LoginFailed(f"the {what} at {url} returned unexpected JSON")
    return data


def _post_form(http: requests.Session, url: str, body: str, what: str) -> tuple[int, dict[str, Any]]:
    try:
        resp = http.post(url, data=body, timeout=TIMEOUT, allow_redirects=False,
                         headers={"Content-Type": "application/x-www-form-urlencoded",
                                  "Accept": "application/json"})
    except requests.RequestException as exc:
        raise Unavailable(f"cannot reach the {what} at {url}: {type(exc).__name__}",
                          hint=UNREACHABLE_HINT) from exc
    try:
        data = resp.json()
    except ValueError:
        data = {}
    return resp.status_code, data if isinstance(data, dict) else {}


@dataclass
class ProviderInfo:
    server: str
    issuer: str
    client_id: str
    scopes: tuple[str, ...]
    device_authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str | None
    groups_claim: str | None = None     # the server's oidc.groups_claim (its /config says)

    def meta(self) -> dict[str, Any]:
        return {"server": self.server, "issuer": self.issuer, "client_id": self.client_id,
                "token_endpoint": self.token_endpoint,
                "revocation_endpoint": self.revocation_endpoint,
                "groups_claim": self.groups_claim, "scopes": list(self.scopes)}


def discover(server: str, http: requests.Session | None = None) -> ProviderInfo:
    server = check_url(server.rstrip("/"), "hoop server")
    http = http or _session()
    config = _get_json(http, f"{server}/api/v1/config", "hoop server")
    issuer = check_url(str(config.get("issuer") or "").rstrip("/"), "identity provider")
    client_id = config.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise LoginFailed(f"the hoop server at {server} advertises no OIDC client id")
    scopes = config.get("scopes") or DEFAULT_SCOPES
    if isinstance(scopes, str):
        scopes = scopes.split()
    groups_claim = config.get("groups_claim")
    doc = _get_json(http, f"{issuer}/.well-known/openid-configuration", "identity provider")
    if str(doc.get("issuer") or "").rstrip("/") != issuer:
        raise LoginFailed(f"the identity provider's discovery document names issuer "
                          f"{doc.get('issuer')!r}, not {issuer!r}")
    if not doc.get("device_authorization_endpoint"):
        raise LoginFailed(f"the identity provider {issuer} does not support the device "
                          "authorization grant (RFC 8628)")
    revocation = doc.get("revocation_endpoint")
    return ProviderInfo(
        server=server, issuer=issuer, client_id=client_id,
        scopes=tuple(str(s) for s in scopes),
        device_authorization_endpoint=check_url(doc["device_authorization_endpoint"],
                                                "device authorization"),
        token_endpoint=check_url(doc.get("token_endpoint"), "token endpoint"),
        revocation_endpoint=check_url(revocation, "revocation endpoint") if revocation else None,
        groups_claim=groups_claim if isinstance(groups_claim, str) and groups_claim else None)


@dataclass
class DeviceAuthorization:
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: int
    interval: int

    def __repr__(self) -> str:  # never show the device code
        return f"DeviceAuthorization(user_code={self.user_code!r}, uri={self.verification_uri!r})"


def start(info: ProviderInfo, http: requests.Session | None = None) -> DeviceAuthorization:
    http = http or _session()
    body = WebApplicationClient(info.client_id).prepare_request_body(
        scope=list(info.scopes), include_client_id=True)
    body = "&".join(p for p in body.split("&") if not p.startswith("grant_type="))
    status, data = _post_form(http, info.device_authorization_endpoint, body, "identity provider")
    if status != 200 or not data.get("device_code") or not data.get("user_code"):
        error = data.get("error_description") or data.get("error") or f"HTTP {status}"
        raise LoginFailed(f"the identity provider refused the device authorization request: {error}")
    uri = data.get("verification_uri") or data.get("verification_url")  # Google says _url
    complete = data.get("verification_uri_complete")
    interval = data.get("interval")
    return DeviceAuthorization(
        device_code=str(data["device_code"]), user_code=str(data["user_code"]),
        verification_uri=check_url(uri, "verification"),
        verification_uri_complete=check_url(complete, "verification") if complete else None,
        expires_in=int(data.get("expires_in") or 600),
        interval=max(1, int(interval)) if isinstance(interval, (int, float)) else DEFAULT_INTERVAL)


def poll(info: ProviderInfo, auth: DeviceAuthorization, http: requests.Session | None = None,
         sleep: Callable[[float], None] = time.sleep,
         clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Poll the token endpoint per RFC 8628 3.4/3.5 until tokens, or raise LoginFailed."""
    http = http or _session()
    client = DeviceClient(info.client_id)
    body = client.prepare_request_body(auth.device_code, include_client_id=True)
    interval = auth.interval
    deadline = clock() + auth.expires_in
    while True:
        sleep(interval)
        if clock() > deadline:
            raise LoginFailed("the login code expired before it was used",
                              hint="run `hoop login` again and finish sooner")
        status, data = _post_form(http, info.token_endpoint, body, "identity provider")
        if status == 200 and data.get("id_token"):
            return data
        error = data.get("error")
        if status == 200:
            raise LoginFailed("the identity provider returned no ID token",
                              hint="check that the client is allowed the `openid` scope")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval = min(interval + SLOW_DOWN_STEP, MAX_INTERVAL)
            continue
        if error == "expired_token":
            raise LoginFailed("the login code expired before it was used",
                              hint="run `hoop login` again and finish sooner")
        if error == "access_denied":
            raise LoginFailed("the login was denied in the browser", hint="run `hoop login` to try again")
        detail = data.get("error_description") or error or f"HTTP {status}"
        raise LoginFailed(f"the identity provider refused the login: {detail}")


def refresh_tokens(session: dict[str, Any], refresh_token: str) -> dict[str, Any]:
    """Exchange a refresh token; ProviderRefused when the provider says no."""
    url = check_url(session.get("token_endpoint"), "token endpoint")
    body = WebApplicationClient(str(session.get("client_id"))).prepare_refresh_body(
        refresh_token=refresh_token, include_client_id=True)
    if "client_id=" not in body:
        body += f"&client_id={session.get('client_id')}"
    status, data = _post_form(_session(), url, body, "identity provider")
    if status == 200 and data.get("id_token"):
        if not data.get("refresh_token"):
            data["refresh_token"] = refresh_token  # provider does not rotate: keep the old one
        return data
    if status >= 500:
        raise Unavailable(f"the identity provider answered HTTP {status} to a token refresh",
                          hint=UNREACHABLE_HINT)
    raise ProviderRefused(str(data.get("error") or f"HTTP {status}"))


def revoke(session: dict[str, Any], refresh_token: str) -> bool:
    """RFC 7009 revocation of the refresh token; False when it did not succeed."""
    url = session.get("revocation_endpoint")
    if not url:
        return False
    try:
        url = check_url(url, "revocation endpoint")
        body = urlencode({"token": refresh_token, "token_type_hint": "refresh_token",
                          "client_id": session.get("client_id") or ""})
        status, _ = _post_form(_session(), url, body, "identity provider")
    except (HoopError, requests.RequestException):
        return False
    return status == 200
