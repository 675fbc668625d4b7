"""Scripted sessions for the detection tests: gateway records (server-observed, appended through
the real ledger writer exactly as the gateway appends them), client records (POST /api/v1/records
with the user's token), and what the server raised."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

AUDITOR = {"auditor": ["auditors"], "approver": ["approvers"], "admin": ["admins"]}


def iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Script:
    """One session's calls, `step` seconds apart from `start` (default: now)."""

    def __init__(self, server: Any, session: str | None = None, user: str = "alice", step: float = 0.5,
                 start: datetime | None = None) -> None:
        self.server, self.user, self.step = server, user, step
        self.session = session or "s-" + uuid.uuid4().hex[:12]
        self.when = start or datetime.now(timezone.utc) - timedelta(seconds=60)
        self.ids: list[str] = []

    def _tick(self) -> str:
        self.when += timedelta(seconds=self.step)
        return iso(self.when)

    def call(self, service: str, operation: str, params: dict[str, Any] | None = None, *, effect: str = "allow",
             http_status: int | None = 200, error_code: str | None = None) -> dict[str, Any]:
        """A gateway api.call record (not yet appended)."""
        from hoopcli.parse import call_for
        from hoopcli.server.ledger.calls import gateway_record

        api = call_for(service, operation, params or {}, "us-east-1")
        rec = gateway_record(session_id=self.session, service=service, operation=operation,
                             decision={"effect": effect, "rule": "test", "reason": None}, time=self._tick(),
                             user=self.user, user_email=f"{self.user}@example.com", agent="scripted",
                             connection="default", region="us-east-1", access_level=api.access_level,
                             actions=api.actions, resources=api.resources, params=params or {},
                             http_status=None if effect == "deny" else http_status,
                             error_code="AccessDenied" if effect == "deny" else error_code)
        self.ids.append(rec["id"])
        return rec

    def gateway(self, *records: dict[str, Any]) -> None:
        """Append gateway records through the real ledger writer (as the gateway does)."""
        from hoopcli.server.ledger.calls import append_api_calls
        from hoopcli.server.ledger.checkpoints import SigningKey

        key = SigningKey.load_or_create(self.server.settings.home)
        result = append_api_calls(self.server.db, key, "default", list(records)).result(timeout=20)
        assert not result.rejected, result.rejected
        assert len(result.accepted) == len(records)

    def command(self, argv: list[str], *, effect: str = "allow", calls: list[dict[str, Any]] = (),  # type: ignore[assignment]
                exit_code: int = 0) -> list[dict[str, Any]]:
        """A client-reported command: its start and result records."""
        from hoopcli.parse import parse

        cid = uuid.uuid4().hex
        inv = parse(argv).to_dict()
        start = {"v": 1, "type": "command.start", "id": uuid.uuid4().hex, "command_id": cid,
                 "session_id": self.session, "seq": 2 * len(self.ids), "time": self._tick(), "user": self.user,
                 "agent": "scripted", "host": "h", "cwd": "/", "connection": "default", "argv": argv,
                 "invocation": inv, "decision": {"effect": effect, "rule": "test", "reason": None},
                 "approval": None, "credentials": None}
        result = {"v": 1, "type": "command.result", "id": uuid.uuid4().hex, "command_id": cid,
                  "session_id": self.session, "seq": 2 * len(self.ids) + 1, "time": self._tick(),
                  "exit_code": 77 if effect == "deny" else exit_code, "api_calls": list(calls),
                  "stdout": {"text": "", "size": 0, "truncated": False},
                  "stderr": {"text": "", "size": 0, "truncated": False}}
        self.ids += [start["id"], result["id"]]
        return [start, result]

    def upload(self, *records: dict[str, Any]) -> None:
        r = httpx.post(self.server.url + "/api/v1/records", json={"records": list(records)},
                       headers=self.server.headers(self.user), timeout=20)
        assert r.status_code == 200, r.text
        assert not r.json()["rejected"], r.json()["rejected"]


def settle(server: Any, timeout: float = 10.0) -> None:
    """Wait until the server's detector has evaluated everything in the log."""
    from hoopcli.server.detections.registry import detector_of
    from hoopcli.server.ledger.log import log_size

    det = detector_of(server.db)
    assert det is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with server.db.session() as s:
            size = log_size(s, "default")
        if det._done.get("default", 0) >= size:
            return
        time.sleep(0.02)
    raise AssertionError("the detector did not catch up")


def findings(server: Any, session: str | None = None, who: str = "audrey") -> list[dict[str, Any]]:
    params = {"session_id": session} if session else {}
    r = httpx.get(server.url + "/api/v1/findings", params=params, headers=server.headers(who, groups=("auditors",)),
                  timeout=10)
    assert r.status_code == 200, r.text
    return list(r.json())


def rules_of(items: list[dict[str, Any]]) -> list[str]:
    return sorted(f["rule"] for f in items)


def raised(server: Any, session: str, timeout: float = 5.0) -> float | None:
    """Seconds until a finding of `session` is stored (read from the table, so the time is the
    server's, not an HTTP client's), or None."""
    from sqlalchemy import select

    from hoopcli.server.store.detections import Finding

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        with server.db.session() as s:
            if s.scalar(select(Finding.id).where(Finding.session_id == session).limit(1)) is not None:
                return time.monotonic() - t0
        time.sleep(0.005)
    return None
