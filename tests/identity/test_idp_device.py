"""The dev IdP's device flow, refresh, revocation and pages, over real HTTP against a real server."""

from __future__ import annotations

import time
from typing import Any

import requests
from human import PASSWORDS, csrf_of, sign_in, users_config

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"


def start(srv: Any, **extra: str) -> dict[str, Any]:
    body = {"client_id": "hoop-cli", "scope": "openid email profile offline_access", **extra}
    resp = requests.post(srv.url + "/idp/device/code", data=body, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def poll(srv: Any, device_code: str) -> requests.Response:
    return requests.post(srv.url + "/idp/token", timeout=10, data={
        "client_id": "hoop-cli", "grant_type": DEVICE, "device_code": device_code})


def test_discovery_and_jwks(idp_server: Any) -> None:
    doc = requests.get(idp_server.url + "/idp/.well-known/openid-configuration", timeout=10).json()
    issuer = idp_server.url + "/idp"
    assert doc["issuer"] == issuer
    for key in ("device_authorization_endpoint", "token_endpoint", "authorization_endpoint",
                "jwks_uri", "revocation_endpoint"):
        assert doc[key].startswith(issuer + "/")
    assert doc["code_challenge_methods_supported"] == ["S256"]
    keys = requests.get(doc["jwks_uri"], timeout=10).json()["keys"]
    assert keys and keys[0]["kty"] == "RSA" and "d" not in keys[0]
    config = requests.get(idp_server.url + "/api/v1/config", timeout=10).json()
    assert config["issuer"] == issuer


def test_full_device_flow_refresh_rotation_and_revocation(make_server: Any, database_url: str) -> None:
    from hoopcli.server.idp.routes import provider_for

    srv = make_server(users=users_config(), database_url=database_url)
    provider_for(srv.app).interval = 1
    grant = start(srv)
    assert grant["interval"] == 1 and grant["expires_in"] > 0
    assert grant["verification_uri"] == srv.url + "/idp/device"
    assert grant["verification_uri_complete"].endswith("user_code=" + grant["user_code"])
    assert poll(srv, grant["device_code"]).json()["error"] == "authorization_pending"

    # the person types the code sloppily: lower case, spaces instead of the dash
    typed = grant["user_code"].lower().replace("-", " ")
    page = sign_in(grant["verification_uri"], user_code=typed)
    assert page.status_code == 200 and "signed in as alice" in page.text
    time.sleep(1.05)
    resp = poll(srv, grant["device_code"])
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == "no-store"
    tokens = resp.json()
    assert {"id_token", "access_token", "refresh_token", "expires_in"} <= set(tokens)

    me = requests.get(srv.url + "/api/v1/whoami", timeout=10,
                      headers={"Authorization": "Bearer " + tokens["id_token"]}).json()
    assert me["subject"] == "alice" and me["email"] == "alice@example.test"
    assert me["groups"] == ["admins", "developers"] and "admin" in me["roles"]
    import jwt

    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["aud"] == "hoop-cli" and claims["iss"] == srv.url + "/idp"
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] <= claims["iat"]

    # the device code works once
    assert poll(srv, grant["device_code"]).json()["error"] == "invalid_grant"

    # refresh tokens are stored hashed and rotate on use
    from sqlalchemy import select

    from hoopcli.server.store.idp import IdpRefreshToken

    with srv.db.session() as s:
        stored = [r.token_hash for r in s.execute(select(IdpRefreshToken)).scalars()]
    assert stored and tokens["refresh_token"] not in stored

    def refresh(token: str) -> requests.Response:
        return requests.post(srv.url + "/idp/token", timeout=10, data={
            "client_id": "hoop-cli", "grant_type": "refresh_token", "refresh_token": token})

    first = refresh(tokens["refresh_token"])
    assert first.status_code == 200, first.text
    renewed = first.json()
    assert renewed["refresh_token"] != tokens["refresh_token"] and renewed["id_token"]
    assert refresh(tokens["refresh_token"]).json()["error"] == "invalid_grant"  # rotated away
    # ... and presenting it again was token theft (RFC 9700 4.14.2): the whole chain is revoked
    assert refresh(renewed["refresh_token"]).json()["error"] == "invalid_grant"

    grant = start(srv)
    sign_in(grant["verification_uri_complete"])
    time.sleep(1.05)
    tokens = poll(srv, grant["device_code"]).json()
    renewed = refresh(tokens["refresh_token"]).json()
    assert renewed["refresh_token"]

    revoked = requests.post(srv.url + "/idp/revoke", timeout=10, data={
        "client_id": "hoop-cli", "token": renewed["refresh_token"], "token_type_hint": "refresh_token"})
    assert revoked.status_code == 200
    assert refresh(renewed["refresh_token"]).json()["error"] == "invalid_grant"


def test_polling_too_fast_gets_slow_down(idp_server: Any) -> None:
    idp_server.idp.interval = 3
    grant = start(idp_server)
    assert poll(idp_server, grant["device_code"]).json()["error"] == "authorization_pending"
    assert poll(idp_server, grant["device_code"]).json()["error"] == "slow_down"


def test_deny_gives_access_denied(idp_server: Any) -> None:
    grant = start(idp_server)
    page = sign_in(grant["verification_uri_complete"], username="", password="", action="deny")
    assert page.status_code == 200 and "denied" in page.text
    time.sleep(1.05)
    assert poll(idp_server, grant["device_code"]).json()["error"] == "access_denied"


