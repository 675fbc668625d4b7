"""The approvals API as the client sees it: the Approval record and the server calls (request,
fetch, decide, long-poll). Used by hoopcli.approval.request and hoopcli.approval.prompt."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hoopcli.errors import PolicyDenied, Unavailable

API = "/api/v1/approvals"
FINAL = ("approved", "rejected", "expired")
POLL_SLICE = 25.0              # seconds per long-poll request


@dataclass
class Approval:
    id: str | None
    status: str                              # pending | approved | rejected | expired | not_required
    call_hash: str | None = None
    url: str | None = None
    requester: str | None = None
    approver: str | None = None
    channel: str | None = None
    reason: str | None = None                # the approver's reason
    justification: str | None = None         # the agent's reason (HOOP_REASON)
    approvers: list[str] = field(default_factory=list)
    presence: str = "fresh"                  # what the requester's own approval must prove (fresh | none)
    requested_at: str | None = None
    decided_at: str | None = None
    expires_at: str | None = None
    consumed: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Approval:
        return cls(
            id=data.get("id"), status=str(data.get("status") or "pending"),
            call_hash=data.get("call_hash"), url=data.get("url"), requester=data.get("requester"),
            approver=data.get("approver"), channel=data.get("channel"), reason=data.get("reason"),
            justification=data.get("justification"), approvers=list(data.get("approvers") or []),
            presence=str(data.get("presence") or "fresh"),
            requested_at=data.get("requested_at"), decided_at=data.get("decided_at"),
            expires_at=data.get("expires_at"), consumed=bool(data.get("consumed_at")),
        )

    def to_dict(self) -> dict[str, Any] | None:
        """The transcript's "approval" object (None when no approval was needed)."""
        if self.id is None:
            return None
        return {"id": self.id, "approver": self.approver, "channel": self.channel,
                "requested_at": self.requested_at, "decided_at": self.decided_at}


def _request(client: Any, body: dict[str, Any]) -> Approval:
    from hoopcli.client import Forbidden

    try:
        response = client.post(API, json=body)
    except Forbidden as exc:   # the server's policy denies the call, or needs a justification
        raise PolicyDenied(exc.message) from exc
    return Approval.from_json(response.json() or {})


def _fetch(client: Any, approval_id: str, wait: float = 0.0) -> Approval | None:
    from hoopcli.client import NotFound

    params = {"wait": f"{wait:.0f}"} if wait > 0 else None
    try:
        response = client.get(f"{API}/{approval_id}", params=params, timeout=wait + 15.0)
    except NotFound:
        return None
    return Approval.from_json(response.json() or {})


def _decide(client: Any, approval: Approval, approve: bool, reason: str) -> Approval:
    body = {"decision": "approve" if approve else "deny", "reason": reason, "call_hash": approval.call_hash}
    response = client.post(f"{API}/{approval.id}/decision", json=body, expect=(409,))
    if response.status == 200:
        return Approval.from_json(response.json() or {})
    return _fetch(client, str(approval.id)) or approval   # another channel decided first


def wait_for(client: Any, approval: Approval, deadline: float,
             stop: threading.Event | None = None,
             on_state: Callable[[Approval], None] | None = None) -> Approval:
    """Long-poll until the approval is final, `deadline` (monotonic) passes, or `stop` is set."""
    current = approval
    while current.status == "pending":
        remaining = deadline - time.monotonic()
        if remaining <= 0 or (stop is not None and stop.is_set()):
            break
        try:
            fetched = _fetch(client, str(current.id), min(POLL_SLICE, max(1.0, remaining)))
        except Unavailable:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            continue
        if fetched is None:  # deleted, or no longer ours
            current = Approval(id=current.id, status="expired", approvers=current.approvers)
            break
        current = fetched
        if on_state is not None:
            on_state(current)
    return current
