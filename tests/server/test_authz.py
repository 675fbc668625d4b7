"""The authorization matrix: every route declares who may call it, and the server enforces it.

A route passes the declaration check only with `require(...)` (security.require) or an explicit
`public(reason)` marker among its dependencies, or when it is one of FastAPI's own documentation
routes. Adding a route without either makes this test fail.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

# FastAPI's own schema/documentation routes: public by nature.
BUILTIN_PUBLIC = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
ROLES = ("developer", "approver", "auditor", "admin")
GROUP_OF = {"developer": (), "approver": ("approvers",), "auditor": ("auditors",), "admin": ("admins",)}


def all_routes(app: Any) -> list[Any]:
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: routes are already flat
        return list(app.routes)
    return list(iter_route_contexts(app.routes))


def markers(dependant: Any) -> tuple[list[frozenset[str]], list[str]]:
    roles: list[frozenset[str]] = []
    public: list[str] = []
    stack = list(getattr(dependant, "dependencies", []) or [])
    while stack:
        dep = stack.pop()
        call = getattr(dep, "call", None)
        if hasattr(call, "__hoop_roles__"):
            roles.append(call.__hoop_roles__)
        if hasattr(call, "__hoop_public__"):
            public.append(call.__hoop_public__)
        stack.extend(getattr(dep, "dependencies", []) or [])
    return roles, public


def declared(app: Any) -> list[tuple[str, str, list[frozenset[str]] | None]]:
    """(method, path, role sets) per route; None = public. Each set must be satisfied (a
    require() accepts any role of its set; admin satisfies all). Fails on undeclared routes."""
    out: list[tuple[str, str, list[frozenset[str]] | None]] = []
    undeclared: list[str] = []
    for route in all_routes(app):
        path = getattr(route, "path", None) or ""
        methods = sorted(getattr(route, "methods", None) or {"*"})
        dependant = getattr(route, "dependant", None)
        if path in BUILTIN_PUBLIC:
            continue
        roles, public = markers(dependant) if dependant is not None else ([], [])
        if not roles and not public:
            undeclared.append(f"{','.join(methods)} {path}")
            continue
        for method in methods:
            if method == "HEAD":
                continue
            out.append((method, path, roles or None))
    assert not undeclared, (
        "routes without an explicit role requirement (use security.require(...) or "
        f"security.public(reason)): {undeclared}"
    )
    return out


def test_every_route_declares_its_roles(server) -> None:
    table = declared(server.app)
    paths = {p for _m, p, _r in table}
    assert {"/api/v1/config", "/api/v1/sessions", "/api/v1/credentials"} <= paths


def test_openapi_is_published(server) -> None:
    r = httpx.get(server.url + "/openapi.json")
    assert r.status_code == 200
    assert "/api/v1/credentials" in r.json()["paths"]


def fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def send(server, method: str, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kwargs: dict[str, Any] = {"headers": headers, "timeout": 30}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    if method == "GET":
        kwargs["params"] = {"wait": "0"}
    return httpx.request(method, server.url + fill(path), **kwargs)


def test_every_protected_route_enforces_its_roles(server) -> None:
    """Anonymous -> 401; a principal without the role -> 403; a holder of the role -> neither."""
    failures: list[str] = []
    tokens = {role: server.token(f"user-{role}", groups=GROUP_OF[role]) for role in ROLES}
    for method, path, roles in declared(server.app):
        if roles is None:
            continue
        r = send(server, method, path, None)
        if r.status_code != 401:
            failures.append(f"{method} {path} anonymous -> {r.status_code}, want 401")
        for role in ROLES:
            holds = role == "admin" or all(not s or role in s for s in roles)
            r = send(server, method, path, tokens[role])
            refused = r.status_code == 401 or (r.status_code == 403 and "needs the role" in r.text)
            if holds and refused:
                failures.append(f"{method} {path} as {role} -> {r.status_code}, want access")
            if not holds and r.status_code != 403:
                failures.append(f"{method} {path} as {role} -> {r.status_code}, want 403")
            if r.status_code >= 500:
                failures.append(f"{method} {path} as {role} -> {r.status_code}: {r.text[:200]}")
    assert not failures, "\n".join(failures)


# Expected status of each core endpoint for each caller (anonymous + the four roles).
MATRIX = [
    ("GET", "/api/v1/config", None, {"anonymous": 200, "developer": 200, "approver": 200, "auditor": 200, "admin": 200}),
    ("GET", "/api/v1/health", None, {"anonymous": 200, "developer": 200, "approver": 200, "auditor": 200, "admin": 200}),
    ("POST", "/api/v1/sessions", {"agent": "a"}, {"anonymous": 401, "developer": 201, "approver": 201, "auditor": 201, "admin": 201}),
    ("POST", "/api/v1/credentials", {"connection": "nope", "session_id": "s1", "argv": ["sts", "get-caller-identity"]},
     {"anonymous": 401, "developer": 404, "approver": 404, "auditor": 404, "admin": 404}),
]


@pytest.mark.parametrize("method, path, body, expected", MATRIX, ids=[f"{m} {p}" for m, p, _b, _e in MATRIX])
def test_core_endpoint_matrix(server, method: str, path: str, body: Any, expected: dict[str, int]) -> None:
    for who, status in expected.items():
        headers = {} if who == "anonymous" else server.headers(f"u-{who}", groups=GROUP_OF[who])
        r = httpx.request(method, server.url + path, json=body, headers=headers)
        assert r.status_code == status, (who, r.status_code, r.text)


def test_an_undeclared_route_is_caught() -> None:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/api/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    with pytest.raises(AssertionError, match="GET /api/v1/forgotten"):
        declared(app)
