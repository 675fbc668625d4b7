"""What the ledger routers and the console share: the checkpoint signing key and who sees what."""

from __future__ import annotations

import threading

from fastapi import Request

from hoopcli.server.identity.security import Principal
from hoopcli.server.ledger.checkpoints import SigningKey

_lock = threading.Lock()


def signing_key(request: Request) -> SigningKey:
    """The checkpoint signing key, generated 0600 under settings.home on first use."""
    key = getattr(request.app.state, "ledger_key", None)
    if key is None:
        with _lock:
            key = getattr(request.app.state, "ledger_key", None)
            if key is None:
                key = SigningKey.load_or_create(request.app.state.settings.home)
                request.app.state.ledger_key = key
    return key


def sees_all(principal: Principal) -> bool:
    """Auditors and admins see every session of their org; developers only their own."""
    return principal.has("auditor")
