"""One loopback rule for the client and the server (hoopcli.urls)."""

from __future__ import annotations

import pytest

from hoopcli.urls import is_loopback_host


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "localhost.", "127.0.0.1", "127.8.9.10",
                                  "::1", "[::1]"])
def test_loopback(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", [None, "", "evil.localhost", "localhost.evil.com", ".localhost",
                                  "localhost..", "10.0.0.1", "0.0.0.0", "::", "[::2]", "example.com",
                                  "127.0.0.1.nip.io", "[127.0.0.1", "localhost:80"])
def test_not_loopback(host: str | None) -> None:
    assert not is_loopback_host(host)
