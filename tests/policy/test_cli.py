"""`hoop policy ...` through the real entry point (the one error funnel), reading like the user."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from hoopcli.cli import main
from hoopcli.paths import Layout

DEFAULT = Path(__file__).parents[2] / "hoopcli" / "policy" / "data" / "default.yaml"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def login_as(srv: Any, home: Path, sub: str, groups: tuple[str, ...]) -> None:
    """Plant a real signed ID token where `hoop login` would leave it."""
    layout = Layout(home).ensure()
    layout.cache_dir.mkdir(mode=0o700, exist_ok=True)
    session = {"server": srv.url, "id_token": srv.token(sub, email=f"{sub}@example.com", groups=groups),
               "expires_at": time.time() + 3600}
    path = layout.cache_dir / "session.json"
    path.write_text(json.dumps(session))
    path.chmod(0o600)


def test_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "policy", "validate", str(DEFAULT))
    assert code == 0 and out == f"{DEFAULT}: ok (12 rules, 0 warnings)\n" and err == ""


def test_validate_errors_with_positions(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - id: x\n    effect: alow\n    match: {actoins: ['s3:*']}\n")
    code, out, err = run(capsys, "policy", "validate", str(bad))
    assert code == 1 and out == ""
    assert err.splitlines() == [
        f"{bad}:4:13: error: rule 'x'.effect must be one of: allow, review, deny",
        f"{bad}:5:13: error: unknown key 'actoins' in rule 'x'.match (expected one of: actions, services, "
        "access_levels, resources, params, connections, regions, endpoint_urls, groups, agents, users)",
        f"hoop: {bad}: invalid policy (2 errors)",
    ]


def test_validate_json_and_warnings(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    f = tmp_path / "w.yaml"
    f.write_text("version: 1\nrules:\n  - {id: never, effect: deny, match: {actions: []}}\n")
    code, out, _err = run(capsys, "policy", "validate", "--json", str(f))
    assert code == 0
    [problem] = json.loads(out)
    assert problem["severity"] == "warning" and problem["line"] == 3 and "never match" in problem["message"]


def test_validate_refuses_ten_megabytes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (10 * 1024 * 1024))
    code, _out, err = run(capsys, "policy", "validate", str(big))
    assert code == 1
    assert err == f"hoop: {big}: the policy is 10485760 bytes; the limit is 524288 bytes (512 KiB)\n"


def test_validate_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _out, err = run(capsys, "policy", "validate", str(tmp_path / "nope.yaml"))
    assert code == 1 and err.startswith("hoop: cannot read policy file")


COMMANDS = """# a sample of what an agent runs
aws s3api list-buckets
s3api put-object --bucket prod-x --key k --body /dev/null
aws iam create-access-key --user-name bob
aws iam attach-role-policy --role-name r --policy-arn arn:aws:iam::aws:policy/ReadOnlyAccess
aws nosuchservice do-things
aws s3api "unclosed
"""


def test_test_jsonl(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cmds = tmp_path / "cmds.txt"
    cmds.write_text(COMMANDS)
    code, out, _err = run(capsys, "policy", "test", str(DEFAULT), "--commands", str(cmds), "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["line"] for r in rows] == [2, 3, 4, 5, 6, 7]
    got = [(r.get("decision"), r.get("rule")) for r in rows[:4]]
    assert got == [("allow", "allow-reads"), ("review", "review-writes"),
                   ("deny", "deny-iam-access-keys"), ("review", "review-permissions")]
    assert rows[3]["review"]["approvers"] == ["role:approver"]
    assert rows[1]["actions"] == ["s3:PutObject"] and rows[1]["access_level"] == "Write"
    assert "error" in rows[4] and "error" in rows[5]


def test_test_table_and_context(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pol = tmp_path / "p.yaml"
    pol.write_text("rules:\n  - {id: sre-iam, effect: allow, match: {groups: [sre], "
                   "access_levels: [Permissions management]}}\n")
    cmds = tmp_path / "cmds.txt"
    cmds.write_text("iam attach-role-policy --role-name r --policy-arn arn:aws:iam::aws:policy/X\n")
    code, out, _ = run(capsys, "policy", "test", str(pol), "--commands", str(cmds))
    assert code == 0 and "review   Permissions  defaults.permissions" in out
    code, out, _ = run(capsys, "policy", "test", str(pol), "--commands", str(cmds), "--group", "sre")
    assert "allow    Permissions  sre-iam" in out


def test_push_show_and_history(capsys: pytest.CaptureFixture[str], server: Any, clean_env: Path,
                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOP_SERVER", server.url)
    pol = tmp_path / "p.yaml"
    pol.write_text("version: 1\nrules:\n  - {id: no-deletes, effect: deny, match: {actions: ['*:Delete*']}}\n")
    login_as(server, clean_env, "dave", ("developers",))
    code, _out, err = run(capsys, "policy", "push", str(pol))
    assert code == 1 and err == "hoop: this needs the role admin\n"
    login_as(server, clean_env, "root", ("admins",))
    code, out, err = run(capsys, "policy", "push", str(pol), "-m", "no deletes")
    assert code == 0 and out.startswith("pushed version 1 (+")
    code, out, _ = run(capsys, "policy", "push", str(pol))
    assert out == "unchanged: version 1 already has this content\n"
    code, out, _ = run(capsys, "policy", "show")
    assert code == 0 and out.startswith("# version 1 (pushed), pushed by root at ")
    assert out.endswith(pol.read_text())
    code, out, _ = run(capsys, "policy", "history")
    assert code == 0 and out.splitlines()[1].split()[0] == "1" and "root@example.com" in out
    assert out.rstrip().endswith("no deletes")
    code, out, _ = run(capsys, "policy", "history", "--json")
    assert [v["version"] for v in json.loads(out)] == [1]
    code, out, _ = run(capsys, "policy", "history", "--diff", "1")
    assert "+  - {id: no-deletes" in out
    code, out, _ = run(capsys, "policy", "show", "--cached", "--json")
    info = json.loads(out)
    assert info["source"] == "cache" and info["version"] == 1 and info["rules"] == 1


def test_show_default_and_cached_without_server(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "policy", "show", "--default")
    assert code == 0 and out == DEFAULT.read_text()
    code, out, _ = run(capsys, "policy", "show", "--cached")
    assert code == 0 and "source:        default" in out


def test_test_reads_commands_from_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("aws s3api list-buckets\n\n# comment\niam create-access-key\n"))
    code, out, _ = run(capsys, "policy", "test", str(DEFAULT), "--commands", "-", "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["line"], r["decision"]) for r in rows] == [(1, "allow"), (4, "deny")]
