"""Wall time of Claude Code's PreToolUse hook, as Claude Code runs it (a new process before every
Bash command): the lean entry point `hoop-hook claude-code` (hoopcli.agents.hook_main) and the
`hoop hook claude-code` subcommand side by side, then the hook's own time in process.

    .venv/bin/python benchmarks/hook_latency.py [--runs 50] [--no-regular] [--baseline DIR]

HOOP_HOME is a temporary directory holding a cached server policy (the shipped default, as the
shim caches it after its first call) and, after the first run, bashlex's parser tables. The
interpreter may write bytecode (PYTHONDONTWRITEBYTECODE is removed) and one untimed run of each
command warms the caches. Every variant runs once per round, in turn, so load changes touch them
alike; the 1-minute load average is sampled each round. Two installs: the development virtualenv
(an editable install: setuptools' import finder runs in every process's `site`), and, unless
--no-regular, a regular install (a throwaway virtualenv whose .pth puts hoopcli's sources and the
dependencies on sys.path, with console scripts written as pip writes them), as users get from a
wheel. --baseline DIR adds `hoop hook claude-code` from another source tree (e.g. `git archive
HEAD | tar -x -C DIR`), installed the same regular way, to compare against. Printed: median, p95
and median CPU time (user + system) per payload and entry point, the bare interpreter and `hoop
--version` for scale; then `hoopcli.agents.hook.run` in process (its first call in a fresh
interpreter, imports included, and warm).
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
BIN = Path(PYTHON).parent

PAYLOADS = {
    "no aws (git, npm)": "git status --short && npm test -- --watch=false",
    "no aws, shell syntax (for, $f)": "for f in src/*.py; do wc -l \"$f\"; done | sort -n",
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


CONSOLE_SCRIPT = """#!{python}
import sys
from {module} import {attr}
if __name__ == '__main__':
    sys.argv[0] = sys.argv[0].removesuffix('.exe')
    sys.exit({attr}())
"""


def regular_install(where: Path, source: Path = ROOT) -> Path:
    """A virtualenv that imports hoopcli as a regular (wheel) install would: its sources and this
    virtualenv's dependencies on sys.path through a .pth file (no editable-install finder), and
    the `hoop` and `hoop-hook` console scripts as pip writes them. Returns its bin directory."""
    import sysconfig
    import venv

    venv.EnvBuilder(with_pip=False, symlinks=True).create(where)
    python = where / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "hoopcli-bench.pth").write_text(f"{source}\n{sysconfig.get_paths()['purelib']}\n",
                                                  encoding="utf-8")
    for name, target in (("hoop", "hoopcli.cli:main"), ("hoop-hook", "hoopcli.agents.hook_main:launch")):
        module, attr = target.split(":")
        script = where / "bin" / name
        script.write_text(CONSOLE_SCRIPT.format(python=python, module=module, attr=attr), encoding="utf-8")
        script.chmod(0o755)
    return where / "bin"


def variants(bin_dir: Path, label: str, env: dict[str, str], lean: bool = True) -> list[tuple[str, list[str], bytes]]:
    python, hoop, hook = str(bin_dir / "python"), str(bin_dir / "hoop"), str(bin_dir / "hoop-hook")
    rows = [(f"{label}: python -c pass", [python, "-c", "pass"], b""),
            (f"{label}: hoop --version", [hoop, "--version"], b"")]
    for name, command in PAYLOADS.items():
        rows.append((f"{label}: {name}: hoop hook claude-code", [hoop, "hook", "claude-code"], payload(command)))
        if lean:
            rows.append((f"{label}: {name}: hoop-hook claude-code", [hook, "claude-code"], payload(command)))
    for _name, argv, data in rows:
        one(argv, data, env)                  # bytecode, bashlex tables
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--no-regular", action="store_true", help="only the development virtualenv")
    parser.add_argument("--baseline", type=Path, help="another hoopcli source tree: its `hoop hook claude-code`")
    options = parser.parse_args()
    runs = options.runs
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "hoop-home"
        prepare_home(home)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HOOP_"))}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(HOOP_HOME=str(home), HOOP_SESSION_ID="ses_bench")
        rows = variants(BIN, "dev venv", env)
        if not options.no_regular:
            rows += variants(regular_install(Path(tmp) / "regular"), "regular install", env)
        if options.baseline:
            rows += variants(regular_install(Path(tmp) / "baseline", options.baseline.resolve()), "baseline", env,
                             lean=False)
        walls: dict[str, list[float]] = {name: [] for name, *_ in rows}
        cpus: dict[str, list[float]] = {name: [] for name, *_ in rows}
        loads = []
        print(f"/proc/loadavg before: {Path('/proc/loadavg').read_text().strip()}")
        for _ in range(runs):                 # round robin: load changes touch every row alike
            loads.append(os.getloadavg()[0])
            for name, argv, data in rows:
                wall, cpu = one(argv, data, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
        print(f"/proc/loadavg after:  {Path('/proc/loadavg').read_text().strip()}")
        print(f"{runs} runs each, 1-minute load average {min(loads):.1f}-{max(loads):.1f}")
        for name, *_ in rows:
            print(f"  {name:66} {summary(walls[name], cpus[name])}")

        first = [PYTHON, "-c", "import io, sys, time; t = time.perf_counter(); from hoopcli.agents.hook import run; "
                 "run(io.BytesIO(sys.stdin.buffer.read()), io.StringIO(), io.StringIO()); "
                 "print((time.perf_counter() - t) * 1000)"]
        for name in ("no aws (git, npm)", "aws review + deny"):
            cold = [float(subprocess.run(first, input=payload(PAYLOADS[name]), env=env, capture_output=True,
                                         check=True).stdout) for _ in range(min(runs, 20))]
            print(f"  {'in process, first call: ' + name:66} {summary(cold)}")
        os.environ.update(HOOP_HOME=str(home), HOOP_SESSION_ID="ses_bench")
        from hoopcli.agents.hook import run

        for name, command in PAYLOADS.items():
            data, samples = payload(command), []
            for _ in range(runs * 4):
                started = time.perf_counter()
                run(io.BytesIO(data), io.StringIO(), io.StringIO())
                samples.append((time.perf_counter() - started) * 1000)
            print(f"  {'in process, warm: ' + name:66} {summary(samples)}")


if __name__ == "__main__":
    main()
