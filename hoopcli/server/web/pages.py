"""Console pages: sessions, a session's timeline and playback, approvals, policy.

Every page needs a signed-in console session; a visit without one goes to sign-in and comes
back. Every POST carries the session's CSRF token (and must come from this origin). Jinja2
autoescapes everything; recorded output, arguments and justifications are data, never markup.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from hoopcli.errors import UsageError
from hoopcli.server.approvals import passkeys, workflow
from hoopcli.server.approvals import service as svc
from hoopcli.server.approvals.notify import get_notifier
from hoopcli.server.detections.service import session_findings
from hoopcli.server.errors import BadRequest
from hoopcli.server.identity.security import public
from hoopcli.server.ledger import query as ledger_query
from hoopcli.server.ledger import service as ledger
from hoopcli.server.ledger.common import signing_key
from hoopcli.server.policy import service as policy
from hoopcli.server.web import timeline
from hoopcli.server.web.console import (
    HERE,
    check_csrf,
    console_key,
    csrf_refused,
    message_page,
    presence_of,
    principal_of,
    render,
    signed_in,
)
from hoopcli.server.web.cookies import ConsoleUser

router = APIRouter(tags=["console"])
PAGE = Depends(public("console page: authenticated by the signed console cookie, not a bearer token"))
SEES_ALL = {"auditor", "admin"}
FILTERS = ("user", "agent", "connection", "since", "until", "action", "decision", "status", "exit_code")


STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}


@router.get("/static/{name}", dependencies=[PAGE])
def static(name: str) -> Response:
    kind = STATIC.get(name)
    if kind is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response((HERE / "static" / name).read_bytes(), media_type=kind,
                    headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"})


# -- sessions -----------------------------------------------------------------------------------

def _owner(user: ConsoleUser) -> str | None:
    return None if user.roles & SEES_ALL else user.subject


def _filters(params: dict[str, str]) -> ledger_query.Filters:
    exit_code = params.get("exit_code") or None
    return ledger_query.Filters(
        user=params.get("user") or None, agent=params.get("agent") or None,
        connection=params.get("connection") or None,
        since=ledger_query.parse_when(params.get("since") or None, "since"),
        until=ledger_query.parse_when(params.get("until") or None, "until"),
        action=params.get("action") or None, decision=params.get("decision") or None,
        status=params.get("status") or None,
        exit_code=int(exit_code) if exit_code and exit_code.lstrip("-").isdigit() else None)


@router.get("/", dependencies=[PAGE])
def home() -> Response:
    return RedirectResponse("/sessions", status_code=303)


@router.get("/sessions", response_class=HTMLResponse, dependencies=[PAGE])
def sessions_page(request: Request) -> HTMLResponse:
    user = signed_in(request)
    params = {k: request.query_params.get(k, "")[:255] for k in FILTERS}
    cursor = request.query_params.get("cursor") or None
    error = None
    items: list[dict[str, Any]] = []
    nxt = None
    try:
        f = _filters(params)
        items, nxt = ledger.list_sessions(request.app.state.db, user.org, _owner(user), f, 50, cursor)
    except (UsageError, BadRequest, ValueError) as exc:
        error = getattr(exc, "message", None) or "invalid filter"
    next_url = None
    if nxt:
        next_url = "/sessions?" + urlencode({**{k: v for k, v in params.items() if v}, "cursor": nxt})
    return render(request, "sessions.html", user=user, items=items, params=params, error=error,
                  next_url=next_url, sees_all=bool(user.roles & SEES_ALL), title="Sessions")


@router.get("/sessions/{session_id}", response_class=HTMLResponse, dependencies=[PAGE])
def session_page(request: Request, session_id: str) -> HTMLResponse:
    user = signed_in(request)
    if len(session_id) > 128:
        return message_page(request, "No such session", "There is no session with that id.", 404)
    found = ledger.console_session(request.app.state.db, user.org, _owner(user), session_id,
                                   lambda: signing_key(request))
    if found is None:
        return message_page(request, "No such session", "There is no session with that id you may see.", 404)
    session, commands, verification = found
    playback = [_gateway_playback(c["call"]) if c.get("kind") == "api.call" else {
        "argv": (c.get("start") or {}).get("argv") or [],
        "started": (c.get("result") or {}).get("started_at") or (c.get("start") or {}).get("time"),
        "ended": (c.get("result") or {}).get("ended_at"),
        "stdout": ((c.get("result") or {}).get("stdout") or {}).get("text") or "",
        "stderr": ((c.get("result") or {}).get("stderr") or {}).get("text") or "",
        "exit_code": (c.get("result") or {}).get("exit_code"),
    } for c in commands]
    findings = session_findings(request.app.state.db, user.org, session_id)
    events = timeline.observed(request.app.state.db, user.org, session_id)
    return render(request, "session.html", user=user, session=session, commands=commands,
                  timeline=timeline.interleave(commands, events), playback=playback,
                  verification=verification, findings=findings, title=f"Session {session_id[:12]}")


def _gateway_playback(call: dict[str, Any]) -> dict[str, Any]:
    """A gateway call in the playback: one `# gateway: s3.DeleteObject allow -> 204` line."""
    effect = (call.get("decision") or {}).get("effect")
    err = f" {call['error_code']}" if call.get("error_code") else ""
    return {"gateway": f"{call.get('service')}.{call.get('operation')} {effect} -> "
                       f"{call.get('http_status')}{err}",
            "argv": [], "started": call.get("time"), "ended": call.get("time"), "stdout": "",
            "stderr": "", "exit_code": None}


# -- approvals ----------------------------------------------------------------------------------

@router.get("/approvals", response_class=HTMLResponse, dependencies=[PAGE])
def approvals_page(request: Request) -> HTMLResponse:
    user = signed_in(request)
    items = workflow.console_list(request.app.state.db, request.app.state.settings, user.subject, user.roles,
                                  user.org)
    pending = [a for a in items if a["status"] == "pending"]
    history = [a for a in items if a["status"] != "pending"]
    return render(request, "approvals.html", user=user, pending=pending, history=history,
                  can_decide=user.has("approver"), title="Approvals")


@router.get("/approvals/feed", dependencies=[PAGE])
def approvals_feed(request: Request) -> JSONResponse:
    """What the approvals pages poll for live updates: id and status of what this user sees."""
    user = signed_in(request)
    items = workflow.console_list(request.app.state.db, request.app.state.settings, user.subject, user.roles,
                                  user.org)
    return JSONResponse([{"id": a["id"], "status": a["status"]} for a in items],
                        headers={"Cache-Control": "no-store"})


@router.get("/approvals/{approval_id}", response_class=HTMLResponse, dependencies=[PAGE])
def approval_page(request: Request, approval_id: str) -> HTMLResponse:
    user = signed_in(request)
    found = workflow.console_view(request.app.state.db, request.app.state.settings, principal_of(user),
                                  approval_id[:64], presence_of(user))
    if found is None:
        return message_page(request, "No such approval", "There is no approval with that id you may see.", 404)
    approval, events, why_not, step_up = found
    here = f"/approvals/{quote(approval['id'])}"
    has_passkey = bool(step_up) and bool(passkeys.listed(request.app.state.db, user.org, user.subject))
    return render(request, "approval.html", user=user, a=approval, events=events, why_not=why_not,
                  step_up=step_up, step_up_url="/auth/login?fresh=1&next=" + quote(here, safe=""),
                  has_passkey=has_passkey, title=f"Approval {approval['id']}")


@router.post("/approvals/{approval_id}/decision", dependencies=[PAGE])
async def approval_decide(request: Request, approval_id: str) -> Response:
    user = signed_in(request)
    form = await check_csrf(request, user)
    if form is None:
        return csrf_refused(request)
    decision = form.get("decision")
    if decision not in ("approve", "deny"):
        return message_page(request, "Bad request", "Choose Approve or Deny.", 400)
    reason = (form.get("reason") or "").strip()[:1000] or None
    app = request.app
    try:
        row = await run_in_threadpool(
            lambda: workflow.console_decide(app.state.db, app.state.settings, get_notifier(app), principal_of(user),
                                            approval_id[:64], approve=decision == "approve", reason=reason,
                                            call_hash=form.get("call_hash") or None,
                                            presence=presence_of(user)))
    except svc.ApprovalError as exc:
        return message_page(request, "Decision refused", exc.message, exc.status_code,
                            link=(f"/approvals/{quote(approval_id[:64])}", "Back to the request"))
    return RedirectResponse(f"/approvals/{quote(row.id)}", status_code=303)


# -- passkeys: the other proof of presence (hoopcli/server/approvals/passkeys.py) -----------------

PASSKEY_COOKIE = "hoop_webauthn"
PASSKEY_TTL = 300


def _json_refused(status: int, message: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status_code=status, headers={"Cache-Control": "no-store"})


def _json_csrf_ok(request: Request, user: ConsoleUser) -> bool:
    """A script's POST: same origin (the header is required) and the session's CSRF token."""
    import hmac

    origin = request.headers.get("origin")
    public_url = str(request.app.state.settings.public_url).rstrip("/")
    token = request.headers.get("x-csrf-token") or ""
    return origin is not None and origin.rstrip("/") == public_url and bool(token) and \
        hmac.compare_digest(token.encode(), str(user.csrf).encode())


def _challenge_cookie(request: Request, response: Response, kind: str, challenge: bytes, subject: str) -> None:
    from hoopcli.server.web.auth import secure_cookies
    from hoopcli.server.web.cookies import sign

    value = sign(console_key(request), "webauthn", {"kind": kind, "challenge": challenge.hex(), "sub": subject,
                                                     "exp": time.time() + PASSKEY_TTL})
    response.set_cookie(PASSKEY_COOKIE, value, max_age=PASSKEY_TTL, httponly=True, samesite="strict",
                        secure=secure_cookies(request), path="/")


def _challenge_of(request: Request, kind: str, subject: str) -> bytes | None:
    from hoopcli.server.web.cookies import unsign

    value = unsign(console_key(request), "webauthn", request.cookies.get(PASSKEY_COOKIE))
    if not value or value.get("kind") != kind or value.get("sub") != subject:
        return None
    try:
        return bytes.fromhex(str(value.get("challenge")))
    except ValueError:
        return None


async def _json_body(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


@router.get("/passkeys", response_class=HTMLResponse, dependencies=[PAGE])
def passkeys_page(request: Request) -> HTMLResponse:
    user = signed_in(request)
    settings = request.app.state.settings
    mine = passkeys.listed(request.app.state.db, user.org, user.subject)
    fresh = user.auth_time is not None and time.time() - user.auth_time <= svc.STEP_UP_WINDOW
    return render(request, "passkeys.html", user=user, passkeys=mine, fresh=fresh,
                  removed=request.query_params.get("removed") == "1",
                  available=passkeys.relying_party(str(settings.public_url)) is not None,
                  step_up_url="/auth/login?fresh=1&next=" + quote("/passkeys", safe=""), title="Passkeys")


@router.post("/passkeys/{credential_id}/remove", dependencies=[PAGE])
async def passkey_remove(request: Request, credential_id: str) -> Response:
    """Remove one of the signed-in user's own passkeys (a CSRF-checked form on the Passkeys page)."""
    user = signed_in(request)
    if await check_csrf(request, user) is None:
        return csrf_refused(request)
    try:
        await run_in_threadpool(passkeys.remove, request.app.state.db, user.org, user.subject, credential_id)
    except svc.ApprovalError as exc:
        return message_page(request, "Passkey not removed", exc.message, exc.status_code,
                            link=("/passkeys", "Back to your passkeys"))
    return RedirectResponse("/passkeys?removed=1", status_code=303)


