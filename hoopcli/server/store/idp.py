"""Tables of the development identity provider (device grants, auth codes, refresh tokens).

Every bearer secret (device code, user code, authorization code, refresh token) is stored only
as its SHA-256; times are epoch seconds (portable across SQLite and PostgreSQL).
"""

from __future__ import annotations

from sqlalchemy import Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hoopcli.server.store.db import Base


class IdpDeviceGrant(Base):
    __tablename__ = "idp_device_grants"

    device_code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_code_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    client_id: Mapped[str] = mapped_column(String(255))
    scope: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|authorized|denied|consumed
    subject: Mapped[str | None] = mapped_column(String(255), nullable=True)
    auth_time: Mapped[float | None] = mapped_column(Float, nullable=True)   # when the person signed in
    poll_interval: Mapped[int] = mapped_column(Integer, default=5)
    last_poll_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class IdpAuthCode(Base):
    __tablename__ = "idp_auth_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(255))
    redirect_uri: Mapped[str] = mapped_column(Text)
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(8))
    scope: Mapped[str] = mapped_column(Text, default="")
    nonce: Mapped[str | None] = mapped_column(String(255), nullable=True)
    subject: Mapped[str] = mapped_column(String(255))
    auth_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class IdpRefreshToken(Base):
    __tablename__ = "idp_refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255), index=True)
    family: Mapped[str] = mapped_column(String(64), index=True)  # one login's chain of rotations
    scope: Mapped[str] = mapped_column(Text, default="")
    auth_time: Mapped[float | None] = mapped_column(Float, nullable=True)   # of the login, kept on refresh
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
