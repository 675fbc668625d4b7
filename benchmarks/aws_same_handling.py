"""Bare awscli v1 with the process handling hoop's launcher gives every `aws` call.

The like-for-like baseline of benchmarks/shim_overhead.py: the same GC pause during startup
(resumed over a frozen heap before the command runs), the same roomy frame under the import and
the command, and the same fast exit as hoopcli.shim.launch (hoopcli.launcher.pause_gc / resume_gc /
call_with_room / fast_exit), without any of hoop's work. Deliberately standalone:
importing those functions would load hoop's modules into the baseline and hide part of hoop's
cost.

    python -I benchmarks/aws_same_handling.py --endpoint-url URL s3api list-buckets
"""

import gc

gc.disable()

import atexit  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402


def run() -> int:
    from awscli.clidriver import create_clidriver

    driver = create_clidriver()
    gc.freeze()
    gc.enable()
    return driver.main(sys.argv[1:])


def call(fn):
    return fn()


if sys.version_info >= (3, 11):   # what hoopcli.launcher.call_with_room does
    call = type(call)(call.__code__.replace(co_stacksize=call.__code__.co_stacksize + 4200),
                      call.__globals__, "call")
code = call(run)
sys.stdout.flush()
sys.stderr.flush()
atexit._run_exitfuncs()
os._exit(code)
