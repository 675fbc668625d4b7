"""What a shell command line would run, found with a real shell parser (bashlex): every simple
command in pipelines, lists, subshells, `$( )`, loops, functions and heredocs fed to a shell,
seen through wrappers (`VAR=x`, `env`, `sudo`, `command`, `xargs`, `find -exec`, ...) and, up to
a depth, through `bash -c` / `sh -c` / `eval` strings. `hoop hook claude-code` judges what it
finds; `hoop mcp` uses `single_command` to refuse anything but one plain command.

A plain line (words and simple quotes joined by `&&`, `||`, `|`, `;`, `&`, simple redirections;
most of what an agent runs) is read by `_plain` without bashlex, exactly as bashlex reads it
(tests/agents/test_hook_plain.py compares the two over generated lines); anything else goes to
bashlex, imported through `load_bashlex` (hoopcli.agents.bashlex_tables.load): its parser is built
once and cached under HOOP_HOME/cache.
"""

from __future__ import annotations

import itertools
import os
import re

from hoopcli.agents.bashlex_tables import load as load_bashlex

TYPE_CHECKING = False      # the hook's path imports neither typing nor pathlib (hoopcli.agents.hook_main)
if TYPE_CHECKING:
    from typing import Any

    from hoopcli.agents.bashlex_tables import CacheDir

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
# Compiled on first use (re caches them): most lines have no `$((`, `time` or `<<`.
_ARITH = r"\$\(\((?:[^()]|\([^()]*\))*\)\)"
_TIME = r"(^|[;&|(!]|\n|\bdo\b|\bthen\b)(\s*)time(\s+-p)?\s"
_QUOTED_HEREDOC = r"(?<!<)<<(-?)[ \t]*(?:'([^'\n]+)'|\"([^\"\n]+)\"|\\(\w+))"
_PLAIN_HEREDOC = r"(?<!<)<<-?[ \t]*([A-Za-z_][\w]*)"


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
    literal: set[str] = set()
    if "<<" in text:
        quoted = {m.group(2) or m.group(3) or m.group(4) for m in re.finditer(_QUOTED_HEREDOC, text)}
        plain = {m.group(1) for m in re.finditer(_PLAIN_HEREDOC, re.sub(_QUOTED_HEREDOC, "", text))}
        text = re.sub(_QUOTED_HEREDOC, lambda m: f"<<{m.group(1)}{m.group(2) or m.group(3) or m.group(4)}", text)
        literal = quoted - plain                       # a name also used unquoted expands
    if "$((" in text:
        text = re.sub(_ARITH, "0", text)
    if "time" in text:
        text = re.sub(_TIME, r"\1\2", text)
    return text, literal


def scan(text: str, cache_dir: CacheDir | None = None, depth: int = 0, out: Scan | None = None) -> Scan:
    """Every command `text` would run. A line bashlex cannot parse is a problem, never a crash."""
    out = out if out is not None else Scan()
    if depth > MAX_DEPTH:
        out.problems.append(f"commands nested deeper than {MAX_DEPTH} levels of `sh -c`/`eval`")
        return out
    source, literal = prepare(text)
    plain = _plain(text) if source == text else None
    if plain is not None:                        # no parser needed: bashlex is not even imported
        for argv, computed, assigns in plain:
            if argv:                             # `A=1` alone runs nothing
                _simple(argv, computed, assigns, [], out, cache_dir, depth, set())
        return out
    bashlex = load_bashlex(cache_dir)
    try:
        trees = bashlex.parse(source)
    except Exception as exc:     # bashlex raises ParsingError, NotImplementedError, AssertionError...
        detail = " ".join(str(exc).split())[:200]
        out.problems.append(f"the command cannot be parsed as shell ({type(exc).__name__}: {detail})")
        return out
    for tree in trees:
        _walk(tree, out, cache_dir, depth, literal)
    return out


def _walk(node: Any, out: Scan, cache_dir: CacheDir | None, depth: int, literal: set[str]) -> None:
    kind = getattr(node, "kind", None)
    if kind == "command":
        _command(node, out, cache_dir, depth, literal)
    for value in vars(node).values():
        for child in value if isinstance(value, list) else [value]:
            if hasattr(child, "kind") and child is not node:
                _walk(child, out, cache_dir, depth, literal)


def _glob(word: str) -> bool:
    return any(c in word for c in "*?[{")


def _computed(word: Any) -> bool:
    return bool(getattr(word, "parts", None)) or _glob(word.word)


def _command(node: Any, out: Scan, cache_dir: CacheDir | None, depth: int, literal: set[str]) -> None:
    words = [p for p in node.parts if p.kind == "word"]
    assigns = tuple(p.word for p in node.parts if p.kind == "assignment")
    heredocs = [p for p in node.parts if p.kind == "redirect" and getattr(p, "heredoc", None) is not None]
    for redirect in heredocs:
        body = redirect.heredoc.value.rsplit("\n", 1)[0] if "\n" in redirect.heredoc.value else ""
        quoted = getattr(redirect.output, "word", None) in literal
        if not quoted and ("$(" in body or "`" in body):
            out.problems.append("a heredoc in the command runs $(...) or `...`")
        out.heredocs.append(body)
    if words:
        _simple([w.word for w in words], [_computed(w) for w in words], assigns, heredocs, out, cache_dir, depth,
                literal)


def _simple(argv: list[str], computed_words: list[bool], assigns: tuple[str, ...], heredocs: list[Any], out: Scan,
            cache_dir: CacheDir | None, depth: int, literal: set[str]) -> None:
    """One simple command's words (and which are computed at run time), seen through wrappers."""
    via, computed = "", computed_words[0]
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
            i, computed = j, j < len(argv) and computed_words[j]
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
                out.commands.append(Command(argv[k + 1:end], computed_words[i + k + 1]))


