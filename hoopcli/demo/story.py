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

# The same agent's work as an SDK script: it runs under `hoop run` on the gateway connection and
# never sees a key AWS issued. A reviewed call answers HoopApprovalPending; it waits and retries.
SDK_SCRIPT = """\
import time, boto3
from botocore.config import Config
from botocore.exceptions import ClientError

def call(client, op, **kw):
    print(f"\\n>>> boto3 {client.meta.service_model.service_name}.{op}({kw or ''})", flush=True)
    for _ in range(20):
        try:
            out = getattr(client, op)(**kw)
            out.pop("ResponseMetadata", None)
            print(out, flush=True)
            return
        except ClientError as exc:
            err = exc.response["Error"]
            print(f"{err['Code']}: {err['Message']}", flush=True)
            if err["Code"] != "HoopApprovalPending":
                return
            time.sleep(1)

cfg = Config(retries={"max_attempts": 1})
s3, sm, iam = (boto3.client(n, config=cfg) for n in ("s3", "secretsmanager", "iam"))
call(s3, "list_objects_v2", Bucket="demo-logs")
call(sm, "get_secret_value", SecretId="demo/db-password")
call(s3, "delete_object", Bucket="demo-logs", Key="2026/11/27/app.log")
call(iam, "create_access_key", UserName="demo-user")
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

        rule("4. An SDK script through the gateway")
        sdk = workdir / "agent_sdk.py"
        sdk.write_text(SDK_SCRIPT, encoding="utf-8")
        say("`hoop run --connection gateway --agent sdk-agent -- python agent_sdk.py`: boto3 talks to "
            "hoop's gateway with a session credential; the server decides, masks and records each request")
        stop = threading.Event()
        approver = threading.Thread(target=approve_when_asked, args=(stack, say, stop), daemon=True)
        approver.start()
        sdk_run = subprocess.run([sys.executable, "-m", "hoopcli", "run", "--connection", "gateway", "--agent",
                               "sdk-agent", "--", sys.executable, str(sdk)], env=env, cwd=workdir,
                              capture_output=True, text=True, timeout=300)
        stop.set()
        approver.join(timeout=10)
        for line in (sdk_run.stdout + sdk_run.stderr).splitlines():
            console.print(Text("sdk   │ ", style="dim") + Text(line), highlight=False, emoji=False)
        if SECRET_VALUE in sdk_run.stdout + sdk_run.stderr:
            raise StackError("the planted secret reached the SDK script: masking failed")
        say(f"sdk-agent finished with exit {sdk_run.returncode}: read allowed, secret masked, delete held "
            "until the approver said yes, access key denied")

        rule("5. The auditor looks")
        hoop(stack, "dev", "sync", check=False)
        sessions = hoop(stack, "auditor", "sessions", "list", "--json")
        listing = json.loads(sessions.stdout or "[]")
        console.print(hoop(stack, "auditor", "sessions", "list").stdout, highlight=False, markup=False, emoji=False)
        for entry in listing[:2]:       # the SDK script's session (gateway records), then the shim's
            sid = str(entry.get("id") or entry.get("session_id"))
            console.print(hoop(stack, "auditor", "sessions", "show", sid).stdout, highlight=False, markup=False, emoji=False)
        verify = hoop(stack, "auditor", "sessions", "verify", check=False)
        console.print(verify.stdout + verify.stderr, highlight=False, markup=False, emoji=False)

    rule("Done")
    say(f"everything above ran on loopback and was removed; {time.monotonic() - started:.0f} s")
    return 0 if verify.returncode == 0 else 1
