"""Policy distribution and history.

GET  /api/v1/policy                 (any user) the policy in force: version, source, compiled JSON;
                                    strong ETag = SHA-256 of the compiled JSON; If-None-Match -> 304
PUT  /api/v1/policy  (POST too)     (admin) {"source": YAML, "comment"?} -> validated, stored as a
                                    new version with who/when/diff; 422 lists every problem with
                                    line and column
GET  /api/v1/policy/versions        (admin, auditor) the history, newest first
GET  /api/v1/policy/versions/{n}    (admin, auditor) one version with its source
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from hoopcli.policy.compiler import MAX_POLICY_BYTES, check_source
from hoopcli.server.identity.security import Principal, get_db, get_settings, require
from hoopcli.server.policy import service as authority

router = APIRouter(prefix="/api/v1", tags=["policy"])
log = logging.getLogger("hoopcli.server.policy")

MAX_PUSH_BODY = MAX_POLICY_BYTES * 2 + 64 * 1024   # JSON escaping can double the YAML's size


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    for part in header.split(","):
        tag = part.strip()
        tag = tag.removeprefix("W/")
        if tag == etag:
            return True
    return False


def _current(db: Any, settings: Any, org: str) -> dict[str, Any]:
    from hoopcli.server.store import policy as store

    with db.session() as session:
        row = store.latest(session, org)
        if row is not None:
            out = row.summary()
            out.update(source=row.source, compiled=json.loads(row.compiled), origin="pushed")
            return out
    policy, source, sha = authority.baseline(settings)
    return {"version": 0, "sha256": sha, "etag": f'"{sha}"', "created_at": None,
            "created_by": None, "comment": None, "diff": "", "source": source,
            "compiled": policy.data, "origin": "file" if policy.source == "file" else "default"}


@router.get("/policy")
def get_policy(request: Request, response: Response, principal: Principal = Depends(require()),
               db: Any = Depends(get_db), settings: Any = Depends(get_settings)) -> Any:
    conditional = request.headers.get("if-none-match")
    if conditional:   # the common case (every client, every TTL): answer from the hash alone
        from hoopcli.server.store import policy as store

        with db.session() as session:
            head = store.latest_sha(session, principal.org)
        sha = head[1] if head else authority.baseline(settings)[2]
        if _etag_matches(conditional, store.etag_of(sha)):
            return Response(status_code=304, headers={"ETag": store.etag_of(sha),
                                                      "Cache-Control": "private, no-cache"})
    current = _current(db, settings, principal.org)
    etag = current["etag"]
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    response.headers.update(headers)
    return current


async def _read_body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        try:
            if int(length) > MAX_PUSH_BODY:
                raise HTTPException(413, f"policy too large: the limit is {MAX_POLICY_BYTES} bytes (512 KiB)")
        except ValueError:
            raise HTTPException(400, "bad Content-Length") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_PUSH_BODY:
            raise HTTPException(413, f"policy too large: the limit is {MAX_POLICY_BYTES} bytes (512 KiB)")
        chunks.append(chunk)
    return b"".join(chunks)


def _store(db: Any, settings: Any, principal: Principal, source: str, compiled: dict[str, Any],
           comment: str | None, warnings: list[dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    from sqlalchemy.exc import IntegrityError

    from hoopcli.server.store import policy as store

    for _attempt in range(3):
        try:
            with db.session() as session:
                previous = store.latest(session, principal.org)
                if previous is not None:
                    prev_source, prev_name = previous.source, f"version {previous.version}"
                else:
                    prev_source, prev_name = authority.baseline(settings)[1], "version 0 (built-in)"
                row, created = store.add_version(
                    session, source=source, compiled=compiled, created_by=principal.subject,
                    created_by_email=principal.email, comment=comment, warnings=warnings,
                    previous_source=prev_source, previous_name=prev_name, org=principal.org)
                return row.summary(), created
        except IntegrityError:   # a concurrent push took this version number; number again
            continue
    raise HTTPException(409, "concurrent policy pushes; retry")


async def _push(request: Request, principal: Principal, db: Any, settings: Any) -> Response:
    raw = await _read_body(request)
    try:
        body = json.loads(raw)
    except ValueError:
        raise HTTPException(400, 'expected a JSON body {"source": "<policy YAML>"}') from None
    if not isinstance(body, dict) or not isinstance(body.get("source"), str) or \
            set(body) - {"source", "comment"}:
        raise HTTPException(400, 'expected a JSON body {"source": "<policy YAML>", "comment"?: "..."}')
    comment = body.get("comment")
    if comment is not None and (not isinstance(comment, str) or len(comment) > 2000):
        raise HTTPException(400, "comment must be a string of at most 2000 characters")
    source: str = body["source"]
    if len(source.encode("utf-8")) > MAX_POLICY_BYTES:
        raise HTTPException(413, f"policy too large: the limit is {MAX_POLICY_BYTES} bytes (512 KiB)")
    compiled, problems = await run_in_threadpool(check_source, source)
    listed = [p.to_dict() for p in problems]
    if compiled is None:
        first = next((p for p in problems if p.severity == "error"), None)
        message = f"invalid policy: line {first.line}, column {first.column}: {first.message}" if first else "invalid policy"
        raise HTTPException(422, {"message": message, "problems": listed})
    warnings = [p for p in listed if p["severity"] == "warning"]
    summary, created = await run_in_threadpool(_store, db, settings, principal, source, compiled,
                                               comment, warnings)
    summary.update(created=created, warnings=warnings)
    if created:
        log.info("policy version %s pushed by %s (org %s, sha256 %s)", summary["version"],
                 principal.subject, principal.org, summary["sha256"][:12])
    return Response(json.dumps(summary), status_code=201 if created else 200,
                    media_type="application/json", headers={"ETag": summary["etag"]})


@router.put("/policy")
async def put_policy(request: Request, principal: Principal = Depends(require("admin")),
                     db: Any = Depends(get_db), settings: Any = Depends(get_settings)) -> Response:
    return await _push(request, principal, db, settings)


@router.post("/policy")
async def post_policy(request: Request, principal: Principal = Depends(require("admin")),
                      db: Any = Depends(get_db), settings: Any = Depends(get_settings)) -> Response:
    return await _push(request, principal, db, settings)


@router.get("/policy/versions")
def list_policy_versions(limit: int = 100, principal: Principal = Depends(require("admin", "auditor")),
                         db: Any = Depends(get_db)) -> list[dict[str, Any]]:
    from hoopcli.server.store import policy as store

    limit = max(1, min(limit, 1000))
    with db.session() as session:
        return [row.summary() for row in store.list_versions(session, principal.org, limit)]


@router.get("/policy/versions/{version}")
def get_policy_version(version: int = Path(ge=1, le=2**63 - 1), principal: Principal = Depends(require("admin", "auditor")),
                       db: Any = Depends(get_db)) -> dict[str, Any]:
    from hoopcli.server.store import policy as store

    with db.session() as session:
        row = store.get_version(session, version, principal.org)
        if row is None:
            raise HTTPException(404, f"no policy version {version}")
        out = row.summary()
        out.update(source=row.source, warnings=row.warnings)
        return out