def test_expired_code(idp_server: Any) -> None:
    idp_server.idp.expires_in = 1
    grant = start(idp_server)
    time.sleep(1.2)
    assert poll(idp_server, grant["device_code"]).json()["error"] == "expired_token"
    page = sign_in(grant["verification_uri_complete"])
    assert page.status_code == 400 and "not valid or has expired" in page.text


def test_wrong_password_and_unknown_user_leave_the_grant_pending(idp_server: Any) -> None:
    grant = start(idp_server)
    for user, password in (("alice", "wrong"), ("mallory", PASSWORDS["alice"]), ("alice", ""),
                           ('"><script>alert(1)</script>', "x")):
        page = sign_in(grant["verification_uri_complete"], username=user, password=password)
        assert page.status_code == 401 and "Wrong user name or password" in page.text
        assert PASSWORDS["alice"] not in page.text and "<script>alert" not in page.text
    time.sleep(1.05)
    assert poll(idp_server, grant["device_code"]).json()["error"] == "authorization_pending"


def test_form_without_valid_csrf_is_refused(idp_server: Any) -> None:
    grant = start(idp_server)
    form = {"user_code": grant["user_code"], "username": "alice",
            "password": PASSWORDS["alice"], "action": "approve"}
    url = idp_server.url + "/idp/device"
    assert requests.post(url, data=form, timeout=10).status_code == 403  # no token, no cookie
    http = requests.Session()
    token = csrf_of(http.get(url, timeout=10).text)
    assert requests.post(url, data={**form, "csrf_token": token}, timeout=10).status_code == 403  # no cookie
    tampered = token[:-1] + ("0" if token[-1] != "0" else "1")     # never the token itself
    assert http.post(url, data={**form, "csrf_token": tampered}, timeout=10).status_code == 403
    time.sleep(1.05)
    assert poll(idp_server, grant["device_code"]).json()["error"] == "authorization_pending"
    assert http.post(url, data={**form, "csrf_token": token}, timeout=10).status_code == 200


def test_failed_attempts_are_rate_limited(idp_server: Any) -> None:
    grant = start(idp_server)
    http = requests.Session()
    statuses = [sign_in(grant["verification_uri_complete"], password="nope", http=http).status_code
                for _ in range(11)]
    assert statuses[:10] == [401] * 10 and statuses[10] == 429
    # even the right password is refused while blocked
    assert sign_in(grant["verification_uri_complete"], http=http).status_code == 429


def test_bad_protocol_requests(idp_server: Any) -> None:
    url = idp_server.url
    bad_client = requests.post(url + "/idp/device/code", data={"client_id": "evil"}, timeout=10)
    assert bad_client.status_code in (400, 401) and "client_id" in bad_client.json()["error_description"]
    json_body = requests.post(url + "/idp/device/code", json={"client_id": "hoop-cli"}, timeout=10)
    assert json_body.status_code == 400
    assert requests.post(url + "/idp/token", data={"client_id": "hoop-cli", "grant_type": DEVICE,
                                                   "device_code": "guess"}, timeout=10).json()["error"] == "invalid_grant"
    assert requests.post(url + "/idp/token", data={"client_id": "hoop-cli", "grant_type": "password",
                                                   "username": "alice", "password": "x"},
                         timeout=10).json()["error"] == "unsupported_grant_type"
    huge = requests.post(url + "/idp/token", data={"client_id": "hoop-cli", "x": "a" * 70000}, timeout=10)
    assert huge.status_code == 413
    bad_scope = requests.post(url + "/idp/device/code", data={"client_id": "hoop-cli", "scope": "openid admin"}, timeout=10)
    assert bad_scope.status_code == 400 and "invalid_scope" in bad_scope.text
    page = requests.get(url + "/idp/device", params={"user_code": "<script>x</script>"}, timeout=10)
    assert page.status_code == 200 and "<script>x" not in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_device_authorization_is_rate_limited(idp_server: Any) -> None:
    idp_server.idp.device_limiter.limit = 5
    statuses = [requests.post(idp_server.url + "/idp/device/code", data={"client_id": "hoop-cli"},
                              timeout=10).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]


def test_page_says_when_no_accounts_exist(server: Any) -> None:
    page = requests.get(server.url + "/idp/device", timeout=10)
    assert page.status_code == 200 and "no local accounts yet" in page.text


def test_not_mounted_with_an_external_issuer(make_server: Any) -> None:
    srv = make_server(oidc={"issuer": "https://login.example.test", "client_id": "hoop-cli"})
    assert requests.get(srv.url + "/idp/.well-known/openid-configuration", timeout=10).status_code == 404
    assert requests.post(srv.url + "/idp/device/code", data={"client_id": "hoop-cli"}, timeout=10).status_code == 404


def test_long_expired_grants_are_purged(idp_server: Any) -> None:
    from sqlalchemy import select, update

    from hoopcli.server.store.idp import IdpDeviceGrant

    start(idp_server)
    with idp_server.db.session() as s:
        s.execute(update(IdpDeviceGrant).values(expires_at=time.time() - 7200))
    start(idp_server)
    with idp_server.db.session() as s:
        rows = list(s.execute(select(IdpDeviceGrant)).scalars())
    assert len(rows) == 1 and rows[0].expires_at > time.time()
