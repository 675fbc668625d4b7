"""Issue 15, item 5: secrets typed in argv are masked before anything is recorded, in every
spelling awscli accepts (abbreviations, `=` forms, --cli-input-json/yaml documents)."""

from __future__ import annotations

import json

import pytest

from hoopcli.masking import Masker

SECRET = "V3ry-Secret-Value-42"


@pytest.fixture
def masker() -> Masker:
    return Masker(b"k" * 32)


@pytest.mark.parametrize("argv", [
    ["ssm", "put-parameter", "--name", "n", "--type", "SecureString", "--value", SECRET],
    ["ssm", "put-parameter", "--na", "n", "--ty=SecureString", "--val", SECRET],
    ["ssm", "put-parameter", "--na", "n", "--ty", "SecureString", f"--val={SECRET}"],
    ["secretsmanager", "create-secret", "--name", "x", f"--secret-s={SECRET}"],
    ["secretsmanager", "put-secret-value", "--secret-id", "x", "--secret-str", SECRET],
    ["rds", "create-db-instance", "--db-instance-identifier", "x", "--master-user-passw", SECRET],
    ["--region", "eu-west-1", "ssm", "put-parameter", "--ty=SecureString", "--na", "n", "--va", SECRET],
])
def test_secret_options_in_every_spelling(masker: Masker, argv: list[str]) -> None:
    out = masker.mask_argv(argv)
    assert SECRET not in " ".join(out)
    assert len(out) == len(argv)


@pytest.mark.parametrize("option", ["--cli-input-json", "--cli-input-js"])
def test_cli_input_json_documents(masker: Masker, option: str) -> None:
    doc = {"Name": "n", "Type": "SecureString", "Value": SECRET}
    out = masker.mask_argv(["ssm", "put-parameter", option, json.dumps(doc)])
    assert SECRET not in " ".join(out)
    assert json.loads(out[3])["Name"] == "n"
    doc2 = {"Name": "x", "SecretString": SECRET}
    out = masker.mask_argv(["secretsmanager", "create-secret", option, json.dumps(doc2)])
    assert SECRET not in " ".join(out)


def test_cli_input_yaml_document(masker: Masker) -> None:
    out = masker.mask_argv(["ssm", "put-parameter", "--cli-input-yaml",
                            f"Name: n\nType: SecureString\nValue: {SECRET}\n"])
    assert SECRET not in " ".join(out)


def test_plain_values_stay(masker: Masker) -> None:
    argv = ["ssm", "put-parameter", "--na", "n", "--ty=String", "--val", "hello"]
    assert masker.mask_argv(argv) == argv


@pytest.mark.parametrize(("service", "operation", "io", "doc", "path"), [
    ("codebuild", "BatchGetProjects", "o",
     {"projects": [{"environment": {"environmentVariables": [{"name": "DB", "value": SECRET}]}}]},
     lambda d: d["projects"][0]["environment"]["environmentVariables"][0]),
    ("codebuild", "StartBuild", "i", {"projectName": "p", "environmentVariablesOverride": [
        {"name": "DB", "value": SECRET}]}, lambda d: d["environmentVariablesOverride"][0]),
    ("codebuild", "BatchGetBuilds", "o",
     {"builds": [{"environment": {"environmentVariables": [{"name": "DB", "value": SECRET}]}}]},
     lambda d: d["builds"][0]["environment"]["environmentVariables"][0]),
    ("batch", "SubmitJob", "i", {"containerOverrides": {"environment": [{"name": "DB", "value": SECRET}]}},
     lambda d: d["containerOverrides"]["environment"][0]),
    ("batch", "DescribeJobDefinitions", "o", {"jobDefinitions": [
        {"containerProperties": {"environment": [{"name": "DB", "value": SECRET}]}}]},
     lambda d: d["jobDefinitions"][0]["containerProperties"]["environment"][0]),
    ("batch", "DescribeJobs", "o", {"jobs": [{"container": {"environment": [{"name": "DB", "value": SECRET}]}}]},
     lambda d: d["jobs"][0]["container"]["environment"][0]),
])
def test_codebuild_and_batch_environment_values(masker: Masker, service: str, operation: str, io: str,
                                                doc: dict, path: object) -> None:
    out = masker.mask_parsed(service, operation, doc) if io == "o" else masker.mask_params(service, operation, doc)
    entry = path(out)  # type: ignore[operator]
    assert entry["name"] == "DB" and entry["value"] != SECRET and entry["value"].startswith("[masked:")


@pytest.mark.parametrize("argv", [
    # generic member names that only the operation's parameter paths know as secret
    ["apigateway", "create-api-key", "--name", "k", "--val", SECRET],
    ["apigateway", "create-api-key", "--name", "k", f"--value={SECRET}"],
    ["ecs", "register-task-definition", "--family", "f", "--container-definitions",
     json.dumps([{"name": "app", "environment": [{"name": "UPSTREAM", "value": SECRET}]}])],
    ["ecs", "register-task-definition", "--family", "f", "--container-definitions",
     f"name=app,environment=[{{name=UPSTREAM,value={SECRET}}}]"],
    ["codebuild", "start-build", "--project-name", "p", "--environment-variables-override",
     f"name=UPSTREAM,value={SECRET},type=PLAINTEXT"],
    ["amplify", "create-app", "--name", "a", "--environment-variables", f"UPSTREAM={SECRET}"],
    ["sagemaker", "create-model", "--model-name", "m", "--execution-role-arn", "arn:aws:iam::1:role/r",
     "--primary-container", json.dumps({"Image": "img", "Environment": {"UPSTREAM": SECRET}})],
])
def test_options_filling_masked_members(masker: Masker, argv: list[str]) -> None:
    """Issue 15: option values are masked by the operation's parameter paths too (a JSON value
    member by member, anything else whole); the other options stay readable."""
    out = masker.mask_argv(argv)
    assert SECRET not in " ".join(out)
    assert len(out) == len(argv) and out[:4] == argv[:4]
    if argv[-1].startswith("[{"):
        shown = json.loads(out[-1])
        assert shown[0]["name"] == "app" and shown[0]["environment"][0]["value"].startswith("[masked:")
    if argv[-1].startswith('{"Image"'):
        shown = json.loads(out[-1])
        assert shown["Image"] == "img" and shown["Environment"]["UPSTREAM"].startswith("[masked:")


def test_a_plain_parameter_value_stays(masker: Masker) -> None:
    argv = ["ssm", "put-parameter", "--name", "/ami/latest", "--type", "String", "--value", "ami-0123456789abcdef0"]
    assert masker.mask_argv(argv) == argv
