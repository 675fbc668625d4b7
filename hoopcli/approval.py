"""Client side of approvals: the canonical call form, request, wait, resume, terminal prompt.

Stdlib-only at module level: the shim imports this on its hot path when the policy says review.

    request_and_wait(client, invocation, decision, ctx, connection=..., session_id=..., reason=...,
                     wait_seconds=...) -> Approval
        raises PolicyDenied (77)     the rule needs a justification (HOOP_REASON) and none was given,
                                     or the server's policy denies the call outright
               ApprovalRejected (76) an approver said no (who, and their reason)
               ApprovalPending (75)  nobody decided before the wait ended; rerunning the same
                                     command resumes the same request (local map in HOOP_HOME)

An approval is bound to one call: the SHA-256 of its canonical form (`call_hash`). The server
computes the same hash from its own parse of argv and refuses credentials for any other call.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from .errors import ApprovalPending, ApprovalRejected, PolicyDenied, Unavailable
from .paths import Layout, write_private

API = "/api/v1/approvals"
FINAL = ("approved", "rejected", "expired")
POLL_SLICE = 25.0              # seconds per long-poll request
DEFAULT_WAIT = 300.0           # the policy's wait when it names none
DEFAULT_PROMPT_TIMEOUT = 120.0


# --------------------------------------------------------------------------- canonical call form

def _plain(value: Any) -> Any:
    """JSON-able, order-independent form of parameter values (sets sorted, bytes hex, tuples lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": bytes(value).hex()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def canonical_call(invocation: Any, connection: str) -> dict[str, Any]:
    """{service, operation, params, connection, region, endpoint_url, resources} of an Invocation.

    `resources` is the parser's resource list: a second guard so that two calls differing only in
    a resource can never share a hash even if a parser leaves a positional argument out of params.
    """
    globals_ = getattr(invocation, "globals", None)
    return {
        "service": invocation.service,
        "operation": invocation.operation,
        "params": _plain(dict(invocation.params or {})),
        "connection": connection,
        "region": getattr(globals_, "region", None),
        "endpoint_url": getattr(globals_, "endpoint_url", None),
        "resources": sorted(str(r) for r in invocation.resources),
    }


def canonical_json(call: dict[str, Any]) -> str:
    return json.dumps(call, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def call_hash(call: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of a call form."""
    return hashlib.sha256(canonical_json(call).encode("utf-8")).hexdigest()


def hash_invocation(invocation: Any, connection: str) -> str:
    return call_hash(canonical_call(invocation, connection))


# --------------------------------------------------------------------------- the approval record

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
            requested_at=data.get("requested_at"), decided_at=data.get("decided_at"),
            expires_at=data.get("expires_at"), consumed=bool(data.get("consumed_at")),
        )

    def to_dict(self) -> dict[str, Any] | None:
        """The transcript's "approval" object (None when no approval was needed)."""
        if self.id is None:
            return None
        return {"id": self.id, "approver": self.approver, "channel": self.channel,
                "requested_at": self.requested_at, "decided_at": self.decided_at}


def who_can_approve(approvers: list[str]) -> str:
    groups = [a for a in approvers if a != "self" and not a.startswith("role:")]
    roles = [a[5:] for a in approvers if a.startswith("role:")]
    parts = []
    if "self" in approvers:
        parts.append("you (self-approval)")
    if roles:
        parts.append("users with the " + " or ".join(roles) + " role")
    if groups:
        parts.append("members of " + ", ".join(groups))
    if not parts:
        parts.append("anyone with the approver role")
    return " or ".join(parts)


def _pending_error(approval: Approval, waited: float) -> ApprovalPending:
    return ApprovalPending(
        f"approval {approval.id} is still pending after {waited:.0f}s; "
        f"it can be approved by {who_can_approve(approval.approvers)} "
        f"(`hoop approvals approve {approval.id}`{', or ' + approval.url if approval.url else ''}); "
        f"rerun the same command to resume waiting on the same request")


def _rejected_error(approval: Approval) -> ApprovalRejected:
    why = approval.reason or "no reason given"
    via = f" via {approval.channel}" if approval.channel else ""
    return ApprovalRejected(f"approval {approval.id} was rejected by {approval.approver or 'an approver'}"
                            f"{via}: {why}")


# --------------------------------------------------------------------------- resume map

class ResumeMap:
    """HOOP_HOME/cache/approvals.json: call hash -> approval id, so a rerun resumes its request."""

    def __init__(self, layout: Layout, server: str) -> None:
        self.path = layout.cache_dir / "approvals.json"
        self.server = server

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, Any]) -> None:
        try:
            write_private(self.path, json.dumps(data).encode("utf-8"))
        except OSError:
            pass  # resuming is a convenience; never fail the command over it

    def _key(self, digest: str) -> str:
        return f"{self.server}|{digest}"

    def get(self, digest: str) -> str | None:
        entry = self._read().get(self._key(digest))
        return entry.get("id") if isinstance(entry, dict) else None

    def put(self, digest: str, approval_id: str) -> None:
        data = self._read()
        now = time.time()
        data = {k: v for k, v in data.items() if isinstance(v, dict) and now - v.get("at", 0) < 86400}
        data[self._key(digest)] = {"id": approval_id, "at": now}
        self._write(data)

    def drop(self, digest: str) -> None:
        data = self._read()
        if data.pop(self._key(digest), None) is not None:
            self._write(data)


# --------------------------------------------------------------------------- progress display

class Progress:
    """A spinner with the approval URL on a TTY; one plain line per state change otherwise."""

    FRAMES = "|/-\\"

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        try:
            self.tty = stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self._text = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last = ""

    def state(self, line: str) -> None:
        if self.tty:
            self._text = line
            if self._thread is None:
                self._thread = threading.Thread(target=self._spin, daemon=True)
                self._thread.start()
        elif line != self._last:
            self._write("hoop: " + line + "\n")
        self._last = line

    def _spin(self) -> None:
        start = time.monotonic()
        i = 0
        while not self._stop.wait(0.1):
            frame = self.FRAMES[i % len(self.FRAMES)]
            self._write(f"\r\x1b[K{frame} hoop: {self._text} ({time.monotonic() - start:.0f}s)")
            i += 1

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def done(self, line: str | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
            self._write("\r\x1b[K")
        if line and line != self._last:
            self._write("hoop: " + line + "\n")


# --------------------------------------------------------------------------- server calls

def _request(client: Any, body: dict[str, Any]) -> Approval:
    from .client import Forbidden

    try:
        response = client.post(API, json=body)
    except Forbidden as exc:   # the server's policy denies the call, or needs a justification
        raise PolicyDenied(exc.message) from exc
    return Approval.from_json(response.json() or {})


def _fetch(client: Any, approval_id: str, wait: float = 0.0) -> Approval | None:
    from .client import NotFound

    params = {"wait": f"{wait:.0f}"} if wait > 0 else None
    try:
        response = client.get(f"{API}/{approval_id}", params=params, timeout=wait + 15.0)
    except NotFound:
        return None
    return Approval.from_json(response.json() or {})


def _decide(client: Any, approval: Approval, approve: bool, reason: str) -> Approval:
    body = {"decision": "approve" if approve else "deny", "reason": reason,
            "call_hash": approval.call_hash, "channel": "terminal"}
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


# --------------------------------------------------------------------------- the entry point

def _review_attr(decision: Any, name: str, default: Any = None) -> Any:
    review = getattr(decision, "review", None)
    if review is None:
        return default
    if isinstance(review, dict):
        return review.get(name, default)
    return getattr(review, name, default)


def justification_missing_error(decision: Any) -> PolicyDenied:
    rule = getattr(decision, "rule", None)
    return PolicyDenied(
        f"rule {rule or '(unnamed)'} requires a justification for this command and none was given",
        hint="set HOOP_REASON to why the command is needed (for example "
             "HOOP_REASON='rotate the leaked key, ticket OPS-12' aws ...) and run it again")


def request_and_wait(client: Any, invocation: Any, decision: Any, ctx: Any = None, *,
                     connection: str, session_id: str | None = None, reason: str | None = None,
                     wait_seconds: float | None = None, tty: str | None = "/dev/tty",
                     stream: TextIO | None = None, layout: Layout | None = None,
                     prompt_timeout: float = DEFAULT_PROMPT_TIMEOUT, server: str | None = None,
                     environ: Mapping[str, str] | None = None) -> Approval:
    """Open (or resume) the approval for this call and wait for a decision. See module docstring.

    `tty` is the controlling terminal to offer self-approval on (None: never prompt); `stream`
    receives progress (default stderr).
    """
    reason = (reason or "").strip() or None
    if _review_attr(decision, "require_justification", False) and not reason:
        raise justification_missing_error(decision)
    stream = stream if stream is not None else sys.stderr
    layout = layout or Layout.from_env(environ)
    if wait_seconds is None:
        wait_seconds = float(_review_attr(decision, "wait", None) or DEFAULT_WAIT)
    digest = hash_invocation(invocation, connection)
    resume = ResumeMap(layout, str(server or getattr(client, "base_url", "")))

    approval: Approval | None = None
    previous = resume.get(digest)
    if previous:
        found = _fetch(client, previous)
        if found is not None and found.call_hash == digest and (
                found.status == "pending" or found.status == "approved" and not found.consumed):
            approval = found
    if approval is None:
        body = {"argv": list(invocation.argv), "connection": connection, "session_id": session_id,
                "reason": reason, "agent": getattr(ctx, "agent", None), "call_hash": digest}
        approval = _request(client, body)
        if approval.status == "not_required" or approval.id is None:
            return approval
        resume.put(digest, str(approval.id))

    progress = Progress(stream)
    deadline = time.monotonic() + max(0.0, wait_seconds)
    if approval.status == "pending":
        channels = _review_attr(decision, "channels", None)
        if tty is not None and "self" in approval.approvers and (not channels or "terminal" in channels):
            from .approval_tty import prompt_with_waiter

            approval = prompt_with_waiter(client, approval, invocation, deadline, tty,
                                          min(prompt_timeout, wait_seconds))
        if approval.status == "pending":
            where = f" at {approval.url}" if approval.url else ""
            progress.state(f"approval {approval.id} pending; waiting up to {wait_seconds:.0f}s for "
                           f"{who_can_approve(approval.approvers)}{where}")
            approval = wait_for(client, approval, deadline,
                                on_state=lambda a: progress.state(f"approval {a.id} {a.status}"))

    if approval.status == "approved":
        resume.drop(digest)
        progress.done(f"approval {approval.id} approved by {approval.approver or 'an approver'}"
                      f"{' via ' + approval.channel if approval.channel else ''}")
        return approval
    progress.done()
    if approval.status == "rejected":
        resume.drop(digest)
        raise _rejected_error(approval)
    if approval.status == "expired":
        resume.drop(digest)
        raise ApprovalPending(f"approval {approval.id} expired before anyone decided; "
                              "rerun the command to request a new approval")
    raise _pending_error(approval, wait_seconds)


__all__ = ["Approval", "ResumeMap", "call_hash", "canonical_call", "hash_invocation",
           "request_and_wait", "wait_for", "who_can_approve"]
