"""The agent is not its user: what `hoop run` / `hoop env` hand an agent (a gateway session
credential) reaches the API only on the routes of `security.SESSION_ROUTES`, and only for its own
session. The matrix walks every route of the app (a new route cannot be forgotten) for a user's
token, a live session credential, an expired one and a revoked one.

A session credential signs an API request with SigV4 for the service `hoop`
(`Authorization: AWS4-HMAC-SHA256 ...`), as botocore does for any AWS service."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
from gateway.gateway_helpers import credential, gateway_server, open_session
from server.test_authz import declared, fill

from hoopcli.server.identity.security import SESSION_ROUTES


def signed(method: str, url: str, cred: dict[str, Any], body: bytes = b"", service: str = "hoop",
           when: dt.datetime | None = None) -> dict[str, str]:
    """Headers of a SigV4-signed request, as any AWS SDK would sign it with the credential."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = {"Content-Type": "application/json"} if body else {}
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    signer = SigV4Auth(Credentials(cred["access_key_id"], cred["secret_access_key"]), service, cred["region"])
    if when is None:
        signer.add_auth(request)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            signer.add_auth(request)
    return dict(request.headers.items())


def call(server: Any, method: str, path: str, cred: dict[str, Any], body: Any = None,
         params: str = "", **kw: Any) -> httpx.Response:
    url = server.url + path + (f"?{params}" if params else "")
    data = json.dumps(body).encode() if body is not None else b""
    return httpx.request(method, url, content=data, headers=signed(method, url, cred, data, **kw), timeout=30)


@pytest.fixture
def gw(make_server: Any, tmp_path: Path, moto_endpoint: str) -> Any:
    return gateway_server(make_server, tmp_path, moto_endpoint)


def agent_of(server: Any, sub: str = "alice") -> tuple[str, dict[str, Any]]:
    session_id = open_session(server, sub)
    return session_id, credential(server, session_id, sub)


def routes(server: Any) -> list[tuple[str, str]]:
    return [(m, p) for m, p, roles in declared(server.app) if roles is not None]


def send(server: Any, method: str, path: str, cred: dict[str, Any]) -> httpx.Response:
    body = {} if method in ("POST", "PUT", "PATCH") else None
    return call(server, method, fill(path), cred, body, params="wait=0" if method == "GET" else "")


def test_every_route_refuses_a_session_credential_but_its_own(gw: Any) -> None:
    """An admin's token reaches every route; the same admin's agent reaches none but the two
    session routes (and those refuse what is not its own session's)."""
    _sid, cred = agent_of(gw, "root-admin")
    admin = gw.headers("root-admin", groups=("admins",))
    table = routes(gw)
    assert set(SESSION_ROUTES) <= set(table)
    failures = []
    for method, path in table:
        user = httpx.request(method, gw.url + fill(path), headers=admin, timeout=30,
                             **({"json": {}} if method in ("POST", "PUT", "PATCH") else {"params": {"wait": "0"}}))
        if user.status_code in (401, 403) and "session" not in user.text:
            failures.append(f"{method} {path} as the admin -> {user.status_code}, want access")
        r = send(gw, method, path, cred)
        if (method, path) in SESSION_ROUTES:
            # reachable, but `x` is nobody's approval of this session / {} opens nothing
            if r.status_code not in (403, 404) or "cannot call this endpoint" in r.text:
                failures.append(f"{method} {path} as a session credential -> {r.status_code} {r.text[:120]}")
        elif r.status_code != 403 or "cannot call this endpoint" not in r.text:
            failures.append(f"{method} {path} as a session credential -> {r.status_code} {r.text[:120]}, want 403")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("how", ["expired", "revoked", "unknown"])
def test_a_dead_session_credential_is_refused_everywhere(gw: Any, how: str) -> None:
    from hoopcli.server.store.models import SessionCredential

    session_id, cred = agent_of(gw)
    if how == "expired":
        with gw.db.session() as s:
            row = s.get(SessionCredential, cred["access_key_id"])
            row.expires_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    elif how == "revoked":
        r = httpx.post(f"{gw.url}/api/v1/sessions/{session_id}/close", headers=gw.headers("alice"),
                       json={"exit_code": 0})
        assert r.status_code == 200 and r.json()["revoked_credentials"] == 1
    else:
        cred = {**cred, "access_key_id": "HOOP" + "A" * 16}
    failures = []
    for method, path in routes(gw):
        r = send(gw, method, path, cred)
        if r.status_code != 401:
            failures.append(f"{method} {path} -> {r.status_code}, want 401")
    assert not failures, "\n".join(failures)
    r = send(gw, "GET", "/api/v1/whoami", cred)
    assert r.json()["detail"] == {"expired": "invalid session credential: the session credential has expired",
                                  "revoked": "invalid session credential: the session credential was revoked",
                                  "unknown": "invalid session credential: bad signature (InvalidClientTokenId)"}[how]


