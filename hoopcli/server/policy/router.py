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
from typing import Any

from fastapi import APIRouter, Depends, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from hoopcli.policy.compiler import MAX_POLICY_BYTES
from hoopcli.server.errors import BadRequest, TooLarge
from hoopcli.server.identity.security import Principal, get_db, get_settings, require
from hoopcli.server.policy import service

router = APIRouter(prefix="/api/v1", tags=["policy"])

MAX_PUSH_BODY = MAX_POLICY_BYTES * 2 + 64 * 1024   # JSON escaping can double the YAML's size
TOO_LARGE = f"policy too large: the limit is {MAX_POLICY_BYTES} bytes (512 KiB)"


@router.get("/policy")
def get_policy(request: Request, response: Response, principal: Principal = Depends(require()),
               db: Any = Depends(get_db), settings: Any = Depends(get_settings)) -> Any:
    etag, current = service.for_client(db, settings, principal.org, request.headers.get("if-none-match"))
    if current is None:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": "private, no-cache"})
    response.headers.update({"ETag": etag, "Cache-Control": "private, no-cache"})
    return current


async def _read_body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        try:
            if int(length) > MAX_PUSH_BODY:
                raise TooLarge(TOO_LARGE)
        except ValueError:
            raise BadRequest("bad Content-Length") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_PUSH_BODY:
            raise TooLarge(TOO_LARGE)
        chunks.append(chunk)
    return b"".join(chunks)


async def _push(request: Request, principal: Principal, db: Any, settings: Any) -> Response:
    raw = await _read_body(request)
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadRequest('expected a JSON body {"source": "<policy YAML>"}') from None
    if not isinstance(body, dict) or not isinstance(body.get("source"), str) or \
            set(body) - {"source", "comment"}:
        raise BadRequest('expected a JSON body {"source": "<policy YAML>", "comment"?: "..."}')
    comment = body.get("comment")
    if comment is not None and (not isinstance(comment, str) or len(comment) > 2000):
        raise BadRequest("comment must be a string of at most 2000 characters")
    source: str = body["source"]
    if len(source.encode("utf-8")) > MAX_POLICY_BYTES:
        raise TooLarge(TOO_LARGE)
    summary, created = await run_in_threadpool(service.push, db, settings, principal, source, comment)
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
    return service.list_versions(db, principal.org, limit)


@router.get("/policy/versions/{version}")
def get_policy_version(version: int = Path(ge=1, le=2**63 - 1), principal: Principal = Depends(require("admin", "auditor")),
                       db: Any = Depends(get_db)) -> dict[str, Any]:
    return service.get_version(db, principal.org, version)