@router.post("/passkeys/options", dependencies=[PAGE])
def passkey_registration_options(request: Request) -> Response:
    user = signed_in(request)
    if not _json_csrf_ok(request, user):
        return _json_refused(403, "CSRF check failed; reload the page")
    try:
        options, challenge = passkeys.registration_options(request.app.state.db, request.app.state.settings,
                                                           principal_of(user), user.auth_time)
    except svc.ApprovalError as exc:
        return _json_refused(exc.status_code, exc.message)
    response = Response(options, media_type="application/json", headers={"Cache-Control": "no-store"})
    _challenge_cookie(request, response, "register", challenge, user.subject)
    return response


@router.post("/passkeys", dependencies=[PAGE])
async def passkey_register(request: Request) -> Response:
    user = signed_in(request)
    if not _json_csrf_ok(request, user):
        return _json_refused(403, "CSRF check failed; reload the page")
    body = await _json_body(request)
    challenge = _challenge_of(request, "register", user.subject)
    if body is None or challenge is None:
        return _json_refused(400, "this passkey registration expired or did not start here; try again")
    app = request.app
    try:
        await run_in_threadpool(passkeys.register, app.state.db,
                                app.state.settings, principal_of(user), json.dumps(body), challenge)
    except svc.ApprovalError as exc:
        return _json_refused(exc.status_code, exc.message)
    response = JSONResponse({"ok": True}, headers={"Cache-Control": "no-store"})
    response.delete_cookie(PASSKEY_COOKIE, path="/")
    return response


