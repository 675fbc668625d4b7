"""Issue 15, item 1: hoop reads argv the way awscli v1 does.

A differential test: hypothesis writes command lines in the spellings argparse accepts
(abbreviated options, `--opt=value`, `--no-X` booleans, globals anywhere, any order) and checks
that hoop's parser finds the same operation, API parameters, region and endpoint as awscli's own
parser (awscli.clidriver, stopped at its `calling-command` event before any request).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hoopcli.errors import InvocationError
from hoopcli.parse import parse

# (service, operation): operations whose options are strings, booleans and string lists.
OPERATIONS = [
    ("sqs", "list-queues"), ("guardduty", "update-detector"), ("ssm", "put-parameter"),
    ("s3api", "delete-object"), ("s3api", "list-objects-v2"), ("ec2", "describe-instances"),
    ("lambda", "get-function"), ("secretsmanager", "get-secret-value"), ("iam", "create-role"),
    ("cloudformation", "delete-stack"), ("kms", "schedule-key-deletion"),
]
# Values start with a letter: `--q VALUE` is the global --query, which awscli compiles as JMESPath.
VALUE = st.builds(lambda head, tail: head + tail, st.sampled_from("abcdefghijklmnopqrstuvwxyz"),
                  st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", max_size=7))
GLOBALS = [("region", "eu-west-1"), ("endpoint-url", "http://127.0.0.1:9"), ("output", "json")]


class Awscli:
    """awscli v1's parser, stopped before the call: (operation, params, region, endpoint)."""

    def __init__(self) -> None:
        from awscli.clidriver import create_clidriver

        self.driver = create_clidriver()
        self.seen: list[Any] = []
        self.driver.session.register("calling-command.*.*", self._capture)
        self.table = self.driver._get_command_table()

    def _capture(self, call_parameters: Any, parsed_args: Any, parsed_globals: Any, event_name: str,
                 **_: Any) -> int:
        self.seen.append((event_name.split(".")[-1], dict(call_parameters),
                          parsed_globals.region, parsed_globals.endpoint_url))
        return 0

    def parse(self, argv: list[str]) -> Any:
        import contextlib
        import io

        self.seen.clear()
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            try:
                rc = self.driver.main(list(argv))
            except SystemExit as exc:  # argparse errors
                rc = exc.code
        return self.seen[0] if rc == 0 and self.seen else None

    def options(self, service: str, op: str) -> dict[str, tuple[str, bool, bool]]:
        """{option: (member, is boolean, required)} for the string-ish options of an operation."""
        cmd = self.table[service]._get_command_table()[op]
        out = {}
        for name, arg in cmd.arg_table.items():
            model = getattr(arg, "argument_model", None)
            member = getattr(arg, "_serialized_name", None)
            if model is None or member is None or type(arg).__name__ == "PageArgument":
                continue
            if model.type_name == "boolean" or (model.type_name == "string" and not getattr(model, "enum", None)):
                out[name] = (member, model.type_name == "boolean", bool(arg.required))
            elif model.type_name == "list" and model.member.type_name == "string":
                out[name] = (member, False, bool(arg.required))
        return out

    def all_options(self, service: str, op: str) -> list[str]:
        return list(self.table[service]._get_command_table()[op].arg_table)


