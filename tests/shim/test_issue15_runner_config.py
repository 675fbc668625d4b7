"""Issue 15, item 4: the agent does not choose the runner or the real CLI's config."""

from __future__ import annotations

from pathlib import Path

import pytest

from hoopcli.errors import InvocationError
from hoopcli.parse import parse
from hoopcli.runner import hoop_config_file, hoop_config_text, runner_choice, shadowing_alias


def test_the_agent_environment_cannot_pick_the_subprocess_runner() -> None:
    agent = {"HOOP_SESSION_ID": "s1", "HOOP_RUNNER": "subprocess", "HOOP_REAL_AWS": "/tmp/fake-aws"}
    name, env = runner_choice(agent, {})
    assert name == "inprocess" and "HOOP_REAL_AWS" not in env
    name, env = runner_choice({"HOOP_SESSION_ID": "s1", "HOOP_REAL_AWS": "/tmp/fake-aws"}, {})
    assert name == "inprocess"


def test_hoop_config_chooses_the_runner_under_a_session() -> None:
    name, env = runner_choice({"HOOP_SESSION_ID": "s1", "HOOP_REAL_AWS": "/tmp/agent"},
                              {"real_aws": "/usr/local/bin/aws"})
    assert name == "subprocess" and env["HOOP_REAL_AWS"] == "/usr/local/bin/aws"
    assert runner_choice({"HOOP_SESSION_ID": "s1"}, {"runner": "subprocess"})[0] == "subprocess"


def test_the_user_environment_still_chooses_outside_a_session() -> None:
    assert runner_choice({"HOOP_RUNNER": "subprocess"}, {})[0] == "subprocess"
    name, env = runner_choice({"HOOP_REAL_AWS": "/opt/aws"}, {})
    assert name == "subprocess" and env["HOOP_REAL_AWS"] == "/opt/aws"
    assert runner_choice({}, {})[0] == "inprocess"


AGENT_CONFIG = """\
[default]
region = eu-west-1
output = text
cli_history = enabled
credential_process = /tmp/steal
role_arn = arn:aws:iam::1:role/admin
source_profile = other
s3 =
    max_concurrent_requests = 4
endpoint_url = http://evil.example
[profile other]
aws_access_key_id = AKIA
cli_history = enabled
"""


def test_the_real_cli_reads_a_hoop_written_config(tmp_path: Path) -> None:
    text = hoop_config_text(AGENT_CONFIG)
    assert text == ("[default]\nregion = eu-west-1\noutput = text\ns3 =\n"
                    "    max_concurrent_requests = 4\n")
    src = tmp_path / "config"
    src.write_text(AGENT_CONFIG)
    path = hoop_config_file({"AWS_CONFIG_FILE": str(src), "HOOP_HOME": str(tmp_path / "home")})
    written = Path(path).read_text()
    assert written == text and "cli_history" not in written and "credential_process" not in written
    assert Path(path).stat().st_mode & 0o077 == 0


def test_aliases_are_refused_not_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alias = tmp_path / ".aws" / "cli" / "alias"
    alias.parent.mkdir(parents=True)
    alias.write_text("[toplevel]\nwipe = s3 rm s3://prod --recursive\nsqs = s3 rb s3://prod --force\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(InvocationError, match=r"'wipe' is an alias in ~/\.aws/cli/alias; hoop does not expand"):
        parse(["wipe"])
    # an alias named like a service: hoop reads the service; the subprocess runner refuses to run
    # a CLI that would follow the alias instead, the in-process one loads no alias file
    assert parse(["sqs", "list-queues"]).operation == "list-queues"
    assert shadowing_alias({"HOME": str(tmp_path)}, ["--region", "x", "sqs", "list-queues"]) == "sqs"
    assert shadowing_alias({"HOME": str(tmp_path)}, ["s3", "ls"]) is None


@pytest.mark.parametrize("argv", [
    ["--endpoint", "http://10.1.2.3", "sqs", "list-queues"],
    ["sqs", "list-queues", "--endpoint-u=http://10.1.2.3"],
    ["sqs", "list-queues", "--endp", "http://10.1.2.3"],
])
def test_endpoint_url_in_any_spelling_reaches_the_policy(argv: list[str]) -> None:
    from hoopcli.policy.compiler import compile_source
    from hoopcli.policy.model import Context, Policy

    inv = parse(argv)
    assert inv.globals.endpoint_url == "http://10.1.2.3"
    pol = Policy(compile_source(
        "version: 1\ndefaults: {list: allow, read: allow, tagging: review, write: review, "
        "permissions: deny, unknown: deny}\nrules:\n  - id: only-aws\n    effect: deny\n"
        "    match: {endpoint_urls: ['http://10.*']}\n    reason: no custom endpoints\n")[0])
    ctx = Context(user="u", groups=(), endpoint_url=inv.globals.endpoint_url)
    assert pol.evaluate(inv, ctx).effect == "deny"
