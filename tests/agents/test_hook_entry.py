"""`hoop-hook claude-code` (hoopcli.agents.hook_main), the entry point Claude Code starts before
every Bash command: the same answers as `hoop hook claude-code`, failing closed, and a hot path
whose imports stay small (like tests/shim/test_hot_path_imports.py for the `aws` shim)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hoopcli.agents import hook_main
from tests.agents.test_hook import DENY_KEYS, answer, environ, home, payload

__all__ = ["home"]   # the fixture, shared with test_hook.py

LAUNCH = "from hoopcli.agents.hook_main import launch; launch()"


def _launch(data: bytes, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    full = {**env, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run([sys.executable, "-c", LAUNCH, *args], input=data, env=full, capture_output=True,
                          timeout=60)


def test_the_launcher_answers_as_the_hoop_command_does(home: Path) -> None:
    denied = _launch(payload("aws s3 ls | grep x && aws iam create-access-key --user-name ci"), environ(home),
                     "claude-code")
    assert (denied.returncode, denied.stdout.decode(), denied.stderr) == (0, answer("deny", DENY_KEYS), b"")
    for command in ("aws s3 ls", "npm test", "for f in *.py; do wc -l $f; done"):
        allowed = _launch(payload(command), environ(home), "claude-code")
        assert (allowed.returncode, allowed.stdout, allowed.stderr) == (0, b"", b""), command
    broken = _launch(b"\xff\xfe{", environ(home), "claude-code")
    assert (broken.returncode, broken.stdout, broken.stderr) == (
        2, b"", b"hoop: the hook input is not UTF-8; the tool call is blocked\n")
    empty = _launch(b"", environ(home), "claude-code")
    assert (empty.returncode, empty.stdout) == (2, b"")
    assert empty.stderr.startswith(b"hoop: the hook input is not JSON")
    closed = subprocess.run(["/bin/sh", "-c", f'exec "{sys.executable}" -c "{LAUNCH}" claude-code <&-'],
                            env={**environ(home), "PATH": os.environ.get("PATH", "")}, capture_output=True, timeout=60)
    assert (closed.returncode, closed.stdout, closed.stderr) == (
        2, b"", b"hoop: internal error in the hook (AttributeError); the tool call is blocked\n")


@pytest.mark.parametrize("args", [[], ["codex"], ["claude-code", "extra"]])
def test_wrong_arguments_block_the_call(home: Path, args: list[str]) -> None:
    """A misconfigured hook command blocks (exit 2) rather than letting every call through."""
    proc = _launch(payload("aws iam create-access-key --user-name ci"), environ(home), *args)
    assert (proc.returncode, proc.stdout, proc.stderr.decode()) == (2, b"", hook_main.USAGE + "\n")


def test_help() -> None:
    out = io.StringIO()
    assert hook_main.main(["--help"], io.BytesIO(), out, io.StringIO()) == 0
    assert out.getvalue() == hook_main.HELP


def test_a_broken_install_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hoopcli.agents.hook", None)     # `import` raises ModuleNotFoundError
    err = io.StringIO()
    assert hook_main.main(["claude-code"], io.BytesIO(payload("ls")), io.StringIO(), err) == 2
    assert err.getvalue() == "hoop: internal error in the hook (ModuleNotFoundError); the tool call is blocked\n"


def test_the_console_script(home: Path) -> None:
    """setup.cfg installs `hoop-hook` next to `hoop` (`make venv` reinstalls on a setup.cfg change)."""
    script = Path(sys.executable).with_name("hoop-hook")
    assert script.exists(), "no hoop-hook console script: reinstall hoopcli (make venv)"
    proc = subprocess.run([str(script), "claude-code"], input=payload("aws iam create-access-key --user-name ci"),
                          env={**environ(home), "PATH": os.environ.get("PATH", "")}, capture_output=True, timeout=60)
    assert (proc.returncode, proc.stdout.decode(), proc.stderr) == (0, answer("deny", DENY_KEYS), b"")


# What each kind of line may import beyond what the interpreter had loaded at start (site, and
# with an editable install setuptools' finder, load pathlib and more before any hoop code runs).
ALWAYS_FORBIDDEN = ["click", "hoopcli.cli", "rich", "requests", "keyring", "yaml", "platformdirs", "botocore",
                    "awscli", "boto3", "mcp", "hoopcli.shim", "hoopcli.runner", "hoopcli.client",
                    "hoopcli.policy.compiler", "inspect", "threading", "dataclasses"]
NO_AWS_FORBIDDEN = ["typing", "pathlib", "hoopcli.paths", "hoopcli.policy", "hoopcli.parse", "hoopcli.config",
                    "hoopcli.identity", "hashlib"]
LINES = [
    ("git status --short && npm test 2>&1 | tail -5", [*ALWAYS_FORBIDDEN, *NO_AWS_FORBIDDEN, "bashlex"]),
    ("for f in $(ls *.py); do wc -l \"$f\"; done", [*ALWAYS_FORBIDDEN, *NO_AWS_FORBIDDEN]),
    ("aws s3api list-buckets --query 'Buckets[].Name' | tr '\\t' '\\n'", [*ALWAYS_FORBIDDEN, "bashlex"]),
    ("for b in $(aws s3 ls); do aws s3 rb s3://$b; done", ALWAYS_FORBIDDEN),
]


@pytest.mark.parametrize("command,forbidden", LINES, ids=[line[0][:30] for line in LINES])
def test_what_the_hook_imports(home: Path, command: str, forbidden: list[str]) -> None:
    code = ("import io, json, sys; before = set(sys.modules)\n"
            "from hoopcli.agents.hook_main import main\n"
            "out = io.StringIO()\n"
            "code = main(['claude-code'], io.BytesIO(sys.argv[1].encode()), out, sys.stderr)\n"
            "print(json.dumps([code, out.getvalue(), sorted(set(sys.modules) - before)]))\n")
    for _run in range(2):          # the first call in a new HOOP_HOME writes bashlex's tables
        proc = subprocess.run([sys.executable, "-c", code, payload(command).decode()],
                              env={**environ(home), "PATH": os.environ.get("PATH", "")}, capture_output=True,
                              text=True, timeout=60, check=True)
    status, _answer, loaded = json.loads(proc.stdout)
    assert status == 0
    prefixes = tuple(f"{name}." for name in forbidden)
    assert [m for m in loaded if m in forbidden or m.startswith(prefixes)] == []


def test_the_cache_dir_is_the_layouts(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bashlex's tables go where Layout puts the cache, worked out only when bashlex is loaded."""
    from hoopcli.agents.hook import _CacheDir
    from hoopcli.paths import Layout

    assert os.fspath(_CacheDir({"HOOP_HOME": str(home)})) == str(Layout(home).cache_dir)
    monkeypatch.setenv("HOME", str(home.parent))
    assert os.fspath(_CacheDir({"HOOP_HOME": "~/elsewhere"})) == str(Layout.from_env({"HOOP_HOME": "~/elsewhere"})
                                                                      .cache_dir)
    monkeypatch.delenv("HOOP_HOME", raising=False)
    assert os.fspath(_CacheDir({})) == str(Layout.from_env({}).cache_dir)
