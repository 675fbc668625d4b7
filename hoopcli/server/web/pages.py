"""Console pages: sessions, a session's timeline and playback, approvals, policy.

Every page needs a signed-in console session; a visit without one goes to sign-in and comes
back. Every POST carries the session's CSRF token (and must come from this origin). Jinja2
autoescapes everything; recorded output, arguments and justifications are data, never markup.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from hoopcli.errors import UsageError
from hoopcli.server.approvals import service as svc
from hoopcli.server.identity.security import public
from hoopcli.server.ledger import query as ledger_query
from hoopcli.server.ledger.common import signing_key
from hoopcli.server.web.auth import current_user, principal_of
from hoopcli.server.web.cookies import ConsoleUser

router = APIRouter(tags=["console"])
PAGE = Depends(public("console page: authenticated by the signed console cookie, not a bearer token"))
HERE = Path(__file__).resolve().parent
TEMPLATES = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                        autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


def _when(value: Any) -> str:
    from datetime import datetime, timezone

    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    return "" if value is None else str(value)


TEMPLATES.filters["when"] = _when
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
SEES_ALL = {"auditor", "admin"}
FILTERS = ("user", "agent", "connection", "since", "until", "action", "decision", "status", "exit_code")


def render(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    user = ctx.get("user")
    html = TEMPLATES.get_template(template).render(request_path=request.url.path, **ctx,
                                                   csrf=user.csrf if user else "")
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def message_page(request: Request, title: str, text: str, status: int,
                 link: tuple[str, str] | None = None) -> HTMLResponse:
    return render(request, "message.html", status=status, title=title, text=text, link=link,
                  user=current_user(request))


def signed_in(request: Request) -> ConsoleUser:
    """The console user, or off to sign-in (and back to this page afterwards)."""
    user = current_user(request)
    if user is not None:
        return user
    if request.method != "GET" or request.url.path.endswith("/feed"):
        raise HTTPException(401, "sign in first")
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise HTTPException(303, "sign in first", headers={"Location": "/auth/login?next=" + quote(here, safe="")})


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
        with request.app.state.db.session() as s:
            items, nxt = ledger_query.list_sessions(s, user.org, _owner(user), f, 50, cursor)
    except (UsageError, ValueError) as exc:
        error = getattr(exc, "message", None) or "invalid filter"
    next_url = None
    if nxt:
        next_url = "/sessions?" + urlencode({**{k: v for k, v in params.items() if v}, "cursor": nxt})
    return render(request, "sessions.html", user=user, items=items, params=params, error=error,
                  next_url=next_url, sees_all=bool(user.roles & SEES_ALL), title="Sessions")


def _verification(s: Any, org: str, session_id: str, key: Any) -> dict[str, Any]:
    """Recompute this session's leaves and prove each is in the tree of the latest signed
    checkpoint (what `hoop sessions verify` does for the whole log)."""
    from sqlalchemy import select

    from hoopcli.server.ledger import log as ledger_log
    from hoopcli.server.store.ledger import LedgerRecord
    from hoopcli.transcript import merkle
    from hoopcli.transcript.checkpoints import parse_body, verify_signature

    last = ledger_log.latest_checkpoint(s, org)
    if last is None:
        return {"state": "pending", "text": "no signed checkpoint covers this session yet"}
    rows = list(s.execute(select(LedgerRecord.leaf_index, LedgerRecord.leaf).where(
        LedgerRecord.org == org, LedgerRecord.session_id == session_id,
        LedgerRecord.leaf_index < last.size).order_by(LedgerRecord.leaf_index)))
    body = parse_body(last.body)
    if not (verify_signature(key.public_raw, body, last.signature) and body.get("root") == last.root
            and body.get("size") == last.size):
        return {"state": "failed", "text": f"checkpoint #{last.seq} does not carry this server's valid signature"}
    root = bytes.fromhex(last.root)
    bad = []
    for index, leaf in rows:
        if leaf is None:
            continue
        proof = ledger_log.with_nodes(s, org, lambda g, i=index: merkle.inclusion_proof(g, i, last.size))
        if not merkle.verify_inclusion(index, last.size, merkle.leaf_hash(leaf.encode("utf-8")), proof, root):
            bad.append(index)
    if bad:
        return {"state": "failed", "text": f"{len(bad)} record(s) do not match signed checkpoint #{last.seq}"}
    return {"state": "verified", "text": f"{len(rows)} record(s) verified up to signed checkpoint "
                                         f"#{last.seq} (log size {last.size})"}


@router.get("/sessions/{session_id}", response_class=HTMLResponse, dependencies=[PAGE])
def session_page(request: Request, session_id: str) -> HTMLResponse:
    user = signed_in(request)
    if len(session_id) > 128:
        return message_page(request, "No such session", "There is no session with that id.", 404)
    with request.app.state.db.session() as s:
        row = ledger_query.get_session(s, user.org, _owner(user), session_id)
        if row is None:
            return message_page(request, "No such session", "There is no session with that id you may see.", 404)
        session = ledger_query.session_dict(row)
        commands = ledger_query.timeline(ledger_query.session_records(s, user.org, session_id))
        try:
            verification = _verification(s, user.org, session_id, signing_key(request))
        except Exception:  # noqa: BLE001 - never break the page over the badge
            verification = {"state": "failed", "text": "verification could not be computed"}
    playback = [{
        "argv": (c.get("start") or {}).get("argv") or [],
        "started": (c.get("result") or {}).get("started_at") or (c.get("start") or {}).get("time"),
        "ended": (c.get("result") or {}).get("ended_at"),
        "stdout": ((c.get("result") or {}).get("stdout") or {}).get("text") or "",
        "stderr": ((c.get("result") or {}).get("stderr") or {}).get("text") or "",
        "exit_code": (c.get("result") or {}).get("exit_code"),
    } for c in commands]
    return render(request, "session.html", user=user, session=session, commands=commands,
                  playback=playback, verification=verification, title=f"Session {session_id[:12]}")


# -- approvals ----------------------------------------------------------------------------------

def _visible(row: Any, user: ConsoleUser) -> bool:
    return row.requester == user.subject or bool(user.roles & ({"approver"} | SEES_ALL))


@router.get("/approvals", response_class=HTMLResponse, dependencies=[PAGE])
def approvals_page(request: Request) -> HTMLResponse:
    user = signed_in(request)
    db, settings = request.app.state.db, request.app.state.settings
    rows = [r for r in svc.list_(db, user.org, limit=200) if _visible(r, user)]
    items = [svc.to_json(r, settings.public_url) for r in rows]
    pending = [a for a in items if a["status"] == "pending"]
    history = [a for a in items if a["status"] != "pending"]
    return render(request, "approvals.html", user=user, pending=pending, history=history,
                  can_decide=user.has("approver"), title="Approvals")


@router.get("/approvals/feed", dependencies=[PAGE])
def approvals_feed(request: Request) -> JSONResponse:
    """What the approvals pages poll for live updates: id and status of what this user sees."""
    user = signed_in(request)
    rows = [r for r in svc.list_(request.app.state.db, user.org, limit=200) if _visible(r, user)]
    return JSONResponse([{"id": r.id, "status": r.status} for r in rows], headers={"Cache-Control": "no-store"})


@router.get("/approvals/{approval_id}", response_class=HTMLResponse, dependencies=[PAGE])
def approval_page(request: Request, approval_id: str) -> HTMLResponse:
    user = signed_in(request)
    db, settings = request.app.state.db, request.app.state.settings
    try:
        row = svc.get(db, user.org, approval_id[:64])
    except svc.ApprovalError:
        row = None
    if row is None or not _visible(row, user):
        return message_page(request, "No such approval", "There is no approval with that id you may see.", 404)
    approval = svc.to_json(row, settings.public_url)
    why_not = svc.refusal(row, principal_of(user)) if row.status == "pending" else None
    if row.status == "pending" and row.channels and "web" not in row.channels:
        why_not = why_not or "this rule does not allow decisions from the web console"
    events = svc.events(db, user.org, row.id)
    return render(request, "approval.html", user=user, a=approval, events=events, why_not=why_not,
                  title=f"Approval {row.id}")


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
    db, app = request.app.state.db, request.app

    def decide() -> Any:
        from hoopcli.server.approvals.router import get_notifier

        return svc.decide(db, principal_of(user), approval_id[:64], approve=decision == "approve",
                          reason=reason, call_hash=form.get("call_hash") or None, channel="web",
                          notify=get_notifier(app).publish)

    try:
        row = await run_in_threadpool(decide)
    except svc.ApprovalError as exc:
        return message_page(request, "Decision refused", exc.message, exc.status_code,
                            link=(f"/approvals/{quote(approval_id[:64])}", "Back to the request"))
    if row.slack_ts:
        from hoopcli.server.approvals.router import slack_update

        await run_in_threadpool(slack_update, db, app.state.settings, row.id)
    return RedirectResponse(f"/approvals/{quote(row.id)}", status_code=303)


# -- policy -------------------------------------------------------------------------------------

@router.get("/policy", response_class=HTMLResponse, dependencies=[PAGE])
def policy_page(request: Request, version: int | None = None) -> HTMLResponse:
    """The policy in force; for admins and auditors its versions, who pushed each, and diffs."""
    user = signed_in(request)
    from hoopcli.server.policy.router import _current
    from hoopcli.server.store import policy as store

    may_history = bool(user.roles & {"admin", "auditor"})
    current = _current(request.app.state.db, request.app.state.settings, user.org)
    shown = {"version": current["version"], "source": current["source"], "origin": current["origin"],
             "created_by": current.get("created_by"), "diff": current.get("diff") or ""}
    versions: list[dict[str, Any]] = []
    if may_history:
        with request.app.state.db.session() as s:
            versions = [v.summary() for v in store.list_versions(s, user.org, 100)]
            if version is not None:
                row = store.get_version(s, version, user.org)
                if row is not None:
                    shown = {"version": row.version, "source": row.source, "origin": "pushed",
                             "created_by": row.created_by_email or row.created_by, "diff": row.diff}
    return render(request, "policy.html", user=user, shown=shown, current_version=current["version"],
                  versions=versions, may_history=may_history, title="Policy")


@router.get("/console/signed-out", response_class=HTMLResponse, dependencies=[PAGE])
def signed_out(request: Request) -> HTMLResponse:
    return message_page(request, "Signed out", "You are signed out.", 200, link=("/auth/login", "Sign in"))

