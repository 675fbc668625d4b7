"""One database read per cache key at a time.

The gateway's short-lived caches (a session credential, the newest policy version, a session's
hold) expire about once a second. Under load every request in flight finds the same entry
expired at the same moment, and each used to read the database itself: sixteen clients meant
sixteen identical reads, all in workers. With `SingleFlight.do(key, read)` the first caller reads
and the others that arrive while it does wait for its answer.

A waiter gets the answer of a read that began at most one read's duration before it arrived.
The caches' promises ("a revocation takes effect within a second") count from the time a read
starts, so they still hold. A cache that this server itself updates (a hold placed, a policy
pushed) puts a generation number in the key, so that no caller after the update joins a read
that began before it.

If the read fails, the waiters do not inherit the failure (its message might not be theirs to
see): each reads for itself, as it would have without this.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class _Flight(Generic[T]):
    __slots__ = ("done", "ok", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False
        self.value: T | None = None


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[Hashable, _Flight[T]] = {}

    def do(self, key: Hashable, read: Callable[[], T]) -> T:
        """`read()`'s value, read once for all the callers of `key` that arrive while it runs."""
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.ok:
                return flight.value  # type: ignore[return-value]
            return read()
        try:
            value = read()
            flight.value, flight.ok = value, True
            return value
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()
