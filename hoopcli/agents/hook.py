"""`hoop hook claude-code`: Claude Code's PreToolUse hook for its Bash tool.

Claude Code sends the tool call as JSON on stdin; for a Bash command hoop finds every command it
would run (hoopcli.agents.shellwords: a real shell parser), explains each aws call with the
locally cached policy (hoopcli.parse.explain; no network) and answers on stdout:

    deny  when the policy denies any aws call (the rule's reason)
    ask   when any needs review, cannot be classified or parsed, or would reach AWS around
          hoop: aws without a hoop session, an aws binary that is not the shim, a script or SDK
          runner (python, node, terraform, ...) without hoop's gateway in the environment,
          AWS credential or endpoint variables changed on the command line
    (nothing) when no aws call is found or all are allowed: Claude Code's own rules apply.

Input hoop cannot read (over 1 MiB, not UTF-8, not JSON, no tool name or command) and any
internal error exit 2 with one `hoop: ...` line on stderr: Claude Code blocks the call and shows
Claude the line. Never exit 1: Claude Code treats other exit codes as non-blocking and runs the
command. The shim and the gateway decide again when the command runs; this hook asks earlier.
"""

from __future__ import annotations

import json
import os

from hoopcli.agents.shellwords import SHELLS, Command, scan

TYPE_CHECKING = False      # typing costs ~3 ms to import, and the hook runs before every Bash command
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import IO, Any

MAX_INPUT = 1 << 20            # bytes of hook input read
MAX_COMMAND = 64 << 10         # longer commands are not parsed (bashlex takes ~65 us per word)
MAX_WORDS = 4000
EXIT_BLOCK = 2                 # Claude Code: exit 2 blocks the tool call and shows stderr to Claude
MAX_REASONS = 12

RUNNERS = frozenset({"python", "python2", "python3", "pypy", "pypy3", "node", "nodejs", "deno", "bun", "npx",
                     "bunx", "pnpx", "uvx", "pipx", "ts-node", "tsx", "ruby", "perl", "php", "java", "go",
                     "dotnet", "terraform", "tofu", "terragrunt", "pulumi", "cdk", "cdktf", "sam",
                     "serverless", "sls", "ansible", "ansible-playbook", "source", "."})
RUNNER_SUBCOMMANDS = frozenset({"uv", "poetry", "pipenv", "pdm", "hatch", "npm", "pnpm", "yarn", "bun"})
SENSITIVE = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                       "AWS_SECURITY_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
                       "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CA_BUNDLE", "AWS_DATA_PATH"})
HOOP_SETTABLE = frozenset({"HOOP_REASON", "HOOP_APPROVAL_WAIT"})
SETTERS = frozenset({"export", "unset", "declare", "typeset", "readonly", "local"})


class HookInputError(Exception):
    """Input hoop cannot read: exit 2 (Claude Code blocks the call)."""


def run(stdin: IO[bytes], stdout: IO[str], stderr: IO[str], environ: Mapping[str, str] | None = None) -> int:
    """The whole hook: read, judge, answer. Returns the exit status (0, or 2 to block)."""
    environ = os.environ if environ is None else environ
    try:
        answer = respond(read_payload(stdin), environ)
    except HookInputError as exc:
        return _block(stderr, f"hoop: {exc}; the tool call is blocked")
    except Exception as exc:   # fail closed: a crash must not let the call through (exit 1 would)
        return _block(stderr, f"hoop: internal error in the hook ({type(exc).__name__}); the tool call is blocked")
    if answer is not None:
        stdout.write(json.dumps(answer) + "\n")
        stdout.flush()
    return 0


def _block(stderr: IO[str], line: str) -> int:
    stderr.write(" ".join(line.split()) + "\n")
    stderr.flush()
    return EXIT_BLOCK


