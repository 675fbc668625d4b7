"""The passkey service's refusals (the happy path in Chromium: tests/web/test_console_step_up.py)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
from approvals_helpers import principal

from hoopcli.server.approvals import passkeys
from hoopcli.server.approvals import service as svc

BOB = principal("bob", ("developers",))
AT_LOCALHOST = SimpleNamespace(public_url="http://localhost:8009")


def test_the_relying_party_is_the_consoles_host_name_never_an_ip() -> None:
    assert passkeys.relying_party("https://hoop.example.com") == ("hoop.example.com", "https://hoop.example.com")
    assert passkeys.relying_party("http://localhost:8009") == ("localhost", "http://localhost:8009")
    assert passkeys.relying_party("http://127.0.0.1:8009") is None
    assert passkeys.relying_party("http://[::1]:8009") is None


def test_adding_a_passkey_needs_a_recent_sign_in(db: Any) -> None:
    with pytest.raises(svc.ApprovalForbidden, match="sign in again before adding a passkey"):
        passkeys.registration_options(db, AT_LOCALHOST, BOB, None)
    with pytest.raises(svc.ApprovalForbidden, match="sign in again"):
        passkeys.registration_options(db, AT_LOCALHOST, BOB, time.time() - svc.STEP_UP_WINDOW - 1)
    options, challenge = passkeys.registration_options(db, AT_LOCALHOST, BOB, time.time())
    assert '"userVerification": "required"' in options and len(challenge) == 32
    with pytest.raises(svc.ApprovalForbidden, match="host name"):
        passkeys.registration_options(db, SimpleNamespace(public_url="http://127.0.0.1:8009"), BOB, time.time())


def test_no_passkey_and_forged_answers_are_refused(db: Any) -> None:
    with pytest.raises(svc.ApprovalForbidden, match="no passkey"):
        passkeys.authentication_options(db, AT_LOCALHOST, BOB)
    with pytest.raises(svc.ApprovalForbidden, match="not one of yours"):
        passkeys.verify(db, AT_LOCALHOST, BOB, {"id": "AAAA", "response": {}}, b"x" * 32)
    with pytest.raises(svc.ApprovalForbidden, match="could not be registered"):
        passkeys.register(db, AT_LOCALHOST, BOB, '{"id": "AAAA", "rawId": "AAAA", "type": "public-key", '
                                                 '"response": {"clientDataJSON": "e30", "attestationObject": "oA"}}',
                          b"x" * 32)
    assert passkeys.listed(db, "default", "bob") == []
