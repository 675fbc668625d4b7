"""Policy figures: decision time on a cached 200-rule policy, and cache load time.

    .venv/bin/python benchmarks/policy_eval.py [--rules 200] [--rounds 2000]

Prints:
  * loading the compiled cache (read, verify SHA-256, parse JSON, build matchers) — what the
    shim pays on every `aws` call — median and p95 over many loads, in a warm process;
  * a cold process: `python -c "import hoopcli.policy; load_cached(...)"` minus a bare
    `python -c pass`, median of 15 runs (imports included);
  * one decision (`Policy.evaluate`) for a mix of invocations (reads, writes, permissions
    changes, denied actions, multi-call commands, parsed from real command lines when the
    parser can), median and p99 per invocation.
Targets (issue 4): decision <= 1 ms, cache load <= 5 ms. Figures go into docs/benchmarks.md
under "## Policy".
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hoopcli.parse.invocation import (
    LIST,
    PERMISSIONS,
    READ,
    WRITE,
    ApiCall,
    GlobalOptions,
    Invocation,
)
from hoopcli.paths import Layout
from hoopcli.policy import Context, load_cached, write_cache
from hoopcli.policy.compiler import compile_source

SERVICES = ["s3", "ec2", "iam", "lambda", "dynamodb", "rds", "kms", "sqs", "sns", "cloudformation",
            "logs", "ecr", "ecs", "sts", "secretsmanager", "ssm", "route53", "cloudtrail", "guardduty"]
VERBS = ["Delete*", "Put*", "Create*", "Update*", "Get*", "List*", "Describe*", "Attach*", "Tag*", "Run*"]


def make_policy(n: int) -> str:
    """A realistic large policy: per-service deny/review/allow rules with resources, params,
    groups, connections, regions and agents (no rule ever shadows another exactly)."""
    from hoopcli.policy.compiler import known_actions
    from hoopcli.policy.glob import Glob

    known = known_actions()

    def real(svc: str, verb: str) -> bool:   # only patterns some CLI command can produce
        g = Glob(f"{svc}:{verb}", fold=True)
        return not known or any(g.match(a) for a in known.get(svc, ()))

    lines = ["version: 1", "rules:"]
    for i in range(n):
        svc = SERVICES[i % len(SERVICES)]
        verbs = [v for v in VERBS if real(svc, v)] or ["*"]
        verb = verbs[(i // len(SERVICES)) % len(verbs)]
        effect = ("deny", "review", "allow")[i % 3]
        match = [f"actions: ['{svc}:{verb}']"]
        kind = i % 7
        if kind == 1:
            match.append(f"resources: ['arn:aws:{svc}:*:*:prod-{i}-*', '*team-{i}*']")
        elif kind == 2:
            match.append(f"params: {{Bucket: ['prod-{i}-*']}}")
        elif kind == 3:
            match.append(f"groups: [team-{i}, sre]")
        elif kind == 4:
            match.append(f"connections: ['prod-{i}*']")
        elif kind == 5:
            match.append(f"regions: ['eu-*', 'ap-south-{i % 3}']")
        elif kind == 6:
            match.append(f"agents: ['bot-{i}-*']")
        if i % 11 == 0:   # some rules without an action (apply to every service)
            match = ["access_levels: [Write]", f"agents: ['rogue-{i}-*']"]
        lines.append(f"  - id: rule-{i}")
        lines.append(f"    effect: {effect}")
        lines.append(f"    match: {{{', '.join(match)}}}")
        if effect == "deny":
            lines.append(f"    reason: generated rule {i}")
    return "\n".join(lines) + "\n"


def invocations() -> list[Invocation]:
    out: list[Invocation] = []
    lines = ["s3api list-buckets", "s3api get-object --bucket prod-7-data --key a/b out.txt",
             "s3api put-object --bucket team-x --key k", "ec2 describe-instances --region eu-west-1",
             "iam attach-role-policy --role-name r --policy-arn arn:aws:iam::aws:policy/X",
             "lambda invoke --function-name f out.json", "dynamodb delete-table --table-name t",
             "cloudformation delete-stack --stack-name s", "kms schedule-key-deletion --key-id k",
             "sts get-caller-identity", "logs describe-log-groups", "secretsmanager get-secret-value --secret-id s"]
    try:
        from hoopcli.parse import parse

        for line in lines:
            try:
                out.append(parse(line.split()))
            except Exception:  # the parser's own tests cover it
                pass
    except ImportError:
        pass
    g = GlobalOptions(region="us-east-1")
    out += [
        Invocation(("x",), "api", "s3", "cp", g, {}, (
            ApiCall("s3", "GetObject", ("s3:GetObject",), READ, ("arn:aws:s3:::src/k",)),
            ApiCall("s3", "PutObject", ("s3:PutObject",), WRITE, ("arn:aws:s3:::prod-3-dst/k",), {"Bucket": "prod-3-dst"}))),
        Invocation(("x",), "api", "iam", "put-role-policy", g, {}, (
            ApiCall("iam", "PutRolePolicy", ("iam:PutRolePolicy",), PERMISSIONS, ("arn:aws:iam::1:role/r",)),)),
        Invocation(("x",), "api", "ec2", "describe-instances", g, {}, (
            ApiCall("ec2", "DescribeInstances", ("ec2:DescribeInstances",), LIST),)),
    ]
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def cold_load(home: Path) -> tuple[float, float, float]:
    """In fresh processes that already imported what the shim imports before deciding (paths,
    config, invocation, client): the time of `import hoopcli.policy` + `load_cached(...)`,
    measured inside the process. Returns (median wall, max wall, median CPU) in ms, 15 processes."""
    env = dict(os.environ, HOOP_HOME=str(home))
    code = ("import time, hoopcli.paths, hoopcli.config, hoopcli.parse.invocation, hoopcli.client\n"
            "t, c = time.perf_counter(), time.process_time()\n"
            "from hoopcli.policy import load_cached\n"
            "p = load_cached(hoopcli.paths.Layout.from_env())\n"
            "assert p.source == 'cache'\n"
            "print((time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000)\n")
    wall, cpu = [], []
    for _ in range(15):
        out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
        w, c = out.stdout.split()
        wall.append(float(w))
        cpu.append(float(c))
    return statistics.median(wall), max(wall), statistics.median(cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2000)
    args = ap.parse_args()

    compiled, warnings = compile_source(make_policy(args.rules))
    assert len(compiled["rules"]) == args.rules
    with tempfile.TemporaryDirectory() as tmp:
        layout = Layout(Path(tmp)).ensure()
        write_cache(layout, compiled, etag='"bench"', version=1, checked_at=time.time())
        size = layout.policy_cache.stat().st_size
        loads, load_cpu = [], []
        for _ in range(300):
            t, c = time.perf_counter(), time.process_time()
            pol = load_cached(layout)
            loads.append((time.perf_counter() - t) * 1000)
            load_cpu.append((time.process_time() - c) * 1000)
        assert pol.source == "cache"
        cold = cold_load(Path(tmp))

    invs = invocations()
    ctx = Context(user="alice@example.com", groups=("dev",), agent="claude", connection="default",
                  region="us-east-1")
    first: list[float] = []
    per: list[float] = []
    effects: dict[str, int] = {}
    for _ in range(max(1, args.rounds // len(invs))):
        for inv in invs:
            t = time.perf_counter()
            d = pol.evaluate(inv, ctx)
            per.append((time.perf_counter() - t) * 1000)
            effects[d.effect] = effects.get(d.effect, 0) + 1
    # a first decision in a fresh process (no memo) is what the shim pays: measure that too
    first_cpu: list[float] = []
    for _ in range(5):
        for inv in invs:
            p2 = type(pol)(compiled)   # rules are built lazily: this includes building them
            t, c = time.perf_counter(), time.process_time()
            p2.evaluate(inv, ctx)
            first.append((time.perf_counter() - t) * 1000)
            first_cpu.append((time.process_time() - c) * 1000)

    print(f"machine: {platform.machine()} {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} cpus")
    print(f"policy: {args.rules} rules, compiled cache {size / 1024:.1f} KiB, {len(warnings)} warnings")
    print(f"cache load (read + sha256 + json + build), warm process: median {statistics.median(loads):.3f} ms, "
          f"p95 {pct(loads, 0.95):.3f} ms; CPU median {statistics.median(load_cpu):.3f} ms")
    print(f"cold process (after the shim's own imports): import hoopcli.policy + load_cached: "
          f"median {cold[0]:.2f} ms, max {cold[1]:.2f} ms; CPU median {cold[2]:.2f} ms (15 processes)")
    print(f"decision per invocation ({len(invs)} kinds, {len(per)} decisions, effects {effects}): "
          f"median {statistics.median(per) * 1000:.1f} us, p99 {pct(per, 0.99) * 1000:.1f} us")
    print(f"first decision per invocation on a freshly loaded policy: median "
          f"{statistics.median(first) * 1000:.1f} us, max {max(first) * 1000:.1f} us; "
          f"CPU median {statistics.median(first_cpu) * 1000:.1f} us, max {max(first_cpu) * 1000:.1f} us")


if __name__ == "__main__":
    main()
