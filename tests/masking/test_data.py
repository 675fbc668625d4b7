"""The stored path data matches botocore; kept paths exist in the models; policy paths; PII."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hoopcli.errors import ConfigError
from hoopcli.masking import Masker, whole_output_secret
from hoopcli.masking.generate import DATA_DIR, generate, render
from hoopcli.masking.kept import KEPT
from hoopcli.masking.paths import compile_path
from hoopcli.parse.invocation import Invocation

M = Masker(b"\x03" * 32)


def test_stored_data_matches_botocore_models() -> None:
    """Regenerate from the installed botocore (and awscli's copy) and compare byte for byte:
    `python -m hoopcli.masking.generate` after a botocore upgrade."""
    files = render(generate())
    stored = {p.name: p.read_text() for p in Path(DATA_DIR).glob("*.json") if p.name != "_review.json"}
    assert set(files) == set(stored)
    stale = [name for name, text in files.items() if stored[name] != text]
    assert stale == []


def _resolve(shapes: dict[str, Any], shape_name: str, steps: tuple[str, ...], when: Any) -> bool:
    shape = shapes[shape_name]
    for step in steps:
        if step == "[]":
            if shape["type"] != "list":
                return False
            shape = shapes[shape["member"]["shape"]]
        elif step == "*":
            if shape["type"] != "map":
                return False
            shape = shapes[shape["value"]["shape"]]
        else:
            if shape["type"] != "structure" or step not in shape["members"]:
                return False
            holder = shape
            shape = shapes[shape["members"][step]["shape"]]
    if when is not None:
        return when[0] in holder["members"]
    return True


@pytest.mark.parametrize("entry", KEPT, ids=[f"{e[0]}.{e[1]}.{e[2]}" for e in KEPT])
def test_kept_paths_exist_in_botocore(entry: tuple[str, str, str, tuple[str, ...], str]) -> None:
    import botocore.session

    service, operation, io, paths, why = entry
    assert why and paths
    loader = botocore.session.get_session().get_component("data_loader")
    model = loader.load_service_model(service, "service-2")
    op = model["operations"][operation]
    root = op["output" if io == "o" else "input"]["shape"]
    for path in paths:
        compiled = compile_path(path)
        assert _resolve(model["shapes"], root, compiled.steps, compiled.when), path


@pytest.mark.parametrize("bad", ["", ".", "a..b", "[]", "a[", "a]b", "a?b", "a?=x", 5, None, "x" * 2000])
def test_bad_paths_rejected(bad: Any) -> None:
    with pytest.raises(ConfigError):
        compile_path(bad)


@pytest.mark.parametrize(
    "extra",
    [[{"service": "s3"}], [{"service": "s3", "operation": "X", "paths": "Body"}], ["nope"],
     [{"service": 1, "operation": "X"}], [{"service": "s3", "operation": "X", "paths": ["a[b]"]}]],
)
def test_bad_policy_extras_rejected(extra: Any) -> None:
    with pytest.raises(ConfigError):
        Masker(b"k" * 32, extra)


def test_policy_adds_paths() -> None:
    masker = Masker(b"k" * 32, [{"service": "dynamodb", "operation": "GetItem",
                                 "paths": ["Item.ssn.S"], "params": ["Key.ssn.S"]}])
    parsed = {"Item": {"ssn": {"S": "123-45-6789"}, "name": {"S": "Ann"}}}
    masker.mask_parsed("dynamodb", "GetItem", parsed)
    assert parsed["Item"]["ssn"]["S"].startswith("[masked:secret:")
    assert parsed["Item"]["name"]["S"] == "Ann"
    params = {"TableName": "t", "Key": {"ssn": {"S": "123-45-6789"}}}
    masked = masker.mask_params("dynamodb", "GetItem", params)
    assert masked["Key"]["ssn"]["S"].startswith("[masked:")
    assert params["Key"]["ssn"]["S"] == "123-45-6789"  # the request itself is untouched


def test_pii_mode_masks_flagged_pii_only_when_asked() -> None:
    parsed = {"UserAttributes": [{"Name": "email", "Value": "ann@example.com"}], "Username": "ann"}
    assert M.mask_parsed("cognito-idp", "AdminGetUser", dict(parsed)) == parsed
    pii = Masker(b"k" * 32, pii=True).mask_parsed(
        "cognito-idp", "AdminGetUser",
        {"UserAttributes": [{"Name": "email", "Value": "ann@example.com"}], "Username": "ann"})
    assert "ann" not in str(pii)


def test_parsed_shapes_that_do_not_match_are_left_alone() -> None:
    for weird in ({"Credentials": "oops"}, {"Credentials": None}, {"Credentials": [1, 2]}, [], "x", None):
        M.mask_parsed("sts", "AssumeRole", weird)  # no crash
    parsed = {"SecretBinary": b"\x00\x01binary", "SecretString": ""}
    M.mask_parsed("secretsmanager", "GetSecretValue", parsed)
    assert parsed["SecretBinary"].startswith("[masked:")
    assert parsed["SecretString"] == ""


def test_mask_parsed_is_idempotent() -> None:
    parsed = {"Credentials": {"AccessKeyId": "ASIAIOSFODNN7EXAMPLE", "SecretAccessKey": "s" * 40,
                              "SessionToken": "t" * 200}}
    once = M.mask_parsed("sts", "AssumeRole", parsed)
    snapshot = repr(once)
    assert repr(M.mask_parsed("sts", "AssumeRole", once)) == snapshot


def _inv(service: str, operation: str | None, *argv: str) -> Invocation:
    return Invocation(argv=(service, *(a for a in (operation,) if a), *argv), kind="api",
                      service=service, operation=operation)


@pytest.mark.parametrize(
    ("inv", "expected"),
    [
        (_inv("ecr", "get-login-password"), True),
        (_inv("ecr-public", "get-login-password"), True),
        (_inv("rds", "generate-db-auth-token", "--hostname", "h"), True),
        (_inv("eks", "get-token", "--cluster-name", "c"), True),
        (_inv("configure", "export-credentials", "--format", "env"), True),
        (_inv("configure", "get", "aws_secret_access_key"), True),
        (_inv("configure", "get", "profile.dev.aws_session_token"), True),
        (_inv("configure", "get", "region"), False),
        (_inv("configure", "list"), False),
        (_inv("ecr", "describe-repositories"), False),
        (_inv("s3", "ls"), False),
        (_inv("", None), False),
    ],
)
def test_whole_output_secret(inv: Invocation, expected: bool) -> None:
    assert whole_output_secret(inv) is expected


def test_mask_whole_keeps_trailing_newline() -> None:
    out = M.mask_whole("eyJwYXlsb2FkIjoi...\n")
    assert out.startswith("[masked:whole-output:") and out.endswith("]\n")
    assert M.mask_whole("") == ""


def _build(steps: tuple[str, ...], when: Any, leaf: Any) -> Any:
    """A minimal response/params object in which `steps` reaches `leaf`."""
    if not steps:
        return leaf
    step, rest = steps[0], steps[1:]
    inner = _build(rest, when, leaf)
    if step == "[]":
        return [inner]
    obj = {"K" if step == "*" else step: inner}
    if when is not None and not any(s not in ("[]", "*") for s in rest):
        obj[when[0]] = when[1]
    return obj


@pytest.mark.parametrize("entry", KEPT, ids=[f"{e[0]}.{e[1]}.{e[2]}" for e in KEPT])
def test_every_kept_path_is_masked(entry: tuple[str, str, str, tuple[str, ...], str]) -> None:
    service, operation, io, paths, _ = entry
    for path in paths:
        compiled = compile_path(path)
        canary = "hoopCanaryKept" + operation
        obj = _build(compiled.steps, compiled.when, canary)
        if io == "o":
            masked = M.mask_parsed(service, operation, obj)
        else:
            masked = M.mask_params(service, operation, obj)
        assert canary not in repr(masked), path
        assert "[masked:" in repr(masked)
