"""Detection figures: evaluation cost per ingested record with 100 rules, and detection latency
(record appended -> finding row stored) per shipped rule.

    .venv/bin/python benchmarks/detections.py [--records 50000] [--runs 40] [--database-url URL]

Prints:
  * evaluation: for a mix of gateway and client records (reads, writes, secrets, denials,
    errors, listings across services, many sessions and users), the cost of turning one stored
    record into events and feeding them to an engine holding the 7 shipped rules and 93 custom
    rules written in the policy's match language (counts, distinct values, outcomes, user
    scopes); per record p50 / p99 / max, with and without parsing the stored leaf JSON. The
    engine's memory is in-process here (first-secret-access's table is measured in the latency
    figures instead);
  * latency: a real server (create_app: migrated database, ledger writer, detector thread) on
    SQLite (or --database-url); per rule, `--runs` scripted sessions, each appending its calls
    as the gateway does and timing the call that meets the threshold from its submission to
    the finding row being readable; p50 / p95 / max per rule.
Targets (issue 16): evaluation <= 0.5 ms per record at p99 with 100 rules; a finding within 2 s
of the triggering call at p95. Figures go into docs/benchmarks.md under "## Detections".
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

SERVICES = ["s3", "ec2", "iam", "lambda", "dynamodb", "rds", "kms", "sqs", "sns", "cloudformation", "logs",
            "ecr", "ecs", "sts", "secretsmanager", "ssm", "route53", "cloudtrail", "guardduty"]
VERBS = ["Delete*", "Put*", "Create*", "Update*", "Get*", "List*", "Describe*", "Attach*", "Tag*", "Run*"]
OPS = [("s3", "GetObject", {"Bucket": "logs", "Key": "k"}), ("s3", "ListObjectsV2", {"Bucket": "logs"}),
       ("s3", "PutObject", {"Bucket": "data", "Key": "k"}), ("s3", "DeleteObject", {"Bucket": "prod-x", "Key": "k"}),
       ("ec2", "DescribeInstances", {}), ("ec2", "RunInstances", {"ImageId": "ami-1"}),
       ("iam", "ListRoles", {}), ("iam", "CreateUser", {"UserName": "u"}), ("lambda", "ListFunctions", {}),
       ("lambda", "UpdateFunctionCode", {"FunctionName": "api"}), ("dynamodb", "Query", {"TableName": "t"}),
       ("dynamodb", "PutItem", {"TableName": "t", "Item": {}}), ("kms", "Decrypt", {}), ("sqs", "SendMessage", {}),
       ("logs", "FilterLogEvents", {"logGroupName": "g"}), ("sts", "GetCallerIdentity", {}),
       ("secretsmanager", "GetSecretValue", {"SecretId": "app/db"}),
       ("ssm", "GetParameter", {"Name": "/app/key", "WithDecryption": True}), ("rds", "DescribeDBInstances", {}),
       ("cloudformation", "DescribeStacks", {}), ("ecr", "DescribeRepositories", {}), ("sns", "Publish", {})]


def custom_rules(n: int) -> str:
    rng = random.Random(100)
    lines = []
    for i in range(n):
        svc, verb = rng.choice(SERVICES), rng.choice(VERBS)
        match = f'{{actions: ["{svc}:{verb}"]}}'
        if i % 5 == 1:
            match = f'{{actions: ["{svc}:{verb}"], resources: ["arn:aws:{svc}:*:*:prod-*"]}}'
        elif i % 5 == 2:
            match = f'{{services: [{svc}], access_levels: [Write]}}'
        elif i % 7 == 3:
            match = f'{{actions: ["*:{verb}"], regions: [eu-west-1]}}'
        extra = ", distinct: operations" if i % 3 == 0 else ""
        outcome = rng.choice(["any", "succeeded", "failed", "denied"])
        lines.append(f"    - {{id: c{i}, match: {match}, count: {rng.randint(5, 200)}, window: {rng.choice([60, 300, 900])}, "
                     f"outcome: {outcome}, scope: {rng.choice(['session', 'user'])}{extra}}}")
    return "version: 1\ndetections:\n  rules:\n" + "\n".join(lines) + "\n"


def leaves(n: int) -> list[str]:
    """Stored leaves (canonical {record, receipt} JSON) of a busy org: gateway and client records."""
    from hoopcli.parse import call_for

    rng = random.Random(16)
    t0 = datetime(2026, 11, 27, tzinfo=timezone.utc)
    out = []
    for i in range(n):
        when = (t0 + timedelta(seconds=i * 0.05)).isoformat().replace("+00:00", "Z")
        user, session = f"user{rng.randrange(20)}", f"s{rng.randrange(200)}"
        svc, op, params = rng.choice(OPS)
        status, code = rng.choice([(200, None)] * 8 + [(404, "NoSuchKey"), (403, "AccessDenied")])
        receipt = {"received_at": when, "org": "default", "uploader": "hoop-gateway", "uploader_email": None}
        if i % 4 == 3:     # a client-reported result with two calls
            rec: dict[str, Any] = {
                "v": 1, "type": "command.result", "id": uuid.uuid4().hex, "command_id": uuid.uuid4().hex,
                "session_id": session + "c", "seq": i, "time": when, "exit_code": 0,
                "api_calls": [{"service": svc, "operation": op, "params": params, "http_status": status,
                               "error_code": code}] * 2}
            receipt["uploader"] = user
        else:
            api = call_for(svc, op, params, "us-east-1")
            rec = {"v": 1, "type": "api.call", "id": uuid.uuid4().hex, "session_id": session, "time": when,
                   "source": "gateway", "user": user, "user_email": f"{user}@example.com", "agent": "bench",
                   "connection": "default", "region": "us-east-1", "service": svc, "operation": op,
                   "access_level": api.access_level, "actions": list(api.actions),
                   "resources": list(api.resources), "params": params,
                   "decision": {"effect": "deny" if code == "AccessDenied" and i % 2 else "allow", "rule": "r"},
                   "http_status": status, "error_code": code, "response": None}
        out.append(json.dumps({"record": rec, "receipt": receipt}, sort_keys=True, separators=(",", ":")))
    return out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def evaluation(n: int) -> None:
    from hoopcli.detect.engine import Engine, InMemory
    from hoopcli.detect.events import events_of, parse_time
    from hoopcli.detect.rules import build
    from hoopcli.policy.compiler import compile_source

    compiled, _ = compile_source(custom_rules(93))
    rules = build(compiled["detections"])
    stored = leaves(n)
    engine = Engine(rules, InMemory())
    warm = Engine(rules, InMemory())
    for leaf in stored[:2000]:                                 # warm the action index and caches
        d = json.loads(leaf)
        for e in events_of(d["record"], "u", "u", None):
            warm.feed(e)
    with_parse: list[float] = []
    evaluate: list[float] = []
    cpu: list[float] = []
    fired = 0
    gc.collect()
    for leaf in stored:
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        data = json.loads(leaf)
        t1 = time.perf_counter_ns()
        rec, receipt = data["record"], data["receipt"]
        owner = rec.get("user") or receipt["uploader"]
        for e in events_of(rec, owner, owner, parse_time(receipt["received_at"])):
            fired += len(engine.feed(e))
        t2 = time.perf_counter_ns()
        cpu.append((time.thread_time_ns() - c0) / 1e6)
        with_parse.append((t2 - t0) / 1e6)
        evaluate.append((t2 - t1) / 1e6)
    print(f"evaluation, {len(rules)} rules ({sum(r.shipped for r in rules)} shipped), {n} records "
          f"({fired} triggers, {engine.stats()['windows']} live windows):")
    for name, xs in (("wall: events + engine", evaluate), ("wall: leaf JSON + events + engine", with_parse),
                     ("CPU: leaf JSON + events + engine", cpu)):
        print(f"  {name:34} p50 {pct(xs, 50) * 1000:6.1f} µs  p99 {pct(xs, 99) * 1000:7.1f} µs  "
              f"max {max(xs) * 1000:8.1f} µs  mean {statistics.fmean(xs) * 1000:6.1f} µs")


SCRIPTS: dict[str, Any] = {
    "mass-secret-reads": lambda i: ([("secretsmanager", "GetSecretValue", {"SecretId": f"s{i}-{k}"}, "allow", 200, None)
                                     for k in range(19)],
                                    ("secretsmanager", "GetSecretValue", {"SecretId": f"s{i}-last"}, "allow", 200, None)),
    "first-secret-access": lambda i: ([], ("secretsmanager", "GetSecretValue", {"SecretId": f"new-{i}"}, "allow", 200, None)),
    "credential-minting": lambda i: ([("s3", "ListBuckets", {}, "allow", 200, None)],
                                     ("sts", "AssumeRole", {"RoleArn": "arn:aws:iam::1:role/x"}, "allow", 200, None)),
    "defence-evasion": lambda i: ([("s3", "ListBuckets", {}, "allow", 200, None)],
                                  ("cloudtrail", "StopLogging", {"Name": "t"}, "deny", None, "AccessDenied")),
    "policy-probing": lambda i: ([("iam", "CreateUser", {"UserName": "u"}, "deny", None, "AccessDenied")] * 4,
                                 ("iam", "CreateUser", {"UserName": "v"}, "deny", None, "AccessDenied")),
    "error-rate-spike": lambda i: ([("s3", "GetObject", {"Bucket": "b", "Key": "k"}, "allow", 404, "NoSuchKey")] * 19,
                                   ("s3", "GetObject", {"Bucket": "b", "Key": "z"}, "allow", 404, "NoSuchKey")),
    "enumeration-burst": lambda i: ([(svc, op, {}, "allow", 200, None) for svc, op in (
        ("s3", "ListBuckets"), ("ec2", "DescribeInstances"), ("iam", "ListUsers"), ("lambda", "ListFunctions"),
        ("rds", "DescribeDBInstances"), ("dynamodb", "ListTables"), ("sqs", "ListQueues"), ("sns", "ListTopics"),
        ("kms", "ListKeys"))], ("ecr", "DescribeRepositories", {}, "allow", 200, None)),
}


def latency(runs: int, database_url: str | None) -> None:
    import logging

    from sqlalchemy import select

    from hoopcli.parse import call_for
    from hoopcli.server.app import create_app
    from hoopcli.server.ledger.calls import append_api_calls, gateway_record
    from hoopcli.server.ledger.checkpoints import SigningKey
    from hoopcli.server.settings import load_settings
    from hoopcli.server.store.detections import Finding

    logging.getLogger("hoopcli.server.detections").setLevel(logging.ERROR)   # one warning per finding
    home = Path(tempfile.mkdtemp(prefix="hoop-bench-det-"))
    policy = home / "policy.yaml"
    policy.write_text("version: 1\n")       # the shipped rules with their defaults
    settings = load_settings(env={}, home=str(home), policy_file=str(policy),
                             database_url=database_url or f"sqlite:///{home / 'hoop.db'}")
    app = create_app(settings)
    db, key = app.state.db, SigningKey.load_or_create(home)
    time.sleep(2.0)                                                 # the detector's warm-up

    def record(session: str, when: datetime, call: tuple[Any, ...], user: str) -> dict[str, Any]:
        svc, op, params, effect, status, code = call
        api = call_for(svc, op, params, "us-east-1")
        return gateway_record(session_id=session, service=svc, operation=op, decision={"effect": effect, "rule": "r"},
                              time=when, user=user, user_email=f"{user}@example.com", region="us-east-1",
                              access_level=api.access_level, actions=api.actions, resources=api.resources,
                              params=params, http_status=status, error_code=code)

    print(f"latency, record appended -> finding stored ({db.dialect}), {runs} runs per rule:")
    for rule, script in SCRIPTS.items():
        if rule == "first-secret-access":     # fires once a user is past the learning period: none here
            policy.write_text("version: 1\ndetections:\n  shipped:\n    first-secret-access: {learning: 0}\n")
        elif policy.read_text() != "version: 1\n":
            policy.write_text("version: 1\n")
        times = []
        for i in range(-1, runs):              # run -1 warms up (after a policy switch the engine replays)
            session, user = f"bench-{rule}-{i + 1}", f"{rule}-u{i + 1}"
            when = datetime.now(timezone.utc) - timedelta(seconds=30)
            before, last = script(i)
            recs = [record(session, when + timedelta(milliseconds=10 * k), c, user) for k, c in enumerate(before)]
            if recs:
                append_api_calls(db, key, "default", recs).result(timeout=30)
            trigger = record(session, when + timedelta(seconds=1), last, user)
            t0 = time.perf_counter()
            append_api_calls(db, key, "default", [trigger]).result(timeout=30)
            while True:
                with db.session() as s:
                    found = s.scalar(select(Finding.rule).where(Finding.session_id == session,
                                                                Finding.rule == rule).limit(1))
                if found is not None:
                    break
                if time.perf_counter() - t0 > 10:
                    raise SystemExit(f"{rule}: no finding after 10 s")
                time.sleep(0.001)
            with db.session() as s:    # exactly that finding: the session raised nothing else
                raised = list(s.scalars(select(Finding.rule).where(Finding.session_id == session)))
            assert raised == [rule], (rule, raised)
            if i >= 0:
                times.append((time.perf_counter() - t0) * 1000)
        print(f"  {rule:22} p50 {pct(times, 50):7.1f} ms  p95 {pct(times, 95):7.1f} ms  max {max(times):7.1f} ms")
    app.state.detector.stop()
    db.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--database-url")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HOOP_HOME", tempfile.mkdtemp(prefix="hoop-bench-home-"))
    print(f"# {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}; {' '.join(sys.argv)}")
    evaluation(args.records)
    if not args.skip_latency:
        latency(args.runs, args.database_url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
