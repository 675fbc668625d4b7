"""`hoop-hook claude-code`: the lean entry point of Claude Code's PreToolUse hook.

Claude Code starts the hook as a new process before every Bash command, so its cost is the
interpreter's start, the imports and the answer (hoopcli.agents.hook). This console script
(setup.cfg: `hoop-hook = hoopcli.agents.hook_main:launch`) imports neither click nor hoop's
command table: at module level it imports `sys` only, pauses the cyclic GC for the whole (short,
input-bounded) process and exits without interpreter teardown once the answer is flushed, as the
`aws` launcher does (hoopcli.launcher). `hoop hook claude-code` gives the same answers.
tests/agents/test_hook_entry.py pins what it imports.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO

AGENTS = ("claude-code",)
USAGE = ("hoop: usage: hoop-hook claude-code (Claude Code's PreToolUse hook: its JSON on stdin); "
         "the tool call is blocked")
HELP = """Usage: hoop-hook claude-code

  Claude Code's PreToolUse hook for its Bash tool (the same as `hoop hook claude-code`, without
  the hoop command's start-up). Reads the hook's JSON on stdin and prints a permission decision
  for commands that run aws: deny, ask, or nothing. Input it cannot read exits 2, which blocks
  the call.

  settings.json: {"hooks": {"PreToolUse": [{"matcher": "Bash",
    "hooks": [{"type": "command", "command": "hoop-hook claude-code"}]}]}}
"""


def main(argv: list[str] | None = None, stdin: IO[bytes] | None = None, stdout: IO[str] | None = None,
         stderr: IO[str] | None = None) -> int:
    """The hook's exit status (0, or 2 to block the call); never raises for bad input or a bug."""
    args = sys.argv[1:] if argv is None else argv
    out = sys.stdout if stdout is None else stdout
    err = sys.stderr if stderr is None else stderr
    if args in (["-h"], ["--help"]):
        out.write(HELP)
        return 0
    if len(args) != 1 or args[0] not in AGENTS:
        err.write(USAGE + "\n")          # exit 2 (blocks), never 1: Claude Code would run the command
        return 2
    try:
        from hoopcli.agents.hook import run

        return run(sys.stdin.buffer if stdin is None else stdin, out, err)
    except Exception as exc:   # a broken install or no stdin blocks the call (a traceback's exit 1 would not)
        err.write(f"hoop: internal error in the hook ({type(exc).__name__}); the tool call is blocked\n")
        return 2


def launch() -> None:
    """The console script: GC paused, `main`, then exit without teardown (hoopcli.launcher's
    pause_gc and fast_exit, minus fast_exit's `import threading`: nothing here starts a thread)."""
    import gc

    gc.disable()          # nothing the hook builds is garbage worth collecting; its input is capped
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)    # Python reports the failed flush as usual
    threading = sys.modules.get("threading")
    if threading is not None:
        main_thread = threading.main_thread()
        if any(t is not main_thread and not t.daemon and t.is_alive() for t in threading.enumerate()):
            sys.exit(code)
    import atexit
    import os

    atexit._run_exitfuncs()
    os._exit(code)
