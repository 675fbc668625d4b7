"""Ledger fixtures: a real hoop server on SQLite and PostgreSQL with an auditor group."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from hoopcli.client import Client

AUDITORS = {"auditor": ["auditors"], "admin": ["admins"]}
# A command's record carries up to 1 MiB of stdout and 1 MiB of stderr: the records route needs
# more than the server's default 1 MiB body limit (see CONTRACTS.md, ledger engineer).
BODY = 8 * 1024 * 1024


class Ledger:
    def __init__(self, srv: Any) -> None:
        self.srv = srv
        self.url = srv.url

    def client(self, sub: str = "alice", groups: tuple[str, ...] = ()) -> Client:
        return Client(self.url, token=self.srv.token(sub, email=f"{sub}@example.com", groups=groups))

    def auditor(self) -> Client:
        return self.client("audrey", ("auditors",))

    def post(self, records: list[dict[str, Any]], sub: str = "alice") -> dict[str, Any]:
        return self.client(sub).post("/api/v1/records", {"records": records}).json()


@pytest.fixture
def ledger(make_server: Callable[..., Any], database_url: str) -> Ledger:
    return Ledger(make_server(database_url=database_url, roles=AUDITORS, max_body_bytes=BODY))


@pytest.fixture
def sqlite_ledger(make_server: Callable[..., Any]) -> Ledger:
    return Ledger(make_server(roles=AUDITORS, max_body_bytes=BODY))
