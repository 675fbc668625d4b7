"""Process handling of the `aws` launcher, in one place: GC pause, roomy frame, fast exit.

A launcher (shims/aws, or the one `hoop shim install` writes) is a short-lived process that
calls hoopcli.shim.launch(), which uses the three tricks below. Each is measured in
docs/benchmarks.md ("Shim overhead"); HOOP_FAST_EXIT=0 turns all three off. Tests that call
hoopcli.shim.main() directly get none of them.

- pause_gc / resume_gc: the cyclic GC is paused while the process imports hoop and awscli and
  builds the CLI driver (none of it is garbage), then resumed over a frozen heap just before the
  command runs, so a long command is collected as usual, over its own objects.
- call_with_room: the pipeline runs from a frame with ~33 KB of room above it (CPython 3.11+
  frees a 16 KB frame-stack chunk whenever the frame that opened it returns).
- fast_exit: once the result record is on disk, the process ends without interpreter teardown.

Stdlib only, and it imports nothing of hoop's: every module on the hot path may import it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

# The `aws` launcher (hoopcli.shim.launch) pauses the cyclic garbage collector while the process
# imports hoop and awscli and builds the CLI driver: none of that is garbage, and collecting it
# over and over costs about a tenth of a bare `aws` call. resume_gc() freezes what startup built
# (it lives until exit anyway) and turns the collector back on before the command runs, so a
# long command (`s3 sync`, `logs tail --follow`) is collected as usual, over its own objects.
_gc_paused = False


def pause_gc() -> None:
    """Pause the collector until resume_gc() (the launcher pauses it even before importing hoop)."""
    global _gc_paused
    import gc

    gc.disable()
    _gc_paused = True


def resume_gc() -> None:
    global _gc_paused
    if _gc_paused:
        import gc

        gc.freeze()
        gc.enable()
        _gc_paused = False


def _call(fn: Callable[[], Any]) -> Any:
    return fn()


def _with_room(call: Callable[[Callable[[], Any]], Any]) -> Callable[[Callable[[], Any]], Any]:
    """`call`, with ~33 KB more room reserved in its frame (CPython 3.11+; else `call` as is).

    CPython 3.11+ keeps frames on a stack of 16 KB chunks and frees a chunk as soon as the frame
    that opened it returns. Code whose call depth keeps going back and forth across a chunk
    boundary pays an mmap, a munmap and page faults on every crossing: a bare `aws` call crosses
    ~200 times, and where other frames below shift the boundary, thousands of times (measured 9 to
    5,700 crossings for the same command; see docs/benchmarks.md). A frame over 32 KB gets a 64 KB
    chunk of its own that stays until the command is done, with ~30 KB above it: more than the
    import of awscli and the command need. The room is an unused value stack (co_stacksize).
    """
    if sys.version_info < (3, 11) or sys.implementation.name != "cpython":
        return call
    try:
        code = call.__code__.replace(co_stacksize=call.__code__.co_stacksize + 4200)
        return type(call)(code, call.__globals__, call.__name__)
    except (AttributeError, TypeError, ValueError):
        return call


call_with_room = _with_room(_call)


def fast_exit(code: int) -> None:
    """Exit now, skipping interpreter finalization (tens of ms over awscli's heap, and nothing
    left to do: records are fsync'ed, the uploader is detached). Flushes stdout/stderr and runs
    atexit handlers first; falls back to a normal exit when a flush fails (Python then reports
    it as usual) or a non-daemon thread still runs (Python would wait for it)."""
    import threading

    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)
    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon and t.is_alive() for t in threading.enumerate()):
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)
