"""What every console page shares: the signed-in user (from the signed session cookie), the
CSRF check, and rendering (Jinja2 autoescapes everything; recorded output, arguments and
justifications are data, never markup) with the console's security headers."""

from __future__ import annotations

import hmac
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from hoopcli.server.approvals.service import Presence
from hoopcli.server.errors import SignInFirst, Unauthenticated
from hoopcli.server.identity.security import Principal
from hoopcli.server.web.cookies import SESSION_COOKIE, ConsoleUser, load_key, unsign

HERE = Path(__file__).resolve().parent
TEMPLATES = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                        autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _when(value: Any) -> str:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    return "" if value is None else str(value)


TEMPLATES.filters["when"] = _when


def console_key(request: Request) -> bytes:
    key: bytes | None = getattr(request.app.state, "console_key", None)
    if key is None:
        key = request.app.state.console_key = load_key(request.app.state.settings.home)
    return key


def current_user(request: Request) -> ConsoleUser | None:
    value = unsign(console_key(request), "session", request.cookies.get(SESSION_COOKIE))
    return ConsoleUser.from_cookie(value) if value else None


def principal_of(user: ConsoleUser) -> Principal:
    return Principal(subject=user.subject, email=user.email, name=user.name, groups=user.groups,
                     roles=user.roles, org=user.org)


def presence_of(user: ConsoleUser) -> Presence | None:
    """What this console session proves about the person being here: its sign-in's auth_time."""
    return Presence("sign-in", user.auth_time) if user.auth_time is not None else None


def signed_in(request: Request) -> ConsoleUser:
    """The console user, or off to sign-in (and back to this page afterwards)."""
    user = current_user(request)
    if user is not None:
        return user
    if request.method != "GET" or request.url.path.endswith("/feed"):
        raise Unauthenticated("sign in first")
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise SignInFirst("sign in first", headers={"Location": "/auth/login?next=" + quote(here, safe="")})


def render(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    user = ctx.get("user")
    html = TEMPLATES.get_template(template).render(request_path=request.url.path, **ctx,
                                                   csrf=user.csrf if user else "")
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def message_page(request: Request, title: str, text: str, status: int,
                 link: tuple[str, str] | None = None) -> HTMLResponse:
    return render(request, "message.html", status=status, title=title, text=text, link=link,
                  user=current_user(request))


async def check_csrf(request: Request, user: ConsoleUser) -> dict[str, str] | None:
    """The form, if its csrf_token equals the session's and it came from this origin; else None."""
    origin = request.headers.get("origin")
    public_url = str(request.app.state.settings.public_url).rstrip("/")
    if origin is not None and origin.rstrip("/") != public_url:
        return None
    form = await request.form()
    token = str(form.get("csrf_token") or "")
    if not token or not hmac.compare_digest(token.encode(), str(user.csrf).encode()):
        return None
    return {k: str(v) for k, v in form.items() if isinstance(v, str)}


def csrf_refused(request: Request) -> HTMLResponse:
    return message_page(request, "Request refused",
                        "This form did not come from this console session (CSRF check failed). "
                        "Reload the page and try again.", 403)
