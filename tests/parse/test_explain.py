"""`hoop explain`: single command, --json, and the JSONL batch from stdin, via the real CLI."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from hoopcli.parse import parse
from hoopcli.parse.explain import explain_lines, make_decider, shell_split

HOOP = [sys.executable, "-m", "hoopcli"]


def run(args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*HOOP, *args], input=stdin, capture_output=True, timeout=60, check=False,
                          env=dict(os.environ))


def test_batch_jsonl_in_order_with_errors_and_skipped_lines(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    lines = [
        "aws s3 ls",
        "",
        "# a comment",
        "aws s3 rm --recursive 's3://b/my logs/'",
        "ec2 describe-instances --region eu-west-1",
        "aws ec2 bogus-op",
        'aws s3 cp "unterminated',
        f"aws s3api delete-object --cli-input-json file://{missing}",
        "aws nosuchservice list",
        "aws --endpoint-url https://attacker.example:9/ sts get-caller-identity",
    ]
    data = ("\n".join(lines) + "\n").encode() + b"aws s3api get-object --bucket \xff --key k o\n"
    out = run(["explain", "--json", "-"], data)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(x) for x in out.stdout.decode().splitlines()]
    assert len(rows) == 9
    for row in (rows[0], rows[1], rows[2], rows[7], rows[8]):
        for key in ("service", "operation", "api_operations", "actions", "access_level",
                    "resources", "decision", "rule"):
            assert key in row
    assert (rows[0]["api_operations"], rows[0]["access_level"]) == (["ListBuckets"], "List")
    assert rows[1]["api_operations"] == ["ListObjectsV2", "DeleteObject"]
    assert rows[1]["resources"] == ["arn:aws:s3:::b", "arn:aws:s3:::b/my logs/*"]
    assert rows[1]["decision"] != "allow"
    assert rows[2]["globals"] == {"region": "eu-west-1"} and rows[2]["decision"] == "allow"
    assert "unknown operation 'bogus-op'" in rows[3]["error"] and rows[3]["line"] == 6
    assert "cannot split" in rows[4]["error"]
    assert "cannot read" in rows[5]["error"]
    assert "unknown service 'nosuchservice'" in rows[6]["error"]
    assert rows[7]["globals"]["endpoint_url"] == "https://attacker.example:9/"
    assert rows[8]["access_level"] == "Read"  # non-UTF-8 byte survives as an escape


def test_single_command_json_and_table() -> None:
    out = run(["explain", "--json", "--", "aws", "lambda", "invoke", "--function-name", "f", "o.json"])
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert (row["actions"], row["access_level"]) == (["lambda:InvokeFunction"], "Write")
    assert row["resources"] == ["arn:aws:lambda:*:*:function:f"]
    table = run(["explain", "--", "s3", "rm", "s3://b/k"])
    text = table.stdout.decode()
    assert table.returncode == 0 and "s3:DeleteObject" in text and "arn:aws:s3:::b/k" in text
    assert "Write" in text


def test_single_command_errors_go_through_the_funnel() -> None:
    out = run(["explain", "--", "ec22", "describe-instances"])
    assert out.returncode == 2
    assert out.stderr.decode() == "hoop: unknown service 'ec22'; did you mean ec2?\n"
    out = run(["explain", "-"])
    assert out.returncode == 2 and b"needs --json" in out.stderr
    out = run(["explain"])
    assert out.returncode == 2 and b"nothing to explain" in out.stderr


def test_without_a_cached_policy_the_shipped_default_decides(clean_env: Path) -> None:
    """No stand-in decider: with nothing cached, explain uses the policy engine's shipped default."""
    decide = make_decider()
    assert decide(parse(["s3", "ls"]))["rule"] == "allow-reads"
    assert decide(parse(["s3", "rm", "s3://b/k"])) == decide(parse(["s3", "rm", "s3://other/k"]))
    assert decide(parse(["s3", "rm", "s3://b/k"]))["rule"] == "review-writes"
    assert decide(parse(["configure", "set", "a", "b"]))["rule"] == "defaults.unknown"
    rows = list(explain_lines(["aws s3 ls", "  ", "aws ec2 \x00"], decide))
    assert rows[0]["decision"] == "allow" and "error" in rows[1]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=" \t\n\\'\"ab=$\x0b\u00a0", max_size=16))
def test_fast_shell_split_agrees_with_shlex(text: str) -> None:
    try:
        expected: object = shlex.split(text)
    except ValueError as exc:
        expected = type(exc)
    try:
        got: object = shell_split(text)
    except ValueError as exc:
        got = type(exc)
    assert got == expected


def test_table_output_does_not_interpret_markup_from_the_command_line() -> None:
    out = run(["explain", "--", "s3api", "get-object", "--bucket", "b", "--key", "[/bold][red]k\\",
               "--region", "[/]", "o"])
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    assert "region=[/]" in text and "[/bold][red]k" in text


def test_table_output_shows_control_characters_escaped() -> None:
    out = run(["explain", "--", "s3api", "get-object", "--bucket", "b", "--key", "\x1b[2Jk\x07", "o"])
    assert out.returncode == 0, out.stderr
    assert b"\x1b" not in out.stdout and b"\x07" not in out.stdout
    assert b"\\x1b[2Jk\\x07" in out.stdout


def test_table_lists_several_actions_and_resources_on_separate_lines() -> None:
    out = run(["explain", "--", "s3", "cp", "s3://a/x", "s3://b/y"])
    text = out.stdout.decode()
    assert out.returncode == 0 and "\\x0a" not in text
    assert "arn:aws:s3:::a/x" in text and "arn:aws:s3:::b/y" in text


def test_decision_comes_from_the_cached_policy_with_who_and_where(clean_env: Path) -> None:
    from hoopcli.paths import Layout
    from hoopcli.policy.cache import write_cache
    from hoopcli.policy.compiler import compile_source

    source = """
version: 1
rules:
  - id: no-deletes-by-bots
    effect: deny
    match: {agents: [bot], actions: ["s3:Delete*"]}
    reason: bots never delete
  - id: evil-endpoint
    effect: deny
    match: {endpoint_urls: ["https://evil.example*"]}
    reason: unknown endpoint
"""
    compiled, problems = compile_source(source)
    assert not [p for p in problems if getattr(p, "severity", "error") == "error"], problems
    write_cache(Layout(clean_env), compiled, etag=None, version=1, checked_at=0.0)
    lines = b"aws s3 rm s3://b/k\naws --endpoint-url https://evil.example/ s3 ls\naws s3 ls\n"
    bot = [json.loads(x) for x in run(["explain", "--agent", "bot", "--json", "-"], lines).stdout.splitlines()]
    assert [(r["decision"], r["rule"]) for r in bot[:2]] == [("deny", "no-deletes-by-bots"),
                                                              ("deny", "evil-endpoint")]
    human = json.loads(run(["explain", "--agent", "alice", "--json", "--", "s3", "rm", "s3://b/k"]).stdout)
    assert human["rule"] != "no-deletes-by-bots"
