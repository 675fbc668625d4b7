"""The detection engine on its own: windows, thresholds, one trigger per window, determinism,
events from each record type, and the gateway's calls never counted twice."""

from __future__ import annotations

import random
from typing import Any

from hoopcli.detect.engine import Engine, InMemory
from hoopcli.detect.events import Event, events_of
from hoopcli.detect.rules import build, secret_name


def ev(t: float, service: str, operation: str, *, session: str = "s1", user: str = "alice", status: str = "ok",
       params: dict[str, Any] | None = None, level: str = "Read", source: str = "gateway", record: str = "",
       actions: tuple[str, ...] = ()) -> Event:
    return Event(t, session, user, user + "@example.com", service, operation,
                 actions=actions or (f"{service}:{operation}",), level=level, params=params or {}, status=status,
                 record=record or f"r{t}", source=source)


def feed(engine: Engine, events: list[Event]) -> list[tuple[str, str, int]]:
    return [(t.rule.id, t.event.record, t.count) for e in events for t in engine.feed(e)]


def test_distinct_secrets_over_a_sliding_window() -> None:
    engine = Engine(build(None))
    reads = [ev(i * 40.0, "secretsmanager", "GetSecretValue", params={"SecretId": f"s{i}"}) for i in range(25)]
    # 40 s apart: 10 minutes hold 15 reads, never 20
    assert feed(engine, reads) == []
    fast = [ev(2000 + i, "secretsmanager", "GetSecretValue", params={"SecretId": f"t{i}"}) for i in range(20)]
    assert feed(engine, fast) == [("mass-secret-reads", "r2019", 20)]


def test_user_scope_spans_sessions_and_session_scope_does_not() -> None:
    engine = Engine(build(None))
    reads = [ev(i, "secretsmanager", "GetSecretValue", session=f"s{i % 4}", params={"SecretId": f"x{i}"})
             for i in range(20)]
    probes = [ev(100 + i, "iam", "CreateUser", session=f"p{i}", status="denied") for i in range(6)]
    assert feed(engine, reads + probes) == [("mass-secret-reads", "r19", 20)]


def test_one_trigger_per_window_then_again_after_it() -> None:
    engine = Engine(build(None))
    calls = [ev(t, "sts", "AssumeRole") for t in (0, 10, 599, 600, 700, 1300)]
    assert [r for _rule, r, _n in feed(engine, calls)] == ["r0", "r600", "r1300"]


def test_out_of_order_and_too_old_events() -> None:
    engine = Engine(build(None))
    got = feed(engine, [ev(1000, "iam", "CreateUser", status="denied"),
                        ev(100, "iam", "CreateUser", status="denied", record="old"),     # outside the window
                        ev(990, "iam", "CreateUser", status="denied"),
                        ev(995, "iam", "CreateUser", status="denied"),
                        ev(999, "iam", "CreateUser", status="denied")])
    assert got == []
    assert feed(engine, [ev(1001, "iam", "CreateUser", status="denied")]) == [("policy-probing", "r1001", 5)]


def test_a_window_stays_in_time_order_when_calls_finish_out_of_order() -> None:
    """Concurrent gateway calls are recorded as they finish, stamped when they arrived: most
    arrive slightly out of order. The window keeps time order and drops by time."""
    from hoopcli.detect.engine import _Window

    rng = random.Random(7)
    window = _Window()
    times = [i * 0.01 - rng.random() * 0.05 for i in range(3000)]
    for i, t in enumerate(times):
        assert window.add(t, f"v{i % 3}", f"r{i}", 10.0)
    kept = [item[0] for item in window.items]
    assert kept == sorted(kept) and kept[0] >= max(times) - 10.0
    assert sum(window.counts.values()) == len(kept)


def test_error_rate_needs_both_the_count_and_the_ratio() -> None:
    engine = Engine(build(None))
    ok = [ev(i, "s3", "GetObject") for i in range(30)]
    errors = [ev(30 + i, "s3", "GetObject", status="error") for i in range(25)]
    assert feed(engine, ok + errors[:24]) == []                       # 24 errors of 54: 44%
    got = feed(engine, errors[24:] + [ev(56 + i, "s3", "GetObject", status="error") for i in range(6)])
    assert got == [("error-rate-spike", "r60", 30)]                    # 30 of 60 = 50%


def test_pending_calls_are_neither_errors_nor_minted_credentials() -> None:
    engine = Engine(build(None))
    got = feed(engine, [ev(i, "sts", "AssumeRole", status="pending") for i in range(30)])
    assert got == []


def test_client_reports_of_calls_the_gateway_saw_are_not_counted_twice() -> None:
    engine = Engine(build(None))
    gateway = [ev(i, "iam", "CreateUser", status="denied") for i in range(3)]
    client = [ev(10 + i, "iam", "CreateUser", status="denied", source="client") for i in range(3)]
    assert feed(engine, gateway + client) == []
    refusal = Event(20, "s1", "alice", "alice", "iam", "CreateUser", status="denied", record="x", source="client",
                    kind="refusal")                                    # denied by the shim: never reached the gateway
    engine.feed(refusal)
    assert feed(engine, [ev(21, "iam", "CreateUser", status="denied")]) == [("policy-probing", "r21", 5)]


def test_first_seen_with_learning_and_horizon() -> None:
    rules = build({"shipped": {"first-secret-access": {"learning": 3600, "days": 1}}})
    engine = Engine(rules, InMemory())
    read = "secretsmanager", "GetSecretValue"
    assert feed(engine, [ev(0, *read, params={"SecretId": "a"})]) == []                   # learning
    assert feed(engine, [ev(4000, *read, params={"SecretId": "b"})]) == [("first-secret-access", "r4000", 1)]
    assert feed(engine, [ev(5000, *read, params={"SecretId": "b"})]) == []
    assert feed(engine, [ev(5000 + 86401, *read, params={"SecretId": "b"})]) == [
        ("first-secret-access", "r91401", 1)]                                               # not read for a day


