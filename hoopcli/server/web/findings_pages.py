"""Console pages for detections: the findings list, one finding with the records that raised it,
and releasing a held session (approvers). They call the detections services, never SQL."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hoopcli.server.detections import holds, service
from hoopcli.server.errors import ServiceError
from hoopcli.server.identity.security import public
from hoopcli.server.web.console import check_csrf, csrf_refused, message_page, principal_of, render, signed_in

router = APIRouter(tags=["console"])
PAGE = Depends(public("console page: authenticated by the signed console cookie, not a bearer token"))


@router.get("/findings", response_class=HTMLResponse, dependencies=[PAGE])
def findings_page(request: Request) -> HTMLResponse:
    user = signed_in(request)
    session_id = (request.query_params.get("session") or "")[:128] or None
    since = (request.query_params.get("since") or "")[:40] or None
    error = None
    items: list[dict[str, object]] = []
    try:
        items = service.list_findings(request.app.state.db, request.app.state.settings, principal_of(user),
                                      session_id=session_id, since=since, limit=200)
    except ServiceError as exc:
        error = exc.message
    return render(request, "findings.html", user=user, items=items, error=error,
                  params={"session": session_id or "", "since": since or ""}, title="Findings")


@router.get("/findings/{finding_id}", response_class=HTMLResponse, dependencies=[PAGE])
def finding_page(request: Request, finding_id: str) -> HTMLResponse:
    user = signed_in(request)
    try:
        finding = service.get_finding(request.app.state.db, request.app.state.settings, principal_of(user),
                                      finding_id[:40])
    except ServiceError:
        return message_page(request, "No such finding", "There is no finding with that id you may see.", 404)
    hold = finding.get("hold") or {}
    may_release = bool(hold.get("held")) and user.has("approver") and hold.get("user") != user.subject
    return render(request, "finding.html", user=user, f=finding, hold=hold, may_release=may_release,
                  title=f"Finding {finding['id']}")


@router.post("/findings/release/{session_id}", dependencies=[PAGE])
async def release(request: Request, session_id: str) -> Response:
    user = signed_in(request)
    form = await check_csrf(request, user)
    if form is None:
        return csrf_refused(request)
    back = form.get("back") or "/findings"
    if not back.startswith("/findings"):
        back = "/findings"
    reason = (form.get("reason") or "").strip()[:1000] or None
    try:
        await run_in_threadpool(holds.release, request.app.state.db, principal_of(user), session_id[:128], reason)
    except ServiceError as exc:
        return message_page(request, "Release refused", exc.message, exc.status_code, link=(quote(back), "Back"))
    return RedirectResponse(quote(back), status_code=303)
