from __future__ import annotations

import httpx


def test_server_fixture_serves_config_and_sessions(server) -> None:
    r = httpx.get(server.url + "/api/v1/config")
    assert r.status_code == 200
    assert r.json()["issuer"] == server.url + "/idp"
    r = httpx.post(server.url + "/api/v1/sessions", json={"agent": "a"}, headers=server.headers("bob"))
    assert r.status_code == 201, r.text
    assert r.json()["user"] == "bob"
