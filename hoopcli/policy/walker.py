"""YAML nodes walked with their marks: typed accessors that record problems with line/column.

Used by the policy compiler; imports yaml, so never on the shim's hot path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from hoopcli.errors import ConfigError

MAX_NODES = 200_000
MAX_LIST = 1000
MAX_DURATION = 30 * 86400
_DURATION_RE = re.compile(r"^(\d{1,7})\s*(s|m|h|d)?$")
_UNITS = {None: 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Problem:
    severity: str       # "error" | "warning"
    line: int           # 1-based; 0 when unknown
    column: int         # 1-based
    message: str

    def format(self, filename: str = "<policy>") -> str:
        return f"{filename}:{self.line}:{self.column}: {self.severity}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "line": self.line, "column": self.column,
                "message": self.message}


class PolicyInvalid(ConfigError):
    """The policy file has errors; `problems` lists them all (warnings too)."""

    def __init__(self, problems: list[Problem], filename: str = "<policy>") -> None:
        errors = [p for p in problems if p.severity == "error"]
        first = errors[0].format(filename) if errors else "invalid policy"
        more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
        super().__init__(f"invalid policy: {first}{more}")
        self.problems = problems
        self.filename = filename


class Stop(Exception):
    pass


class Walker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.seen: set[int] = set()
        self.count = 0
        self.constructor = yaml.constructor.SafeConstructor()

    def err(self, node: Any, msg: str, severity: str = "error") -> None:
        mark = getattr(node, "start_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        self.problems.append(Problem(severity, line, col, msg))

    def warn(self, node: Any, msg: str) -> None:
        self.err(node, msg, "warning")

    def visit(self, node: Any) -> None:
        if id(node) in self.seen:
            self.err(node, "YAML anchors and aliases are not allowed in a policy")
            raise Stop
        self.seen.add(id(node))
        self.count += 1
        if self.count > MAX_NODES:
            self.err(node, f"policy has more than {MAX_NODES} YAML nodes")
            raise Stop

    # -- typed accessors ----------------------------------------------------------------------
    def mapping(self, node: Any, what: str, allowed: tuple[str, ...] | None) -> dict[str, tuple[Any, Any]] | None:
        self.visit(node)
        if not isinstance(node, yaml.MappingNode):
            self.err(node, f"{what} must be a mapping")
            return None
        out: dict[str, tuple[Any, Any]] = {}
        for knode, vnode in node.value:
            self.visit(knode)
            if not isinstance(knode, yaml.ScalarNode) or knode.tag != "tag:yaml.org,2002:str":
                self.err(knode, f"keys of {what} must be strings")
                continue
            key = knode.value
            if key in out:
                self.err(knode, f"duplicate key '{key}' in {what}")
                continue
            if allowed is not None and key not in allowed:
                self.err(knode, f"unknown key '{key}' in {what} (expected one of: {', '.join(allowed)})")
                continue
            out[key] = (knode, vnode)
        return out

    def scalar(self, node: Any, what: str) -> Any:
        self.visit(node)
        if not isinstance(node, yaml.ScalarNode):
            self.err(node, f"{what} must be a single value")
            return None
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.err(node, f"{what}: {exc}")
            return None

    def string(self, node: Any, what: str, max_len: int = 2000) -> str | None:
        value = self.scalar(node, what)
        if value is None and isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            self.err(node, f"{what} must not be empty")
            return None
        if not isinstance(value, str):
            if isinstance(value, bool):
                self.err(node, f"{what} must be a string (quote it: YAML reads a bare "
                               f"'{node.value}' as {str(value).lower()})")
            elif value is not None:
                self.err(node, f"{what} must be a string")
            return None
        if len(value) > max_len:
            self.err(node, f"{what} is longer than {max_len} characters")
            return None
        return value

    def choice(self, node: Any, what: str, options: tuple[str, ...]) -> str | None:
        value = self.scalar(node, what)
        if isinstance(value, str) and value in options:
            return value
        if value is not None or isinstance(node, yaml.ScalarNode):
            self.err(node, f"{what} must be one of: {', '.join(options)}")
        return None

    def duration(self, node: Any, what: str) -> int | None:
        value = self.scalar(node, what)
        seconds: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            seconds = value
        elif isinstance(value, str):
            m = _DURATION_RE.match(value.strip())
            if m:
                seconds = int(m.group(1)) * _UNITS[m.group(2)]
        if seconds is None or seconds < 0 or seconds > MAX_DURATION:
            self.err(node, f"{what} must be a duration like 90, 30s, 15m, 2h or 1d (at most 30d)")
            return None
        return seconds

    def str_list(self, node: Any, what: str, *, allow_scalars: bool = False) -> list[tuple[Any, str]] | None:
        """A string or a list of strings, as (node, value) pairs."""
        self.visit(node)
        items = [node] if isinstance(node, yaml.ScalarNode) else node.value if isinstance(node, yaml.SequenceNode) else None
        if items is None:
            self.err(node, f"{what} must be a string or a list of strings")
            return None
        if isinstance(node, yaml.ScalarNode):
            self.seen.discard(id(node))
        if len(items) > MAX_LIST:
            self.err(node, f"{what} has more than {MAX_LIST} entries")
            return None
        out = []
        for item in items:
            value = self.scalar(item, what)
            if allow_scalars and isinstance(value, bool):
                value = "true" if value else "false"
            elif allow_scalars and isinstance(value, (int, float)):
                value = str(value)
            if not isinstance(value, str):
                self.err(item, f"each entry of {what} must be a string")
                continue
            out.append((item, value))
        return out
