"""The server is down for 100 commands (issue 5 and 8): reads whose credentials hoop cached keep
running; commands that need the server fail closed with exit 69 and one `hoop:` line; the spool
keeps every record; after the restart `hoop sync` delivers all of them exactly once."""

from __future__ import annotations

import pytest

from .conftest import Stack, check_exactly_once

pytestmark = pytest.mark.e2e  # real server processes, moto_server and shim executables

CACHED = [["s3api", "list-buckets"], ["sts", "get-caller-identity"], ["s3", "ls"]]
NEEDS_SERVER = [["s3api", "list-objects-v2", "--bucket", "outage-b"],  # credentials not cached
                ["s3", "mb", "s3://outage-new"],                          # a write: reviewed
                ["ec2", "describe-regions"]]


def outage(stack: Stack, n: int, runner: str) -> list[dict]:
    stack.s3().create_bucket(Bucket="outage-b")
    for args in CACHED:  # warm the policy and credential caches
        assert stack.dev.run(*args).code == 0
    stack.deliver()
    before = len(stack.exported())
    stack.server.kill9()

    expected: list[int] = []
    for i in range(n):
        cached = i % 3 != 2
        args = CACHED[i % len(CACHED)] if cached else NEEDS_SERVER[(i // 3) % len(NEEDS_SERVER)]
        result = stack.dev.run(*args) if runner == "inprocess" else stack.dev.exec(*args)
        if cached:
            assert result.code == 0, (args, result.stderr)
        else:
            assert result.code == 69, (args, result.code, result.stderr)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("hoop: "), result.stderr
        expected.append(result.code)
    spooled = stack.spooled()
    assert len(spooled) == 2 * n, len(spooled)

    stack.server.start()
    stack.deliver()
    records = check_exactly_once(stack, n_commands=len(CACHED) + n)
    assert len(records) == before + 2 * n
    by_command = {r["command_id"]: r for r in records if r["type"] == "command.start"}
    results = sorted((by_command[r["command_id"]]["seq"], r["exit_code"])
                     for r in records if r["type"] == "command.result")
    assert [code for _seq, code in results][-n:] == expected
    stack.verify()
    return records


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_server_down_for_30_commands_then_back(stack: Stack) -> None:
    """The fast version (make test): 30 commands in process."""
    records = outage(stack, 30, "inprocess")
    assert len([r for r in records if r["type"] == "command.result"]) >= 30


@pytest.mark.soak
@pytest.mark.timeout(1800)
def test_server_down_for_100_commands_then_back(stack: Stack) -> None:
    records = outage(stack, 100, "inprocess")
    assert len([r for r in records if r["type"] == "command.result"]) >= 100


@pytest.mark.soak
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_server_down_for_100_executable_shims_then_back(stack: Stack) -> None:
    records = outage(stack, 100, "exec")
    assert len([r for r in records if r["type"] == "command.result"]) >= 100
