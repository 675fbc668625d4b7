"""Policy versions: every pushed policy is kept, with who pushed it, when, and the diff.

`compiled` is the canonical JSON text (sorted keys, no spaces); its SHA-256 is the ETag of
GET /api/v1/policy, so the ETag changes exactly when the effective policy does.
"""

from __future__ import annotations

import difflib
import hashlib
import time
from typing import Any

from sqlalchemy import JSON, Float, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from hoopcli.canonical import canonical_json
from hoopcli.server.store.db import Base


class PolicyVersion(Base):
    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("org", "version", name="uq_policy_versions_org_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org: Mapped[str] = mapped_column(String(64), default="default")
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    compiled: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(255))
    created_by_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    diff: Mapped[str] = mapped_column(Text)
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)

    def summary(self) -> dict[str, Any]:
        return {"version": self.version, "sha256": self.sha256, "etag": etag_of(self.sha256),
                "created_at": self.created_at, "created_by": self.created_by,
                "created_by_email": self.created_by_email, "comment": self.comment,
                "diff": self.diff}


def canonical(compiled: dict[str, Any]) -> str:
    """The stored text of a compiled policy: hoop's one canonical JSON form."""
    return canonical_json(compiled).decode("utf-8")


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def etag_of(sha: str) -> str:
    return f'"{sha}"'


def latest(session: Session, org: str = "default") -> PolicyVersion | None:
    return session.scalars(select(PolicyVersion).where(PolicyVersion.org == org)
                           .order_by(PolicyVersion.version.desc()).limit(1)).first()


def latest_sha(session: Session, org: str = "default") -> tuple[int, str] | None:
    row = session.execute(select(PolicyVersion.version, PolicyVersion.sha256)
                          .where(PolicyVersion.org == org)
                          .order_by(PolicyVersion.version.desc()).limit(1)).first()
    return (int(row[0]), str(row[1])) if row else None


def get_version(session: Session, version: int, org: str = "default") -> PolicyVersion | None:
    return session.scalars(select(PolicyVersion).where(PolicyVersion.org == org,
                                                       PolicyVersion.version == version)).first()


def list_versions(session: Session, org: str = "default", limit: int = 100) -> list[PolicyVersion]:
    return list(session.scalars(select(PolicyVersion).where(PolicyVersion.org == org)
                                .order_by(PolicyVersion.version.desc()).limit(limit)))


def unified_diff(old: str, new: str, old_name: str, new_name: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        old_name, new_name))


def add_version(session: Session, *, source: str, compiled: dict[str, Any], created_by: str,
                created_by_email: str | None, comment: str | None, warnings: list[Any],
                previous_source: str, previous_name: str, org: str = "default") -> tuple[PolicyVersion, bool]:
    """Store a new version unless it is identical to the current one. Returns (row, created)."""
    text = canonical(compiled)
    sha = sha256_of(text)
    current = latest(session, org)
    if current is not None and current.sha256 == sha and current.source == source:
        return current, False
    number = (current.version if current else 0) + 1
    row = PolicyVersion(org=org, version=number, sha256=sha, source=source, compiled=text,
                        created_at=time.time(), created_by=created_by,
                        created_by_email=created_by_email, comment=comment,
                        diff=unified_diff(previous_source, source, previous_name, f"version {number}"),
                        warnings=warnings)
    session.add(row)
    session.flush()
    return row, True
