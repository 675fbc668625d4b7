"""What a shell command line would run, found with a real shell parser (bashlex): every simple
command in pipelines, lists, subshells, `$( )`, loops, functions and heredocs fed to a shell,
seen through wrappers (`VAR=x`, `env`, `sudo`, `command`, `xargs`, `find -exec`, ...) and, up to
a depth, through `bash -c` / `sh -c` / `eval` strings. `hoop hook claude-code` judges what it
finds; `hoop mcp` uses `single_command` to refuse anything but one plain command.

bashlex is imported through `load_bashlex` (hoopcli.agents.bashlex_tables.load): its parser
is built once and cached under HOOP_HOME/cache.
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path
from typing import Any

from hoopcli.agents.bashlex_tables import load as load_bashlex

MAX_DEPTH = 4

SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "ash", "mksh", "fish"})
# program -> options that take a value; the first other word is the wrapped command
WRAPPERS: dict[str, frozenset[str]] = {
    "sudo": frozenset({"-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-U", "-T", "--user", "--group",
                       "--host", "--prompt"}),
    "doas": frozenset({"-u", "-C"}), "command": frozenset(), "builtin": frozenset(), "exec": frozenset({"-a"}),
    "nohup": frozenset(), "nice": frozenset({"-n", "--adjustment"}), "ionice": frozenset({"-c", "-n", "-p"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}), "time": frozenset({"-f", "-o"}), "chronic": frozenset(),
    "unbuffer": frozenset(), "setsid": frozenset(), "caffeinate": frozenset(),
    "timeout": frozenset({"-s", "-k", "--signal", "--kill-after"}),
    "xargs": frozenset({"-I", "-i", "-n", "-P", "-d", "-E", "-L", "-s", "-a", "--max-args", "--max-procs",
                        "--delimiter", "--arg-file"}),
    "env": frozenset({"-u", "--unset", "-C", "--chdir"}),
}
_ARITH = re.compile(r"\$\(\((?:[^()]|\([^()]*\))*\)\)")
_TIME = re.compile(r"(^|[;&|(!]|\n|\bdo\b|\bthen\b)(\s*)time(\s+-p)?\s")
_QUOTED_HEREDOC = re.compile(r"(?<!<)<<(-?)[ \t]*(?:'([^'\n]+)'|\"([^\"\n]+)\"|\\(\w+))")
_PLAIN_HEREDOC = re.compile(r"(?<!<)<<-?[ \t]*([A-Za-z_][\w]*)")


class Command:
    """One simple command: its words after wrappers (argv[0] is the program as written)."""

    __slots__ = ("argv", "computed", "via", "assigns")

    def __init__(self, argv: list[str], computed: bool, via: str = "", assigns: tuple[str, ...] = ()) -> None:
        self.argv = argv
        self.computed = computed      # the program name is only known at run time ($X, $(..), globs)
        self.via = via                # "xargs": more arguments come at run time
        self.assigns = assigns        # VAR=x prefixes, `env VAR=x`, `env -u VAR` (VAR=); *env -i, *sudo

    @property
    def name(self) -> str:
        return self.argv[0].rsplit("/", 1)[-1] if self.argv else ""


class Scan:
    """Everything a command line runs, and what hoop could not see through."""

    __slots__ = ("commands", "problems", "heredocs")

    def __init__(self) -> None:
        self.commands: list[Command] = []
        self.problems: list[str] = []
        self.heredocs: list[str] = []


def prepare(text: str) -> tuple[str, set[str]]:
    """Rewrite what bashlex 0.18 cannot parse but bash runs the same way: quoted heredoc
    delimiters (their bodies are literal: returned), `$((...))` and the `time` keyword."""
    quoted = {m.group(2) or m.group(3) or m.group(4) for m in _QUOTED_HEREDOC.finditer(text)}
    plain = {m.group(1) for m in _PLAIN_HEREDOC.finditer(_QUOTED_HEREDOC.sub("", text))}
    text = _QUOTED_HEREDOC.sub(lambda m: f"<<{m.group(1)}{m.group(2) or m.group(3) or m.group(4)}", text)
    return _TIME.sub(r"\1\2", _ARITH.sub("0", text)), quoted - plain   # a name also used unquoted expands


def scan(text: str, cache_dir: Path | None = None, depth: int = 0, out: Scan | None = None) -> Scan:
    """Every command `text` would run. A line bashlex cannot parse is a problem, never a crash."""
    out = out if out is not None else Scan()
    if depth > MAX_DEPTH:
        out.problems.append(f"commands nested deeper than {MAX_DEPTH} levels of `sh -c`/`eval`")
        return out
    bashlex = load_bashlex(cache_dir)
    source, literal = prepare(text)
    try:
        trees = bashlex.parse(source)
    except Exception as exc:     # bashlex raises ParsingError, NotImplementedError, AssertionError...
        detail = " ".join(str(exc).split())[:200]
        out.problems.append(f"the command cannot be parsed as shell ({type(exc).__name__}: {detail})")
        return out
    for tree in trees:
        _walk(tree, out, cache_dir, depth, literal)
    return out


def _walk(node: Any, out: Scan, cache_dir: Path | None, depth: int, literal: set[str]) -> None:
    kind = getattr(node, "kind", None)
    if kind == "command":
        _command(node, out, cache_dir, depth, literal)
    for value in vars(node).values():
        for child in value if isinstance(value, list) else [value]:
            if hasattr(child, "kind") and child is not node:
                _walk(child, out, cache_dir, depth, literal)


def _computed(word: Any) -> bool:
    return bool(getattr(word, "parts", None)) or any(c in word.word for c in "*?[{")


def _command(node: Any, out: Scan, cache_dir: Path | None, depth: int, literal: set[str]) -> None:
    words = [p for p in node.parts if p.kind == "word"]
    assigns = tuple(p.word for p in node.parts if p.kind == "assignment")
    heredocs = [p for p in node.parts if p.kind == "redirect" and getattr(p, "heredoc", None) is not None]
    for redirect in heredocs:
        body = redirect.heredoc.value.rsplit("\n", 1)[0] if "\n" in redirect.heredoc.value else ""
        quoted = getattr(redirect.output, "word", None) in literal
        if not quoted and ("$(" in body or "`" in body):
            out.problems.append("a heredoc in the command runs $(...) or `...`")
        out.heredocs.append(body)
    if not words:
        return
    argv, via, computed = [w.word for w in words], "", _computed(words[0])
    i = 0
    while i < len(argv) and not computed:
        name = argv[i].rsplit("/", 1)[-1]
        if name in WRAPPERS:
            j = _skip_options(argv, i + 1, WRAPPERS[name], env=(name == "env"))
            if name == "env":
                opts = argv[i + 1:j]
                assigns += tuple(a for a in opts if "=" in a and not a.startswith("-"))
                assigns += tuple(b + "=" for a, b in itertools.pairwise(opts) if a in ("-u", "--unset"))
                if "-i" in opts or "--ignore-environment" in opts:
                    assigns += ("*env -i",)
            if name in ("sudo", "doas"):
                assigns += (f"*{name}",)          # a fresh environment and PATH, another user's files
            if name == "timeout" and j < len(argv):
                j += 1
            if name == "command" and any(a in ("-v", "-V") for a in argv[i + 1:j]):
                return
            via = "xargs" if name == "xargs" else via
            i, computed = j, j < len(words) and _computed(words[j])
            continue
        break
    argv = argv[i:]
    if not argv:
        return
    out.commands.append(Command(argv, computed, via, assigns))
    name = argv[0].rsplit("/", 1)[-1]
    if name in SHELLS or name in ("eval", "su", "watch"):
        _reenter(name, argv, out, cache_dir, depth, heredocs, literal)
    if name == "find":
        for k, arg in enumerate(argv):
            if arg in ("-exec", "-execdir", "-ok", "-okdir") and k + 1 < len(argv):
                end = next((m for m in range(k + 1, len(argv)) if argv[m] in (";", "+")), len(argv))
                out.commands.append(Command(argv[k + 1:end], _computed(words[i + k + 1])))


def _skip_options(argv: list[str], i: int, with_value: frozenset[str], env: bool = False) -> int:
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return i + 1
        if env and "=" in arg and not arg.startswith("-"):
            i += 1
        elif arg.startswith("-") and arg != "-":
            i += 2 if arg in with_value else 1
        else:
            break
    return i


def _reenter(name: str, argv: list[str], out: Scan, cache_dir: Path | None, depth: int,
             heredocs: list[Any], literal: set[str]) -> None:
    """`bash -c STRING`, `eval WORDS`, `su -c STRING`, `watch CMD`, `bash <<EOF`: parse again."""
    if name in ("eval", "watch"):
        rest = _skip_options(argv, 1, frozenset({"-n", "--interval", "-d"})) if name == "watch" else 1
        scan(" ".join(argv[rest:]), cache_dir, depth + 1, out)
        return
    k = 1
    while k < len(argv):
        arg = argv[k]
        if arg == "-c" or (arg.startswith("-") and not arg.startswith("--") and "c" in arg[1:]):
            if k + 1 < len(argv):
                scan(argv[k + 1], cache_dir, depth + 1, out)
            return
        if not arg.startswith(("-", "+")) and name != "su":
            return                                     # `bash script.sh`: a script, judged by its caller
        k += 2 if arg in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file") else 1
    if name != "su":
        for redirect in heredocs:
            scan(redirect.heredoc.value.rsplit("\n", 1)[0], cache_dir, depth + 1, out)
        if not heredocs:
            out.problems.append(f"`{name}` reads commands from its input, which hoop cannot see")


def single_command(text: str, cache_dir: Path | None = None) -> list[str]:
    """The argv of one plain command (no operators, redirections, expansions or assignments),
    split as the shell would (shlex rules); ValueError otherwise."""
    from hoopcli.parse.explain import shell_split

    bashlex = load_bashlex(cache_dir)
    try:
        trees = bashlex.parse(text)
    except Exception as exc:
        raise ValueError(f"cannot read the command: {' '.join(str(exc).split())[:200]}") from exc
    node = trees[0] if len(trees) == 1 else None
    if node is None or node.kind != "command" or any(p.kind != "word" for p in node.parts):
        raise ValueError("give one aws command: pipes, `;`, `&&`, redirections and VAR= prefixes are "
                         "not run (there is no shell)")
    if any(p.kind != "tilde" for w in node.parts for p in getattr(w, "parts", None) or ()):
        raise ValueError("$VARIABLES, $(...) and `...` are not expanded (there is no shell); write the values")
    argv = shell_split(text)
    if len(argv) != len(node.parts):
        raise ValueError("the command's words are ambiguous (a comment, or unusual quoting); quote each argument once")
    # `~/file` is expanded as a shell would (an unquoted leading tilde), nothing else
    return [os.path.expanduser(a) if getattr(w, "parts", None) else a for a, w in zip(argv, node.parts, strict=True)]
