"""Helpers for the console tests (imported by name: conftest modules collide across folders)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PASSWORDS = {"alice": "alice-approves-things", "bob": "bob-runs-agents", "carol": "carol-audits-all"}
GROUPS = {"alice": ("approvers", "developers"), "bob": ("developers",), "carol": ("auditors",)}
CHROMIUM = os.environ.get("HOOP_TEST_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"


def users_config() -> dict[str, Any]:
    from hoopcli.server.idp.users import config_entry

    users: dict[str, Any] = {}
    for name, groups in GROUPS.items():
        users.update(config_entry(name, PASSWORDS[name], groups, f"{name}@example.test"))
    return users


def sign_in(page: Any, server: Any, user: str, path: str = "/sessions") -> None:
    """Visit a page signed out, land on the IdP's sign-in form, sign in, come back to `path`."""
    page.goto(server.url + path)
    page.wait_for_selector("#username")
    page.fill("#username", user)
    page.fill("#password", PASSWORDS[user])
    page.click("button[type=submit]")
    page.wait_for_url(server.url + path.split("?")[0] + "**")


def shot(page: Any, name: str) -> None:
    """Take the page's screenshot. It goes to docs/console/ (the pictures in docs/console.md)
    only with HOOP_DOCS_SCREENSHOTS=1 (`make screenshots`), so that a test run does not rewrite
    tracked files; otherwise to a scratch directory."""
    import tempfile

    target = SHOTS if os.environ.get("HOOP_DOCS_SCREENSHOTS") == "1" else Path(tempfile.gettempdir()) / "hoop-console-shots"
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / f"{name}.png"), full_page=False)
    assert (target / f"{name}.png").stat().st_size > 1000
