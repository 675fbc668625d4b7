"""State and CSRF values from the browser are compared in constant time; a non-ASCII value (which
`secrets.compare_digest` refuses for str) gets the same 4xx answer as any wrong value, never a 500.
Found by the schemathesis soak run (GET /auth/callback with a sign-in cookie and a non-ASCII state)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

HOSTILE = ["é", "\u1572\u00cb'", "\x00", "x" * 5000]


@pytest.mark.parametrize("value", HOSTILE)
def test_console_callback_with_a_hostile_state(server: Any, value: str) -> None:
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=20) as http:
        start = http.get("/auth/login")
        assert start.status_code in (302, 303, 307), start.status_code
        assert http.cookies, "the console set no sign-in cookie"
        r = http.get("/auth/callback", params={"code": "c", "state": value})
        assert 400 <= r.status_code < 500, r.status_code
        # bytes that are not UTF-8 at all (a lone surrogate, 0xff) in the raw query
        r = http.get("/auth/callback?code=c&state=%ED%B3%A9%FF%FE")
        assert 400 <= r.status_code < 500, r.status_code


@pytest.mark.parametrize("value", HOSTILE)
def test_idp_device_page_with_a_hostile_csrf_token(server: Any, value: str) -> None:
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=20) as http:
        page = http.get("/idp/device")
        assert page.status_code == 200 and re.search(r'name="csrf_token"', page.text)
        r = http.post("/idp/device", data={"csrf_token": value, "user_code": "ABCD-EFGH",
                                           "username": "nobody", "password": "x", "action": "approve"})
        assert 400 <= r.status_code < 500, r.status_code
        r = http.post("/idp/device", content=b"csrf_token=%ED%B3%A9%FF&user_code=A&action=approve",
                      headers={"content-type": "application/x-www-form-urlencoded"})
        assert 400 <= r.status_code < 500, r.status_code
