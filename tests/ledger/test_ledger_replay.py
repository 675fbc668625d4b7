"""`hoop sessions replay ID --endpoint-url`: re-run recorded commands with the real AWS CLI
against a real moto_server and compare exit codes and output shapes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from ledger_factory import command

from hoopcli.audit import replay
from hoopcli.errors import UsageError


def real_run(endpoint: str, argv: list[str]) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(replay.DUMMY_ENV, AWS_DEFAULT_REGION="us-east-1")
    p = subprocess.run([sys.executable, "-m", "awscli", *argv, "--endpoint-url", endpoint],
                       env=env, capture_output=True, text=True, timeout=120, check=False)
    return p.returncode, p.stdout


def test_rerun_against_moto(sqlite_ledger, login, hoop, moto_endpoint) -> None:
    ledger = sqlite_ledger
    recs = []
    seq = 0
    for argv in (["sts", "get-caller-identity"], ["s3api", "list-buckets"],
                 ["s3api", "head-bucket", "--bucket", "hoop-replay-missing"]):
        code, out = real_run(moto_endpoint, argv)
        recs += command("s-r", seq, t=seq, argv=argv, stdout=out, exit_code=code)
        seq += 2
    # recorded as exit 0 with another shape: both differences must show
    recs += command("s-r", seq, t=seq, argv=["sts", "get-caller-identity", "--endpoint-url",
                                             "https://sts.amazonaws.com"],
                    stdout='{"Something": "else"}', exit_code=3)
    recs += command("s-r", seq + 2, t=seq + 2, argv=["iam", "delete-role", "--role-name", "x"],
                    effect="deny", exit_code=77, stdout="")
    ledger.post(recs)
    login(ledger)
    code, out, err = hoop("sessions", "replay", "s-r", "--endpoint-url", moto_endpoint, "--json")
    assert code == 1, err
    res = json.loads(out)
    assert [(r["exit_match"], r["shape_match"]) for r in res] == [
        (True, True), (True, True), (True, None), (False, False), (None, None)]
    assert res[2]["exit_code"] != 0
    assert res[4]["note"] == "skipped: denied originally"
    code, out, _ = hoop("sessions", "replay", "s-r", "--endpoint-url", moto_endpoint)
    assert "exit: 3 -> 0 (DIFFERENT)   output shape: DIFFERENT" in out
    assert out.strip().endswith("5 commands re-run against " + moto_endpoint + ": 1 differ")


@pytest.mark.parametrize("url", ["https://s3.amazonaws.com", "http://x.s3.us-east-1.amazonaws.com",
                                 "file:///etc/passwd", "localhost:5000"])
def test_rerun_refuses_real_aws_and_non_http(url: str) -> None:
    with pytest.raises(UsageError):
        replay.check_endpoint(url)


def test_sandbox_argv_strips_endpoint_profile_and_debug() -> None:
    assert replay.sandbox_argv(["s3", "ls", "--profile", "prod", "--endpoint-url=https://x",
                                "--debug", "--region", "eu-west-1", "--output", "json"]) == \
        ["s3", "ls", "--output", "json"]


def test_same_shape() -> None:
    assert replay.same_shape({"a": [{"x": 1}, {"y": None}]}, {"a": [{"x": 2, "y": "s"}]})
    assert replay.same_shape({"a": []}, {"a": [{"x": 1}]})
    assert not replay.same_shape({"a": 1}, {"b": 1})
    assert not replay.same_shape({"a": 1}, {"a": "1"})
    assert not replay.same_shape({"a": {"b": 1}}, {"a": [1]})


def test_playback_never_emits_terminal_control_sequences() -> None:
    import io

    buf = io.StringIO()
    cmds = [{"start": {"argv": ["s3", "ls", "\x1b]0;pwned\x07"], "time": "2026-11-27T04:00:00Z"},
             "result": {"stdout": {"text": "\x1b[2Jcleared\n"}, "exit_code": 0,
                        "ended_at": "2026-11-27T04:00:01Z"}}]
    replay.play(cmds, speed=0, out=buf)
    assert "\x1b" not in buf.getvalue() and "\x07" not in buf.getvalue()