def test_same_events_same_triggers() -> None:
    rng = random.Random(7)
    ops = [("secretsmanager", "GetSecretValue"), ("s3", "ListBuckets"), ("iam", "CreateUser"), ("ec2", "DescribeVpcs"),
           ("sts", "AssumeRole")]
    events = []
    for i in range(3000):
        svc, op = rng.choice(ops)
        events.append(ev(i * 0.3, f"{svc}{rng.randrange(3)}" if op == "DescribeVpcs" else svc, op,
                         session=f"s{rng.randrange(4)}", status=rng.choice(["ok", "ok", "error", "denied"]),
                         params={"SecretId": f"x{rng.randrange(40)}"}, level="List" if op.startswith("Desc") else "Read",
                         record=f"r{i}"))
    first = feed(Engine(build(None)), events)
    assert first and feed(Engine(build(None)), events) == first


def test_custom_rule_in_the_match_language() -> None:
    rules = build({"rules": [{"id": "prod-deletes", "match": {"actions": ["s3:Delete*"], "resources": ["arn:aws:s3:::prod-*"]},
                              "count": 2, "window": 60, "distinct": None, "outcome": "succeeded", "scope": "user",
                              "severity": "high", "action": "hold"}]})
    engine = Engine(rules)
    prod = Event(1, "s1", "u", "u", "s3", "DeleteObject", actions=("s3:DeleteObject",), resources=("arn:aws:s3:::prod-x/k",),
                 record="a")
    dev = Event(2, "s1", "u", "u", "s3", "DeleteObject", actions=("s3:DeleteObject",), resources=("arn:aws:s3:::dev/k",),
                record="b")
    failed = Event(3, "s2", "u", "u", "s3", "DeleteObject", actions=("s3:DeleteObject",),
                   resources=("arn:aws:s3:::prod-y/k",), status="error", record="c")
    again = Event(4, "s2", "u", "u", "s3", "DeleteObject", actions=("s3:DeleteObject",),
                  resources=("arn:aws:s3:::prod-y/k",), record="d")
    assert feed(engine, [prod, dev, failed, again]) == [("prod-deletes", "d", 2)]
    assert engine.rules[-1].prefixes == frozenset({"s3"})


def test_events_of_each_record_type() -> None:
    call = {"v": 1, "type": "api.call", "id": "AB-CD", "session_id": "s", "time": "2026-11-27T04:00:00.1234567Z",
            "user": "alice", "service": "s3", "operation": "DeleteObject", "actions": ["s3:DeleteObject"],
            "access_level": "Write", "decision": {"effect": "allow"}, "http_status": 403, "error_code": None}
    [e] = events_of(call, "alice", "alice@example.com", received=1e12)
    assert (e.status, e.record, e.level, e.source) == ("denied", "abcd", "Write", "gateway")
    assert abs(e.time - 1795752000.123456) < 1e-3
    [late] = events_of({**call, "time": "2999-01-01T00:00:00Z"}, "alice", None, received=5.0)
    assert late.time == 5.0                                             # never later than its arrival
    start = {"type": "command.start", "id": "1", "session_id": "s", "time": "2026-11-27T04:00:00Z",
             "decision": {"effect": "deny"}, "invocation": {"service": "iam", "operation": "create-access-key",
                                                            "actions": ["iam:CreateAccessKey"],
                                                            "api_calls": [{"service": "iam", "operation": "CreateAccessKey"}]}}
    [d] = events_of(start, "alice", None)
    assert (d.service, d.operation, d.status, d.kind) == ("iam", "CreateAccessKey", "denied", "refusal")
    assert events_of({**start, "decision": {"effect": "allow"}}, "alice", None) == []
    local = {**start, "decision": {"effect": "allow"}, "invocation": {
        "service": "rds", "operation": "generate-db-auth-token",
        "api_calls": [{"service": "rds", "operation": "rds generate-db-auth-token (local)"}]}}
    [tok] = events_of(local, "alice", None)
    assert (tok.operation, tok.kind, tok.status) == ("GenerateDbAuthToken", "local", "ok")
    assert feed(Engine(build(None)), [tok]) == [("credential-minting", "1", 1)]
    result = {"type": "command.result", "id": "2", "session_id": "s", "time": "2026-11-27T04:00:01Z", "api_calls": [
        {"service": "ssm", "operation": "GetParameters", "params": {"Names": ["/a"], "WithDecryption": True},
         "http_status": 200},
        {"service": "s3", "operation": "PutObject", "blocked": "denied by rule x"}]}
    got = events_of(result, "alice", None)
    assert [(g.operation, g.status, g.level) for g in got] == [("GetParameters", "ok", "Read"),
                                                               ("PutObject", "denied", "Write")]
    assert events_of({"type": "something.else"}, "a", None) == []


def test_secret_names() -> None:
    assert secret_name("arn:aws:secretsmanager:us-east-1:1:secret:prod/db-AbC123") == "prod/db"
    assert secret_name("arn:aws:secretsmanager:us-east-1:1:secret:prod/db") == "prod/db"
    assert secret_name("arn:aws:ssm:us-east-1:1:parameter/prod/key") == "/prod/key"
    assert secret_name("plain") == "plain" and secret_name("") is None and secret_name(3) is None


def test_memory_stays_bounded() -> None:
    engine = Engine(build(None))
    for i in range(20_000):
        engine.feed(ev(i * 1.0, "s3", "ListBuckets", session=f"s{i}", level="List"))
    engine.sweep()
    assert engine.stats()["windows"] < 2_000
