"""The `hoop` command: a thin click layer. Subcommands are imported only when invoked.

Each subcommand module exposes a click command or group named in COMMANDS; it parses flags,
calls one library function and prints. HoopError is turned into `hoop: ...` and its exit code
in exactly one place: `main`.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from hoopcli import __version__

if TYPE_CHECKING:
    import click

# name -> "module:attribute" (relative to hoopcli.cli)
COMMANDS: dict[str, str] = {
    "login": "auth:login",
    "logout": "auth:logout",
    "whoami": "auth:whoami",
    "shim": "shim:shim",
    "run": "run:run",
    "env": "env:env",
    "mcp": "mcp:mcp",
    "hook": "hook:hook",
    "explain": "explain:explain",
    "policy": "policy:policy",
    "approvals": "approvals:approvals",
    "sessions": "sessions:sessions",
    "findings": "findings:findings",
    "server": "server:server",
    "sync": "sync:sync",
    "status": "sync:status",
    "doctor": "doctor:doctor",
    "demo": "demo:demo",
}


def __getattr__(name: str) -> Any:
    """`cli` and `LazyGroup` are built on first use, so a path that needs no click (the hook
    Claude Code runs before every Bash command) does not import it."""
    if name not in ("cli", "LazyGroup"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import click

    class LazyGroup(click.Group):
        def list_commands(self, ctx: click.Context) -> list[str]:
            return sorted(COMMANDS)

        def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
            target = COMMANDS.get(cmd_name)
            if target is None:
                return None
            module_name, attr = target.split(":")
            module = importlib.import_module(f"{__name__}.{module_name}")
            return getattr(module, attr)

    @click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(__version__, prog_name="hoop")
    def cli() -> None:
        """hoop: policy, approvals, short-lived credentials, masking and a tamper-evident
        trail for AI agents that run the AWS CLI."""

    globals().update(LazyGroup=LazyGroup, cli=cli)
    return globals()[name]


def main(argv: list[str] | None = None) -> int:
    """Entry point of `hoop`."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["hook", "claude-code"]:
        # Claude Code runs this before every Bash command: no click, no subcommand lookup
        # (`hoop hook claude-code --help` and any other arguments take the usual path).
        try:
            from hoopcli.agents.hook import run
        except Exception as exc:   # fail closed: exit 2 blocks the call, a traceback's exit 1 would not
            sys.stderr.write(f"hoop: internal error in the hook ({type(exc).__name__}); the tool call is blocked\n")
            return 2
        return run(sys.stdin.buffer, sys.stdout, sys.stderr)
    return run_command(__getattr__("cli"), argv, "hoop")


def run_command(command: click.Command, argv: list[str] | None, prog_name: str) -> int:
    """The one error funnel for hoop's own commands (also used by the server-side admin tools):
    HoopError -> its `hoop: ...` line and exit code, click errors as click shows them."""
    import click

    from hoopcli.errors import INTERNAL_HINT, HoopError
    from hoopcli.exitcodes import ExitStatus

    try:
        rv = command.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except HoopError as exc:
        click.echo(exc.line(), err=True)
        return int(exc.exit_status)
    except click.exceptions.Abort:
        click.echo("hoop: aborted", err=True)
        return 130
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("hoop: interrupted", err=True)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # the funnel of last resort
        # Type and frames only, like the shim and the server: the message may hold a secret.
        from hoopcli.errors import log_internal_error
        from hoopcli.paths import Layout

        log = log_internal_error(Layout.from_env().home, exc, "cli-errors.log")
        click.echo(f"hoop: internal error ({type(exc).__name__}); {INTERNAL_HINT}"
                   + (f" and {log}" if log else ""), err=True)
        return int(ExitStatus.INTERNAL)
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
