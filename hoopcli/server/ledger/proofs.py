"""Checkpoints and what `hoop sessions verify` needs to check the log itself: signed
checkpoints, leaves, inclusion and consistency proofs, and retention's tombstones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from hoopcli.server.errors import BadRequest
from hoopcli.server.ledger import log as ledger_log
from hoopcli.server.ledger.checkpoints import SigningKey
from hoopcli.server.store.db import Database
from hoopcli.server.store.ledger import LedgerCheckpoint, LedgerNode, LedgerRecord, LedgerTombstone
from hoopcli.transcript import merkle
from hoopcli.transcript.checkpoints import parse_body

ProofBuilder = Callable[[merkle.NodeGetter], list[bytes]]


def inclusion(index: int, size: int) -> ProofBuilder:
    """The inclusion proof of leaf `index` in the tree of `size` leaves, for log.with_nodes."""
    def build(get: merkle.NodeGetter) -> list[bytes]:
        return merkle.inclusion_proof(get, index, size)
    return build


def consistency(first: int, second: int) -> ProofBuilder:
    def build(get: merkle.NodeGetter) -> list[bytes]:
        return merkle.consistency_proof(get, first, second)
    return build


def checkpoint_dict(row: LedgerCheckpoint) -> dict[str, Any]:
    return {"seq": row.seq, "size": row.size, "root": row.root, "body": row.body,
            "signature": row.signature, "key_id": row.key_id}


def list_checkpoints(db: Database, org: str, after: int, limit: int) -> dict[str, Any]:
    with db.session() as s:
        rows = list(s.scalars(select(LedgerCheckpoint).where(
            LedgerCheckpoint.org == org, LedgerCheckpoint.seq > after)
            .order_by(LedgerCheckpoint.seq).limit(limit)))
        items = [checkpoint_dict(r) for r in rows]
    return {"items": items, "next": items[-1]["seq"] if len(items) == limit else None}


def seal(db: Database, org: str, key: SigningKey) -> dict[str, Any]:
    """Sign a checkpoint covering every record stored so far (a new one only if the log grew)."""
    with db.session() as s:
        row = ledger_log.seal(s, org, key)
        return {"checkpoint": checkpoint_dict(row) if row is not None else None}


def summary(db: Database, org: str, session_id: str | None) -> dict[str, Any]:
    """The latest checkpoint, and for `session_id` an inclusion proof of each of its records
    against that checkpoint."""
    with db.session() as s:
        last = ledger_log.latest_checkpoint(s, org)
        proofs: list[dict[str, Any]] = []
        out: dict[str, Any] = {"size": ledger_log.log_size(s, org),
                               "checkpoint": checkpoint_dict(last) if last else None, "proofs": proofs}
        if session_id and last is not None:
            rows = s.execute(select(LedgerRecord.leaf_index, LedgerRecord.id, LedgerRecord.leaf).where(
                LedgerRecord.org == org, LedgerRecord.session_id == session_id,
                LedgerRecord.leaf_index < last.size).order_by(LedgerRecord.leaf_index).limit(5000))
            for index, rid, leaf in rows:
                proof = ledger_log.with_nodes(s, org, inclusion(index, last.size))
                proofs.append({"index": index, "id": rid, "leaf": leaf, "proof": [p.hex() for p in proof]})
    return out


def leaves(db: Database, org: str, start: int, limit: int) -> dict[str, Any]:
    """Leaves [start, start+limit): the stored leaf hash (level-0 node) and the record's leaf text
    (null when retention cleared it, or when the record row is gone)."""
    with db.session() as s:
        hashes = dict(s.execute(select(LedgerNode.idx, LedgerNode.hash).where(
            LedgerNode.org == org, LedgerNode.level == 0, LedgerNode.idx >= start,
            LedgerNode.idx < start + limit)).all())
        recs = {i: (rid, leaf) for i, rid, leaf in s.execute(select(
            LedgerRecord.leaf_index, LedgerRecord.id, LedgerRecord.leaf).where(
            LedgerRecord.org == org, LedgerRecord.leaf_index >= start,
            LedgerRecord.leaf_index < start + limit))}
        size = ledger_log.log_size(s, org)
    items = []
    for i in range(start, min(start + limit, size)):
        rid, leaf = recs.get(i, (None, None))
        h = hashes.get(i)
        items.append({"index": i, "id": rid, "present": i in recs, "leaf": leaf,
                      "hash": bytes(h).hex() if h is not None else None})
    nxt = start + limit if start + limit < size else None
    return {"size": size, "items": items, "next": nxt}


def consistency_proof(db: Database, org: str, first: int, second: int) -> dict[str, Any]:
    with db.session() as s:
        size = ledger_log.log_size(s, org)
        if not first <= second <= size:
            raise BadRequest(f"need 0 <= first <= second <= {size}")
        proof = ledger_log.with_nodes(s, org, consistency(first, second))
    return {"first": first, "second": second, "proof": [p.hex() for p in proof]}


def inclusion_proof(db: Database, org: str, index: int, size: int) -> dict[str, Any]:
    with db.session() as s:
        current = ledger_log.log_size(s, org)
        if not index < size <= current:
            raise BadRequest(f"need 0 <= index < size <= {current}")
        proof = ledger_log.with_nodes(s, org, inclusion(index, size))
    return {"index": index, "size": size, "proof": [p.hex() for p in proof]}


def tombstones(db: Database, org: str) -> dict[str, Any]:
    with db.session() as s:
        rows = list(s.scalars(select(LedgerTombstone).where(LedgerTombstone.org == org)
                              .order_by(LedgerTombstone.seq)))
        items = [{"seq": r.seq, "body": r.body, "signature": r.signature, "key_id": r.key_id,
                  "parsed": parse_body(r.body)} for r in rows]
    return {"items": items}
