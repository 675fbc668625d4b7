"""Many shims at once on one HOOP_HOME (one agent fanning out) against a real server: every
command's records arrive exactly once, and sequence numbers are unique within the session."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import Stack, check_exactly_once

pytestmark = pytest.mark.e2e  # real server processes, moto_server and shim executables


def fan_out(stack: Stack, n: int) -> list[dict]:
    stack.s3().create_bucket(Bucket="fan-b")
    assert stack.dev.run("s3api", "list-buckets").code == 0  # one warm-up: policy cached
    env = stack.dev.environ
    procs = [subprocess.Popen([str(stack.dev.shim_path), *args], env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(n)
             for args in [(["s3api", "list-buckets"], ["sts", "get-caller-identity"], ["s3", "ls"])[i % 3]]]
    failures = []
    for proc in procs:
        _out, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            failures.append((proc.args[1:], proc.returncode, err.decode()[-500:]))
    assert failures == []
    stack.deliver()
    records = check_exactly_once(stack, n_commands=n + 1)
    stack.verify()
    return records


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_twelve_concurrent_shims_on_one_home(stack: Stack) -> None:
    records = fan_out(stack, 12)
    assert len([r for r in records if r["type"] == "command.result"]) >= 12


@pytest.mark.soak
@pytest.mark.timeout(1800)
def test_fifty_concurrent_shims_on_one_home(stack: Stack) -> None:
    records = fan_out(stack, 50)
    assert len([r for r in records if r["type"] == "command.result"]) >= 50
