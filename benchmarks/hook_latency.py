"""Wall time of `hoop hook claude-code`, the PreToolUse hook Claude Code runs before every Bash
command, as Claude Code runs it (a new process per call) and in process.

    .venv/bin/python benchmarks/hook_latency.py [--runs 50]

HOOP_HOME is a temporary directory holding a cached server policy (the shipped default, as the
shim caches it after its first call) and, after the first run, bashlex's parser tables. The
interpreter may write bytecode (PYTHONDONTWRITEBYTECODE is removed) and one untimed run warms
the caches. Every variant runs once per round, in turn, so load changes touch them alike.
Printed: median, p95 and median CPU time (user + system) per payload for the `hoop` console
script and `python -m hoopcli` (also without the editable install's site hook, as from a
wheel), the bare interpreter and `hoop --version` for scale; then the in-process time of
`hoopcli.agents.hook.run` (its first call in a fresh interpreter, imports included, and warm).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
HOOP = str(Path(PYTHON).with_name("hoop"))

PAYLOADS = {
    "no aws (git, npm)": "git status --short && npm test -- --watch=false",
    "aws allowed (pipeline)": "aws s3api list-buckets --query 'Buckets[].Name' --output text | tr '\\t' '\\n'",
    "aws review + deny": ("for k in $(aws s3 ls s3://logs/ | awk '{print $4}'); do aws s3 rm \"s3://logs/$k\"; "
                          "done && aws iam create-access-key --user-name ci"),
    "bash -c, heredoc": "bash -c \"aws s3 ls\" && cat <<'EOF' > notes.md\naws s3 rm s3://x/y\nEOF",
}


def payload(command: str) -> bytes:
    return json.dumps({"session_id": "bench", "transcript_path": "/tmp/t.jsonl", "cwd": str(ROOT),
                       "permission_mode": "default", "hook_event_name": "PreToolUse", "tool_name": "Bash",
                       "tool_input": {"command": command}, "tool_use_id": "toolu_bench"}).encode()


def prepare_home(home: Path) -> None:
    from hoopcli.paths import Layout
    from hoopcli.policy.cache import write_cache
    from hoopcli.policy.compiler import compile_source

    source = (ROOT / "hoopcli" / "policy" / "data" / "default.yaml").read_bytes()
    compiled, _warnings = compile_source(source, "default.yaml")
    write_cache(Layout(home), compiled, etag='"bench"', version=1, checked_at=time.time(),
                server="http://127.0.0.1:8009")


def one(argv: list[str], data: bytes, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) milliseconds of one run of `argv`."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(argv, input=data, env=env, capture_output=True, check=False)
    wall = (time.perf_counter() - started) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.returncode == 0, proc.stderr
    return wall, (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000


def summary(samples: list[float], cpu: list[float] | None = None) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    text = f"median {statistics.median(ordered):6.1f} ms   p95 {p95:6.1f} ms"
    return text + (f"   CPU median {statistics.median(cpu):6.1f} ms" if cpu else "")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "hoop-home"
        prepare_home(home)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HOOP_"))}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(HOOP_HOME=str(home), HOOP_SESSION_ID="ses_bench")
        hook_cmd = [HOOP, "hook", "claude-code"] if os.path.exists(HOOP) else [PYTHON, "-m", "hoopcli", "hook",
                                                                                  "claude-code"]
        one(hook_cmd, payload("aws s3 ls"), env)                # bytecode, bashlex tables
        # As from a regular (non-editable) install: no site hook of the editable install, hoopcli
        # and site-packages on sys.path directly.
        import sysconfig

        plain = {**env, "PYTHONPATH": os.pathsep.join([str(ROOT), sysconfig.get_paths()["purelib"]])}
        review = payload(PAYLOADS["aws review + deny"])
        module = [PYTHON, "-m", "hoopcli", "hook", "claude-code"]
        variants = [("python -c pass", [PYTHON, "-c", "pass"], b"", env),
                    ("hoop --version", [*hook_cmd[:-2], "--version"], b"", env),
                    *[("hoop hook: " + name, hook_cmd, payload(command), env) for name, command in PAYLOADS.items()],
                    ("python -m hoopcli (aws review)", module, review, env),
                    ("same, no editable-install hook", [PYTHON, "-S", *module[1:]], review, plain)]
        walls: dict[str, list[float]] = {name: [] for name, *_ in variants}
        cpus: dict[str, list[float]] = {name: [] for name, *_ in variants}
        loads = []
        for _ in range(runs):                 # round robin: load changes touch every row alike
            loads.append(os.getloadavg()[0])
            for name, argv, data, variant_env in variants:
                wall, cpu = one(argv, data, variant_env)
                walls[name].append(wall)
                cpus[name].append(cpu)
        print(f"{runs} runs each, load average {min(loads):.1f}-{max(loads):.1f}")
        for name, *_ in variants:
            print(f"  {name:32} {summary(walls[name], cpus[name])}")

        first = [PYTHON, "-c", "import io, sys, time; t = time.perf_counter(); from hoopcli.agents.hook import run; "
                 "run(io.BytesIO(sys.stdin.buffer.read()), io.StringIO(), io.StringIO()); "
                 "print((time.perf_counter() - t) * 1000)"]
        cold = [float(subprocess.run(first, input=payload(PAYLOADS["aws review + deny"]), env=env, capture_output=True,
                                     check=True).stdout) for _ in range(min(runs, 20))]
        print(f"  {'in process, first call':32} {summary(cold)}")
        os.environ.update(HOOP_HOME=str(home), HOOP_SESSION_ID="ses_bench")
        from hoopcli.agents.hook import run

        for name, command in PAYLOADS.items():
            data, samples = payload(command), []
            for _ in range(runs * 4):
                started = time.perf_counter()
                run(io.BytesIO(data), io.StringIO(), io.StringIO())
                samples.append((time.perf_counter() - started) * 1000)
            print(f"  {'in process: ' + name:32} {summary(samples)}")


if __name__ == "__main__":
    main()
