"""Bearer ID token verification through a real server: the bad tokens all get a bare 401."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hoopcli.errors import Unavailable
from hoopcli.server.identity.security import InvalidToken, RemoteKeySet, TokenVerifier
from hoopcli.server.idp.keys import current_key, rotate_key

from .issuer import Issuer

WHOAMI = "/api/v1/sessions"  # any authenticated endpoint; POST {} opens a session


def call(server, token: str | None, raw_header: str | bytes | None = None) -> httpx.Response:
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if raw_header is not None:
        headers["Authorization"] = raw_header
    return httpx.post(server.url + WHOAMI, json={}, headers=headers)


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def assert_bare_401(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == {"detail": "invalid token"}
    assert response.headers["www-authenticate"] == "Bearer"


def test_valid_token_is_accepted(server) -> None:
    r = call(server, server.token("alice", email="alice@example.com"))
    assert r.status_code == 201
    assert r.json()["user"] == "alice" and r.json()["user_email"] == "alice@example.com"


def test_missing_or_non_bearer_authorization(server) -> None:
    for header in (None, "Basic YWxpY2U6cHc=", "Bearer", "Token abc"):
        r = call(server, None, raw_header=header)
        assert r.status_code == 401 and r.json() == {"detail": "not authenticated"}


def test_forged_payload(server) -> None:
    header, _payload, signature = server.token("alice").split(".")
    forged = ".".join([header, b64({"sub": "admin", "iss": server.settings.issuer, "aud": "hoop-cli",
                                    "exp": int(time.time()) + 600, "iat": int(time.time()),
                                    "groups": ["admins"]}), signature])
    assert_bare_401(call(server, forged))


def test_expired_beyond_leeway(server) -> None:
    now = int(time.time())
    assert_bare_401(call(server, server.token(exp=now - 120, iat=now - 3600, nbf=now - 3600)))


def test_expired_within_leeway_is_tolerated(server) -> None:
    now = int(time.time())
    assert call(server, server.token(exp=now - 5, iat=now - 600, nbf=now - 600)).status_code == 201


def test_not_yet_valid(server) -> None:
    now = int(time.time())
    assert_bare_401(call(server, server.token(nbf=now + 300, iat=now)))
    assert_bare_401(call(server, server.token(iat=now + 300, nbf=now)))


def test_wrong_issuer_and_audience(server) -> None:
    assert_bare_401(call(server, server.token(iss="https://evil.example/idp")))
    assert_bare_401(call(server, server.token(aud="someone-else")))
    assert_bare_401(call(server, server.token(aud=["someone-else", "other"])))


def test_authorized_party(server) -> None:
    assert call(server, server.token(aud=["hoop-cli", "other"], azp="hoop-cli")).status_code == 201
    assert_bare_401(call(server, server.token(aud=["hoop-cli", "other"])))
    assert_bare_401(call(server, server.token(azp="other-client")))
    assert call(server, server.token(azp="hoop-cli")).status_code == 201


def test_missing_required_claims(server) -> None:
    key = current_key(server.settings)
    token = jwt.encode({"iss": server.settings.issuer, "aud": "hoop-cli", "sub": "alice"}, key.private_key,
                       algorithm="RS256", headers={"kid": key.kid})
    assert_bare_401(call(server, token))


def test_alg_none(server) -> None:
    now = int(time.time())
    claims = {"iss": server.settings.issuer, "aud": "hoop-cli", "sub": "root", "iat": now, "exp": now + 600}
    kid = current_key(server.settings).kid
    token = b64({"alg": "none", "typ": "JWT", "kid": kid}) + "." + b64(claims) + "."
    assert_bare_401(call(server, token))
    token = b64({"alg": "None", "kid": kid}) + "." + b64(claims) + "."
    assert_bare_401(call(server, token))


def test_hs256_with_the_public_key_as_secret(server) -> None:
    key = current_key(server.settings)
    public_pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    claims = {"iss": server.settings.issuer, "aud": "hoop-cli", "sub": "root", "iat": now, "exp": now + 600}
    header = b64({"alg": "HS256", "typ": "JWT", "kid": key.kid})
    body = b64(claims)
    import hashlib
    import hmac

    sig = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    token = f"{header}.{body}." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()
    assert_bare_401(call(server, token))


def test_wrong_key_same_kid(server) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {"iss": server.settings.issuer, "aud": "hoop-cli", "sub": "alice", "iat": now, "exp": now + 600}
    token = jwt.encode(claims, other, algorithm="RS256", headers={"kid": current_key(server.settings).kid})
    assert_bare_401(call(server, token))
    token = jwt.encode(claims, other, algorithm="RS256", headers={"kid": "no-such-kid"})
    assert_bare_401(call(server, token))


@pytest.mark.parametrize("garbage", ["abc", "a.b.c", "....", "x" * 20000, "eyJhbGciOiJSUzI1NiJ9.e30.", "é.é.é"])
def test_garbage_tokens(server, garbage: str) -> None:
    r = call(server, None, raw_header=f"Bearer {garbage}".encode())
    assert r.status_code == 401


def test_dev_idp_key_rotation_is_picked_up(server) -> None:
    old = server.token("alice")
    assert call(server, old).status_code == 201
    rotate_key(server.settings)
    new = server.token("alice")
    assert jwt.get_unverified_header(new)["kid"] != jwt.get_unverified_header(old)["kid"]
    assert call(server, new).status_code == 201
    assert call(server, old).status_code == 201  # still published until it ages out


# -- an external provider over HTTP -------------------------------------------------------------

@pytest.fixture
def issuer() -> Iterator[Issuer]:
    iss = Issuer()
    yield iss
    iss.close()


def test_external_issuer_tokens_and_group_roles(make_server, issuer: Issuer) -> None:
    srv = make_server(oidc={"issuer": issuer.url, "client_id": "hoop-cli", "groups_claim": "roles"},
                      roles={"auditor": ["sec"]})
    r = httpx.get(srv.url + "/api/v1/config").json()
    assert r["issuer"] == issuer.url and r["dev_idp"] is False
    assert call(srv, issuer.token("carol", roles=["sec"])).status_code == 201
    verifier = srv.app.state.verifier
    principal = verifier.verify(issuer.token("carol", roles=["sec", "x"]))
    assert principal.roles == frozenset({"developer", "auditor"})
    assert principal.email == "carol@example.com"
    # a dev-IdP token means nothing to a server configured for an external provider
    assert_bare_401(call(srv, srv.token("alice")))


def test_external_issuer_rotation_is_picked_up(make_server, issuer: Issuer) -> None:
    srv = make_server(oidc={"issuer": issuer.url})
    assert call(srv, issuer.token("alice")).status_code == 201
    fetches = issuer.jwks_fetches
    assert call(srv, issuer.token("alice")).status_code == 201
    assert issuer.jwks_fetches == fetches  # cached
    new = issuer.rotate("RS256")
    assert call(srv, issuer.token("alice", key=new)).status_code == 201
    assert issuer.jwks_fetches == fetches + 1


def test_unknown_kids_do_not_hammer_the_provider(make_server, issuer: Issuer) -> None:
    srv = make_server(oidc={"issuer": issuer.url})
    assert call(srv, issuer.token("alice")).status_code == 201
    before = issuer.jwks_fetches
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for i in range(20):
        now = int(time.time())
        token = jwt.encode({"iss": issuer.url, "aud": "hoop-cli", "sub": "x", "iat": now, "exp": now + 60},
                           stranger, algorithm="RS256", headers={"kid": f"random-{i}"})
        assert_bare_401(call(srv, token))
    assert issuer.jwks_fetches - before <= 6


def test_alg_must_match_declared_key_alg(make_server, issuer: Issuer) -> None:
    srv = make_server(oidc={"issuer": issuer.url})
    key = issuer.rotate("RS256")
    now = int(time.time())
    claims = {"iss": issuer.url, "aud": "hoop-cli", "sub": "x", "iat": now, "exp": now + 60}
    token = jwt.encode(claims, key.private, algorithm="PS256", headers={"kid": key.kid})
    assert_bare_401(call(srv, token))


def test_unreachable_provider_is_503_with_a_clear_message(make_server) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    srv = make_server(oidc={"issuer": f"http://127.0.0.1:{port}"})
    now = int(time.time())
    token = jwt.encode({"sub": "x", "iat": now, "exp": now + 60}, "k" * 32, algorithm="HS256")
    # HS256 is refused before any key lookup: still a bare 401
    assert_bare_401(call(srv, token))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode({"sub": "x", "iat": now, "exp": now + 60}, key, algorithm="RS256", headers={"kid": "a"})
    r = call(srv, token)
    assert r.status_code == 503
    assert "identity provider is unreachable" in r.json()["detail"]


def test_discovery_issuer_mismatch_is_refused(make_server, issuer: Issuer) -> None:
    issuer.discovery_issuer = "https://evil.example"
    srv = make_server(oidc={"issuer": issuer.url})
    r = call(srv, issuer.token("alice"))
    assert r.status_code == 503
    assert "names issuer 'https://evil.example'" in r.json()["detail"]


def test_hanging_provider_times_out() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])  # accept, then never answer
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        keys = RemoteKeySet(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=0.5)
        with pytest.raises(Unavailable, match="unreachable"):
            keys.key_for("k1")
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


def test_verifier_reasons_are_internal(server) -> None:
    verifier: TokenVerifier = server.app.state.verifier
    with pytest.raises(InvalidToken, match="Signature has expired"):
        verifier.verify(server.token(exp=int(time.time()) - 600))
