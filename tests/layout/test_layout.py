"""The map of the code holds: no import cycles, the client never imports the server, routers
call services (never other routers, never SQL), and every stage of the data path is a package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "hoopcli"
# The `hoop server` commands and the demo start a server; nothing else on the client may import it.
MAY_IMPORT_SERVER = ("hoopcli.server", "hoopcli.cli.server", "hoopcli.cli.server_users", "hoopcli.demo")
STAGES = ("parse", "policy", "approval", "identity", "masking", "record", "transcript", "audit", "agents",
          "cli", "detect", "server.approvals", "server.credentials", "server.identity", "server.ledger",
          "server.policy", "server.sessions", "server.store", "server.idp", "server.web", "server.detections")


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in ROOT.rglob("*.py") if "migrations" not in p.parts}


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def runtime_imports(path: Path) -> set[str]:
    """hoopcli modules a module imports at run time (function-level imports included;
    `if TYPE_CHECKING:` blocks and the implicit import of a parent package left out)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_checking(child):
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name in MODULES)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                subs = {f"{child.module}.{a.name}" for a in child.names} & MODULES.keys()
                found.update(subs)
                if len(subs) < len(child.names) and child.module in MODULES:
                    found.add(child.module)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


GRAPH = {name: runtime_imports(path) - {name} for name, path in MODULES.items()}


def _cycles() -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            strong(v)
    return out


def test_no_module_imports_another_that_imports_it_back() -> None:
    assert _cycles() == []


def test_the_client_never_imports_the_server() -> None:
    bad = {name: sorted(d for d in deps if d.startswith("hoopcli.server"))
           for name, deps in GRAPH.items() if not name.startswith(MAY_IMPORT_SERVER)}
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_cycle_check_can_fail(tmp_path: Path) -> None:
    a = tmp_path / "a.py"
    a.write_text("def f():\n    from hoopcli.shim import main\n")
    assert runtime_imports(a) == {"hoopcli.shim"}
    guarded = tmp_path / "b.py"
    guarded.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from hoopcli.shim import main\n")
    assert runtime_imports(guarded) == set()


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_is_a_package(stage: str) -> None:
    assert (ROOT / stage.replace(".", "/") / "__init__.py").is_file()


ROUTERS = sorted(n for n in MODULES if n.startswith("hoopcli.server.") and n.rsplit(".", 1)[-1].endswith("router"))


def test_every_domain_has_its_router() -> None:
    assert {n.rsplit(".", 2)[1] for n in ROUTERS} >= {"approvals", "credentials", "identity", "ledger",
                                                      "policy", "sessions", "detections"}


@pytest.mark.parametrize("router", ROUTERS)
def test_routers_import_no_other_router(router: str) -> None:
    assert [d for d in GRAPH[router] if d in ROUTERS or d.startswith("hoopcli.server.web")] == []


# Routers and console pages validate and call services: no SQL and no tables of their own.
SURFACES = [*ROUTERS, "hoopcli.server.idp.routes",
            *sorted(n for n in MODULES if n.startswith("hoopcli.server.web."))]


def _third_party_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("surface", SURFACES)
def test_routers_and_pages_hold_no_sql(surface: str) -> None:
    assert "sqlalchemy" not in _third_party_imports(MODULES[surface])
    tables = sorted(d for d in GRAPH[surface]
                    if d.startswith("hoopcli.server.store.") and d != "hoopcli.server.store.db")
    assert tables == []


@pytest.mark.parametrize("page", [n for n in SURFACES if n.startswith("hoopcli.server.web.")])
def test_pages_call_services_not_routers(page: str) -> None:
    assert [d for d in GRAPH[page] if d in ROUTERS] == []