_BLANK = " \t"
_PLAIN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_./:,=@%+^*?~")
_SQ_CHARS = frozenset(chr(c) for c in range(0x20, 0x7f)) - {"'"} | {"\t"}
_DQ_CHARS = _SQ_CHARS - set('"$`\\!') | {"'"}
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_OPERATORS = frozenset({"&&", "||", "|", ";", "&"})
_RESERVED = frozenset({"case", "coproc", "do", "done", "elif", "else", "esac", "fi", "for", "function", "if", "in",
                       "select", "then", "time", "until", "while"})


def _plain(text: str) -> list[tuple[list[str], list[bool], tuple[str, ...]]] | None:
    """(argv, which words are computed at run time, assignments) of each simple command of a plain
    line, in order, exactly as bashlex reads it; None for anything else, which bashlex then parses.
    Plain: ASCII words of letters, digits and `-_./:,=@%+^`, globs `*?` and a leading `~`; quotes
    with no expansion inside ('...', "..." without $ ` \\ !);
    `&&`, `||`, `|`, `;`, `&` between commands; `>`, `>>`, `<` to a word and `N>&M` after a
    command's first word; `VAR=x` before it. No reserved word, no newline. tests/agents/
    test_hook_plain.py checks this against bashlex over generated lines."""
    commands: list[tuple[list[str], list[bool], tuple[str, ...]]] = []
    argv: list[str] = []
    computed: list[bool] = []
    assigns: list[str] = []
    n, i, op = len(text), 0, ""
    while True:
        while i < n and text[i] in _BLANK:
            i += 1
        if i >= n:
            break
        c = text[i]
        if c in "|&;":
            j = i
            while j < n and text[j] in "|&;":
                j += 1
            op = text[i:j]
            if op not in _OPERATORS or not (argv or assigns) or (j < n and text[j] in "<>"):
                return None
            commands.append((argv, computed, tuple(assigns)))
            argv, computed, assigns, i = [], [], [], j
            continue
        if c in "<>":
            if not argv:                         # bashlex reads `>f A=1 cmd` differently from bash
                return None
            i = _redirect(text, i, n)
            if i < 0:
                return None
            continue
        word = _word(text, i, n)
        if word is None:
            return None
        value, raw, i = word
        if i < n and text[i] in "<>" and raw.isdigit():
            continue                             # `2>&1`: the descriptor, not a word
        if value in _RESERVED:
            return None
        name, eq, _rest = raw.partition("=")
        name = name[:-1] if name.endswith("+") else name
        if not argv and eq and name and not name[0].isdigit() and all(ch in _NAME_CHARS for ch in name):
            assigns.append(value)
        elif raw.startswith("~") and ("'" in raw or '"' in raw):
            return None
        else:
            argv.append(value)
            computed.append(raw.startswith("~") or _glob(value))     # `~/bin/aws`: bashlex sees a tilde
        op = ""
    if argv or assigns:
        commands.append((argv, computed, tuple(assigns)))
    elif op not in (";", "&"):
        return None                              # empty, or ends with `&&`, `||`, `|`
    return commands


def _word(text: str, i: int, n: int) -> tuple[str, str, int] | None:
    """(value without quotes, raw text, end) of the word at `i`; None for what `_plain` leaves to bashlex."""
    start, parts, quoted = i, [], None
    while i < n:
        c = text[i]
        if c in _PLAIN_CHARS:
            j = i + 1
            while j < n and text[j] in _PLAIN_CHARS:
                j += 1
            parts.append(text[i:j])
            i = j
        elif c in "'\"":
            j = text.find(c, i + 1)
            allowed = _SQ_CHARS if c == "'" else _DQ_CHARS
            if j < 0 or any(ch not in allowed for ch in text[i + 1:j]):
                return None
            if quoted is not None:
                return None
            parts.append(text[i + 1:j])
            quoted = parts[-1]
            i = j + 1
        elif c in _BLANK or c in "|&;<>":
            break
        else:
            return None
    if i == start or (len(parts) > 1 and quoted and any(ch in quoted for ch in "'\"$`\\")):
        return None      # bashlex 0.18 misreads `'a''b'`, `"a"'b'`, `x'a"b'` and `x'$a'`
    return "".join(parts), text[start:i], i


def _redirect(text: str, i: int, n: int) -> int:
    """The end of a `>`, `>>`, `<` redirection to a word or a `>&N` / `>&-` at `i`; -1 otherwise."""
    j = i + 1
    if text[i] == ">" and j < n and text[j] == ">":
        j += 1
    if j < n and text[j] == "&" and j == i + 1 and text[i] == ">":
        k = j + 1
        while k < n and text[k].isdigit():
            k += 1
        if k == j + 1 and k < n and text[k] == "-":
            k += 1
        return k if k > j + 1 and (k == n or text[k] in _BLANK or text[k] in "|&;") else -1
    if j < n and text[j] in "<>|&(":
        return -1
    while j < n and text[j] in _BLANK:
        j += 1
    target = _word(text, j, n) if j < n else None
    if target is None or (target[2] < n and text[target[2]] in "<>" and target[1].isdigit()):
        return -1                                # `<2<f`: bash and bashlex read a descriptor there
    return target[2]


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


def _reenter(name: str, argv: list[str], out: Scan, cache_dir: CacheDir | None, depth: int,
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


def single_command(text: str, cache_dir: CacheDir | None = None) -> list[str]:
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
