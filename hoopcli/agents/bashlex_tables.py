"""`import bashlex`, fast: the hook runs before every Bash command Claude Code runs.

bashlex 0.18 builds its LALR parser each time it is imported: the tables (150-300 ms) and
the grammar checks of its bundled yacc (~10 ms, plus ~13 ms to import `inspect` for them).
`load` builds the parser once and keeps what it needs (the action and goto tables, and each
production's name, length and function name) in `cache_dir`, keyed by the size and mtime of
bashlex's grammar sources and the Python version; later imports construct the parser from that
file. The file is marshal data behind a CRC-32, in the user's 0700 HOOP_HOME: a torn or foreign
file is rebuilt, never used. bashlex's yacc module gets a stand-in for `inspect` that imports
the real one on first use (only the grammar checks skipped here use it).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False      # the hook's path imports neither typing nor pathlib (hoopcli.agents.hook_main)
if TYPE_CHECKING:
    from typing import Any, TypeAlias

    CacheDir: TypeAlias = "str | os.PathLike[str]"


class _Production:
    """What bashlex's LRParser reads of a production."""

    __slots__ = ("name", "len", "func", "callable")

    def __init__(self, name: str, length: int, func: str | None, fn: Any) -> None:
        self.name, self.len, self.func, self.callable = name, length, func, fn


class _Tables:
    __slots__ = ("lr_action", "lr_goto", "lr_productions")

    def __init__(self, action: Any, goto: Any, productions: list[_Production]) -> None:
        self.lr_action, self.lr_goto, self.lr_productions = action, goto, productions


def load(cache_dir: CacheDir | None = None) -> Any:
    """The bashlex package, its parser built from `cache_dir` when the tables are there."""
    if "bashlex.parser" in sys.modules or cache_dir is None:
        import bashlex

        return bashlex
    import importlib.util

    spec = importlib.util.find_spec("bashlex")
    if spec is None or spec.loader is None or not spec.submodule_search_locations:
        raise ImportError("bashlex is not installed")
    folder = next(iter(spec.submodule_search_locations))
    stats = [os.stat(os.path.join(folder, n)) for n in ("yacc.py", "parser.py")]   # the grammar's sources
    key = "-".join(f"{s.st_size:x}.{s.st_mtime_ns:x}" for s in stats)
    path = os.path.join(cache_dir, f"bashlex-{key}-py{sys.version_info[0]}{sys.version_info[1]}.tables")
    stub = None if "inspect" in sys.modules else _deferred("inspect")
    package = importlib.util.module_from_spec(spec)
    sys.modules["bashlex"] = package        # its submodules load without running __init__ yet
    try:
        try:
            from bashlex import yacc
        finally:
            if stub is not None and sys.modules.get("inspect") is stub:
                del sys.modules["inspect"]    # the next `import inspect` anywhere is the real one

        build = yacc.yacc

        def cached_yacc(*args: Any, **kwargs: Any) -> Any:
            module = sys.modules["bashlex.parser"]          # being imported: its p_* are defined
            try:
                action, goto, productions = _read(path)
                return yacc.LRParser(_Tables(action, goto, [
                    _Production(n, length, f, getattr(module, f) if f else None) for n, length, f in productions]),
                    module.p_error)
            except (OSError, ValueError, EOFError, TypeError, AttributeError):
                pass
            parser = build(*args, module=module, **kwargs)
            _store(path, {k: dict(v) for k, v in parser.action.items()}, {k: dict(v) for k, v in parser.goto.items()},
                   [(p.name, p.len, p.func) for p in parser.productions])
            return parser

        yacc.yacc = cached_yacc
        try:
            spec.loader.exec_module(package)
        finally:
            yacc.yacc = build
    except BaseException:
        for name in [n for n in sys.modules if n == "bashlex" or n.startswith("bashlex.")]:
            del sys.modules[name]
        raise
    return package


def _deferred(name: str) -> Any:
    """A stand-in for module `name` that imports the real one on first attribute access. (An
    importlib LazyLoader module does not do here: on 3.11 `import` itself reads `__spec__`, which
    loads it.)"""
    import importlib
    import types

    stub = types.ModuleType(name)

    def __getattr__(attr: str) -> Any:
        if sys.modules.get(name) is stub:
            del sys.modules[name]
        return getattr(importlib.import_module(name), attr)

    stub.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[name] = stub
    return stub


def _read(path: str) -> tuple[dict[int, Any], dict[int, Any], list[tuple[str, int, str | None]]]:
    import marshal
    import zlib

    with open(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 8 or zlib.crc32(raw[4:]) != int.from_bytes(raw[:4], "big"):
        raise ValueError("not bashlex tables")
    action, goto, productions = marshal.loads(raw[4:])
    if not (isinstance(action, dict) and isinstance(goto, dict) and isinstance(productions, list)):
        raise ValueError("not bashlex tables")
    return action, goto, productions


def _store(path: str, action: dict[int, Any], goto: dict[int, Any], productions: list[Any]) -> None:
    import marshal
    import zlib
    from pathlib import Path

    from hoopcli.paths import ensure_dir, write_private

    data = marshal.dumps((action, goto, productions))
    try:
        ensure_dir(Path(path).parent)
        write_private(Path(path), zlib.crc32(data).to_bytes(4, "big") + data)
    except OSError:
        pass                                  # a read-only HOOP_HOME: build the parser each time
