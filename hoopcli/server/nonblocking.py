"""Run a step on the event loop when it can answer from memory, in a worker when it would wait.

The gateway's verify, decode, decide and re-sign usually find everything they need in memory
(the credential, the policy, the session's hold state, the server's AWS credentials, botocore's
models), and handing them to a worker thread and back costs more than they do (docs/gateway.md).
So the gateway first runs them on the event loop inside `on_loop()`; every place that would wait
(a database read on a cache miss, an AssumeRole, the detector catching up, a first model load)
calls `may_block()` first, which raises WouldBlock there, and the gateway runs the whole step
again in a worker, where `may_block()` does nothing.

WouldBlock is a BaseException so that no `except Exception` on the way turns it into an answer:
a step interrupted by it has decided nothing, and the worker's run is the one that counts. Code
that calls `may_block()` must do so before any side effect it would not repeat.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class WouldBlock(BaseException):
    """Raised on the event loop where a step would wait: run it in a worker instead."""


_local = threading.local()


@contextmanager
def on_loop() -> Iterator[None]:
    """Within this block, on this thread, `may_block()` raises WouldBlock."""
    _local.forbidden = True
    try:
        yield
    finally:
        _local.forbidden = False


def waiting_allowed() -> bool:
    """False inside `on_loop()`: for code that asks "would I wait?" and its answer in one step."""
    return not getattr(_local, "forbidden", False)


def may_block(what: str) -> None:
    """Call before waiting on anything (a database, the network, another thread)."""
    if getattr(_local, "forbidden", False):
        raise WouldBlock(what)
