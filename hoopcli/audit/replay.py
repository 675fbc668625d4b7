"""Replay a recorded session: play it back in the terminal with its original timing, or re-run
its (masked) commands through the real AWS CLI against a sandbox endpoint and compare.

Input is a session timeline as served by GET /api/v1/sessions/{id} (`commands`: start/result
pairs, and gateway calls: entries of kind "api.call", shown in playback as `# gateway: ...`
lines and left out of a re-run, which runs CLI commands). Nothing here talks to hoop's server or
to real AWS: `rerun` refuses AWS endpoints and uses dummy credentials with every
credential/config file switched off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from hoopcli.errors import UsageError

DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing", "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_PAGER": "", "AWS_DEFAULT_OUTPUT": "json",
}
STRIP_WITH_VALUE = {"--endpoint-url", "--profile", "--region"}
STRIP_FLAGS = {"--debug", "--no-verify-ssl"}


def _when(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _clean(text: str) -> str:
    """Recorded text is shown, never interpreted: drop terminal control sequences."""
    return "".join(ch if ch.isprintable() or ch in "\n\t" else "?" for ch in text)


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def play(commands: list[dict[str, Any]], *, speed: float = 1.0, max_wait: float | None = 10.0,
         out: IO[str] | None = None, sleep: Callable[[float], None] | None = None) -> int:
    """Print each command as it happened, waiting the recorded gaps divided by `speed`
    (speed 0: no waits). Returns the number of commands shown."""
    if speed < 0:
        raise UsageError("--speed must be >= 0")
    out = out or sys.stdout
    sleep = sleep or _sleep

    def wait(seconds: float | None) -> None:
        if speed == 0 or seconds is None or seconds <= 0:
            return
        d = seconds / speed
        sleep(min(d, max_wait) if max_wait is not None else d)

    last_end: float | None = None
    for c in commands:
        if c.get("kind") == "api.call":
            call = c.get("call") or {}
            t0 = _when(call.get("time"))
            if last_end is not None and t0 is not None:
                wait(t0 - last_end)
            out.write(f"# gateway: {_clean(call_text(call))}\n")
            out.flush()
            if t0 is not None:
                last_end = max(last_end or t0, t0)
            continue
        start, result = c.get("start") or {}, c.get("result") or {}
        t0 = _when(start.get("time")) or _when(result.get("started_at"))
        if last_end is not None and t0 is not None:
            wait(t0 - last_end)
        argv = " ".join(str(a) for a in start.get("argv") or ["?"])
        out.write(f"$ aws {_clean(argv)}\n")
        dec = start.get("decision") or {}
        if dec.get("effect") in ("review", "deny"):
            rule = f" (rule {dec.get('rule')})" if dec.get("rule") else ""
            out.write(f"# hoop: {dec['effect']}{rule}{': ' + _clean(str(dec.get('reason'))) if dec.get('reason') else ''}\n")
        appr = start.get("approval") or {}
        if appr.get("approver"):
            out.write(f"# hoop: approved by {_clean(str(appr['approver']))} via {appr.get('channel')}\n")
        out.flush()
        if not result:
            out.write("# hoop: incomplete (no result was recorded)\n")
            last_end = t0
            continue
        t1 = _when(result.get("ended_at")) or _when(result.get("time"))
        if t0 is not None and t1 is not None:
            wait(t1 - t0)
        for name in ("stdout", "stderr"):
            stream = result.get(name) or {}
            text = _clean(str(stream.get("text") or ""))
            if text:
                out.write(text if text.endswith("\n") else text + "\n")
            if stream.get("truncated"):
                out.write(f"# hoop: {name} truncated (original {stream.get('size')} bytes)\n")
        out.write(f"# exit {result.get('exit_code')}\n")
        out.flush()
        last_end = t1 if t1 is not None else t0
    return len(commands)


def call_text(call: Mapping[str, Any]) -> str:
    """One line for a gateway call: `s3.DeleteObject allow -> 204 (12.5 ms)`."""
    dec = call.get("decision") or {}
    rule = f" (rule {dec.get('rule')})" if dec.get("rule") and dec.get("effect") != "allow" else ""
    err = f" {call.get('error_code')}" if call.get("error_code") else ""
    ms = call.get("duration_ms")
    took = f" ({ms} ms)" if isinstance(ms, (int, float)) and not isinstance(ms, bool) else ""
    return (f"{call.get('service')}.{call.get('operation')} {dec.get('effect')}{rule} -> "
            f"{call.get('http_status')}{err}{took}")


def shape(value: Any) -> Any:
    """The structure of a JSON document: dict keys (recursively), list item shapes, type names."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        shapes: list[Any] = []
        for item in value:
            s = shape(item)
            if s not in shapes:
                shapes.append(s)
        return shapes
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


