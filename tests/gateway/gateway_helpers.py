"""Shared by the gateway's end-to-end tests: a hoop server with its gateway in front of moto, a
policy that allows, reviews and denies, and session credentials issued through the real API."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROLE = "arn:aws:iam::123456789012:role/agent"

POLICY = """\
version: 1
defaults: {list: allow, read: allow, write: review, tagging: review, permissions: review, unknown: review,
           review: {approvers: ["role:approver"], channels: [cli, web, slack], expiry: 30m}}
rules:
  - id: deny-iam-access-keys
    effect: deny
    match: {actions: [iam:CreateAccessKey]}
    reason: Long-lived IAM access keys outlive the session.
  - id: deny-pass-admin-roles
    effect: deny
    match: {actions: [iam:PassRole], resources: ["arn:aws:iam::*:role/admin-*"]}
    reason: Agents never hand an admin role to a service.
  - id: review-deletes
    effect: review
    match: {actions: [s3:DeleteObject, s3:DeleteBucket]}
    review: {approvers: ["role:approver"], channels: [cli, web, slack]}
    reason: Deleting data needs a second person.
  - id: allow-agent-writes
    effect: allow
    match: {actions: [s3:CreateBucket, s3:PutObject, s3:CreateMultipartUpload, s3:UploadPart,
                      s3:CompleteMultipartUpload, secretsmanager:CreateSecret, sqs:CreateQueue,
                      sqs:SendMessage, iam:CreateUser, dynamodb:CreateTable, dynamodb:PutItem]}
    reason: The agent's sandbox work.
"""


def gateway_server(make_server: Any, tmp_path: Path, moto_endpoint: str, **overrides: Any) -> Any:
    policy = tmp_path / "gateway-policy.yaml"
    policy.write_text(POLICY)
    overrides.setdefault("connections", {"default": {"role_arn": ROLE, "region": "us-east-1",
                                                     "endpoint_url": moto_endpoint, "credentials": "gateway"}})
    overrides.setdefault("roles", {"approver": ["approvers"], "auditor": ["auditors"], "admin": ["admins"]})
    return make_server(with_gateway=True, policy_file=str(policy), **overrides)


def open_session(server: Any, sub: str = "alice", agent: str = "test-agent", connection: str = "default") -> str:
    r = httpx.post(server.url + "/api/v1/sessions", headers=server.headers(sub),
                   json={"agent": agent, "connection": connection}, timeout=10)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def credential(server: Any, session_id: str, sub: str = "alice") -> dict[str, Any]:
    r = httpx.post(f"{server.url}/api/v1/sessions/{session_id}/credentials", headers=server.headers(sub),
                   json={}, timeout=10)
    assert r.status_code == 201, r.text
    return dict(r.json())


def agent_env(cred: dict[str, Any]) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": cred["endpoint_url"], "AWS_ACCESS_KEY_ID": cred["access_key_id"],
            "AWS_SECRET_ACCESS_KEY": cred["secret_access_key"], "AWS_REGION": cred["region"],
            "AWS_DEFAULT_REGION": cred["region"]}


def boto3_client(service: str, cred: dict[str, Any], **config: Any) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        service, endpoint_url=cred["endpoint_url"], region_name=cred["region"],
        aws_access_key_id=cred["access_key_id"], aws_secret_access_key=cred["secret_access_key"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, **config))


def approve(server: Any, approval_id: str, sub: str = "bob", groups: tuple[str, ...] = ("approvers",)) -> None:
    r = httpx.post(f"{server.url}/api/v1/approvals/{approval_id}/decision", headers=server.headers(sub, groups=groups),
                   json={"decision": "approve", "reason": "ok"}, timeout=10)
    assert r.status_code == 200, r.text


def session_records(server: Any, session_id: str, sub: str = "alice") -> list[dict[str, Any]]:
    """Every ledger record of the session, in log order (the auditor's export)."""
    import json

    r = httpx.get(f"{server.url}/api/v1/export", params={"session_id": session_id}, headers=server.headers(sub),
                  timeout=10)
    assert r.status_code == 200, r.text
    return [json.loads(line)["record"] for line in r.text.splitlines() if line.strip()]


@contextlib.contextmanager
def module_gateway_server(tmp: Path, aws_endpoint: str, region: str = "us-east-1") -> Iterator[Any]:
    """What gateway_server builds, for a module-scoped fixture (make_server is per test): a hoop
    server with its gateway in front of `aws_endpoint`, reviews held 1 s, models loaded."""
    import boto3

    from hoopcli.server.settings import load_settings
    from tests.conftest import FAKE_AWS, bound_socket, start_server

    policy = tmp / "gateway-policy.yaml"
    policy.write_text(POLICY)
    sock, gateway_sock = bound_socket(), bound_socket()
    settings = load_settings(
        env={}, listen=f"127.0.0.1:{sock.getsockname()[1]}", home=str(tmp / "home"),
        gateway={"listen": f"127.0.0.1:{gateway_sock.getsockname()[1]}", "hold_seconds": 1},
        policy_file=str(policy), roles={"approver": ["approvers"]},
        connections={"default": {"role_arn": ROLE, "region": region, "endpoint_url": aws_endpoint,
                                 "credentials": "gateway"}})
    srv = start_server(settings, boto3.session.Session(**FAKE_AWS), sock, gateway_sock)
    try:
        srv.app.state.gateway.service.warm()      # botocore's models, before the first client call
        yield srv
    finally:
        srv.stop()
