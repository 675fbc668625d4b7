"""Slack interactivity: POST /api/v1/slack/interactions (the Approve / Deny buttons).

1. Verify the request with slack_sdk's SignatureVerifier (HMAC-SHA256 of "v0:{ts}:{body}" with
   the signing secret; timestamps older or newer than 5 minutes are refused): 401 otherwise.
2. Find the approval named by the button and the hoop user behind the Slack user (see
   slack_service: matched by email, approver role required as on every other channel).
3. Decide (first decision wins), then update the message in place (chat.update); a refusal is
   told to the clicker alone (chat.postEphemeral). Slack gets its 200 within 3 s in every case.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from hoopcli.server.approvals.notify import get_notifier
from hoopcli.server.approvals.slack_service import click
from hoopcli.server.errors import BadRequest, NotFound, Unauthenticated
from hoopcli.server.identity.security import public

log = logging.getLogger("hoop.slack")
router = APIRouter(prefix="/api/v1", tags=["slack"])
ACK_SECONDS = 2.5
_inflight: set[asyncio.Future[Any]] = set()   # keeps slow clicks alive after the 3 s ack


def verify(secret: str, body: bytes, timestamp: str | None, signature: str | None) -> bool:
    from slack_sdk.signature import SignatureVerifier

    if not timestamp or not signature or not timestamp.strip().isdigit() or len(timestamp) > 20:
        return False
    try:
        return SignatureVerifier(secret).is_valid(body, timestamp, signature)
    except (ValueError, UnicodeDecodeError):
        return False


def parse_payload(body: bytes) -> dict[str, Any]:
    try:
        form = urllib.parse.parse_qs(body.decode("utf-8"), strict_parsing=False)
        payload = json.loads(form["payload"][0])
    except (UnicodeDecodeError, KeyError, IndexError, ValueError):
        raise BadRequest("expected a form body with a JSON `payload`") from None
    if not isinstance(payload, dict):
        raise BadRequest("the payload must be a JSON object")
    return payload


@router.post("/slack/interactions", dependencies=[Depends(public("Slack signs its own requests"))])
async def interactions(request: Request) -> JSONResponse:
    slack = request.app.state.settings.slack
    if slack is None or not slack.signing_secret:
        raise NotFound("Slack is not configured on this server")
    body = await request.body()
    if not verify(slack.signing_secret, body, request.headers.get("x-slack-request-timestamp"),
                  request.headers.get("x-slack-signature")):
        raise Unauthenticated("invalid or expired Slack signature")
    payload = parse_payload(body)
    app = request.app

    work = run_in_threadpool(click, app.state.db, app.state.settings, get_notifier(app), payload)
    task = asyncio.ensure_future(work)
    _inflight.add(task)
    task.add_done_callback(_inflight.discard)
    done, _ = await asyncio.wait({task}, timeout=ACK_SECONDS)
    if not done:   # Slack needs its 200 within 3 s; the decision finishes in the background
        return JSONResponse({"ok": True, "status": "processing"})
    try:
        return JSONResponse(task.result())
    except Exception as exc:  # never leak internals to Slack
        log.error("slack interaction failed: %s", type(exc).__name__)
        return JSONResponse({"ok": False, "error": "internal error"})
