"""`hoop hook claude-code`: a PreToolUse hook for agents that run shell commands."""

from __future__ import annotations

import sys

import click


@click.group()
def hook() -> None:
    """Hooks that let an agent's own permission system ask hoop before it runs a command."""


@hook.command("claude-code")
@click.pass_context
def claude_code(ctx: click.Context) -> None:
    """Claude Code's PreToolUse hook for its Bash tool.

    Reads the hook's JSON on stdin and prints a permission decision for commands that run aws:
    deny (the policy denies one), ask (one needs review, or AWS would be reached around hoop),
    or nothing. Input it cannot read exits 2, which blocks the call.

    \b
    settings.json: {"hooks": {"PreToolUse": [{"matcher": "Bash",
      "hooks": [{"type": "command", "command": "hoop hook claude-code"}]}]}}
    """
    from hoopcli.agents.hook import run

    ctx.exit(run(sys.stdin.buffer, sys.stdout, sys.stderr))
