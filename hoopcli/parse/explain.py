"""What `hoop explain` computes: parse + decide for one command line or a stream of them.

The decision comes from the policy engine (``hoopcli.policy``): the locally cached server policy,
else the shipped default. There is no other stand-in.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any

from hoopcli.errors import HoopError
from hoopcli.parse import parse
from hoopcli.parse.invocation import Invocation

Decide = Callable[[Invocation], dict[str, Any]]


def make_decider(env: Any = None, *, user: str | None = None, groups: tuple[str, ...] = (),
                 agent: str | None = None, connection: str | None = None) -> Decide:
    """The policy engine's decision with the locally cached server policy, else the shipped
    default (no network). `user`, `groups`, `agent`, `connection` say who would run the commands
    (rules may match them); region and endpoint come from each command line."""
    from hoopcli.paths import Layout
    from hoopcli.policy import Context, load_cached

    policy = load_cached(Layout.from_env(env))

    def decide(inv: Invocation) -> dict[str, Any]:
        d = policy.evaluate(inv, Context(user=user, groups=groups, agent=agent,
                                          connection=connection, region=inv.globals.region,
                                          endpoint_url=inv.globals.endpoint_url))
        return {"decision": d.effect, "rule": d.rule, "reason": d.reason}

    return decide


_PIECE = re.compile(r"""(?P<ws>[ \t\r\n]+)|(?P<plain>[^ \t\r\n'"\\]+)|'(?P<sq>[^']*)'|"(?P<dq>(?:[^"\\]|\\.)*)"|\\(?P<esc>.)""",
                    re.DOTALL)
_DQ_ESCAPE = re.compile(r'\\(["\\])')


def shell_split(text: str) -> list[str]:
    """shlex.split(text) (POSIX rules, no comments), several times faster; shlex itself for
    anything this does not cover (it then raises ValueError for unbalanced quotes)."""
    words: list[str] = []
    cur: str | None = None
    pos = 0
    for m in _PIECE.finditer(text):
        if m.start() != pos:
            return shlex.split(text)
        pos = m.end()
        kind = m.lastgroup or "ws"
        if kind == "ws":
            if cur is not None:
                words.append(cur)
                cur = None
            continue
        piece = m.group(kind) if kind != "dq" else _DQ_ESCAPE.sub(r"\1", m.group("dq"))
        cur = piece if cur is None else cur + piece
    if pos != len(text):
        return shlex.split(text)
    if cur is not None:
        words.append(cur)
    return words


def split_line(line: str) -> list[str] | None:
    """One stdin line -> argv after `aws`; None for blank and comment lines."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    words = shell_split(text)
    if words and words[0] == "aws":
        words = words[1:]
    return words


def explain(argv: Sequence[str], decide: Decide) -> dict[str, Any]:
    """The JSON object for one command line (raises InvocationError when it cannot be parsed)."""
    inv = parse(list(argv))
    out = inv.to_dict()
    out["may_need"] = may_need(inv)
    out.update(decide(inv))
    return out


def may_need(inv: Invocation) -> list[dict[str, Any]]:
    """The Service Authorization Reference's other dependent actions of each call: needed on
    real AWS only with some parameters (a capacity provider, an SSM parameter as image id...);
    shown, never granted. [{"for": API operation, "actions": [...]}]."""
    from hoopcli.parse.dependent import sar_dependents

    derived = {(c.dependent_of, a) for c in inv.api_calls if c.dependent_of for a in c.actions}
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for call in inv.api_calls:
        if call.dependent_of is not None or call.operation in seen:
            continue
        seen.add(call.operation)
        rest = [a for a in sar_dependents(call.actions) if (call.operation, a) not in derived]
        if rest:
            out.append({"for": call.operation, "actions": rest})
    return out


def explain_lines(lines: Iterable[str], decide: Decide) -> Iterator[dict[str, Any]]:
    """One object per non-blank, non-comment line, in order; a bad line gives {"error": ...}."""
    for number, line in enumerate(lines, 1):
        try:
            argv = split_line(line)
            if argv is None:
                continue
            yield explain(argv, decide)
        except HoopError as exc:
            yield {"error": exc.message, "line": number}
        except ValueError as exc:  # shlex: unbalanced quotes, ...
            yield {"error": f"cannot split the line: {exc}", "line": number}
        except Exception as exc:  # a batch never dies on one line
            yield {"error": f"internal error: {type(exc).__name__}: {exc}", "line": number}


def write_jsonl(objects: Iterable[dict[str, Any]], out: IO[str]) -> int:
    count = 0
    for obj in objects:
        out.write(json.dumps(obj, sort_keys=False) + "\n")
        count += 1
    out.flush()
    return count
