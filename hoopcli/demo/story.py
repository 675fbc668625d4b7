"""The scripted story `hoop demo` tells, against a throwaway local stack."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from rich.text import Text

from hoopcli.demo.stack import Stack, StackError, local_stack

SECRET_VALUE = "demo-db-password-" + "7Qm2xKp9"   # planted in the sandbox; must never be shown

AGENT_SCRIPT = """\
run() { printf '\\n$ aws %s\\n' "$*"; aws "$@"; printf '[exit %s]\\n' "$?"; }
run s3 ls
run secretsmanager get-secret-value --secret-id demo/db-password
run s3 rb s3://demo-scratch
run iam create-access-key --user-name demo-user
"""


def seed(stack: Stack) -> None:
    import boto3

    kw = dict(endpoint_url=stack.moto_url, region_name="us-east-1",
              aws_access_key_id="testing", aws_secret_access_key="testing")
    s3 = boto3.client("s3", **kw)
    for bucket in ("demo-logs", "demo-scratch"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="demo-logs", Key="2026/11/27/app.log", Body=b"started\n")
    boto3.client("secretsmanager", **kw).create_secret(Name="demo/db-password", SecretString=SECRET_VALUE)
    boto3.client("iam", **kw).create_user(UserName="demo-user")


def hoop(stack: Stack, user: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = stack.client_env(user)
    env["COLUMNS"] = "120"
    proc = subprocess.run([sys.executable, "-m", "hoopcli", *args], env=env, capture_output=True,
                          text=True, timeout=120)
    if check and proc.returncode != 0:
        raise StackError(f"`hoop {' '.join(args)}` as {user} failed ({proc.returncode}): "
                         f"{proc.stderr.strip()[-400:]}")
    return proc


def approve_when_asked(stack: Stack, say: Callable[[str], None], stop: threading.Event) -> None:
    """The second person: watches `hoop approvals list` and approves the agent's request."""
    while not stop.is_set():
        listing = hoop(stack, "approver", "approvals", "list", "--json", check=False)
        try:
            pending = [a for a in json.loads(listing.stdout or "[]") if a.get("status") == "pending"]
        except ValueError:
            pending = []
        if pending:
            approval_id = str(pending[0]["id"])
            say(f"[bold]approver[/] sees request {approval_id} and runs "
                f"`hoop approvals approve {approval_id} --reason \"scratch bucket, agreed\"`")
            hoop(stack, "approver", "approvals", "approve", approval_id, "--reason", "scratch bucket, agreed")
            return
        time.sleep(0.5)


def run_story(console: Any) -> int:
    started = time.monotonic()

    def say(text: str) -> None:
        console.print(text)

    def rule(title: str) -> None:
        console.rule(f"[bold cyan]{title}")

    rule("1. A local stack")
    with local_stack() as stack:
        say(f"moto_server (the AWS sandbox) at {stack.moto_url}; hoop server at {stack.server_url} "
            "(SQLite, built-in development identity provider, default policy)")
        seed(stack)
        say("sandbox seeded: buckets demo-logs and demo-scratch, secret demo/db-password, IAM user demo-user")

        rule("2. People log in (OIDC device flow)")
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=3) as pool:   # three people, three browsers
            logins = list(pool.map(stack.login, ("dev", "approver", "auditor")))
        for info in logins:
            say(f"[bold]{info['user']}[/]: opened {info['verification_uri']}, entered code "
                f"[bold]{info['user_code']}[/], signed in: logged in")

        rule("3. An agent runs under hoop")
        workdir = stack.root / "agent"
        workdir.mkdir()
        script = workdir / "agent.sh"
        script.write_text(AGENT_SCRIPT, encoding="utf-8")
        env = stack.client_env("dev")
        env.update({"HOOP_APPROVAL_WAIT": "90", "HOOP_NO_PROMPT": "1"})
        say("`hoop run --agent demo-agent -- sh agent.sh`: the shim goes first on PATH, "
            "no AWS keys in the agent's environment")
        proc = subprocess.Popen([sys.executable, "-m", "hoopcli", "run", "--agent", "demo-agent",
                                 "--reason", "clean up the scratch bucket", "--", "sh", str(script)],
                                env=env, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        stop = threading.Event()
        approver = threading.Thread(target=approve_when_asked, args=(stack, say, stop), daemon=True)
        approver.start()
        transcript: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            transcript.append(line)
            console.print(Text("agent │ ", style="dim") + Text(line.rstrip()), highlight=False, emoji=False)
        code = proc.wait(timeout=300)
        stop.set()
        approver.join(timeout=10)
        output = "".join(transcript)
        if SECRET_VALUE in output:
            raise StackError("the planted secret reached the agent: masking failed")
        say(f"agent finished with exit {code}; the secret value never reached it "
            "(it saw a \\[masked:...] marker instead)")

        rule("4. The auditor looks")
        hoop(stack, "dev", "sync", check=False)
        sessions = hoop(stack, "auditor", "sessions", "list", "--json")
        listing = json.loads(sessions.stdout or "[]")
        console.print(hoop(stack, "auditor", "sessions", "list").stdout, highlight=False, markup=False, emoji=False)
        if listing:
            sid = str(listing[0].get("id") or listing[0].get("session_id"))
            console.print(hoop(stack, "auditor", "sessions", "show", sid).stdout, highlight=False, markup=False, emoji=False)
        verify = hoop(stack, "auditor", "sessions", "verify", check=False)
        console.print(verify.stdout + verify.stderr, highlight=False, markup=False, emoji=False)

    rule("Done")
    say(f"everything above ran on loopback and was removed; {time.monotonic() - started:.0f} s")
    return 0 if verify.returncode == 0 else 1
