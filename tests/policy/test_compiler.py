from __future__ import annotations

from pathlib import Path

import pytest

from hoopcli.errors import ConfigError
from hoopcli.policy.compiler import (
    MAX_POLICY_BYTES,
    PolicyInvalid,
    check_source,
    compile_file,
    compile_source,
)
from hoopcli.policy.model import Policy


def errors(text: str) -> list[tuple[int, int, str]]:
    compiled, problems = check_source(text)
    assert compiled is None
    return [(p.line, p.column, p.message) for p in problems if p.severity == "error"]


def test_shipped_default_compiles_cleanly() -> None:
    path = Path(__file__).parents[2] / "hoopcli" / "policy" / "data" / "default.yaml"
    compiled, warnings = compile_file(path)
    assert warnings == []
    ids = [r["id"] for r in compiled["rules"]]
    assert "deny-iam-access-keys" in ids and "review-permissions" in ids
    Policy(compiled)


def test_unknown_top_level_key_with_position() -> None:
    text = "version: 1\nrulez: []\n"
    [(line, col, msg)] = errors(text)
    assert (line, col) == (2, 1)
    assert "unknown key 'rulez'" in msg


def test_unknown_rule_key_with_position() -> None:
    text = (
        "version: 1\n"
        "rules:\n"
        "  - id: r1\n"
        "    efect: deny\n"
        "    match: {actions: [s3:*]}\n"
    )
    problems = errors(text)
    assert (4, 5, "unknown key 'efect' in rules[0] (expected one of: id, description, effect, match, reason, review)") in problems
    assert any("needs an effect" in m for _l, _c, m in problems)


def test_unknown_match_key_is_an_error_not_ignored() -> None:
    text = "rules:\n  - id: r1\n    effect: deny\n    match:\n      action: [s3:*]\n"
    [(line, col, msg)] = errors(text)
    assert (line, col) == (5, 7) and "unknown key 'action'" in msg


def test_bad_yaml_reports_line_and_column() -> None:
    text = "version: 1\nrules:\n  - id: r1\n    effect: [deny\n"
    [(line, col, msg)] = errors(text)
    assert line == 5 and msg.startswith("invalid YAML")
    text = "version: 1\n  bad: indent\n"
    [(line, col, msg)] = errors(text)
    assert (line, col) == (2, 6)


def test_policy_invalid_message_names_file_line_column() -> None:
    with pytest.raises(PolicyInvalid) as info:
        compile_source("version: 2\n", "p.yaml")
    assert info.value.line() == "hoop: invalid policy: p.yaml:1:10: error: version must be 1"
    assert info.value.exit_status == 1


@pytest.mark.parametrize("value,needle", [
    ('"' + "*a" * 20 + '"', "wildcards"),
    ('"s3:' + "x" * 600 + '"', "longer than"),
])
def test_glob_bombs_refused(value: str, needle: str) -> None:
    text = f"rules:\n  - id: r1\n    effect: deny\n    match: {{actions: [{value}]}}\n"
    [(line, col, msg)] = errors(text)
    assert (line, col) == (4, 23) and needle in msg


def test_action_without_service_prefix() -> None:
    text = "rules:\n  - id: r1\n    effect: deny\n    match: {actions: [DeleteBucket]}\n"
    [(_l, _c, msg)] = errors(text)
    assert "is not an IAM action" in msg


def test_ten_megabyte_policy_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (10 * 1024 * 1024) + b"\n")
    with pytest.raises(ConfigError) as info:
        compile_file(big)
    assert "limit is 524288 bytes" in info.value.message
    compiled, problems = check_source(b"x" * (MAX_POLICY_BYTES + 1))
    assert compiled is None and "limit" in problems[0].message


def test_aliases_refused() -> None:
    text = "a: &x [1]\nrules: *x\n"
    problems = errors(text)
    assert any("aliases are not allowed" in m for _l, _c, m in problems)


def test_billion_laughs_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i-1}"] * 9) + "]")
    compiled, problems = check_source("\n".join(lines) + "\n")
    assert compiled is None and any("aliases are not allowed" in p.message for p in problems)


