"""Transcript records: the two shapes of docs/transcript.md (command.start, command.result).

Stdlib-only: the shim imports this on every call. The spool is hoopcli.record.spool, the one
upload pass hoopcli.record.upload, the background uploader hoopcli.record.uploader. Masking is the caller's job: everything
passed in here is stored and uploaded as given (outputs are only cut to their cap).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from hoopcli.record.spool import _cut_utf8, now_rfc3339

RECORD_VERSION = 1
DEFAULT_OUTPUT_CAP = 1 << 20          # bytes of stdout / stderr text kept per record


def new_id() -> str:
    """A random UUID4 as 32 hex digits (without importing uuid, which pulls in `platform`)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return raw.hex()



def _to_bytes(value: str | bytes | None) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace")


def output_field(value: str | bytes | Mapping[str, Any] | None,
                 cap: int = DEFAULT_OUTPUT_CAP) -> dict[str, Any]:
    """{"text", "size", "truncated"}: `size` is the original size in bytes, `text` at most `cap` bytes.

    `value` is the (masked) text or bytes, or an already shaped {"text", "size", "truncated", ...}
    (the shim's capture); its `size` and `truncated` are kept when they say more was seen.
    """
    extra: dict[str, Any] = {}
    size_seen = 0
    cut_before = False
    if isinstance(value, Mapping):
        extra = {k: v for k, v in value.items() if k not in ("text", "size", "truncated")}
        size_seen = value["size"] if isinstance(value.get("size"), int) else 0
        cut_before = value.get("truncated") is True
        value = value.get("text") if isinstance(value.get("text"), (str, bytes)) else None
    data = _to_bytes(value)
    size = max(len(data), size_seen)
    return {**extra, "text": _cut_utf8(data, cap), "size": size,
            "truncated": cut_before or len(data) > cap or size > len(data)}


def _time(value: str | float | None) -> str | None:
    """RFC 3339 text for a time given as text (kept) or as epoch seconds."""
    if value is None or isinstance(value, str):
        return value
    return now_rfc3339(float(value))


def record_start(*, command_id: str, session_id: str, seq: int, user: str | None, agent: str | None,
                 host: str | None, cwd: str | None, connection: str | None, argv: list[str],
                 invocation: Mapping[str, Any] | None, decision: Mapping[str, Any] | None,
                 approval: Mapping[str, Any] | None = None,
                 credentials: Mapping[str, Any] | None = None,
                 time: str | None = None, id: str | None = None) -> dict[str, Any]:
    """The write-ahead `command.start` record (argv and invocation already masked by the caller)."""
    return {
        "v": RECORD_VERSION, "type": "command.start", "id": id or new_id(),
        "command_id": command_id, "session_id": session_id, "seq": seq,
        "time": time or now_rfc3339(), "user": user, "agent": agent, "host": host, "cwd": cwd,
        "connection": connection, "argv": list(argv),
        "invocation": dict(invocation) if invocation is not None else None,
        "decision": dict(decision) if decision is not None else None,
        "approval": dict(approval) if approval is not None else None,
        "credentials": dict(credentials) if credentials is not None else None,
    }


def record_result(*, command_id: str, session_id: str, seq: int, exit_code: int,
                  api_calls: Iterable[Mapping[str, Any]] = (),
                  stdout: str | bytes | Mapping[str, Any] | None = None,
                  stderr: str | bytes | Mapping[str, Any] | None = None,
                  started_at: str | float | None = None, ended_at: str | float | None = None,
                  timings: Mapping[str, Any] | None = None,
                  output_cap: int = DEFAULT_OUTPUT_CAP, time: str | None = None,
                  id: str | None = None) -> dict[str, Any]:
    """The `command.result` record; stdout/stderr (masked by the caller) are cut to `output_cap` bytes."""
    ended = _time(ended_at) or now_rfc3339()
    return {
        "v": RECORD_VERSION, "type": "command.result", "id": id or new_id(),
        "command_id": command_id, "session_id": session_id, "seq": seq, "time": time or ended,
        "exit_code": exit_code, "api_calls": [dict(call) for call in api_calls],
        "stdout": output_field(stdout, output_cap), "stderr": output_field(stderr, output_cap),
        "started_at": _time(started_at), "ended_at": ended, "timings": dict(timings or {}),
    }