def read_payload(stdin: IO[bytes]) -> dict[str, Any]:
    raw = stdin.read(MAX_INPUT + 1)
    if len(raw) > MAX_INPUT:
        raise HookInputError("the hook input is over 1 MiB, more than hoop reads")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise HookInputError("the hook input is not UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise HookInputError(f"the hook input is not JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise HookInputError("the hook input is not a JSON object")
    return data


def respond(payload: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any] | None:
    """The hook's JSON answer for one PreToolUse payload, or None (no opinion)."""
    event = payload.get("hook_event_name", "PreToolUse")
    if event != "PreToolUse":
        raise HookInputError(f"`hoop hook claude-code` answers PreToolUse events, not {str(event)[:40]!r}")
    tool = payload.get("tool_name")
    if not isinstance(tool, str) or not tool:
        raise HookInputError("the hook input has no tool_name")
    if tool != "Bash":
        return None
    tool_input = payload.get("tool_input")
    command = tool_input.get("command") if isinstance(tool_input, dict) else None
    if not isinstance(command, str):
        raise HookInputError("the Bash tool input has no command")
    verdict = judge(command, environ)
    if verdict is None:
        return None
    decision, reason = verdict
    return {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": decision,
                                   "permissionDecisionReason": reason}}


def judge(command: str, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """("deny" | "ask", reason) for a Bash command line, or None when hoop has nothing to say."""
    if len(command) > MAX_COMMAND or len(command.split()) > MAX_WORDS:
        return "ask", (f"hoop: the command is too long to inspect ({len(command)} characters; hoop parses up "
                       f"to {MAX_COMMAND // 1024} KiB and {MAX_WORDS} words)")
    found = scan(command, _CacheDir(environ))
    asks = list(found.problems)
    denies: list[str] = []
    gateway = _gateway(environ)
    aws: list[Command] = []
    runners: list[str] = []
    for cmd in found.commands:
        changed = _sensitive([a.split("=", 1)[0] for a in cmd.assigns])
        if cmd.name in SETTERS:
            changed += _sensitive([w.split("=", 1)[0] for w in cmd.argv[1:] if not w.startswith("-")])
        if changed:
            asks.append(f"the command changes {', '.join(changed)}, which can take AWS calls around hoop")
        if cmd.computed:
            asks.append(f"`{_short(cmd.argv[0])}` is a command name computed at run time; hoop cannot tell what it runs")
        elif cmd.name == "aws":
            aws.append(cmd)
        elif _runner(cmd) and not gateway:
            runners.append(cmd.name)
    decide = _decider(environ) if aws else None
    for cmd in aws:
        _judge_aws(cmd, decide, gateway, denies, asks)
    if aws and not environ.get("HOOP_SESSION_ID"):
        asks.append("aws would run outside a hoop session (HOOP_SESSION_ID is not set); start Claude Code "
                    "with `hoop run --agent claude-code -- claude`")
    if runners:
        asks.append(f"the command runs {', '.join(sorted(set(runners)))}, which can call AWS through an SDK that "
                    "hoop does not see (no AWS_ENDPOINT_URL pointing at a hoop gateway here); run the agent under "
                    "`hoop run` on a connection with `credentials: gateway`")
    if denies:
        return "deny", "hoop: " + "; ".join(_unique(denies))
    if asks:
        return "ask", "hoop: " + "; ".join(_unique(asks))
    return None


def _judge_aws(cmd: Command, decide: Any, gateway: bool, denies: list[str], asks: list[str]) -> None:
    from hoopcli.errors import HoopError
    from hoopcli.parse.explain import explain

    argv = cmd.argv[1:]
    label = _short("aws " + " ".join(argv[:3]))
    if "/" in cmd.argv[0] and not gateway:
        from hoopcli.runner import is_shim

        if not is_shim(os.path.expanduser(cmd.argv[0])):
            asks.append(f"the command runs the AWS CLI at {_short(cmd.argv[0])} directly, not through hoop's shim")
    if cmd.via:
        asks.append(f"`{label}` gets more arguments from {cmd.via} at run time")
    try:
        result = explain(argv, decide)
    except (HoopError, ValueError) as exc:
        asks.append(f"`{label}` cannot be classified: {_short(getattr(exc, 'message', None) or str(exc), 160)}")
        return
    what = " ".join(x for x in ("aws", result.get("service"), result.get("operation")) if x)
    actions = ", ".join(result.get("actions") or []) or "no IAM action"
    rule = result.get("rule") or "default"
    why = f": {result['reason']}" if result.get("reason") else ""
    if result.get("decision") == "deny":
        denies.append(f"`{what}` ({actions}) is denied by policy rule {rule}{why}")
    elif result.get("decision") != "allow":
        asks.append(f"`{what}` ({actions}) needs a person's approval (policy rule {rule}{why})")


class _CacheDir:
    """Layout.from_env(environ).cache_dir, where bashlex's tables are kept, worked out when bashlex
    is first loaded (a plain line never loads it): no pathlib when HOOP_HOME is set, no
    platformdirs (~8 ms) for a plain line when it is not."""

    __slots__ = ("environ", "path")

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ, self.path = environ, ""

    def __fspath__(self) -> str:
        if not self.path:
            home = self.environ.get("HOOP_HOME")
            if home:
                self.path = os.path.join(os.path.expanduser(home), "cache")
            else:
                from hoopcli.paths import Layout

                self.path = str(Layout.from_env(self.environ).cache_dir)
        return self.path


def _decider(environ: Mapping[str, str]) -> Any:
    """The policy engine with the cached policy, deciding as the logged-in user (claims of the
    stored ID token, unverified and possibly expired: they only pick rules; no network)."""
    from hoopcli import config
    from hoopcli.identity.tokens import jwt_claims, session_file
    from hoopcli.parse.explain import make_decider
    from hoopcli.paths import Layout

    layout = Layout.from_env(environ)
    cfg = config.load(environ, layout)
    try:
        with open(session_file(layout), encoding="utf-8") as fh:
            stored = json.load(fh)
        claims = jwt_claims(str(stored.get("id_token") or "")) if isinstance(stored, dict) else {}
    except (OSError, ValueError):
        claims = {}
    groups = claims.get("groups")
    return make_decider(environ, user=claims.get("email") or claims.get("sub"),
                        groups=tuple(str(g) for g in groups) if isinstance(groups, list) else (),
                        agent=cfg.agent, connection=cfg.connection)


def _gateway(environ: Mapping[str, str]) -> bool:
    """SDKs in this environment reach AWS only through hoop's gateway, with a session credential."""
    url = environ.get("AWS_ENDPOINT_URL")
    return bool(url) and url == environ.get("HOOP_GATEWAY_URL") and \
        environ.get("AWS_ACCESS_KEY_ID", "").startswith("HOOP")


def _runner(cmd: Command) -> bool:
    name, args = cmd.name, cmd.argv[1:]
    if name in RUNNERS or name.startswith(("python", "pypy")) or cmd.argv[0].startswith(("./", "../")):
        return True
    if name in RUNNER_SUBCOMMANDS and args[:1] and args[0] in ("run", "exec", "x", "dlx", "tool"):
        return True
    if name in SHELLS and any(not a.startswith(("-", "+")) for a in args) and not any(
            a.startswith("-") and not a.startswith("--") and "c" in a for a in args):
        return True                                             # `bash deploy.sh`
    return any("boto3" in a or "aws-sdk" in a for a in args)


def _sensitive(names: list[str]) -> list[str]:
    """AWS credential, endpoint and config variables and hoop's own, among variable names."""
    found = sorted({n for n in names if n in SENSITIVE or n.startswith(("AWS_ENDPOINT_URL", "AWS_CONTAINER_"))
                    or (n.startswith("HOOP_") and n not in HOOP_SETTABLE)})
    return found + [f"the whole environment ({n[1:]})" for n in dict.fromkeys(names) if n.startswith("*")]


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _unique(items: list[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen[:MAX_REASONS] + ([f"and {len(seen) - MAX_REASONS} more"] if len(seen) > MAX_REASONS else [])
