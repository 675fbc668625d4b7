"""Token attacks from the client side: a hostile ID token in the client's session file makes the
shim (in process and as an executable) and `hoop sync` exit 65 with one `hoop:` line, no
traceback, nothing run against AWS and no credentials vended. The raw-HTTP side of the same
attacks is in tests/server/test_tokens.py."""

from __future__ import annotations

import base64
import json
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from reliability.procserver import ROLE, ClientHome, Outcome, RecordingProxy

from hoopcli.agents.shimfile import install_shim
from hoopcli.identity import tokens as auth
from hoopcli.server.idp.keys import current_key

from .conftest import boto


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims(server: Any, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": server.settings.issuer, "aud": "hoop-cli", "sub": "mallory", "iat": now, "nbf": now,
            "exp": now + 600, "groups": ["admins"], **extra}


def forged(server: Any) -> str:
    header, _payload, signature = server.token("alice").split(".")
    return ".".join([header, b64(claims(server)), signature])


def alg_none(server: Any) -> str:
    return b64({"alg": "none", "typ": "JWT", "kid": current_key(server.settings).kid}) + "." + b64(claims(server)) + "."


def other_key(server: Any) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims(server), key, algorithm="RS256", headers={"kid": current_key(server.settings).kid})


ATTACKS = {
    "forged-payload": forged,
    "alg-none": alg_none,
    "signed-by-another-key": other_key,
    "expired": lambda s: s.token("alice", exp=int(time.time()) - 3600, iat=int(time.time()) - 7200,
                                 nbf=int(time.time()) - 7200),
    "wrong-audience": lambda s: s.token("alice", aud="someone-else"),
    "wrong-issuer": lambda s: s.token("alice", iss="https://evil.example/idp"),
    "garbage": lambda s: "a.b.c",
}


@pytest.fixture
def victim(make_server: Any, moto_endpoint: str, tmp_path: Path) -> Iterator[tuple[Any, ClientHome, RecordingProxy]]:
    proxy = RecordingProxy(moto_endpoint)
    server = make_server(connections={"default": {"credentials": "vend", "role_arn": ROLE, "region": "us-east-1",
                                                  "endpoint_url": proxy.url}})
    shim = install_shim(tmp_path / "shimbin", python=sys.executable)
    client = ClientHome(tmp_path / "c" / "hoop", server.url, server.token("alice", groups=["developers"]), shim)
    try:
        yield server, client, proxy
    finally:
        proxy.close()


def plant_token(client: ClientHome, token: str) -> None:
    """What an attacker with write access to the session file does: replace the ID token."""
    path = auth.session_file(client.layout)
    session = json.loads(path.read_text())
    session["id_token"] = token
    try:  # keep the file consistent with the token's own claims, as a careful attacker would
        exp = auth.jwt_claims(token).get("exp")
        if isinstance(exp, (int, float)):
            session["expires_at"] = float(exp)
    except Exception:  # garbage has no claims
        pass
    path.write_text(json.dumps(session))


def assert_refused(result: Outcome) -> None:
    assert result.code == 65, (result.code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hoop: "), result.stderr
    assert "Traceback" not in result.stderr and result.out == b""


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_hostile_token_runs_nothing(victim: tuple[Any, ClientHome, RecordingProxy], attack: str) -> None:
    server, client, proxy = victim
    plant_token(client, ATTACKS[attack](server))
    bucket = "tok-" + secrets.token_hex(6)
    assert_refused(client.run("s3", "mb", f"s3://{bucket}"))
    assert_refused(client.run("s3api", "list-buckets"))
    assert_refused(client.exec("s3", "mb", f"s3://{bucket}"))
    # nothing reached AWS: the broker vended nothing, no bucket was made
    assert proxy.exchanges() == []
    assert bucket not in [b["Name"] for b in boto(proxy.url, "s3").list_buckets()["Buckets"]]
    with server.db.session() as db:
        from hoopcli.server.store.models import CredentialGrant

        assert db.query(CredentialGrant).count() == 0


def test_sync_with_a_forged_token_keeps_the_spool(victim: tuple[Any, ClientHome, RecordingProxy]) -> None:
    from hoopcli.record.shapes import record_start
    from hoopcli.record.spool import Spool

    server, client, _proxy = victim
    spool = Spool(client.layout)
    ids = set()
    for seq in range(3):
        rec = record_start(command_id=f"c{seq}", session_id="tok-session", seq=seq, user="alice",
                           agent="t", host="h", cwd="/", connection="default", argv=["s3", "ls"],
                           invocation=None, decision={"effect": "allow", "rule": None, "reason": None})
        spool.append(rec)
        ids.add(rec["id"])
    plant_token(client, forged(server))
    assert_refused(client.hoop("sync"))
    assert {rec["id"] for _p, rec in spool.records()} == ids
