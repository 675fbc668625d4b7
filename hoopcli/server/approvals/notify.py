"""Wake long-polling approval waiters when a decision lands.

Three layers, fastest first:
  1. in-process: a decision made by this server process wakes its waiters at once
     (an asyncio.Event per waiter, set thread-safely from the worker thread that decided);
  2. across processes on PostgreSQL: the deciding transaction runs pg_notify('hoop_approvals', id);
     every server process holds one LISTEN connection in a background thread and wakes its own
     waiters for that id;
  3. polling fallback: waiters re-read the database every `poll_interval` seconds anyway
     (0.5 s on SQLite, which has no cross-process notification; 5 s on PostgreSQL as a safety
     net while the LISTEN connection reconnects).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from hoopcli.server.approvals.service import NOTIFY_CHANNEL

log = logging.getLogger("hoop.approvals")
IDLE_EXIT = 60.0   # seconds without waiters after which the LISTEN thread closes its connection


class Notifier:
    def __init__(self, db: Any) -> None:
        self.db = db
        self.postgres = db.dialect == "postgresql"
        self.poll_interval = 5.0 if self.postgres else 0.5
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._versions: dict[str, int] = {}      # bumped by every publish: closes the read/park gap
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        self.listening = threading.Event()

    # -- waking ----------------------------------------------------------------------------
    def publish(self, approval_id: str) -> None:
        """Wake this process's waiters for `approval_id` (thread-safe; any thread)."""
        with self._lock:
            if len(self._versions) > 10000:
                self._versions.clear()          # a lost bump only costs one poll interval
            self._versions[approval_id] = self._versions.get(approval_id, 0) + 1
            targets = list(self._waiters.get(approval_id, ()))
        for loop, event in targets:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # loop closed
                pass

    def _publish_all(self) -> None:
        with self._lock:
            ids = list(self._waiters)
        for approval_id in ids:
            self.publish(approval_id)

    def version(self, approval_id: str) -> int:
        """Take this before reading the approval; pass it to wait() as `since`."""
        with self._lock:
            return self._versions.get(approval_id, 0)

    async def wait(self, approval_id: str, timeout: float, since: int | None = None) -> bool:
        """Sleep until `approval_id` is published or `timeout` passes; True when woken.

        With `since` (a version() taken before the caller read the approval), a publish that
        landed between that read and this call returns at once instead of being missed."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        entry = (loop, event)
        with self._lock:
            self._waiters.setdefault(approval_id, set()).add(entry)
            if since is not None and self._versions.get(approval_id, 0) != since:
                event.set()
        self.start()            # after registering: the listener only exits when nobody waits
        try:
            await asyncio.wait_for(event.wait(), timeout=max(0.0, timeout))
            return True
        except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
            return False
        finally:
            with self._lock:
                group = self._waiters.get(approval_id)
                if group is not None:
                    group.discard(entry)
                    if not group:
                        del self._waiters[approval_id]

    # -- PostgreSQL LISTEN ------------------------------------------------------------------
    def start(self) -> None:
        """Run the LISTEN thread while anyone waits (it exits after IDLE_EXIT s without waiters)."""
        if not self.postgres or self._stop.is_set():
            return
        with self._lock:
            if self._listener is not None:
                return
            self._listener = threading.Thread(target=self._listen, name="hoop-approvals-listen", daemon=True)
            self._listener.start()

    def _idle_exit(self, idle_since: float) -> bool:
        """True (and the thread is forgotten) when nobody has waited for IDLE_EXIT seconds."""
        with self._lock:
            if self._waiters:
                return False
            if time.monotonic() - idle_since < IDLE_EXIT:
                return False
            self._listener = None
            self.listening.clear()
            return True

    def stop(self) -> None:
        self._stop.set()

    def _conninfo(self) -> str:
        url = self.db.engine.url.set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    def _listen(self) -> None:
        import psycopg

        backoff = 0.5
        idle_since = time.monotonic()
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo(), autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.listening.set()
                    backoff = 0.5
                    self._publish_all()   # anything missed while (re)connecting: re-check now
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self.publish(note.payload)
                        if self._waiters:
                            idle_since = time.monotonic()
                        elif self._idle_exit(idle_since):
                            return
            except Exception as exc:  # keep listening; waiters also poll
                self.listening.clear()
                log.warning("approvals: LISTEN connection lost (%s); retrying", type(exc).__name__)
                if self._idle_exit(idle_since):
                    return
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)


_create_lock = threading.Lock()


def get_notifier(app: Any) -> Notifier:
    """The app's Notifier, created on first use (one per app, hence one LISTEN per process)."""
    notifier = getattr(app.state, "approvals_notifier", None)
    if notifier is None:
        with _create_lock:
            notifier = getattr(app.state, "approvals_notifier", None)
            if notifier is None:
                notifier = Notifier(app.state.db)
                app.state.approvals_notifier = notifier
    return notifier