def test_the_agent_opens_an_approval_with_a_justification_and_reads_its_decision(gw: Any) -> None:
    session_id, cred = agent_of(gw)
    ask = {"argv": ["s3api", "delete-object", "--bucket", "logs", "--key", "a"], "connection": "default",
           "session_id": session_id, "reason": "clean the old log the user asked me to"}
    r = call(gw, "POST", "/api/v1/approvals", cred, ask)
    assert r.status_code == 200, r.text
    approval = r.json()
    assert approval["status"] == "pending" and approval["requester"] == "alice"
    r = call(gw, "GET", f"/api/v1/approvals/{approval['id']}", cred, params="wait=0")
    assert r.status_code == 200 and r.json()["status"] == "pending"
    # it can never decide, not even its own session's approval
    r = call(gw, "POST", f"/api/v1/approvals/{approval['id']}/decision", cred, {"decision": "approve"})
    assert r.status_code == 403 and "cannot call this endpoint" in r.text
    # a person decides; the agent reads the decision
    r = httpx.post(f"{gw.url}/api/v1/approvals/{approval['id']}/decision", json={"decision": "approve"},
                   headers=gw.headers("bob", groups=("approvers",)))
    assert r.status_code == 200, r.text
    r = call(gw, "GET", f"/api/v1/approvals/{approval['id']}", cred, params="wait=0")
    assert r.status_code == 200 and r.json()["status"] == "approved"


def test_the_agent_stays_in_its_own_session(gw: Any) -> None:
    session_id, cred = agent_of(gw)
    other_id, other = agent_of(gw)        # the same user's other agent
    ask = {"argv": ["s3api", "delete-object", "--bucket", "logs", "--key", "a"], "connection": "default",
           "reason": "because"}
    theirs = call(gw, "POST", "/api/v1/approvals", other, {**ask, "session_id": other_id}).json()
    # no justification, another session, no session: refused
    assert call(gw, "POST", "/api/v1/approvals", cred, {**ask, "session_id": session_id, "reason": " "}).status_code == 403
    assert call(gw, "POST", "/api/v1/approvals", cred, {**ask, "session_id": other_id}).status_code == 403
    assert call(gw, "POST", "/api/v1/approvals", cred, ask).status_code == 403
    # another session's approval is not there for it, though its user sees it
    assert call(gw, "GET", f"/api/v1/approvals/{theirs['id']}", cred).status_code == 404
    assert httpx.get(f"{gw.url}/api/v1/approvals/{theirs['id']}", headers=gw.headers("alice")).status_code == 200
    # nor its user's approvals, sessions, credentials, policy or records
    for method, path in [("GET", "/api/v1/approvals"), ("GET", "/api/v1/sessions"),
                         ("GET", f"/api/v1/sessions/{session_id}"),
                         ("POST", f"/api/v1/sessions/{session_id}/credentials"),
                         ("POST", f"/api/v1/sessions/{session_id}/close"), ("POST", "/api/v1/credentials"),
                         ("PUT", "/api/v1/policy"), ("POST", "/api/v1/records")]:
        r = call(gw, method, path, cred, {} if method != "GET" else None)
        assert r.status_code == 403 and "cannot call this endpoint" in r.text, (method, path, r.status_code, r.text)


def test_only_a_whole_fresh_hoop_signature_counts(gw: Any) -> None:
    session_id, cred = agent_of(gw)
    ask = {"argv": ["s3api", "delete-object", "--bucket", "logs", "--key", "a"], "connection": "default",
           "session_id": session_id, "reason": "r"}
    url = gw.url + "/api/v1/approvals"
    body = json.dumps(ask).encode()
    # a signature for an AWS service (what the gateway accepts) is not one for the API
    r = httpx.post(url, content=body, headers=signed("POST", url, cred, body, service="s3"))
    assert r.status_code == 401, r.text
    # replayed after the 5-minute window
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)
    r = httpx.post(url, content=body, headers=signed("POST", url, cred, body, when=old))
    assert r.status_code == 401, r.text
    # the body changed after signing (another session's id)
    headers = signed("POST", url, cred, body)
    r = httpx.post(url, content=body.replace(b'"r"', b'"x"'), headers=headers)
    assert r.status_code == 401, r.text
    # a wrong secret
    r = httpx.post(url, content=body, headers=signed("POST", url, {**cred, "secret_access_key": "x" * 40}, body))
    assert r.status_code == 401, r.text
    # and the good one goes through
    assert httpx.post(url, content=body, headers=signed("POST", url, cred, body)).status_code == 200


def test_the_agent_can_neither_list_nor_remove_its_users_passkeys(gw: Any) -> None:
    """A passkey is how its user shows presence for a self-approval: the agent must not learn of
    it nor take it away (the matrix above covers the routes too; this names them)."""
    import time

    from hoopcli.server.approvals.passkeys import listed
    from hoopcli.server.store.passkeys import Passkey

    _sid, cred = agent_of(gw, "alice")
    with gw.db.session() as s:
        s.add(Passkey(credential_id="alices-passkey", org="default", subject="alice", public_key=b"k",
                      sign_count=0, created_at=time.time()))
    for method, path in [("GET", "/api/v1/passkeys"), ("DELETE", "/api/v1/passkeys/alices-passkey")]:
        r = call(gw, method, path, cred)
        assert r.status_code == 403 and "cannot call this endpoint" in r.text, (method, path, r.status_code, r.text)
    assert [p.credential_id for p in listed(gw.db, "default", "alice")] == ["alices-passkey"]
    # alice herself, with her own token, sees it
    mine = httpx.get(f"{gw.url}/api/v1/passkeys", headers=gw.headers("alice"), timeout=30)
    assert [p["id"] for p in mine.json()] == ["alices-passkey"]
