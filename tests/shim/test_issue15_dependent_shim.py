"""Issue 15, item 6, end to end: the shim (real awscli in process, vend mode against moto) decides on
the role a call passes, and the server vends credentials whose scope includes iam:PassRole on it."""

from __future__ import annotations

import io
import json
import zipfile

import boto3
from sqlalchemy import select

from hoopcli.client import Client
from hoopcli.server.store.models import CredentialGrant

POLICY = """version: 1
rules:
  - id: no-passing-admin
    effect: deny
    match: {actions: ["iam:PassRole"], resources: ["arn:aws:iam::*:role/admin*"]}
    reason: Agents never hand the admin role to a service.
  - id: lambda-with-worker-roles
    effect: allow
    match: {actions: ["lambda:CreateFunction", "iam:PassRole"]}
"""


def test_passing_a_role_is_decided_and_scoped(shim_world, tmp_path) -> None:
    admin = Client(shim_world.server.url, timeout=10,
                   token=shim_world.server.token("root", email="root@example.com", groups=["admins"]))
    admin.put("/api/v1/policy", json={"source": POLICY}, expect=(200, 201))
    iam = boto3.client("iam", endpoint_url=shim_world.moto, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                                "Principal": {"Service": "lambda.amazonaws.com"}}]})
    worker = iam.create_role(RoleName="worker-fn", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    code = tmp_path / "fn.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("index.py", "def handler(e, c):\n    return 1\n")
    code.write_bytes(buf.getvalue())
    base = ["lambda", "create-function", "--function-name", "dep-fn", "--runtime", "python3.12",
            "--handler", "index.handler", "--zip-file", f"fileb://{code}", "--region", "us-east-1"]

    denied = shim_world.run(*base, "--role", "arn:aws:iam::123456789012:role/admin-all")
    assert denied.code == 77, denied.stderr
    assert "no-passing-admin" in denied.stderr and "iam:PassRole" in denied.stderr

    ok = shim_world.run(*base, "--role", worker)
    assert ok.code == 0, ok.stderr
    assert json.loads(ok.out)["Role"] == worker
    with shim_world.server.db.session() as s:
        grants = s.scalars(select(CredentialGrant)).all()
    assert [g.actions for g in grants] == [["lambda:CreateFunction", "iam:PassRole"]]
