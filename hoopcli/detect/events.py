"""Transcript records -> detection events: one event per AWS call hoop saw or refused.

    api.call (the gateway, server-observed)   one event
    command.result (the shim, client-reported) one event per entry of api_calls
    command.start (the shim)                   one event when the policy denied the command (no
                                               call follows), or for a local-only command such
                                               as `rds generate-db-auth-token` (no API call)

Every event has a status: "ok" (AWS answered < 400), "error" (another failure), "denied" (hoop's
policy refused it, or AWS answered an access-denied code) or "pending" (held for an approval).
Times are the record's, never later than when the server received it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

API_CALL = "api.call"
# AWS error codes that mean "you may not": what policy probing counts besides hoop's own denials.
DENIAL_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Client.UnauthorizedOperation",
    "UnauthorizedAccess", "UnauthorizedException", "AuthorizationError", "AuthorizationErrorException",
    "AuthorizationFailure", "AuthFailure", "Forbidden", "ForbiddenException", "NotAuthorized",
    "InsufficientPrivilegesException", "AccessDeniedFault"})
PENDING_CODES = frozenset({"HoopApprovalPending"})


@dataclass(slots=True)
class Event:
    time: float                      # epoch seconds
    session: str
    user: str                        # the session owner's subject (authenticated)
    label: str                       # what a rule's `users` matches: email, else subject
    service: str                     # botocore service name
    operation: str                   # API operation name
    actions: tuple[str, ...] = ()
    level: str = "Unknown"
    resources: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    region: str | None = None
    connection: str | None = None
    agent: str | None = None
    status: str = "ok"               # ok | error | denied | pending
    error_code: str | None = None
    record: str = ""                 # the record id (normalized)
    source: str = "gateway"          # gateway | client
    kind: str = "call"               # call | refusal | local
    matchable: Any = None            # (ApiCall, Context) for match-language rules, built once
    resolved: bool = True            # False: resources not derived yet (a client call; see resolve)


def resolve(ev: Event) -> Event:
    """Derive a client-reported call's resources from its parameters, the first time a rule needs
    them (~30 µs a call: only rules that match or count resources pay it)."""
    if not ev.resolved:
        ev.resources = _resources(ev.service, ev.operation, ev.params, ev.region)
        ev.resolved = True
    return ev


def parse_time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    text = value.strip().replace(" ", "T")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if "." in text:                  # at most microseconds for fromisoformat on 3.10
        head, _, tail = text.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        text = head + "." + tail[:min(digits, 6)] + tail[digits:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def status_of(effect: Any, http_status: Any, error_code: Any, blocked: Any = None) -> str:
    if effect == "deny" or blocked:
        return "denied"
    if isinstance(error_code, str) and error_code:
        if error_code in PENDING_CODES:
            return "pending"
        return "denied" if error_code in DENIAL_CODES else "error"
    if isinstance(http_status, int) and not isinstance(http_status, bool) and http_status >= 400:
        return "denied" if http_status == 403 else "error"
    return "ok"


@lru_cache(maxsize=4096)
def classify(service: str, operation: str) -> tuple[tuple[str, ...], str]:
    """(IAM actions, access level) of an API call by name (hoop's action index)."""
    from hoopcli.parse import call_for

    call = call_for(service, operation, {}, None)
    return tuple(call.actions), call.access_level


def _resources(service: str, operation: str, params: dict[str, Any], region: Any) -> tuple[str, ...]:
    from hoopcli.parse import call_for

    try:
        return tuple(str(r) for r in call_for(service, operation, params, region if isinstance(region, str) else None)
                     .resources)
    except Exception:   # a record's parameters are data: never let one break detection
        return ()


def _pascal(cli_operation: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in cli_operation.split("-"))


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def events_of(record: dict[str, Any], owner: str, label: str | None, received: float | None = None) -> list[Event]:
    """The events of one stored record. `owner`: the session's user (an api.call's `user`, a
    command record's uploader); `label`: their email or subject; `received`: when the server
    stored it (caps the record's own time)."""
    kind = record.get("type")
    when = parse_time(record.get("time"))
    if when is None:
        when = received or 0.0
    elif received is not None and when > received:
        when = received
    rid = str(record.get("id") or "").replace("-", "").lower()
    session, who = str(record.get("session_id") or ""), label or owner
    if kind == API_CALL:
        decision = record.get("decision") if isinstance(record.get("decision"), dict) else None
        effect = decision.get("effect") if decision else None
        status = status_of(effect, record.get("http_status"), record.get("error_code"))
        if decision is None and status == "ok":
            status = "error"        # refused before the policy could decide (could not be decoded)
        params = _dict(record.get("params"))
        return [Event(when, session, owner, who, service=str(record.get("service") or ""), operation=str(record.get("operation") or ""),
                      actions=_strs(record.get("actions")), level=str(record.get("access_level") or "Unknown"),
                      resources=_strs(record.get("resources")), params=params,
                      region=record.get("region") if isinstance(record.get("region"), str) else None,
                      connection=_str(record.get("connection")), agent=_str(record.get("agent")),
                      status=status, error_code=_str(record.get("error_code")), record=rid, source="gateway")]
    if kind == "command.result":
        out = []
        for call in record.get("api_calls") or []:
            if not isinstance(call, dict):
                continue
            service, operation = str(call.get("service") or ""), str(call.get("operation") or "")
            actions, level = classify(service, operation)
            params = _dict(call.get("params"))
            out.append(Event(when, session, owner, who, service=service, operation=operation, actions=actions, level=level,
                             params=params, resolved=False, status=status_of(None, call.get("http_status"), call.get("error_code"),
                                                             call.get("blocked")),
                             error_code=_str(call.get("error_code")), record=rid, source="client"))
        return out
    if kind == "command.start":
        decision = _dict(record.get("decision"))
        inv = _dict(record.get("invocation"))
        calls = [c for c in inv.get("api_calls") or [] if isinstance(c, dict)]
        local = bool(calls) and all(str(c.get("operation", "")).endswith("(local)") for c in calls)
        if decision.get("effect") != "deny" and not local:
            return []
        first = calls[0] if calls else {}
        operation = _pascal(str(inv.get("operation") or "")) if local else str(first.get("operation") or
                                                                               inv.get("operation") or "")
        return [Event(when, session, owner, who, service=str(first.get("service") or inv.get("service") or ""), operation=operation,
                      actions=_strs(inv.get("actions")), level=str(inv.get("access_level") or "Unknown"),
                      resources=_strs(inv.get("resources")), connection=_str(record.get("connection")),
                      agent=_str(record.get("agent")), status="denied" if decision.get("effect") == "deny" else "ok",
                      record=rid, source="client", kind="local" if local else "refusal")]
    return []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
