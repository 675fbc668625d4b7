"""What a policy's detections would raise for a sample of commands (`hoop policy test`).

Each command becomes its API calls, one event each, `interval` seconds after the previous
command, in one session of the user the test runs as; a call the policy denies is a denied
event, every other call is taken to have succeeded (no AWS answer exists in a test).
first-secret-access starts with an empty memory, so it fires only when its `learning` is 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hoopcli.detect.engine import Engine, InMemory
from hoopcli.detect.events import Event
from hoopcli.detect.rules import build

SESSION = "policy-test"
START = 1_800_000_000.0


def _pascal(cli_operation: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in cli_operation.split("-"))


def events_for(number: int, invocation: Any, decision: Any, ctx: Any, when: float) -> list[Event]:
    user = getattr(ctx, "user", None) or "policy-test-user"
    effects = [c.get("effect") for c in getattr(decision, "calls", ()) or ()]
    out = []
    for i, call in enumerate(invocation.api_calls):
        local = call.operation.endswith("(local)")
        effect = effects[i] if i < len(effects) else decision.effect
        out.append(Event(when, SESSION, user, user, service=call.service,
                         operation=_pascal(invocation.operation or "") if local else call.operation,
                         actions=tuple(call.actions), level=call.access_level, resources=tuple(call.resources),
                         params=dict(call.params), region=invocation.globals.region or getattr(ctx, "region", None),
                         connection=getattr(ctx, "connection", None), agent=getattr(ctx, "agent", None),
                         status="denied" if effect == "deny" else "ok", record=f"line-{number}",
                         source="client", kind="local" if local else "call"))
    return out


def simulate(section: dict[str, Any] | None, commands: Iterable[tuple[int, Any, Any]], ctx: Any,
             interval: float = 1.0) -> dict[int, list[dict[str, Any]]]:
    """{line number: [the detections that line raises]} for (line, invocation, decision) in order."""
    engine = Engine(build(section), InMemory())
    out: dict[int, list[dict[str, Any]]] = {}
    for k, (number, invocation, decision) in enumerate(commands):
        for ev in events_for(number, invocation, decision, ctx, START + k * interval):
            for t in engine.feed(ev):
                out.setdefault(number, []).append({
                    "rule": t.rule.id, "severity": t.rule.severity, "action": t.rule.action,
                    "summary": t.summary()})
    return out
