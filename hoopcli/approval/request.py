"""Client side of approvals: request, wait, resume (the terminal prompt is approval.prompt).

Stdlib-only at module level: the shim imports this on its hot path when the policy says review.

    request_and_wait(client, invocation, decision, ctx, connection=..., session_id=..., reason=...,
                     wait_seconds=...) -> Approval
        raises PolicyDenied (77)     the rule needs a justification (HOOP_REASON) and none was given,
                                     or the server's policy denies the call outright
               ApprovalRejected (76) an approver said no (who, and their reason)
               ApprovalPending (75)  nobody decided before the wait ended; rerunning the same
                                     command resumes the same request (local map in HOOP_HOME)

An approval is bound to one call: the SHA-256 of its canonical form (hoopcli.approval.canonical).
The server computes the same hash from its own parse of argv and refuses credentials for any
other call.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Mapping
from typing import IO, Any

from hoopcli.approval.api import Approval, _fetch, _request, wait_for
from hoopcli.approval.canonical import hash_invocation
from hoopcli.errors import ApprovalPending, ApprovalRejected, PolicyDenied
from hoopcli.paths import Layout, write_private

DEFAULT_WAIT = 300.0           # the policy's wait when it names none
DEFAULT_PROMPT_TIMEOUT = 120.0


# --------------------------------------------------------------------------- the approval record

def who_can_approve(approvers: list[str], presence: str = "fresh") -> str:
    groups = [a for a in approvers if a != "self" and not a.startswith("role:")]
    roles = [a[5:] for a in approvers if a.startswith("role:")]
    parts = []
    if "self" in approvers:
        parts.append("you (self-approval" + (": open the URL and sign in again)" if presence != "none" else ")"))
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
        f"it can be approved by {who_can_approve(approval.approvers, approval.presence)} "
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

    def __init__(self, stream: IO[str]) -> None:
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
                     stream: IO[str] | None = None, layout: Layout | None = None,
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
                found.status == "pending" or (found.status == "approved" and not found.consumed)):
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
            from hoopcli.approval.prompt import prompt_with_waiter

            approval = prompt_with_waiter(client, approval, invocation, deadline, tty,
                                          min(prompt_timeout, wait_seconds))
        if approval.status == "pending":
            where = f" at {approval.url}" if approval.url else ""
            progress.state(f"approval {approval.id} pending; waiting up to {wait_seconds:.0f}s for "
                           f"{who_can_approve(approval.approvers, approval.presence)}{where}")
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


__all__ = ["Approval", "ResumeMap",
           "request_and_wait", "wait_for", "who_can_approve"]