@router.post("/approvals/{approval_id}/passkey/options", dependencies=[PAGE])
def passkey_approval_options(request: Request, approval_id: str) -> Response:
    user = signed_in(request)
    if not _json_csrf_ok(request, user):
        return _json_refused(403, "CSRF check failed; reload the page")
    try:
        options, challenge = passkeys.authentication_options(request.app.state.db, request.app.state.settings,
                                                             principal_of(user))
    except svc.ApprovalError as exc:
        return _json_refused(exc.status_code, exc.message)
    response = Response(options, media_type="application/json", headers={"Cache-Control": "no-store"})
    _challenge_cookie(request, response, "approve:" + approval_id[:64], challenge, user.subject)
    return response


@router.post("/approvals/{approval_id}/passkey", dependencies=[PAGE])
async def passkey_approve(request: Request, approval_id: str) -> Response:
    """Approve one's own request with a passkey: verify the assertion, then decide with it as presence."""
    user = signed_in(request)
    if not _json_csrf_ok(request, user):
        return _json_refused(403, "CSRF check failed; reload the page")
    body = await _json_body(request)
    challenge = _challenge_of(request, "approve:" + approval_id[:64], user.subject)
    credential = body.get("credential") if body else None
    if not isinstance(credential, dict) or challenge is None:
        return _json_refused(400, "this passkey check expired or did not start here; try again")
    reason = str((body or {}).get("reason") or "").strip()[:1000] or None
    call_hash = (body or {}).get("call_hash")
    app = request.app

    def decide() -> svc.Approval:
        presence = passkeys.verify(app.state.db, app.state.settings, principal_of(user), credential, challenge)
        return workflow.console_decide(app.state.db, app.state.settings, get_notifier(app), principal_of(user),
                                       approval_id[:64], approve=True, reason=reason,
                                       call_hash=call_hash if isinstance(call_hash, str) else None,
                                       presence=presence)

    try:
        row = await run_in_threadpool(decide)
    except svc.ApprovalError as exc:
        return _json_refused(exc.status_code, exc.message)
    response = JSONResponse({"ok": True, "url": f"/approvals/{quote(row.id)}"}, headers={"Cache-Control": "no-store"})
    response.delete_cookie(PASSKEY_COOKIE, path="/")
    return response


# -- policy -------------------------------------------------------------------------------------

@router.get("/policy", response_class=HTMLResponse, dependencies=[PAGE])
def policy_page(request: Request, version: int | None = None) -> HTMLResponse:
    """The policy in force; for admins and auditors its versions, who pushed each, and diffs."""
    user = signed_in(request)
    may_history = bool(user.roles & {"admin", "auditor"})
    shown, current_version, versions = policy.console_view(request.app.state.db, request.app.state.settings,
                                                            user.org, history=may_history, version=version)
    return render(request, "policy.html", user=user, shown=shown, current_version=current_version,
                  versions=versions, may_history=may_history, title="Policy")


@router.get("/console/signed-out", response_class=HTMLResponse, dependencies=[PAGE])
def signed_out(request: Request) -> HTMLResponse:
    return message_page(request, "Signed out", "You are signed out.", 200, link=("/auth/login", "Sign in"))

