"""Builders of realistic transcript records for the ledger tests and benchmarks."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from hoopcli.client import Client

T0 = datetime(2026, 11, 27, 4, 0, 0, tzinfo=timezone.utc)


def ts(offset_s: float = 0.0) -> str:
    return (T0 + timedelta(seconds=offset_s)).isoformat().replace("+00:00", "Z")


def start(session_id: str, seq: int, argv: list[str] | None = None, *, t: float = 0.0,
          effect: str = "allow", actions: list[str] | None = None, agent: str = "claude",
          connection: str = "default", command_id: str | None = None, **extra: Any) -> dict[str, Any]:
    argv = argv or ["s3", "ls"]
    actions = actions or ["s3:ListAllMyBuckets"]
    rec: dict[str, Any] = {
        "v": 1, "type": "command.start", "id": uuid.uuid4().hex,
        "command_id": command_id or uuid.uuid4().hex, "session_id": session_id, "seq": seq,
        "time": ts(t), "user": "alice@example.com", "agent": agent, "host": "build-7",
        "cwd": "/work", "connection": connection, "argv": argv,
        "invocation": {"service": argv[0], "operation": argv[1] if len(argv) > 1 else None,
                       "actions": actions, "access_level": "List"},
        "decision": {"effect": effect, "rule": "r1", "reason": None},
        "approval": None,
        "credentials": {"assumed_role_arn": "arn:aws:sts::123456789012:assumed-role/agent/hoop-alice",
                        "sts_session_name": "hoop-alice", "expiration": ts(t + 900)},
    }
    rec.update(extra)
    return rec


def result(begin: dict[str, Any], *, exit_code: int = 0, stdout: str = '{"Buckets": []}\n',
           stderr: str = "", t: float = 0.5, **extra: Any) -> dict[str, Any]:
    t0 = begin["time"]
    rec: dict[str, Any] = {
        "v": 1, "type": "command.result", "id": uuid.uuid4().hex,
        "command_id": begin["command_id"], "session_id": begin["session_id"],
        "seq": begin["seq"] + 1, "time": ts(t),
        "exit_code": exit_code,
        "api_calls": [{"service": "s3", "operation": "ListBuckets", "params": {},
                       "request_id": "REQ1", "http_status": 200, "error_code": None,
                       "duration_ms": 12.5}],
        "stdout": {"text": stdout, "size": len(stdout.encode()), "truncated": False},
        "stderr": {"text": stderr, "size": len(stderr.encode()), "truncated": False},
        "started_at": t0, "ended_at": ts(t),
        "timings": {"parse_ms": 1.0, "decide_ms": 0.2, "approve_ms": 0, "credentials_ms": 30.0,
                    "run_ms": 400.0, "mask_ms": 0.4},
    }
    rec.update(extra)
    return rec


def command(session_id: str, seq: int, t: float = 0.0, **kw: Any) -> list[dict[str, Any]]:
    result_kw = {k: kw.pop(k) for k in ("exit_code", "stdout", "stderr") if k in kw}
    s = start(session_id, seq, t=t, **kw)
    return [s, result(s, t=t + 0.5, **result_kw)]


AUDITORS = {"auditor": ["auditors"], "admin": ["admins"]}
# A command's record carries up to 1 MiB of stdout and 1 MiB of stderr: the records route needs
# more than the server's default 1 MiB body limit (see CONTRACTS.md, ledger engineer).
BODY = 8 * 1024 * 1024


class Ledger:
    def __init__(self, srv: Any) -> None:
        self.srv = srv
        self.url = srv.url

    def client(self, sub: str = "alice", groups: tuple[str, ...] = ()) -> Client:
        return Client(self.url, token=self.srv.token(sub, email=f"{sub}@example.com", groups=groups))

    def auditor(self) -> Client:
        return self.client("audrey", ("auditors",))

    def post(self, records: list[dict[str, Any]], sub: str = "alice") -> dict[str, Any]:
        return self.client(sub).post("/api/v1/records", {"records": records}).json()


def call(session_id: str, t: float = 0.0, *, service: str = "s3", operation: str = "DeleteObject",
         effect: str = "allow", http_status: int | None = 204, user: str | None = "alice",
         **extra: Any) -> dict[str, Any]:
    """A gateway `api.call` record (what hoopcli.server.ledger.calls.gateway_record builds)."""
    from hoopcli.server.ledger.calls import gateway_record

    kw: dict[str, Any] = {
        "user_email": f"{user}@example.com" if user else None, "agent": "claude",
        "connection": "default", "region": "us-east-1", "access_level": "Write",
        "actions": [f"{service}:{operation}"],
        "resources": [f"arn:aws:{service}:::logs/key.txt"],
        "params": {"Bucket": "logs", "Key": "key.txt"},
        "http_status": http_status, "error_code": None, "request_id": "GWREQ1",
        "duration_ms": 12.0, "bytes_in": 0, "bytes_out": 0, "response_text": "",
    }
    kw.update(extra)
    return gateway_record(session_id=session_id, service=service, operation=operation, time=ts(t),
                          user=user, decision={"effect": effect, "rule": "r-gw", "reason": None}, **kw)


def append_calls(srv: Any, records: list[dict[str, Any]], org: str = "default") -> Any:
    """Append api.call records the way the gateway does: hoopcli.server.ledger.calls, through the
    server's ledger writer, signed with the server's checkpoint key. -> AppendResult."""
    from hoopcli.server.ledger import checkpoints as cp
    from hoopcli.server.ledger.calls import append_api_calls

    key = cp.SigningKey.load_or_create(srv.settings.home)
    return append_api_calls(srv.db, key, org, records).result(timeout=30)
