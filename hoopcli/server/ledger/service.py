"""The ledger's sessions as auditors and the console read them: a filtered list, one session's
timeline, every matching record for export, and a session page's verification badge.

`owner` is None for callers who see the organisation's every session (auditors, admins), else
the subject whose uploads alone they see (see common.sees_all).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hoopcli.errors import UsageError
from hoopcli.server.detections.service import session_findings
from hoopcli.server.errors import BadRequest, NotFound
from hoopcli.server.ledger import log as ledger_log
from hoopcli.server.ledger import query as ledger_query
from hoopcli.server.ledger.checkpoints import SigningKey
from hoopcli.server.ledger.proofs import inclusion
from hoopcli.server.ledger.query import Filters
from hoopcli.server.store.db import Database
from hoopcli.server.store.ledger import LedgerRecord
from hoopcli.transcript import merkle
from hoopcli.transcript.checkpoints import parse_body, verify_signature


def filters(user: str | None, agent: str | None, connection: str | None, since: str | None,
            until: str | None, action: str | None, decision: str | None, status: str | None,
            exit_code: int | None, session_id: str | None = None) -> Filters:
    """The filters of a query string; BadRequest for a time that does not parse."""
    try:
        return Filters(user=user, agent=agent, connection=connection,
                       since=ledger_query.parse_when(since, "since"),
                       until=ledger_query.parse_when(until, "until"),
                       action=action, decision=decision, status=status, exit_code=exit_code,
                       session_id=session_id)
    except UsageError as exc:
        raise BadRequest(exc.message) from None


def list_sessions(db: Database, org: str, owner: str | None, f: Filters, limit: int,
                  cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """(sessions, the cursor of the next page); BadRequest for a bad cursor or filter."""
    try:
        with db.session() as s:
            return ledger_query.list_sessions(s, org, owner, f, limit, cursor)
    except UsageError as exc:
        raise BadRequest(exc.message) from None


def show_session(db: Database, org: str, owner: str | None, session_id: str, after: int,
                 limit: int) -> dict[str, Any]:
    """A session with its commands (start and result joined) and its gateway calls (one
    api.call each, placed by time), from record `after` on (see query.timeline), and the
    findings detections raised in it (each names the record that met its threshold)."""
    if len(session_id) > 128:
        raise NotFound("no such session")
    with db.session() as s:
        row = ledger_query.get_session(s, org, owner, session_id)
        # A session whose client uploaded nothing is still shown, with what the server observed.
        summary = ledger_query.session_dict(row) if row is not None else \
            ledger_query.observed_session(s, org, owner, session_id)
        if summary is None:
            raise NotFound("no such session")
        entries = ledger_query.session_records(s, org, session_id, after, limit) if row is not None else []
        out: dict[str, Any] = {"session": summary}
        # Server-observed events outside the log (session start/end, credentials issued, STS
        # grants in vend mode, approvals and decisions): see query.observed.
        out["observed"] = ledger_query.observed(s, org, session_id) if after < 0 else []
    out["commands"] = ledger_query.timeline(entries)
    out["findings"] = session_findings(db, org, session_id)      # detections raised in this session
    out["records"] = len(entries)
    out["next"] = entries[-1]["index"] if len(entries) == limit else None
    return out


def export_entries(db: Database, org: str, owner: str | None, f: Filters) -> Iterator[dict[str, Any]]:
    """Every matching record as {index, record, receipt}, in log order. The filters are checked
    here, before the first entry (so a bad one is refused before a 200 has been sent)."""
    list_sessions(db, org, owner, f, 1)

    def entries() -> Iterator[dict[str, Any]]:
        for index, leaf in ledger_query.iter_records(db, org, owner, f):
            yield ledger_query.leaf_entry(index, leaf)

    return entries()


def console_session(db: Database, org: str, owner: str | None, session_id: str,
                    key: Callable[[], SigningKey]) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, str]] | None:
    """(session, commands, verification badge) for the console's session page; None if unseen."""
    with db.session() as s:
        row = ledger_query.get_session(s, org, owner, session_id)
        if row is None:
            # opened or vended for by the server, nothing in the log yet: still shown
            observed = ledger_query.observed_session(s, org, owner, session_id)
            return None if observed is None else (
                observed, [], {"state": "pending", "text": "no record of this session is in the log yet"})
        session = ledger_query.session_dict(row)
        commands = ledger_query.timeline(ledger_query.session_records(s, org, session_id))
        try:
            verification = _verification(s, org, session_id, key())
        except Exception:  # never break the page over the badge
            verification = {"state": "failed", "text": "verification could not be computed"}
    return session, commands, verification


def _verification(s: Session, org: str, session_id: str, key: SigningKey) -> dict[str, str]:
    """Recompute this session's leaves and prove each is in the tree of the latest signed
    checkpoint (what `hoop sessions verify` does for the whole log)."""
    last = ledger_log.latest_checkpoint(s, org)
    if last is None:
        return {"state": "pending", "text": "no signed checkpoint covers this session yet"}
    size = last.size
    rows = list(s.execute(select(LedgerRecord.leaf_index, LedgerRecord.leaf).where(
        LedgerRecord.org == org, LedgerRecord.session_id == session_id,
        LedgerRecord.leaf_index < size).order_by(LedgerRecord.leaf_index)))
    body = parse_body(last.body)
    if not (verify_signature(key.public_raw, body, last.signature) and body.get("root") == last.root
            and body.get("size") == size):
        return {"state": "failed", "text": f"checkpoint #{last.seq} does not carry this server's valid signature"}
    root = bytes.fromhex(last.root)
    bad = []
    for index, leaf in rows:
        if leaf is None:
            continue
        proof = ledger_log.with_nodes(s, org, inclusion(index, size))
        if not merkle.verify_inclusion(index, size, merkle.leaf_hash(leaf.encode("utf-8")), proof, root):
            bad.append(index)
    if bad:
        return {"state": "failed", "text": f"{len(bad)} record(s) do not match signed checkpoint #{last.seq}"}
    return {"state": "verified", "text": f"{len(rows)} record(s) verified up to signed checkpoint "
                                         f"#{last.seq} (log size {size})"}
