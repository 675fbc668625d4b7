"""The credential broker against a real moto_server."""

from __future__ import annotations

import logging
import socket
from datetime import timezone

import boto3
import httpx
import pytest
from sqlalchemy import select, text

from hoopcli.parse import parse
from hoopcli.parse.invocation import ApiCall, Invocation
from hoopcli.server.credentials.broker import MAX_PACKED_POLICY, session_policy, sts_name
from hoopcli.server.store.models import AgentSession, CredentialGrant

ROLE = "arn:aws:iam::123456789012:role/agent-readonly"


@pytest.fixture
def broker(make_server, moto_endpoint):
    return make_server(connections={
        "default": {"credentials": "vend", "role_arn": ROLE, "endpoint_url": moto_endpoint},
        "prod": {"credentials": "vend", "role_arn": "arn:aws:iam::123456789012:role/prod", "endpoint_url": moto_endpoint,
                 "duration_seconds": 1800},
    })


def vend(srv, body: dict, sub: str = "alice", **kw) -> httpx.Response:
    return httpx.post(srv.url + "/api/v1/credentials", json=body,
                      headers=srv.headers(sub, email=f"{sub}@example.com", **kw), timeout=30)


def test_read_only_command_gets_working_credentials(broker, moto_endpoint, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    r = vend(broker, {"connection": "default", "session_id": "sess-1", "argv": ["s3api", "list-buckets"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["decision"]["effect"] == "allow"
    assert body["sts_session_name"] == "hoop-sess-1"
    assert body["assumed_role_arn"].endswith(":assumed-role/agent-readonly/hoop-sess-1")
    assert body["region"] == "us-east-1" and body["endpoint_url"] == moto_endpoint
    assert body["expiration"].endswith("Z")

    # the credentials are real: STS says who they are
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=moto_endpoint,
                       aws_access_key_id=body["access_key_id"], aws_secret_access_key=body["secret_access_key"],
                       aws_session_token=body["session_token"])
    assert sts.get_caller_identity()["Arn"] == body["assumed_role_arn"]

    # recorded without the secret; the session is claimed for alice
    with broker.db.session() as s:
        grant = s.scalars(select(CredentialGrant)).one()
        session = s.get(AgentSession, "sess-1")
    assert grant.assumed_role_arn == body["assumed_role_arn"] and grant.user == "alice"
    assert grant.actions == ["s3:ListAllMyBuckets"]
    assert session.user == "alice" and session.source == "credentials"
    dump = _dump_database(broker)
    for secret in (body["secret_access_key"], body["session_token"]):
        assert secret not in dump
        assert secret not in caplog.text
    assert body["assumed_role_arn"] in caplog.text


def _dump_database(srv) -> str:
    from sqlalchemy import inspect

    parts = []
    with srv.db.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            parts.extend(str(row) for row in conn.execute(text(f'SELECT * FROM "{table}"')))
    return "\n".join(parts)


def test_duration_comes_from_the_connection(broker) -> None:
    from datetime import datetime

    r = vend(broker, {"connection": "prod", "session_id": "s2", "argv": ["sts", "get-caller-identity"]})
    assert r.status_code == 200, r.text
    expires = datetime.fromisoformat(r.json()["expiration"].replace("Z", "+00:00"))
    left = (expires - datetime.now(timezone.utc)).total_seconds()
    assert 1700 < left <= 1800


def test_write_without_approval_is_409(broker) -> None:
    r = vend(broker, {"connection": "default", "session_id": "s3", "argv": ["s3api", "create-bucket", "--bucket", "b1"]})
    assert r.status_code == 409, r.text
    assert r.json()["approval_required"] is True
    assert r.json()["decision"]["effect"] == "review"


def test_unknown_approval_id_is_refused(broker) -> None:
    r = vend(broker, {"connection": "default", "session_id": "s3", "approval_id": "nope",
                      "argv": ["s3api", "create-bucket", "--bucket", "b1"]})
    assert r.status_code in (404, 409), r.text


def test_unknown_connection_lists_the_allowed_ones(broker) -> None:
    r = vend(broker, {"connection": "staging", "session_id": "s4", "argv": ["s3api", "list-buckets"]})
    assert r.status_code == 404
    assert r.json()["detail"] == "unknown connection 'staging'; allowed connections: default, prod"


def test_someone_elses_session_is_refused(broker) -> None:
    assert vend(broker, {"connection": "default", "session_id": "shared", "argv": ["s3api", "list-buckets"]},
                sub="alice").status_code == 200
    r = vend(broker, {"connection": "default", "session_id": "shared", "argv": ["s3api", "list-buckets"]}, sub="mallory")
    assert r.status_code == 403
    assert r.json()["detail"] == "this session belongs to another user"


@pytest.mark.parametrize(
    "body, status",
    [
        ({"connection": "default", "session_id": "s", "argv": []}, 422),
        ({"connection": "default", "session_id": "s", "argv": "s3api list-buckets"}, 422),
        ({"connection": "default", "session_id": "s"}, 422),
        ({"connection": "default", "session_id": "../../etc", "argv": ["s3api", "list-buckets"]}, 422),
        ({"connection": "default", "session_id": "s", "argv": ["s3api", "list-buckets\x00"]}, 422),
        ({"connection": "default", "session_id": "s", "argv": ["s3api", "list-buckets"], "approval_id": "a b"}, 422),
        ({"connection": "default", "session_id": "s", "argv": ["--version"]}, 400),
        ({"connection": "default", "session_id": "s", "argv": ["nosuchservice", "do-it"]}, 400),
        ({"connection": "x" * 100, "session_id": "s", "argv": ["s3api", "list-buckets"]}, 422),
        ([1, 2, 3], 422),
    ],
)
def test_bad_bodies_are_4xx(broker, body, status: int) -> None:
    r = vend(broker, body)
    assert r.status_code == status, r.text


@pytest.mark.parametrize("raw", [b"{", b"\xff\xfe", b'{"connection": 1e999999}', b"null", b'"' + b"a" * 1000 + b'"'])
def test_malformed_json_is_4xx(broker, raw: bytes) -> None:
    r = httpx.post(broker.url + "/api/v1/credentials", content=raw,
                   headers={**broker.headers("alice"), "Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, r.text


def test_oversized_body_is_413(broker) -> None:
    body = {"connection": "default", "session_id": "s", "argv": ["s3api", "list-buckets"], "pad": "x" * (2 << 20)}
    r = httpx.post(broker.url + "/api/v1/credentials", json=body, headers=broker.headers("alice"))
    assert r.status_code == 413

    def chunks():
        for _ in range(40):
            yield b"x" * 65536

    r = httpx.post(broker.url + "/api/v1/credentials", content=chunks(),
                   headers={**broker.headers("alice"), "Content-Type": "application/json"})
    assert r.status_code == 413


def test_unreachable_sts_is_503(make_server) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    srv = make_server(connections={"default": {"credentials": "vend", "role_arn": ROLE, "endpoint_url": f"http://127.0.0.1:{port}"}})
    r = vend(srv, {"connection": "default", "session_id": "s", "argv": ["s3api", "list-buckets"]})
    assert r.status_code == 503
    assert "STS is unreachable for connection 'default'" in r.json()["detail"]


def test_server_without_aws_credentials_says_so(make_server, moto_endpoint) -> None:
    srv = make_server(aws_session=boto3.session.Session(),
                      connections={"default": {"credentials": "vend", "role_arn": ROLE, "endpoint_url": moto_endpoint}})
    r = vend(srv, {"connection": "default", "session_id": "s", "argv": ["s3api", "list-buckets"]})
    assert r.status_code == 502
    assert r.json()["detail"] == "the hoop server has no AWS credentials of its own to call STS with"


# -- pieces ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "value, expected",
    [("sess-1", "hoop-sess-1"), ("a b/c:d", "hoop-a-b-c-d"), ("x" * 100, "hoop-" + "x" * 59), ("é", "hoop-é")],
)
def test_sts_session_name(value: str, expected: str) -> None:
    assert sts_name(value, prefix="hoop-") == expected


def test_sts_name_minimum_length() -> None:
    assert sts_name("") == "--" and sts_name("a") == "a-"
    assert sts_name("alice@example.com") == "alice@example.com"


def test_session_policy_narrows_to_actions_and_arns() -> None:
    policy = session_policy(parse(["s3api", "create-bucket", "--bucket", "b1"]))
    assert policy["Statement"] == [{"Effect": "Allow", "Action": ["s3:CreateBucket"], "Resource": ["arn:aws:s3:::b1"]}]
    policy = session_policy(parse(["s3", "cp", "local.txt", "s3://b1/k"]))
    assert {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
            "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}} in policy["Statement"]
    policy = session_policy(parse(["s3api", "list-buckets"]))
    assert policy["Statement"] == [{"Effect": "Allow", "Action": ["s3:ListAllMyBuckets"], "Resource": "*"}]


def test_session_policy_stays_under_the_sts_limit() -> None:
    calls = tuple(
        ApiCall("s3", "GetObject", (f"s3:GetObject{i}",), "Read", (f"arn:aws:s3:::bucket/{'k' * 40}{i}",))
        for i in range(80)
    )
    inv = Invocation(argv=("s3",), kind="s3", service="s3", operation="cp", api_calls=calls)
    # issue 15: past STS's limit hoop fails closed instead of widening to Resource "*"
    from hoopcli.server.credentials.broker import ScopeUnbounded

    with pytest.raises(ScopeUnbounded, match=f"longer than STS allows \\({MAX_PACKED_POLICY}\\)"):
        session_policy(inv)


def test_sessions_and_credentials_on_both_databases(make_server, moto_endpoint, database_url) -> None:
    import concurrent.futures

    srv = make_server(database_url=database_url,
                      connections={"default": {"credentials": "vend", "role_arn": ROLE, "endpoint_url": moto_endpoint}})
    assert srv.db.dialect == ("sqlite" if database_url.startswith("sqlite") else "postgresql")
    headers = srv.headers("dana", email="dana@example.com")

    def open_session(i: int) -> httpx.Response:
        return httpx.post(srv.url + "/api/v1/sessions", headers=headers, timeout=30,
                          json={"agent": f"agent-{i}", "host": "h", "cwd": "/w", "connection": "default"})

    # a brand-new user's first requests race to create the users-seen row
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(open_session, range(6)))
    assert [r.status_code for r in responses] == [201] * 6, [r.text for r in responses]
    sid = responses[0].json()["id"]
    r = httpx.post(srv.url + "/api/v1/credentials", headers=headers, timeout=30,
                   json={"connection": "default", "session_id": sid, "argv": ["s3api", "list-buckets"]})
    assert r.status_code == 200, r.text
    from hoopcli.server.store.models import User

    with srv.db.session() as s:
        users = s.scalars(select(User)).all()
        grants = s.scalars(select(CredentialGrant)).all()
        row = s.get(AgentSession, sid)
    assert [(u.subject, u.email) for u in users] == [("dana", "dana@example.com")]
    assert [g.session_id for g in grants] == [sid]
    assert (row.agent, row.host, row.cwd, row.connection, row.source) == ("agent-0", "h", "/w", "default", "api")


@pytest.mark.parametrize(
    "body",
    [{"connection": "nope"}, {"agent": "a" * 200}, {"cwd": "x\x00y"}, {"unexpected": 1}, {"agent": 5}],
)
def test_bad_session_bodies(broker, body: dict) -> None:
    r = httpx.post(broker.url + "/api/v1/sessions", json=body, headers=broker.headers("alice"))
    assert 400 <= r.status_code < 500, r.text


def test_validation_errors_do_not_echo_the_input(broker) -> None:
    r = httpx.post(broker.url + "/api/v1/sessions", json={"agent": "a" * 200 + "SECRET-VALUE"},
                   headers=broker.headers("alice"))
    assert r.status_code == 422
    assert "SECRET-VALUE" not in r.text
    assert r.json()["detail"][0]["loc"] == ["body", "agent"]
