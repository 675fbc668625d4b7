"""Authorization code + PKCE (S256) for the web console, against the real dev IdP."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import requests
from human import PASSWORDS, csrf_of


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_url(srv: Any, challenge: str, **over: str) -> str:
    params = {"response_type": "code", "client_id": "hoop-cli",
              "redirect_uri": srv.url + "/auth/callback", "scope": "openid email",
              "state": "st-123", "nonce": "n-456", "code_challenge": challenge,
              "code_challenge_method": "S256", **over}
    return srv.url + "/idp/authorize?" + urlencode(params)


def sign_in(url: str, password: str) -> requests.Response:
    http = requests.Session()
    page = http.get(url, timeout=10)
    assert page.status_code == 200, page.text
    return http.post(url, data={"csrf_token": csrf_of(page.text), "username": "alice",
                                "password": password}, allow_redirects=False, timeout=10)


def exchange(srv: Any, code: str, verifier: str, redirect: str | None = None) -> requests.Response:
    return requests.post(srv.url + "/idp/token", timeout=10, data={
        "grant_type": "authorization_code", "client_id": "hoop-cli", "code": code,
        "redirect_uri": redirect or srv.url + "/auth/callback", "code_verifier": verifier})


def test_code_flow_with_pkce(idp_server: Any) -> None:
    verifier, challenge = pkce()
    resp = sign_in(authorize_url(idp_server, challenge), PASSWORDS["alice"])
    assert resp.status_code == 302
    location = urlsplit(resp.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == idp_server.url + "/auth/callback"
    query = parse_qs(location.query)
    assert query["state"] == ["st-123"]
    code = query["code"][0]

    assert exchange(idp_server, code, "wrong-verifier-" + "x" * 40).json()["error"] == "invalid_grant"
    # a failed redemption burns the code: a stolen code cannot be retried
    assert exchange(idp_server, code, verifier).json()["error"] == "invalid_grant"

    resp = sign_in(authorize_url(idp_server, challenge), PASSWORDS["alice"])
    code = parse_qs(urlsplit(resp.headers["location"]).query)["code"][0]
    assert exchange(idp_server, code, verifier, redirect="http://evil.test/cb").status_code == 400
    resp = sign_in(authorize_url(idp_server, challenge), PASSWORDS["alice"])
    code = parse_qs(urlsplit(resp.headers["location"]).query)["code"][0]
    tokens = exchange(idp_server, code, verifier)
    assert tokens.status_code == 200, tokens.text
    claims = jwt.decode(tokens.json()["id_token"], options={"verify_signature": False})
    assert claims["sub"] == "alice" and claims["nonce"] == "n-456" and claims["aud"] == "hoop-cli"
    assert exchange(idp_server, code, verifier).json()["error"] == "invalid_grant"  # single use


def test_authorize_refuses_bad_requests(idp_server: Any) -> None:
    _verifier, challenge = pkce()
    for over in ({"code_challenge_method": "plain"}, {"redirect_uri": "http://evil.test/cb"},
                 {"client_id": "evil"}, {"code_challenge": ""}):
        page = requests.get(authorize_url(idp_server, challenge, **over), timeout=10,
                            allow_redirects=False)
        assert page.status_code == 400, (over, page.status_code)
        assert "evil.test" not in page.headers.get("location", "")
    wrong = sign_in(authorize_url(idp_server, challenge), "not-the-password")
    assert wrong.status_code == 401 and "location" not in wrong.headers
