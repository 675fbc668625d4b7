"""The export's two formats, as byte streams: JSON Lines (one entry a line) and CSV (one
record a row, spreadsheet-safe).

The CSV's `source` column says who wrote each row: `client` (command.start / command.result,
reported by the shim) or `gateway` (api.call, observed by the server). The columns after
`truncated` were added with api.call; an api.call fills `api_calls` with its one
`service:operation` too, so a filter on that column sees gateway calls."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

CSV_COLUMNS = ["index", "received_at", "uploader", "session_id", "command_id", "type", "seq",
               "time", "user", "agent", "host", "connection", "argv", "effect", "rule",
               "approval_id", "approver", "assumed_role_arn", "exit_code", "api_calls",
               "stdout_size", "stdout_truncated", "stderr_size", "stderr_truncated", "truncated",
               "source", "service", "operation", "region", "actions", "http_status", "error_code",
               "request_id", "duration_ms", "response_size", "response_truncated"]


def jsonl(entries: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    for entry in entries:
        yield (json.dumps(entry, ensure_ascii=False) + "\n").encode()


def as_csv(entries: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        writer.writerow([_csv_safe(v) for v in _csv_row(entry)])
        if buf.tell() > 64 * 1024:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()


def _csv_row(entry: dict[str, Any]) -> list[Any]:
    rec = entry.get("record") or {}
    rc = entry.get("receipt") or {}
    dec = rec.get("decision") or {}
    appr = rec.get("approval") or {}
    cred = rec.get("credentials") or {}
    out = rec.get("stdout") or {}
    err = rec.get("stderr") or {}
    calls = rec.get("api_calls")
    gateway = rec.get("type") == "api.call"
    if gateway:
        calls = [{"service": rec.get("service"), "operation": rec.get("operation")}]
    inv: dict[str, Any] = rec["invocation"] if isinstance(rec.get("invocation"), dict) else {}
    actions = rec.get("actions") if gateway else inv.get("actions")
    resp = (rec.get("response") if gateway else None) or {}
    return [entry["index"], rc.get("received_at"), rc.get("uploader"), rec.get("session_id"),
            rec.get("command_id"), rec.get("type"), rec.get("seq"), rec.get("time"),
            rec.get("user"), rec.get("agent"), rec.get("host"), rec.get("connection"),
            json.dumps(rec["argv"]) if isinstance(rec.get("argv"), list) else "",
            dec.get("effect"), dec.get("rule"), appr.get("id"), appr.get("approver"),
            cred.get("assumed_role_arn"), rec.get("exit_code"),
            ";".join(f"{c.get('service')}:{c.get('operation')}" for c in calls if isinstance(c, dict))
            if isinstance(calls, list) else "",
            out.get("size"), out.get("truncated"), err.get("size"), err.get("truncated"),
            ";".join(rc.get("truncated") or []),
            "gateway" if gateway else "client",
            rec.get("service") if gateway else inv.get("service"),
            rec.get("operation") if gateway else inv.get("operation"),
            rec.get("region") if gateway else inv.get("region"),
            ";".join(str(a) for a in actions) if isinstance(actions, list) else "",
            rec.get("http_status") if gateway else None, rec.get("error_code") if gateway else None,
            rec.get("request_id") if gateway else None, rec.get("duration_ms") if gateway else None,
            resp.get("size"), resp.get("truncated")]


def _csv_safe(value: Any) -> Any:
    # Spreadsheet formula injection: a cell starting with = + - @ is shown as text.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value
