"""Passkeys (WebAuthn, py_webauthn): a second way for a requester to prove presence.

A person registers a passkey in the console (from a session signed in within the last
STEP_UP_WINDOW, so a passkey is only ever added by someone who just typed their password). To
approve their own request they then use it on the approval page: an assertion with user
verification over a fresh challenge is a `Presence("passkey", now)`. The relying party is the
console's host (`public_url`); an IP address cannot be one (WebAuthn needs a domain name such as
`localhost` or `hoop.example.com`), so passkeys are unavailable there.

A person lists and removes their own passkeys (console Passkeys page, `GET /api/v1/passkeys`,
`DELETE /api/v1/passkeys/{id}`), never anyone else's. Removing one takes nothing but the
ability to approve with it, so a user's token may do it; adding one needs a fresh sign-in.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select, update

from hoopcli.server.approvals.service import STEP_UP_WINDOW, ApprovalForbidden, ApprovalNotFound, Presence
from hoopcli.server.store.passkeys import Passkey

MAX_PASSKEYS = 10


class PasskeyNotFound(ApprovalNotFound):
    """Not one of the caller's passkeys (404)."""


def relying_party(public_url: str) -> tuple[str, str] | None:
    """(rp_id, origin) of the console, or None when its host cannot be a WebAuthn RP (an IP)."""
    parts = urlsplit(public_url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if not host:
        return None
    origin = f"{parts.scheme}://{parts.netloc}"
    return host, origin


def _rp(settings: Any) -> tuple[str, str]:
    rp = relying_party(str(settings.public_url))
    if rp is None:
        raise ApprovalForbidden("passkeys need the console at a host name (such as localhost), not an IP address")
    return rp


def listed(db: Any, org: str, subject: str) -> list[Passkey]:
    with db.session() as session:
        return list(session.execute(select(Passkey).where(Passkey.org == org, Passkey.subject == subject)
                                    .order_by(Passkey.created_at)).scalars())


def to_json(p: Passkey) -> dict[str, Any]:
    """What the API and the console show of a passkey: its id (the WebAuthn credential id, not a
    secret), name and times. The public key stays on the server."""
    from datetime import datetime, timezone

    def iso(value: float | None) -> str | None:
        return None if value is None else datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    return {"id": p.credential_id, "name": p.name, "created_at": iso(p.created_at),
            "last_used_at": iso(p.last_used_at)}


def remove(db: Any, org: str, subject: str, credential_id: str) -> None:
    """Remove one of the user's own passkeys; PasskeyNotFound for anyone else's (or none), with
    the same answer either way so that ids cannot be probed."""
    with db.session() as session:
        gone = session.execute(delete(Passkey).where(
            Passkey.credential_id == credential_id[:512], Passkey.org == org, Passkey.subject == subject))
        if not getattr(gone, "rowcount", 0):
            raise PasskeyNotFound("you have no passkey with that id")


def registration_options(db: Any, settings: Any, principal: Any, signed_in_at: float | None) -> tuple[str, bytes]:
    """(options JSON for navigator.credentials.create, the challenge to keep until `register`)."""
    from webauthn import generate_registration_options, options_to_json
    from webauthn.helpers import base64url_to_bytes
    from webauthn.helpers.structs import (
        AuthenticatorSelectionCriteria,
        PublicKeyCredentialDescriptor,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    if signed_in_at is None or time.time() - signed_in_at > STEP_UP_WINDOW:
        raise ApprovalForbidden("sign in again before adding a passkey")
    rp_id, _origin = _rp(settings)
    existing = listed(db, principal.org, principal.subject)
    if len(existing) >= MAX_PASSKEYS:
        raise ApprovalForbidden(f"at most {MAX_PASSKEYS} passkeys per user")
    challenge = secrets.token_bytes(32)
    options = generate_registration_options(
        rp_id=rp_id, rp_name="hoop", user_name=principal.email or principal.subject,
        user_id=f"{principal.org}/{principal.subject}".encode()[:64],
        user_display_name=principal.name or principal.subject, challenge=challenge,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(p.credential_id))
                             for p in existing])
    return options_to_json(options), challenge


def register(db: Any, settings: Any, principal: Any, credential: str, challenge: bytes) -> Passkey:
    from webauthn import verify_registration_response
    from webauthn.helpers import bytes_to_base64url

    rp_id, origin = _rp(settings)
    try:
        verified = verify_registration_response(credential=credential, expected_challenge=challenge,
                                                expected_rp_id=rp_id, expected_origin=origin,
                                                require_user_verification=True)
    except Exception as exc:   # py_webauthn raises several types for one meaning: not a valid answer
        raise ApprovalForbidden(f"the passkey could not be registered: {type(exc).__name__}") from None
    row = Passkey(credential_id=bytes_to_base64url(verified.credential_id), org=principal.org,
                  subject=principal.subject, public_key=verified.credential_public_key,
                  sign_count=verified.sign_count, created_at=time.time())
    with db.session() as session:
        if session.get(Passkey, row.credential_id) is not None:
            raise ApprovalForbidden("this passkey is already registered")
        session.add(row)
    return row


def authentication_options(db: Any, settings: Any, principal: Any) -> tuple[str, bytes]:
    from webauthn import generate_authentication_options, options_to_json
    from webauthn.helpers import base64url_to_bytes
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor, UserVerificationRequirement

    rp_id, _origin = _rp(settings)
    mine = listed(db, principal.org, principal.subject)
    if not mine:
        raise ApprovalForbidden("you have no passkey; add one on the Passkeys page, or sign in again")
    challenge = secrets.token_bytes(32)
    options = generate_authentication_options(
        rp_id=rp_id, challenge=challenge, user_verification=UserVerificationRequirement.REQUIRED,
        allow_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(p.credential_id)) for p in mine])
    return options_to_json(options), challenge


def verify(db: Any, settings: Any, principal: Any, credential: dict[str, Any], challenge: bytes) -> Presence:
    """The presence a passkey assertion proves (user verified, over this challenge, by one of the
    principal's own passkeys), or ApprovalForbidden."""
    from webauthn import verify_authentication_response

    rp_id, origin = _rp(settings)
    credential_id = credential.get("id") if isinstance(credential, dict) else None
    if not isinstance(credential_id, str):
        raise ApprovalForbidden("not a passkey answer")
    with db.session() as session:
        row = session.get(Passkey, credential_id[:512])
        if row is None or row.org != principal.org or row.subject != principal.subject:
            raise ApprovalForbidden("this passkey is not one of yours")
        public_key, count = row.public_key, row.sign_count
    try:
        verified = verify_authentication_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id, expected_origin=origin,
            credential_public_key=public_key, credential_current_sign_count=count, require_user_verification=True)
    except Exception as exc:   # py_webauthn raises several types for one meaning: not a valid answer
        raise ApprovalForbidden(f"the passkey answer did not verify: {type(exc).__name__}") from None
    now = time.time()
    with db.session() as session:
        session.execute(update(Passkey).where(Passkey.credential_id == credential_id)
                        .values(sign_count=verified.new_sign_count, last_used_at=now))
    return Presence("passkey", now)
