"""HTTP JSON client for the hoop server. Stdlib only (urllib): the shim imports it on its hot path,
and on a warm call (token, policy and credentials cached) makes no request at all, so urllib is
imported only when a request is actually made.

Errors are translated here, at the boundary: connection failures and 5xx become Unavailable,
401 NotLoggedIn, 403 Forbidden, 404 NotFound, other 4xx ServerError (message = server's detail).
"""

from __future__ import annotations

import json as _json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hoopcli import __version__
from hoopcli.errors import HoopError, NotLoggedIn, Unavailable
from hoopcli.exitcodes import ExitStatus

USER_AGENT = f"hoopcli/{__version__}"


class ServerError(HoopError):
    """The server refused the request (4xx)."""

    exit_status = ExitStatus.ERROR

    def __init__(self, message: str, *, status: int = 400, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class Forbidden(ServerError):
    pass


class NotFound(ServerError):
    pass


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return _json.loads(self.body)
        except ValueError as exc:
            raise Unavailable(f"server sent an unreadable response (HTTP {self.status})") from exc

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")


_OPENER: Any = None


def _opener() -> Any:
    """A urllib opener that never follows redirects: a bearer token must not travel elsewhere."""
    global _OPENER
    if _OPENER is None:
        import urllib.request

        class _NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        _OPENER = urllib.request.build_opener(_NoRedirect)
    return _OPENER


def _detail(body: bytes) -> Any:
    try:
        data = _json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict):
        return data.get("detail", data)
    return data


def _detail_text(detail: Any) -> str:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, dict) and isinstance(detail.get("message"), str):
        return detail["message"]
    if detail is None:
        return ""
    return _json.dumps(detail)[:500]


class Client:
    def __init__(self, base_url: str, token: str | Callable[[], str] | None = None,
                 timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout = timeout

    def _bearer(self) -> str | None:
        if self._token is None:
            return None
        return self._token() if callable(self._token) else self._token

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        import urllib.parse

        url = self.base_url + (path if path.startswith("/") else "/" + path)
        if params:
            query = {k: v for k, v in params.items() if v is not None}
            if query:
                url += "?" + urllib.parse.urlencode(query, doseq=True)
        return url

    def request(self, method: str, path: str, json: Any = None,
                params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
                timeout: float | None = None, expect: Iterable[int] = ()) -> Response:
        import urllib.error
        import urllib.request

        data = None
        hdrs = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if json is not None:
            data = _json.dumps(json, separators=(",", ":")).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        token = self._bearer()
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        if headers:
            hdrs.update(headers)
        req = urllib.request.Request(self.url(path, params), data=data, headers=hdrs, method=method)
        try:
            with _opener().open(req, timeout=timeout or self.timeout) as resp:
                response = Response(resp.status, dict(resp.headers.items()), resp.read())
        except urllib.error.HTTPError as exc:
            response = Response(exc.code, dict(exc.headers.items()) if exc.headers else {}, exc.read() or b"")
        except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unavailable(f"cannot reach the hoop server at {self.base_url} ({reason})") from exc
        return self._check(response, set(expect))

    def _check(self, response: Response, expect: set[int]) -> Response:
        status = response.status
        if status < 300 or status in expect or (status == 304 and 304 in expect):
            return response
        detail = _detail(response.body)
        text = _detail_text(detail)
        if status == 401:
            raise NotLoggedIn("not logged in, or the login expired")
        if status == 403:
            raise Forbidden(text or "forbidden", status=status, detail=detail)
        if status == 404:
            raise NotFound(text or "not found", status=status, detail=detail)
        if status >= 500:
            raise Unavailable(f"the hoop server failed (HTTP {status}){': ' + text if text else ''}")
        raise ServerError(text or f"the server refused the request (HTTP {status})", status=status, detail=detail)

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Response:
        return self.request("POST", path, json=json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> Response:
        return self.request("PUT", path, json=json, **kw)

    def delete(self, path: str, **kw: Any) -> Response:
        return self.request("DELETE", path, **kw)


def for_user(env: Mapping[str, str] | None = None, *, server: str | None = None, layout: Any = None,
             timeout: float = 10.0) -> Client:
    """A Client for the logged-in user: server from flag > HOOP_SERVER > config, and a bearer
    token fetched (and silently refreshed) on each request through hoopcli.identity.tokens.id_token."""
    import os

    from hoopcli import config
    from hoopcli.paths import Layout

    env = os.environ if env is None else env
    layout = layout or Layout.from_env(env)
    cfg = config.load(env, layout, server=server)

    def token() -> str:
        from hoopcli.identity.tokens import id_token

        return id_token(layout, cfg, env)

    return Client(cfg.server, token=token, timeout=timeout)
