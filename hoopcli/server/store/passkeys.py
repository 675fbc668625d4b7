"""Passkeys (WebAuthn credentials) registered in the console, for proving presence.

A passkey proves that the person was at their authenticator just now (user verification), which
a stored or refreshed login cannot; the console accepts one for a requester's own approval.
Only the public key is stored. Times are epoch seconds.
"""

from __future__ import annotations

from sqlalchemy import Float, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from hoopcli.server.store.db import Base


class Passkey(Base):
    __tablename__ = "console_passkeys"

    credential_id: Mapped[str] = mapped_column(String(512), primary_key=True)   # base64url
    org: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(255), index=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)                       # COSE key
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(64), default="passkey")
    created_at: Mapped[float] = mapped_column(Float)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
