"""Issue 15, item 6: dependent actions are evaluated by policy like any action (a deny rule on
iam:PassRole fires), and a vend-mode session policy scopes them to their exact resources or
refuses (never Resource "*"), through a real server and moto's STS."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from hoopcli.client import Client
from hoopcli.parse import parse
from hoopcli.policy import Policy
from hoopcli.policy.compiler import compile_source
from hoopcli.server.credentials.broker import ScopeUnbounded, _dependent_statements, session_policy
from hoopcli.server.store.models import CredentialGrant

POLICY = """version: 1
rules:
  - id: no-passing-admin
    effect: deny
    match: {actions: ["iam:PassRole"], resources: ["arn:aws:iam::*:role/admin*"]}
    reason: Agents never hand the admin role to a service.
  - id: lambda-changes
    effect: allow
    match: {actions: ["lambda:*"]}
  - id: pass-worker-roles
    effect: allow
    match: {actions: ["iam:PassRole"], resources: ["arn:aws:iam::*:role/worker-*"]}
  - id: ec2-launches
    effect: allow
    match: {actions: ["ec2:RunInstances", "iam:PassRole"], access_levels: [Write, Unknown]}
"""
ADMIN = "arn:aws:iam::123456789012:role/admin"
WORKER = "arn:aws:iam::123456789012:role/worker-1"


def create_function(role: str) -> list[str]:
    return ["lambda", "create-function", "--function-name", "f", "--runtime", "python3.12",
            "--handler", "h", "--role", role, "--region", "us-east-1"]


def test_a_deny_rule_on_pass_role_fires() -> None:
    policy = Policy(compile_source(POLICY)[0])
    decision = policy.evaluate(parse(create_function(ADMIN)))
    assert (decision.effect, decision.rule) == ("deny", "no-passing-admin")
    assert policy.evaluate(parse(create_function(WORKER))).effect == "allow"
    # an allow rule on lambda:* alone does not cover the role a call passes
    other = Policy(compile_source(POLICY.replace("resources: [\"arn:aws:iam::*:role/worker-*\"]",
                                                 "resources: [\"arn:aws:iam::*:role/none\"]"))[0])
    assert other.evaluate(parse(create_function(WORKER))).effect == "review"


def test_session_policies_scope_dependent_actions_and_never_widen() -> None:
    policy = session_policy(parse(create_function(WORKER)))
    assert {"Effect": "Allow", "Action": ["iam:PassRole"], "Resource": [WORKER]} in policy["Statement"]
    tags, _ = _dependent_statements(parse(["ec2", "create-volume", "--availability-zone", "a", "--size", "1",
                                           "--tag-specifications", "ResourceType=volume,Tags=[{Key=a,Value=b}]"]))
    assert tags == [{"Effect": "Allow", "Action": ["ec2:CreateTags"], "Resource": ["arn:aws:ec2:*:*:volume/*"],
                     "Condition": {"StringEquals": {"ec2:CreateAction": "CreateVolume"}}}]
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    kms = session_policy(parse(["s3", "cp", "a.txt", "s3://b/k", "--sse", "aws:kms", "--sse-kms-key-id", key]))
    assert {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": [key],
            "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}} in kms["Statement"]
    assert '"Resource": "*"' not in json.dumps(kms)   # the named key replaces the any-key statement
    for argv, why in ((["ec2", "run-instances", "--image-id", "ami-1", "--iam-instance-profile", "Name=web"],
                       "instance profile"),
                      (["s3", "cp", "a.txt", "s3://b/k", "--sse-kms-key-id", "alias/app"], "alias")):
        with pytest.raises(ScopeUnbounded, match=why):
            session_policy(parse(argv))


@pytest.fixture
def broker(make_server: Any, moto_endpoint: str) -> Any:
    srv = make_server(connections={"default": {"credentials": "vend", "endpoint_url": moto_endpoint,
                                               "role_arn": "arn:aws:iam::123456789012:role/agent"}})
    admin = Client(srv.url, token=srv.token("root", email="root@example.com", groups=("admins",)), timeout=10)
    admin.put("/api/v1/policy", json={"source": POLICY}, expect=(200, 201))
    return srv


def vend(srv: Any, argv: list[str], session: str) -> httpx.Response:
    return httpx.post(srv.url + "/api/v1/credentials", timeout=30,
                      headers=srv.headers("alice", email="alice@example.com"),
                      json={"connection": "default", "session_id": session, "argv": argv})


def test_the_server_decides_and_scopes_the_role_a_call_passes(broker: Any) -> None:
    denied = vend(broker, create_function(ADMIN), "dep-1")
    assert denied.status_code == 403 and "no-passing-admin" in denied.json()["detail"], denied.text
    ok = vend(broker, create_function(WORKER), "dep-2")
    assert ok.status_code == 200, ok.text
    with broker.db.session() as s:
        grant = s.scalars(select(CredentialGrant)).one()
    assert grant.actions == ["lambda:CreateFunction", "iam:PassRole"]
    # a role hoop cannot name (an instance profile) is refused, never widened to Resource "*"
    refused = vend(broker, ["ec2", "run-instances", "--image-id", "ami-1", "--iam-instance-profile",
                            "Name=web"], "dep-3")
    assert refused.status_code == 502 and "instance profile" in refused.json()["detail"], refused.text


def test_the_documented_cloudformation_rules_require_a_service_role() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "explain.md").read_text()
    block = doc.split("  - id: stacks-with-a-role", 1)[1].split("```", 1)[0]
    policy = Policy(compile_source("version: 1\nrules:\n  - id: stacks-with-a-role" + block)[0])
    stack = ["cloudformation", "create-stack", "--stack-name", "s", "--template-body", "{}"]
    assert policy.evaluate(parse([*stack, "--role-arn", "arn:aws:iam::1:role/cfn-deploy"])).effect == "allow"
    assert policy.evaluate(parse(stack)).effect == "review"       # no service role: the caller's rights
    assert policy.evaluate(parse([*stack, "--role-arn", "arn:aws:iam::1:role/admin"])).effect == "review"
