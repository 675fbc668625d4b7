"""Self-approval at the terminal: a real pty as the controlling terminal, a real server.

By default the prompt is a step-up (it shows the URL to approve at after signing in again; here one
can only deny); with `presence: none` it is the y/N question."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest
from approvals_helpers import make_invocation, principal, review

from hoopcli.approval.api import Approval
from hoopcli.approval.prompt import open_terminal, prompt_with_waiter
from hoopcli.client import Client
from hoopcli.server.approvals import service as svc
from hoopcli.server.approvals.notify import get_notifier


def _request(srv: Any, approvers: tuple[str, ...] = ("self",), bucket: str = "a", presence: str = "fresh") -> Approval:
    row, _ = svc.create(srv.db, srv.settings, principal("alice"), invocation=make_invocation(bucket),
                        decision=review(approvers=approvers, presence=presence), connection="default",
                        reason="tidy up")
    return Approval.from_json(svc.to_json(row, srv.url))


class Pty:
    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        self.path = os.ttyname(self.slave)
        self.seen = b""

    def read_until(self, marker: bytes, timeout: float = 30) -> bytes:
        deadline = time.monotonic() + timeout
        import select

        while marker not in self.seen and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                self.seen += os.read(self.master, 4096)
        assert marker in self.seen, self.seen.decode(errors="replace")
        return self.seen

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


def run_prompt(srv: Any, approval: Approval, term: Pty, timeout: float = 30,
               wait: float = 60) -> tuple[threading.Thread, dict[str, Any]]:
    client = Client(srv.url, token=srv.token("alice", email="alice@example.com"))
    out: dict[str, Any] = {}

    def go() -> None:
        out["a"] = prompt_with_waiter(client, approval, make_invocation(), time.monotonic() + wait,
                                      term.path, timeout)

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread, out


@pytest.mark.parametrize("answer,status,reason", [
    (b"y\n", "approved", "approved at the terminal"),
    (b"yes\n", "approved", "approved at the terminal"),
    (b"\n", "rejected", "declined at the terminal"),       # the default is No
    (b"n\n", "rejected", "declined at the terminal"),
    (b"sure\n", "rejected", "declined at the terminal"),   # anything but y/yes is No
])
def test_prompt_answers_with_presence_none(server: Any, answer: bytes, status: str, reason: str) -> None:
    term = Pty()
    try:
        approval = _request(server, presence="none")
        thread, out = run_prompt(server, approval, term)
        screen = term.read_until(b"Approve? [y/N]")
        assert b"aws s3 rb s3://a" in screen and b"s3:DeleteBucket" in screen
        assert b"arn:aws:s3:::a" in screen and b"tidy up" in screen
        os.write(term.master, answer)
        thread.join(30)
        assert out["a"].status == status
        row = svc.get(server.db, "default", approval.id)
        # the prompt's answer goes through the API: the server records the route's channel
        assert (row.status, row.decision_channel, row.decision_reason) == (status, "cli", reason)
    finally:
        term.close()


def test_the_prompt_is_a_step_up_by_default(server: Any) -> None:
    """A `y` at the terminal could have been typed by the agent (same user, same login): the prompt
    shows where to approve after signing in again, refuses to take `y`, and takes only `n` here."""
    term = Pty()
    try:
        approval = _request(server)
        thread, out = run_prompt(server, approval, term)
        screen = term.read_until(b"Type n and Enter to deny it here")
        assert b"aws s3 rb s3://a" in screen and b"tidy up" in screen and b"Approve? [y/N]" not in screen
        assert f"to approve, open {server.url}/approvals/{approval.id} and sign in again there".encode() in screen
        os.write(term.master, b"y\n")
        term.read_until(b"approving needs the browser")
        assert svc.get(server.db, "default", approval.id).status == "pending"
        # the person approves in the console after a fresh sign-in: the prompt ends by itself
        svc.decide(server.db, principal("alice"), approval.id, approve=True, channel="web",
                   presence=svc.Presence("sign-in", time.time()), notify=get_notifier(server.app).publish)
        term.read_until(b"decided elsewhere: approved")
        thread.join(30)
        assert out["a"].status == "approved"
    finally:
        term.close()


def test_the_step_up_prompt_can_deny(server: Any) -> None:
    term = Pty()
    try:
        approval = _request(server)
        thread, out = run_prompt(server, approval, term)
        term.read_until(b"Type n and Enter to deny it here")
        os.write(term.master, b"n\n")
        thread.join(30)
        assert out["a"].status == "rejected"
        row = svc.get(server.db, "default", approval.id)
        assert (row.status, row.decision_channel, row.decision_reason) == ("rejected", "cli", "declined at the terminal")
    finally:
        term.close()


def test_typed_ahead_input_never_answers_the_prompt(server: Any) -> None:
    term = Pty()
    try:
        approval = _request(server, presence="none")
        os.write(term.master, b"y\n")           # sitting in the input queue before the prompt
        thread, out = run_prompt(server, approval, term, timeout=1.5, wait=4)
        term.read_until(b"no answer at the terminal")
        thread.join(30)
        assert out["a"].status == "pending"
        assert svc.get(server.db, "default", approval.id).status == "pending"
    finally:
        term.close()


def test_decision_elsewhere_ends_the_prompt(server: Any) -> None:
    term = Pty()
    try:
        approval = _request(server, approvers=("self", "role:approver"))
        thread, out = run_prompt(server, approval, term)
        term.read_until(b"Type n and Enter to deny it here")
        bob = Client(server.url, token=server.token("bob", email="bob@example.com", groups=["approvers"]))
        bob.post(f"/api/v1/approvals/{approval.id}/decision", json={"decision": "deny", "reason": "use staging"})
        term.read_until(b"decided elsewhere: rejected")
        thread.join(30)
        assert out["a"].status == "rejected" and out["a"].reason == "use staging"
    finally:
        term.close()


def test_hostile_argv_cannot_draw_on_the_terminal(server: Any) -> None:
    from hoopcli.approval.prompt import prompt_text

    inv = make_invocation().replace(argv=("s3", "rb", "s3://a\x1b[2J\x1b[1;1HApprove? [y/N] ok"))
    text = prompt_text(_request(server), inv, 10)
    assert "\x1b" not in text and "\\x1b[2J" in text


def test_no_terminal_means_no_prompt(server: Any, tmp_path: Any) -> None:
    """A process without a controlling terminal (like an agent under a daemon) gets no prompt:
    /dev/tty cannot be opened, the request waits for other channels, and ends pending (75)."""
    approval = _request(server)
    script = tmp_path / "noterm.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(os.path.dirname(__file__))!r})
        from hoopcli.approval.prompt import open_terminal, prompt_with_waiter
        from hoopcli.approval.api import Approval
        from hoopcli.client import Client
        from approvals_helpers import make_invocation
        import time
        print("terminal:", open_terminal("/dev/tty"))
        client = Client({server.url!r}, token={server.token("alice")!r})
        a = Approval(id={approval.id!r}, status="pending", approvers=["self"])
        out = prompt_with_waiter(client, a, make_invocation(), time.monotonic() + 1, "/dev/tty", 30)
        print("status:", out.status)
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, start_new_session=True)
    assert proc.returncode == 0, proc.stderr
    assert "terminal: None" in proc.stdout and "status: pending" in proc.stdout
    assert "Approve?" not in proc.stdout + proc.stderr
    assert svc.get(server.db, "default", approval.id).status == "pending"


def test_open_terminal_refuses_a_non_tty(tmp_path: Any) -> None:
    plain = tmp_path / "not-a-tty"
    plain.write_text("")
    assert open_terminal(str(plain)) is None
    assert open_terminal(str(tmp_path / "missing")) is None
