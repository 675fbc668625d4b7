"""Glob patterns for policy rules, matched in linear time (no regex backtracking).

Only two wildcards exist: `*` (any run of characters, possibly empty, `:` and `/` included) and
`?` (exactly one character). A pattern is split at its stars into fixed-length segments; the
first segment is anchored at the start, the last at the end, and each middle segment is found
greedily left to right (leftmost match is always safe for star-separated fixed-length
segments). Each step is a `str.find`/`startswith` or a fixed-length regex with no quantifiers,
so there is no catastrophic backtracking whatever the pattern or the value.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

MAX_PATTERN_LENGTH = 512
MAX_WILDCARDS = 16

if TYPE_CHECKING:  # a runtime typing.Union costs a few hundred µs at import on the hot path
    _Segment = str | re.Pattern[str]


def check_pattern(pattern: str) -> str | None:
    """Why `pattern` is refused, or None. Used by the compiler (with line/column) and the cache."""
    if not isinstance(pattern, str):
        return "a pattern must be a string"
    if not pattern:
        return "an empty pattern never matches"
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"pattern longer than {MAX_PATTERN_LENGTH} characters"
    wild = pattern.count("*") + pattern.count("?")
    if wild > MAX_WILDCARDS:
        return f"pattern has {wild} wildcards (at most {MAX_WILDCARDS})"
    return None


def _segment(text: str) -> _Segment:
    if "?" not in text:
        return text
    return re.compile("".join("." if c == "?" else re.escape(c) for c in text), re.DOTALL)


class Glob:
    """A compiled glob. `Glob("s3:Delete*", fold=True).match("s3:DeleteObject")`."""

    __slots__ = ("_kind", "_lens", "_literal", "_minlen", "_segs", "fold", "pattern")

    def __init__(self, pattern: str, fold: bool = False) -> None:
        problem = check_pattern(pattern)
        if problem:
            raise ValueError(problem)
        self.pattern = pattern
        self.fold = fold
        p = pattern.lower() if fold else pattern
        # collapse runs of stars: "a**b" == "a*b"
        while "**" in p:
            p = p.replace("**", "*")
        self._literal = p
        self._segs: list[_Segment] = []
        self._lens: list[int] = []
        if p == "*":
            self._kind = "any"
        elif "*" not in p and "?" not in p:
            self._kind = "literal"
        elif "*" not in p:
            self._kind = "fixed"
            self._segs = [_segment(p)]
            self._lens = [len(p)]
        else:
            self._kind = "star"
            parts = p.split("*")
            self._segs = [_segment(x) for x in parts]
            self._lens = [len(x) for x in parts]
        self._minlen = sum(self._lens)

    def __repr__(self) -> str:
        return f"Glob({self.pattern!r})"

    @property
    def literal_prefix(self) -> str:
        """The characters before the first wildcard (folded when the glob folds case)."""
        p = self._literal
        for i, c in enumerate(p):
            if c in "*?":
                return p[:i]
        return p

    def match(self, value: str) -> bool:
        kind = self._kind
        if kind == "any":
            return True
        if self.fold:
            value = value.lower()
        if kind == "literal":
            return value == self._literal
        if len(value) < self._minlen:
            return False
        if kind == "fixed":
            return len(value) == self._lens[0] and _at(self._segs[0], value, 0)
        segs, lens = self._segs, self._lens
        end = len(value) - lens[-1]
        if not _at(segs[0], value, 0) or not _at(segs[-1], value, end):
            return False
        pos = lens[0]
        for i in range(1, len(segs) - 1):
            seg = segs[i]
            if isinstance(seg, str):
                found = value.find(seg, pos, end)
            else:
                m = seg.search(value, pos, end)
                found = m.start() if m else -1
            if found < 0:
                return False
            pos = found + lens[i]
        return pos <= end


def _at(seg: _Segment, value: str, pos: int) -> bool:
    if isinstance(seg, str):
        return value.startswith(seg, pos)
    return seg.match(value, pos) is not None


def any_match(globs: tuple[Glob, ...], value: str) -> bool:
    for g in globs:  # noqa: SIM110 - evaluation hot path: a loop is cheaper than any(<generator>)
        if g.match(value):
            return True
    return False
