"""Self-approval on the controlling terminal (`/dev/tty`), never on the agent's pipes.

The prompt is offered only when the rule says `approvers: self` and a terminal can be opened. It
shows the command, actions and resources; while it waits, a background long-poll watches the
server, so a decision made on another channel (CLI, Slack, web) ends the prompt at once.

By default (`presence: fresh`) it is a step-up, like the device flow: it shows the request and
the URL to approve it at, where the person signs in again (or uses a passkey). A y/N answer
typed here could as well have been typed by the agent, which runs as the same user with the same
stored login; so here one can only deny. With `presence: none` it is the old y/N question (the
default answer is No), a guard against mistakes, not against a hostile agent. Stdlib only.
"""

from __future__ import annotations

import os
import select
import shlex
import threading
import time
from typing import Any

from hoopcli.approval.api import Approval, _decide, wait_for
from hoopcli.errors import HoopError


def _printable(text: str) -> str:
    """Terminal-safe text: control characters (escape sequences in a hostile argv) shown as \\xNN."""
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


def open_terminal(path: str) -> int | None:
    """A read/write fd on the controlling terminal, or None when there is no terminal."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None
    if not os.isatty(fd):
        os.close(fd)
        return None
    return fd


def step_up(approval: Approval) -> bool:
    """Does approving this request need the browser (a fresh sign-in or a passkey)?"""
    return approval.presence != "none"


def prompt_text(approval: Approval, invocation: Any, timeout: float) -> str:
    argv = " ".join(shlex.quote(a) for a in ("aws", *invocation.argv))
    lines = [
        "",
        f"hoop: this command needs approval ({approval.id})",
        f"  command:   {_printable(argv)}",
        f"  actions:   {_printable(', '.join(invocation.actions) or '-')}",
        f"  resources: {_printable(', '.join(invocation.resources) or '-')}",
    ]
    if approval.justification:
        lines.append(f"  reason:    {_printable(approval.justification)}")
    if step_up(approval):
        lines += [
            f"  to approve, open {approval.url or 'the hoop console'} and sign in again there",
            "  (or use your passkey); your stored login cannot approve it, since an agent running",
            "  as you holds it too",
            f"Type n and Enter to deny it here (waiting {timeout:.0f}s here, then for other approvers): ",
        ]
        return "\r\n".join(lines)
    if approval.url:
        lines.append(f"  also decidable at {approval.url}")
    lines.append(f"Approve? [y/N] (no answer in {timeout:.0f}s leaves it to other approvers): ")
    return "\r\n".join(lines)


def _write(fd: int, text: str) -> None:
    try:
        os.write(fd, text.encode("utf-8", "replace"))
    except OSError:
        pass


def _read_answer(fd: int, until: float, done: threading.Event) -> str | None:
    """One line from the terminal, or None on timeout / when `done` is set first."""
    buf = b""
    while time.monotonic() < until and not done.is_set():
        try:
            ready, _, _ = select.select([fd], [], [], 0.1)
        except (OSError, ValueError):
            return None
        if not ready:
            continue
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            return None
        if not chunk:
            return None
        buf += chunk
        if b"\n" in buf or b"\r" in buf:
            return buf.splitlines()[0].decode("utf-8", "replace") if buf.strip() else ""
    return None


def prompt_with_waiter(client: Any, approval: Approval, invocation: Any, deadline: float,
                       tty: str, timeout: float) -> Approval:
    """Prompt on `tty` while long-polling the server; return the approval as it then stands."""
    fd = open_terminal(tty)
    if fd is None:
        return approval          # no terminal: no prompt; other channels decide
    result: dict[str, Approval] = {}
    done = threading.Event()
    stop = threading.Event()

    def watch() -> None:
        try:
            result["a"] = wait_for(client, approval, deadline, stop=stop)
        except HoopError:
            pass
        finally:
            done.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        try:
            import termios

            termios.tcflush(fd, termios.TCIFLUSH)   # typed-ahead input never answers the prompt
        except (ImportError, OSError):
            pass
        _write(fd, prompt_text(approval, invocation, timeout))
        until = min(deadline, time.monotonic() + timeout)
        answer = _read_answer(fd, until, done)
        while answer is not None and step_up(approval) and answer.strip().lower() not in ("n", "no"):
            _write(fd, f"hoop: approving needs the browser: {approval.url or 'the hoop console'} "
                       "(type n and Enter to deny): ")
            answer = _read_answer(fd, until, done)
        if answer is None:
            if done.is_set() and "a" in result and result["a"].status != "pending":
                _write(fd, f"\r\nhoop: decided elsewhere: {result['a'].status}\r\n")
                return result["a"]
            _write(fd, "\r\nhoop: no answer at the terminal; still waiting for other approvers\r\n")
        else:
            approve = answer.strip().lower() in ("y", "yes")
            reason = "approved at the terminal" if approve else "declined at the terminal"
            decided = _decide(client, approval, approve, reason)
            stop.set()
            return decided
    finally:
        os.close(fd)
    watcher.join(timeout=max(0.0, deadline - time.monotonic()) + 30)
    return result.get("a", approval)