@pytest.fixture(scope="module")
def awscli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Awscli]:
    home = tmp_path_factory.mktemp("home")
    saved = dict(os.environ)
    os.environ.update(HOME=str(home), AWS_CONFIG_FILE=str(home / "none"),
                      AWS_SHARED_CREDENTIALS_FILE=str(home / "none"), AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
                      AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1")
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    try:
        yield Awscli()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _spell(name: str, value: str | list[str] | None, style: int, cut: int, names: list[str]) -> list[str]:
    """One option in one of argparse's spellings: full, --name=value, or a prefix of it."""
    if style == 2:  # abbreviated: any prefix (an ambiguous one must fail in both)
        name = name[:max(1, min(len(name), cut))]
    if value is None:
        return [f"--{name}"]
    if isinstance(value, list):
        return [f"--{name}", *value]
    if style == 1:
        return [f"--{name}={value}"]
    return [f"--{name}", value]


def _hoop(argv: list[str]) -> Any:
    try:
        inv = parse(argv)
    except InvocationError:
        return None
    if not inv.api_calls:  # `--ve` is --version, in awscli too: it prints and calls nothing
        return None
    if "_positional" in inv.params:
        # A stray word (`--d 0`: --debug, then `0`): awscli refuses the line ("Unknown options")
        # and calls nothing; hoop keeps such words as `_positional` (the corpus has lines whose
        # shell quoting leaves some) and classifies the call it would be.
        return "stray"
    call = inv.api_calls[0]
    return call.operation, call.params, inv.globals.region, inv.globals.endpoint_url, inv.globals.profile


def _same(argv: list[str], awscli: Awscli, service: str, op: str) -> None:
    hoop = _hoop(argv)
    if hoop == "stray":
        assert awscli.parse(argv) is None
        return
    if hoop is not None and hoop[4] is not None:
        # An abbreviation of --profile (`--p`, `--prof`) is the global, in awscli too: hoop reads
        # it as the connection; awscli would look the profile up (and keep it), so is not asked.
        return
    if hoop is not None and hoop[2] not in (None, "eu-west-1"):
        # `--r VALUE` is the global --region in both; awscli then fails on a made-up region.
        return
    aws = awscli.parse(argv)
    assert (hoop is None) == (aws is None), f"{argv!r} {hoop!r} {aws!r}"
    if aws is None:
        return
    api_op = awscli.table[service]._get_command_table()[op]._operation_model.name
    assert hoop[0] == api_op
    assert hoop[1] == aws[1], argv
    assert hoop[2] == aws[2], argv
    if hoop[3] is not None:  # awscli fills in a regional endpoint of its own for some services
        assert hoop[3] == aws[3], argv


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_hoop_reads_argv_like_awscli(awscli: Awscli, data: st.DataObject) -> None:
    service, op = data.draw(st.sampled_from(OPERATIONS))
    options = awscli.options(service, op)
    names = awscli.all_options(service, op)
    required = [n for n, (_, _, req) in options.items() if req]
    optional = sorted(n for n, (_, _, req) in options.items() if not req and not n.startswith("no-"))
    chosen = required + data.draw(st.lists(st.sampled_from(optional), unique=True, max_size=4)) \
        if optional else required
    groups: list[list[str]] = []
    for name in chosen:
        _member, boolean, _ = options[name]
        model = awscli.table[service]._get_command_table()[op].arg_table[name].argument_model
        if boolean:
            value = None
            if data.draw(st.booleans()) and f"no-{name}" in options:
                name = f"no-{name}"
        elif model.type_name == "list":
            value = data.draw(st.lists(VALUE, min_size=1, max_size=3))
        else:
            value = data.draw(VALUE)
        style = data.draw(st.integers(0, 2)) if not isinstance(value, list) else data.draw(st.sampled_from([0, 2]))
        groups.append(_spell(name, value, style, data.draw(st.integers(1, len(name) + 1)), names))
    for gname, gvalue in data.draw(st.lists(st.sampled_from(GLOBALS), unique=True, max_size=2)):
        style = data.draw(st.integers(0, 2))
        groups.append(_spell(gname, gvalue, style, data.draw(st.integers(3, len(gname) + 1)), []))
    order = data.draw(st.permutations(range(len(groups))))
    tail = [tok for i in order for tok in groups[i]]
    split = data.draw(st.integers(0, len(tail)))
    argv = [service, op, *tail]
    if data.draw(st.booleans()):  # globals may also come first
        lead = [t for g in groups if g[0].lstrip("-").startswith(("reg", "end", "out")) for t in g]
        rest = [t for t in tail if t not in lead] if lead else tail
        argv = [*lead, service, op, *rest] if lead and len(set(tail)) == len(tail) else argv
    del split
    _same(argv, awscli, service, op)


@pytest.mark.parametrize("argv", [
    ["sqs", "list-queues", "--reg", "eu-west-1"],
    ["sqs", "list-queues", "--region=eu-west-1"],
    ["--endpoint", "http://10.0.0.1", "sqs", "list-queues"],
    ["sqs", "list-queues", "--endpoint=http://10.0.0.1"],
    ["guardduty", "update-detector", "--detector-id", "d", "--no-enable"],
    ["guardduty", "update-detector", "--detector-id", "d", "--no-en"],
    ["guardduty", "update-detector", "--det=d", "--enable", "--no-enable"],
    ["ssm", "put-parameter", "--na", "n", "--ty=SecureString", "--val", "V"],
    ["s3api", "delete-object", "--buck", "b", "--ke", "k"],
    ["s3api", "delete-object", "--b", "b", "--k=k"],
    ["ec2", "describe-instances", "--instance-ids", "i-1", "i-2", "--dry"],
    ["ec2", "describe-instances", "--in", "i-1"],  # ambiguous: both refuse
    ["--prof", "x", "sqs", "list-queues"],
    ["sqs", "list-queues", "--c", "x"],  # ambiguous among the globals
])
def test_known_spellings(awscli: Awscli, argv: list[str]) -> None:
    service, op = [a for a in argv if not a.startswith("-")][:2] if not argv[0].startswith("-") else argv[2:4]
    if "--prof" in argv:  # the global --profile: hoop reads it as the connection
        assert parse(argv).globals.profile == "x"
    _same(argv, awscli, service, op)


def test_s3_abbreviations_match_awscli_table(awscli: Awscli) -> None:
    """The s3 commands have no API model; their own argument table decides: `--recur` is
    --recursive, so `s3 rm --recur` is a prefix delete (ListObjectsV2 + DeleteObject on dir*)."""
    inv = parse(["s3", "rm", "s3://b/dir", "--recur"])
    assert inv.params["recursive"] is True
    assert inv.resources == ["arn:aws:s3:::b", "arn:aws:s3:::b/dir*"]
    inv = parse(["s3", "sync", "s3://a/x", "s3://b/y", "--dele"])
    assert "DeleteObject" in inv.api_operations
    inv = parse(["s3", "cp", "s3://a/x", "s3://b/y", "--rec", "--exclude", "*.log", "--exc", "*.tmp"])
    assert inv.params["recursive"] is True and inv.params["exclude"] == ["*.log", "*.tmp"]
    from awscli.argparser import ArgTableArgParser

    rm = awscli.table["s3"].subcommand_table["rm"]
    parsed, _ = ArgTableArgParser(rm.arg_table).parse_known_args(["s3://b/dir", "--recur"])
    assert parsed.dir_op is True
