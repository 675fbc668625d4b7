"""The person at the browser, played over real HTTP against the dev IdP's pages."""

from __future__ import annotations

import re
import time
from typing import Any

import requests

PASSWORDS = {"alice": "alice-correct-horse", "bob": "bob-battery-staple"}


def users_config() -> dict[str, Any]:
    from hoopcli.server.idp.users import config_entry

    users: dict[str, Any] = {}
    users.update(config_entry("alice", PASSWORDS["alice"], ("admins", "developers"), "alice@example.test"))
    users.update(config_entry("bob", PASSWORDS["bob"], ("developers",), None))
    return users


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def sign_in(url: str, user_code: str | None = None, username: str = "alice",
            password: str | None = None, action: str = "approve",
            http: requests.Session | None = None) -> requests.Response:
    """Open the verification page (complete URL, or plain URL + typed code) and submit it."""
    http = http or requests.Session()
    page = http.get(url, timeout=10)
    assert page.status_code == 200, page.status_code
    form = {"csrf_token": csrf_of(page.text), "username": username,
            "password": PASSWORDS.get(username, "") if password is None else password,
            "action": action}
    if user_code is not None:
        form["user_code"] = user_code
    else:
        match = re.search(r'name="user_code" value="([^"]*)"', page.text)
        form["user_code"] = match.group(1) if match else ""
    return http.post(url.split("?")[0], data=form, timeout=10)


def wait_for_line(stream: Any, pattern: str, timeout: float = 30.0) -> re.Match[str]:
    """Read lines from a subprocess pipe until one matches (or fail with what was read)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"no line matching {pattern!r} in: {''.join(seen)!r}")