def same_shape(a: Any, b: Any) -> bool:
    """Do two JSON documents have the same key structure? Lists are compared by the union of
    their items' shapes; an empty list or a null matches anything (no data to compare)."""
    if a is None or b is None:
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_shape(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        if not a or not b:
            return True
        return same_shape(_merged(a), _merged(b))
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    return shape(a) == shape(b)


def _merged(items: list[Any]) -> Any:
    dicts = [i for i in items if isinstance(i, dict)]
    if dicts and len(dicts) == len(items):
        keys: dict[str, Any] = {}
        for d in dicts:
            for k, v in d.items():
                keys[k] = v if keys.get(k) is None else keys[k]
        return keys
    return items[0]


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return None


def sandbox_argv(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in STRIP_WITH_VALUE:
            skip = "=" not in a
            continue
        if a in STRIP_FLAGS:
            continue
        out.append(a)
    return out


def check_endpoint(url: str) -> str:
    parsed = urllib.parse.urlparse(url)
    host = (parsed.hostname or "").lower()
    if parsed.scheme not in ("http", "https") or not host:
        raise UsageError(f"--endpoint-url must be an http(s) URL, not {url!r}")
    if host.endswith(("amazonaws.com", "amazonaws.com.cn", ".aws")):
        raise UsageError("--endpoint-url must be a sandbox (such as moto_server), not an AWS endpoint")
    return url


@dataclass
class RerunResult:
    seq: Any
    argv: list[str]
    original_exit: int | None
    exit_code: int | None
    exit_match: bool | None
    shape_match: bool | None     # None: not comparable (not JSON on either side)
    note: str = ""


def aws_command(env: Mapping[str, str]) -> list[str]:
    real = env.get("HOOP_REAL_AWS")
    return [real] if real else [sys.executable, "-m", "awscli"]


def rerun(commands: list[dict[str, Any]], endpoint_url: str, *, region: str | None = None,
          env: Mapping[str, str] | None = None, timeout: float = 120.0) -> list[RerunResult]:
    endpoint_url = check_endpoint(endpoint_url)
    env = os.environ if env is None else env
    base = {k: v for k, v in env.items() if not k.startswith(("AWS_", "HOOP_"))}
    base.update(DUMMY_ENV)
    results: list[RerunResult] = []
    for c in commands:
        if c.get("kind") == "api.call":
            continue                    # a gateway call is not a CLI command to re-run
        start, result = c.get("start") or {}, c.get("result") or {}
        argv = [str(a) for a in start.get("argv") or []]
        seq = start.get("seq", result.get("seq"))
        original = result.get("exit_code") if result else None
        if not argv:
            results.append(RerunResult(seq, argv, original, None, None, None, "no recorded argv"))
            continue
        if (start.get("decision") or {}).get("effect") == "deny":
            results.append(RerunResult(seq, argv, original, None, None, None, "skipped: denied originally"))
            continue
        inv = start.get("invocation") or {}
        run_env = dict(base, AWS_DEFAULT_REGION=region or inv.get("region") or "us-east-1")
        cmd = aws_command(env) + sandbox_argv(argv) + ["--endpoint-url", endpoint_url]
        try:
            proc = subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            results.append(RerunResult(seq, argv, original, None, False, None, f"timed out after {timeout:.0f}s"))
            continue
        except OSError as exc:
            raise UsageError(f"cannot run the AWS CLI ({cmd[0]}): {exc.strerror}") from exc
        before = _json_or_none(str((result.get("stdout") or {}).get("text") or "")) if result else None
        after = _json_or_none(proc.stdout)
        if before is None and after is None:
            shape_ok: bool | None = None
        else:
            shape_ok = before is not None and after is not None and same_shape(before, after)
        note = "" if result else "original incomplete"
        if (result.get("stdout") or {}).get("truncated"):
            shape_ok, note = None, "original output truncated"
        results.append(RerunResult(seq, argv, original, proc.returncode,
                                   None if original is None else proc.returncode == original,
                                   shape_ok, note))
    return results
