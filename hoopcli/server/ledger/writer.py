"""Group commit for ingest: one writer thread per database appends what every waiting request
brought in one transaction.

Appends to an organisation's log are serialized anyway (the head-row lock), so fifty uploaders
posting at once would otherwise queue on the lock, one transaction each. The writer takes the
first waiting request, everything else already queued (up to MAX_GROUP_RECORDS), and appends
them together: one lock, one set of statements, one commit. Several server processes remain
correct because the database lock still serializes their writers.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import OperationalError, SQLAlchemyError

from hoopcli.errors import Unavailable
from hoopcli.server.ledger import log as ledger_log
from hoopcli.server.ledger.checkpoints import SigningKey

MAX_GROUP_RECORDS = 5000
IDLE_RELEASE = 5.0      # seconds without work after which the writer gives its connection back
_writers: dict[int, Writer] = {}
_writers_lock = threading.Lock()
# After-commit hooks per database: hook(org, log size, leaves), `leaves` [(leaf index, leaf text)]
# what that commit appended, in log order. The detector's is one (docs/detections.md).
Hook = Callable[[str, int, list[tuple[int, str]]], None]
_hooks: dict[int, tuple[Any, list[Hook]]] = {}
log = logging.getLogger("hoopcli.server.ledger")


def on_commit(db: Any, hook: Hook) -> None:
    """Call `hook(org, log size, leaves)` after each commit of `db`'s writer, once the waiting requests
    have their answers. It runs in the writer thread: it must return at once (set a flag, wake a
    thread); an exception it raises is logged and ignored, never a record's problem."""
    with _writers_lock:
        entry = _hooks.get(id(db))
        if entry is None or entry[0] is not db:
            entry = _hooks[id(db)] = (db, [])
        entry[1].append(hook)


class Writer:
    def __init__(self, db: Any, key: SigningKey) -> None:
        self.db = db
        self.key = key
        # SimpleQueue: a put is one C call with no Condition to notify (queue.Queue's put was 6 % of
        # the event loop's busy time under the gateway's load, py-spy --gil)
        self.queue: queue.SimpleQueue[tuple[str, ledger_log.Uploader, ledger_log.Batch,
                                            concurrent.futures.Future[ledger_log.AppendResult]]] = queue.SimpleQueue()
        self.memo = ledger_log.Memo()
        # One connection kept while records keep coming: a pool checkout and its rollback on return
        # per commit cost a quarter of a record's CPU (docs/benchmarks.md).
        self._conn: Any = None
        self.thread = threading.Thread(target=self._run, name="hoop-ledger-writer", daemon=True)
        self.thread.start()

    def submit(self, org: str, uploader: ledger_log.Uploader,
               records: ledger_log.Batch) -> concurrent.futures.Future[ledger_log.AppendResult]:
        fut: concurrent.futures.Future[ledger_log.AppendResult] = concurrent.futures.Future()
        self.queue.put((org, uploader, records, fut))
        return fut

    def _run(self) -> None:
        while True:
            try:
                first = self.queue.get(timeout=IDLE_RELEASE if self._conn is not None else None)
            except queue.Empty:
                self._release()
                continue
            group = [first]
            n = len(group[0][2])
            while n < MAX_GROUP_RECORDS:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                group.append(item)
                n += len(item[2])
            by_org: dict[str, list[Any]] = defaultdict(list)
            for item in group:
                by_org[item[0]].append(item)
            for org, items in by_org.items():
                self._commit(org, items)

    def _commit(self, org: str, items: list[Any]) -> None:
        results: list[ledger_log.AppendResult] | None = None
        leaves: list[tuple[int, str]] = []
        error: BaseException = Unavailable("cannot store the records now")
        for attempt in range(3):
            try:
                if self._conn is None:
                    self._conn = self.db.engine.connect()
                with self.db.bound_session(self._conn) as s:
                    got = ledger_log.append_many(s, org, [(u, r) for _, u, r, _ in items], key=self.key,
                                                 memo=self.memo if attempt == 0 else None)
                    pending = s.info.pop("ledger_memo", None)
                    s.commit()
                results = got                       # committed: now it is true
                self.memo.remember(pending)
                leaves = pending["leaves"] if pending else []
                break
            except ledger_log.StaleHead:    # another replica appended: again, reading the head
                self.memo.forget(org)
                error = Unavailable("the ledger moved while appending; try again")
                continue
            except OperationalError as exc:  # SQLite busy past its timeout, PG deadlock
                error = Unavailable(f"the ledger is busy: {type(exc.orig).__name__}")
                error.__cause__ = exc
            except SQLAlchemyError as exc:  # e.g. another server won a race on a record id: retry
                error = Unavailable("cannot store the records now")
                error.__cause__ = exc
            except BaseException as exc:  # never let the writer thread die
                error = exc
                break
            finally:
                if results is None:
                    self.memo.forget(org)
                    self._release()         # whatever failed, the next attempt starts on a fresh connection
        if results is None:
            for *_, fut in items:
                fut.set_exception(error)
            return
        for (*_, fut), res in zip(items, results, strict=True):
            fut.set_result(res)
        entry = _hooks.get(id(self.db))
        if entry is not None and entry[0] is self.db and results and any(r.accepted for r in results):
            for hook in entry[1]:
                try:
                    hook(org, results[-1].size, leaves)
                except Exception as exc:  # a hook never costs a record anything
                    log.error("ledger commit hook failed: %s", type(exc).__name__)


    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception as exc:  # a broken connection: the pool discards it
                log.warning("ledger writer: closing its connection failed: %s", type(exc).__name__)


def writer_for(db: Any, key: SigningKey) -> Writer:
    with _writers_lock:
        w = _writers.get(id(db))
        if w is None or w.db is not db:
            w = _writers[id(db)] = Writer(db, key)
        return w
