"""Sensitive member paths per operation: generated data + kept list + policy extras.

Path syntax: members joined by "."; `[]` after a member (or after `*`) for list elements; `*` for
every value of a map; an optional sibling condition `?Member=Value` on the path (mask only when the
dict holding the last member has Member == Value). Stdlib-only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from hoopcli.errors import ConfigError

DATA_DIR = Path(__file__).resolve().parent / "data"


class CompiledPath:
    """One masking path: steps are member names, "*" (map values) or "[]" (list elements); when
    is a sibling condition on the last member. (A plain class: imported on every `aws` call.)"""

    __slots__ = ("steps", "when", "text")

    def __init__(self, steps: tuple[str, ...], when: tuple[str, str] | None, text: str) -> None:
        self.steps = steps
        self.when = when
        self.text = text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompiledPath):
            return NotImplemented
        return (self.steps, self.when, self.text) == (other.steps, other.when, other.text)

    def __hash__(self) -> int:
        return hash((self.steps, self.when, self.text))

    def __repr__(self) -> str:
        return f"CompiledPath({self.text!r})"


def compile_path(path: str) -> CompiledPath:
    """Parse one path; raises ConfigError on malformed input (policy text is untrusted)."""
    if not isinstance(path, str) or not path or len(path) > 1000:
        raise ConfigError(f"bad masking path: {path!r}")
    when = None
    body = path
    if "?" in path:
        body, cond = path.split("?", 1)
        if "=" not in cond:
            raise ConfigError(f"bad masking path condition: {path!r}")
        key, value = cond.split("=", 1)
        if not key:
            raise ConfigError(f"bad masking path condition: {path!r}")
        when = (key, value)
    steps: list[str] = []
    for segment in body.split("."):
        name = segment
        lists = 0
        while name.endswith("[]"):
            name, lists = name[:-2], lists + 1
        if not name and not steps and lists:
            raise ConfigError(f"bad masking path: {path!r}")
        if not name or "[" in name or "]" in name:
            raise ConfigError(f"bad masking path: {path!r}")
        steps.append(name)
        steps.extend(["[]"] * lists)
    return CompiledPath(tuple(steps), when, path)


@lru_cache(maxsize=64)
def _service_data(service: str) -> Mapping[str, Mapping[str, list[str]]]:
    """The generated file for one service ({} when it has none). Loaded on first use."""
    if not service or "/" in service or "\\" in service or service.startswith((".", "_")):
        return {}
    try:
        return json.loads((DATA_DIR / f"{service}.json").read_text())
    except (OSError, ValueError):
        return {}


@lru_cache(maxsize=1)
def _kept_index() -> dict[tuple[str, str, str], tuple[str, ...]]:
    from hoopcli.masking.kept import KEPT

    index: dict[tuple[str, str, str], tuple[str, ...]] = {}
    for service, operation, io, paths, _why in KEPT:
        index[(service, operation, io)] = index.get((service, operation, io), ()) + tuple(paths)
    return index


def paths_for(
    service: str,
    operation: str,
    io: str,
    *,
    pii: bool = False,
    extra: Mapping[tuple[str, str, str], tuple[CompiledPath, ...]] | None = None,
) -> tuple[CompiledPath, ...]:
    """Compiled paths for (service, operation), io "o" (response) or "i" (parameters)."""
    return _paths_cached(service, operation, io, pii) + tuple(
        (extra or {}).get((service, operation, io), ())
    )


@lru_cache(maxsize=512)
def _paths_cached(service: str, operation: str, io: str, pii: bool) -> tuple[CompiledPath, ...]:
    entry = _service_data(service).get(operation, {})
    texts: list[str] = list(entry.get(io, ()))
    if pii:
        texts.extend(entry.get("p" + io, ()))
    texts.extend(_kept_index().get((service, operation, io), ()))
    seen: dict[str, CompiledPath] = {}
    for text in texts:
        if text not in seen:
            seen[text] = compile_path(text)
    return tuple(seen.values())


def apply_path(obj: Any, path: CompiledPath, mask: Callable[[Any], Any]) -> None:
    """Replace every value `path` reaches in `obj` (in place) by mask(value)."""
    _apply(obj, path.steps, 0, path.when, mask)


def _apply(obj: Any, steps: tuple[str, ...], i: int, when: tuple[str, str] | None,
           mask: Callable[[Any], Any]) -> None:
    step = steps[i]
    last = i == len(steps) - 1
    if step == "[]":
        if not isinstance(obj, list):
            return
        for j, item in enumerate(obj):
            if last:
                obj[j] = mask(item)
            else:
                _apply(item, steps, i + 1, when, mask)
        return
    if not isinstance(obj, dict):
        return
    keys: Iterable[Any] = list(obj.keys()) if step == "*" else ((step,) if step in obj else ())
    for key in keys:
        if last:
            if when is not None and str(obj.get(when[0])) != when[1]:
                continue
            obj[key] = mask(obj[key])
        else:
            _apply(obj[key], steps, i + 1, when, mask)


def compile_extra(extra: Iterable[Mapping[str, Any]] | None) -> dict[tuple[str, str, str], tuple[CompiledPath, ...]]:
    """Policy-supplied paths: [{service, operation, paths, params?}] -> index. Bad entries raise
    ConfigError naming the problem."""
    index: dict[tuple[str, str, str], tuple[CompiledPath, ...]] = {}
    for entry in extra or ():
        if not isinstance(entry, Mapping):
            raise ConfigError(f"masking entry must be a mapping: {entry!r}")
        service, operation = entry.get("service"), entry.get("operation")
        if not isinstance(service, str) or not isinstance(operation, str):
            raise ConfigError("masking entry needs string 'service' and 'operation'")
        for io, key in (("o", "paths"), ("i", "params")):
            raw = entry.get(key, ())
            if isinstance(raw, str) or not isinstance(raw, (list, tuple)):
                raise ConfigError(f"masking entry '{key}' must be a list of paths")
            compiled = tuple(compile_path(p) for p in raw)
            if compiled:
                index[(service, operation, io)] = index.get((service, operation, io), ()) + compiled
    return index
