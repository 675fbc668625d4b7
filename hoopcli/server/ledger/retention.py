"""Retention: erase the content of old records, keep the log provable, sign a tombstone.

Run on the server host by an administrator (never through the API):

    python -m hoopcli.server.ledger.retention --config server.yaml --before 2026-01-01T00:00:00Z \
        --reason "90-day retention" [--org default] [--yes]

What it does, in one transaction holding the log's append lock:
1. signs a checkpoint covering everything so far (so the erased content was sealed first);
2. sets the stored content (`leaf`) of every record older than --before to NULL. The leaf
   *hashes* stay, so every checkpoint and proof remains valid;
3. signs a tombstone {org, seq, time, before, leaves: [[lo, hi), ...], records, actor, reason,
   previous} chained to the previous tombstone. `hoop sessions verify` accepts an erased record
   only when a valid tombstone covers its leaf.
"""

from __future__ import annotations

import getpass
import sys
from datetime import datetime, timezone
from typing import Any

import click
from sqlalchemy import select, update

from hoopcli.canonical import canonical_json
from hoopcli.errors import UsageError
from hoopcli.server.ledger import checkpoints as cp
from hoopcli.server.ledger.log import lock_head, maybe_checkpoint, parse_time
from hoopcli.server.store.ledger import LedgerRecord, LedgerTombstone
from hoopcli.transcript.checkpoints import checkpoint_hash, parse_body


def _ranges(indexes: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for i in indexes:
        if out and out[-1][1] == i:
            out[-1][1] = i + 1
        else:
            out.append([i, i + 1])
    return out


def apply(db: Any, org: str, before: datetime, key: cp.SigningKey, actor: str, reason: str,
          now: datetime | None = None) -> dict[str, Any] | None:
    """Erase records older than `before`; return the signed tombstone body (None if nothing)."""
    now = now or datetime.now(timezone.utc)
    if before > now:
        raise UsageError("--before is in the future; refusing to erase records not yet old")
    with db.session() as s:
        head = lock_head(s, org)
        indexes = list(s.scalars(select(LedgerRecord.leaf_index).where(
            LedgerRecord.org == org, LedgerRecord.time < before, LedgerRecord.leaf.is_not(None))
            .order_by(LedgerRecord.leaf_index)))
        if not indexes:
            return None
        maybe_checkpoint(s, org, head, key, now, force=True)
        for lo, hi in _ranges(indexes):
            s.execute(update(LedgerRecord).where(
                LedgerRecord.org == org, LedgerRecord.leaf_index >= lo, LedgerRecord.leaf_index < hi,
                LedgerRecord.time < before).values(leaf=None))
        last = s.scalars(select(LedgerTombstone).where(LedgerTombstone.org == org)
                         .order_by(LedgerTombstone.seq.desc()).limit(1)).first()
        seq = last.seq + 1 if last else 0
        body = {"v": 1, "kind": "hoop.tombstone", "org": org, "seq": seq, "time": cp.utc_iso(now),
                "before": cp.utc_iso(before), "leaves": _ranges(indexes), "records": len(indexes),
                "actor": actor, "reason": reason,
                "previous": checkpoint_hash(parse_body(last.body)) if last else None,
                "key_id": key.key_id}
        raw = canonical_json(body)
        s.add(LedgerTombstone(org=org, seq=seq, time=now, body=raw.decode("utf-8"),
                              signature=key.sign(raw), key_id=key.key_id))
    return body


@click.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Server config YAML.")
@click.option("--database-url", help="Override the configured database.")
@click.option("--before", required=True, help="Erase records older than this RFC 3339 time.")
@click.option("--reason", required=True, help="Why (stored in the signed tombstone).")
@click.option("--org", default="default", show_default=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def retention(config_file: str | None, database_url: str | None, before: str, reason: str,
              org: str, yes: bool) -> None:
    """Erase the content of records older than --before and leave a signed tombstone."""
    from hoopcli.server.settings import load_settings
    from hoopcli.server.store.db import Database

    try:
        when = parse_time(before)
    except ValueError:
        raise UsageError(f"--before: not an RFC 3339 time: {before!r}") from None
    overrides: dict[str, Any] = {"database_url": database_url} if database_url else {}
    settings = load_settings(config_file, **overrides)
    if not yes:
        click.confirm(f"Erase the content of every record of org {org!r} older than {cp.utc_iso(when)}?",
                      abort=True)
    db = Database(settings.database_url)
    db.migrate()
    key = cp.SigningKey.load_or_create(settings.home)
    body = apply(db, org, when, key, actor=f"{getpass.getuser()}@server", reason=reason)
    if body is None:
        click.echo("nothing to erase")
    else:
        click.echo(f"erased {body['records']} records; tombstone #{body['seq']} signed by key {key.key_id}")


def main(argv: list[str] | None = None) -> int:
    from hoopcli.cli import run_command

    return run_command(retention, argv, "python -m hoopcli.server.ledger.retention")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
