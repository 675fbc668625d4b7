"""The console in a real browser: headless Chromium (Debian's) driven by Playwright, against a
real hoop server with the built-in identity provider and local accounts."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest
from console_kit import CHROMIUM, users_config


@pytest.fixture
def console(make_server, moto_endpoint):
    return make_server(users=users_config(),
                       connections={"default": {"credentials": "vend", "role_arn": "arn:aws:iam::123456789012:role/agent",
                                                "region": "us-east-1", "endpoint_url": moto_endpoint}})


# One browser per module, not per session: while Playwright's sync API is open it marks an asyncio
# loop as running in this thread, and asyncio.run() in any later test of the same process (the
# order differs under pytest-xdist) would fail.
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: `make test` installs Debian's chromium")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                     "--disable-component-update", "--disable-sync", "--no-first-run",
                                     "--disable-quic"])
        yield b
        b.close()


@pytest.fixture
def new_page(browser):
    contexts = []

    def make(javascript: bool = True) -> Any:
        ctx = browser.new_context(viewport={"width": 1366, "height": 900}, java_script_enabled=javascript)
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(15000)
        return page

    yield make
    for ctx in contexts:
        ctx.close()


