"""Listing and removing passkeys: a person sees and removes their own, never anyone else's; the
console's remove button is a CSRF-checked form; the API (GET /api/v1/passkeys, DELETE
/api/v1/passkeys/{id}) answers the same. (A session credential reaches neither:
tests/security/test_session_credential_matrix.py.) Headless Chromium against a real server."""

from __future__ import annotations

import secrets
import time
from typing import Any

import requests
from console_kit import sign_in


def add_passkey(server: Any, subject: str, used: float | None = None) -> str:
    """A registered passkey row (what a WebAuthn registration leaves; its key is never shown)."""
    from hoopcli.server.store.passkeys import Passkey

    credential_id = secrets.token_urlsafe(24)
    with server.db.session() as s:
        s.add(Passkey(credential_id=credential_id, org="default", subject=subject, public_key=b"\xa5cose-key",
                      sign_count=0, created_at=time.time() - 3600, last_used_at=used))
    return credential_id


def ids_of(server: Any, subject: str) -> set[str]:
    from hoopcli.server.approvals.passkeys import listed

    return {p.credential_id for p in listed(server.db, "default", subject)}


def test_the_console_lists_and_removes_only_your_own_passkeys(console: Any, new_page: Any) -> None:
    mine, spare = add_passkey(console, "bob", used=time.time() - 60), add_passkey(console, "bob")
    theirs = add_passkey(console, "alice")
    page = new_page()
    sign_in(page, console, "bob", "/passkeys")
    rows = page.locator("#passkey-list tbody tr[data-passkey]")
    assert {rows.nth(i).get_attribute("data-passkey") for i in range(rows.count())} == {mine, spare}
    text = page.locator("#passkey-list").inner_text()
    assert theirs[:16] not in text and "cose" not in page.content()
    used = page.locator(f"tr[data-passkey='{mine}'] td").nth(2).inner_text()
    assert used.startswith(time.strftime("%Y-%m-%d", time.gmtime()))

    page.locator(f"tr[data-passkey='{mine}'] button").click()
    page.wait_for_selector("#passkey-removed")
    assert ids_of(console, "bob") == {spare}
    assert page.locator("#passkey-list tbody tr[data-passkey]").count() == 1

    # the form without its CSRF token, or from another origin: refused, nothing removed
    url = console.url + f"/passkeys/{spare}/remove"
    assert page.request.post(url, form={}).status == 403
    token = page.locator("form.passkey-remove input[name=csrf_token]").first.get_attribute("value")
    assert page.request.post(url, form={"csrf_token": token}, headers={"Origin": "http://evil.example"}).status == 403
    # another person's passkey, with bob's own valid token: not his, not found, still there
    other = page.request.post(console.url + f"/passkeys/{theirs}/remove", form={"csrf_token": token})
    assert other.status == 404
    assert ids_of(console, "bob") == {spare} and ids_of(console, "alice") == {theirs}
    # signed out: no removal either
    anonymous = requests.post(url, data={"csrf_token": token}, allow_redirects=False, timeout=10)
    assert anonymous.status_code in (401, 403) and ids_of(console, "bob") == {spare}


def test_the_api_lists_and_removes_only_your_own_passkeys(console: Any) -> None:
    mine = add_passkey(console, "bob", used=time.time())
    theirs = add_passkey(console, "alice")
    bob = console.headers("bob", groups=["developers"])
    listed = requests.get(console.url + "/api/v1/passkeys", headers=bob, timeout=10)
    assert listed.status_code == 200, listed.text
    entry, = listed.json()
    assert set(entry) == {"id", "name", "created_at", "last_used_at"} and entry["id"] == mine
    assert entry["created_at"].endswith("Z") and entry["last_used_at"].endswith("Z")
    # an admin is no exception: passkeys are personal
    admin = console.headers("root", groups=["admins"])
    assert requests.get(console.url + "/api/v1/passkeys", headers=admin, timeout=10).json() == []
    for who in (bob, admin):
        r = requests.delete(console.url + f"/api/v1/passkeys/{theirs}", headers=who, timeout=10)
        assert r.status_code == 404 and r.json()["detail"] == "you have no passkey with that id", r.text
    assert ids_of(console, "alice") == {theirs}
    r = requests.delete(console.url + f"/api/v1/passkeys/{mine}", headers=bob, timeout=10)
    assert r.status_code == 200 and r.json() == {"removed": mine}
    assert ids_of(console, "bob") == set()
    assert requests.delete(console.url + f"/api/v1/passkeys/{mine}", headers=bob, timeout=10).status_code == 404
    assert requests.get(console.url + "/api/v1/passkeys", timeout=10).status_code == 401