def test_duplicate_rule_ids_and_keys() -> None:
    text = ("rules:\n  - id: r1\n    effect: deny\n    match: {}\n"
            "  - id: r1\n    effect: deny\n    match: {}\n    match: {}\n")
    problems = errors(text)
    assert (5, 9, "duplicate rule id 'r1' (first at line 2)") in problems
    assert any("duplicate key 'match'" in m for _l, _c, m in problems)


def test_unknown_default_cannot_be_allow() -> None:
    [(line, col, msg)] = errors("defaults:\n  unknown: allow\n")
    assert (line, col) == (2, 12) and "cannot be allow" in msg


def test_never_matching_rules_warn() -> None:
    text = ("rules:\n"
            "  - id: empty\n    effect: deny\n    match: {actions: []}\n"
            "  - id: first\n    effect: deny\n    match: {services: [s3]}\n"
            "  - id: shadowed\n    effect: review\n    match: {services: [s3]}\n")
    _compiled, problems = compile_source(text)
    warnings = [(p.line, p.message) for p in problems]
    assert any(line == 4 and "can never match" in m for line, m in warnings)
    assert any(line == 8 and "'shadowed' can never decide" in m for line, m in warnings)


def test_review_options_and_durations() -> None:
    text = ("defaults:\n  review: {expiry: 1h, wait: 90}\n"
            "rules:\n  - id: r\n    effect: review\n    match: {access_levels: [write]}\n"
            "    review: {approvers: [role:approver, sre], channels: [slack], require_justification: true}\n")
    compiled, _ = compile_source(text)
    review = compiled["rules"][0]["review"]
    assert review == {"approvers": ["role:approver", "sre"], "channels": ["slack"], "expiry": 3600,
                      "wait": 90, "require_justification": True}
    assert compiled["rules"][0]["match"]["access_levels"] == ["Write"]


def test_review_on_deny_rule_and_bad_channel() -> None:
    text = ("rules:\n  - id: r\n    effect: deny\n    match: {}\n"
            "    review: {channels: [email]}\n")
    problems = errors(text)
    assert any("review options on a rule whose effect is deny" in m for _l, _c, m in problems)
    assert any("unknown channel 'email'" in m for _l, _c, m in problems)


def test_masking_shape() -> None:
    ok = "masking:\n  - {service: secretsmanager, operation: GetSecretValue, paths: [SecretString]}\n"
    compiled, _ = compile_source(ok)
    assert compiled["masking"] == [{"service": "secretsmanager", "operation": "GetSecretValue",
                                    "paths": ["SecretString"]}]
    bad = "masking:\n  - {service: s3, paths: []}\n"
    problems = errors(bad)
    assert any("needs operation" in m for _l, _c, m in problems)
    assert any("paths must not be empty" in m for _l, _c, m in problems)


@pytest.mark.parametrize("text", ["", "[]", "42", "rules: 3", "rules: [3]", "\x00", "a: b: c",
                                  "defaults: {write: maybe}", "offline: {max_staleness: forever}"])
def test_garbage_is_an_error_never_a_crash(text: str) -> None:
    compiled, problems = check_source(text)
    assert compiled is None and problems and all(p.severity in ("error", "warning") for p in problems)


def test_not_utf8() -> None:
    compiled, problems = check_source(b"rules: []\n\xff\xfe\n")
    assert compiled is None and problems[0].line == 2 and "UTF-8" in problems[0].message


def test_norway_problem_explained() -> None:
    [(_l, _c, msg)] = errors("rules:\n  - {id: d, effect: deny, match: {}, reason: no}\n")
    assert msg == "rule 'd'.reason must be a string (quote it: YAML reads a bare 'no' as false)"


def test_actions_no_command_makes_warn() -> None:
    text = ("version: 1\nrules:\n"
            "  - {id: t, effect: deny, match: {actions: [s3:GetObjet, 'foo:*', 's3:Get*']}}\n")
    _compiled, problems = compile_source(text)
    got = [(p.line, p.column, p.message) for p in problems]
    assert got == [
        (3, 45, "rule 't'.match.actions: 's3:GetObjet' can never match: it matches no IAM action "
                "any AWS CLI command makes (a typo?)"),
        (3, 58, "rule 't'.match.actions: 'foo:*' can never match: no AWS CLI command hoop knows "
                "makes a 'foo:' call"),
    ]
