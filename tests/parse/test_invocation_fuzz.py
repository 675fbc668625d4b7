"""hypothesis: any argv either parses or raises InvocationError; mutating calls are never List/Read."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hoopcli.errors import InvocationError
from hoopcli.parse import index as actions
from hoopcli.parse import parse
from hoopcli.parse.invocation import READ_ONLY_LEVELS, Invocation

SERVICES = ["s3", "s3api", "ec2", "iam", "lambda", "cloudformation", "dynamodb", "configure",
            "sts", "logs", "emr", "ecr", "eks", "rds", "sqs", "help", "nope"]
WORDS = ["cp", "mv", "rm", "sync", "ls", "mb", "rb", "presign", "website", "wait", "help",
         "list", "get", "set", "deploy", "package", "ssh", "s3://b/k", "s3://b/", "-", ".", "",
         "--recursive", "--delete", "--force", "--acl", "--region", "--endpoint-url",
         "--cli-input-json", "--cli-input-yaml", "file:///nonexistent", "{}", "[]", "--",
         "--debug", "--version", "--query", "--bucket", "--key", "--dry-run", "=", "--x=y",
         "$(id)", "`rm -rf /`", "a;b|c&d", "caf\udce9", "\x00", "\n"]
for cli in ("ec2", "s3api", "iam", "lambda"):
    data = actions.service(cli)
    assert data is not None
    WORDS += sorted(data["ops"])[:40:3]

# Verbs whose operations always change something; the Service Authorization Reference never
# files them under List or Read.
MUTATING = re.compile(r"^(Delete|Terminate|Put|Update|Modify|Remove|Attach|Detach|Reboot|Restore|"
                      r"Revoke|Authorize|Tag|Untag|Replace|Reset|Register|Deregister)[A-Z]")

token = st.one_of(st.sampled_from(WORDS), st.text(max_size=12))
argv = st.one_of(
    st.lists(token, max_size=8),
    st.tuples(st.sampled_from(SERVICES), st.lists(token, max_size=7)).map(lambda t: [t[0], *t[1]]),
)


def check(inv: Invocation) -> None:
    assert isinstance(inv.to_dict(), dict)
    if inv.access_level in READ_ONLY_LEVELS:
        for call in inv.api_calls:
            assert not MUTATING.match(call.operation), (inv.argv, call)
            assert call.access_level in READ_ONLY_LEVELS


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(argv)
def test_parse_never_crashes(args: list[str]) -> None:
    try:
        inv = parse(args)
    except InvocationError as exc:
        assert exc.message and "\n" not in exc.line()
        return
    check(inv)


def test_no_indexed_mutating_operation_is_read_only() -> None:
    """Every API operation in the index, through the same path as a parsed command."""
    for cli in actions.index()["services"]:
        data = actions.service(cli)
        assert data is not None
        for op, entry in data["api"].items():
            if MUTATING.match(op):
                assert entry[1] not in READ_ONLY_LEVELS, (cli, op, entry[:2])
