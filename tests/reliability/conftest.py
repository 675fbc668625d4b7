"""Fixtures of the reliability suite: a real `hoop server` process (SQLite or PostgreSQL) that
tests kill and restart, a real moto_server, a developer (agent) HOOP_HOME and an auditor."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hoopcli.agents.shimfile import install_shim

from .procserver import ClientHome, ProcServer


@dataclass
class Stack:
    server: ProcServer
    moto: str
    dev: ClientHome
    auditor: ClientHome
    session: str

    def s3(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.moto, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def spooled(self) -> list[dict[str, Any]]:
        from hoopcli.record.spool import Spool

        return [rec for _p, rec in Spool(self.dev.layout).records()]

    def deliver(self, attempts: int = 10) -> None:
        """`hoop sync` until the spool is empty (a lingering background uploader may hold the lock)."""
        for _ in range(attempts):
            result = self.dev.hoop("sync")
            if result.code == 0 and not self.spooled():
                return
            time.sleep(0.5)
        raise AssertionError(f"spool not delivered: {result.code} {result.stderr} {len(self.spooled())} left")

    def exported(self) -> list[dict[str, Any]]:
        result = self.auditor.hoop("sessions", "export", "--format", "jsonl", "--session", self.session)
        assert result.code == 0, result.stderr
        return [json.loads(line)["record"] for line in result.out.splitlines() if line.strip()]

    def verify(self) -> None:
        result = self.auditor.hoop("sessions", "verify", "--accept-new-key", "--session", self.session)
        assert result.code == 0, result.out.decode() + result.stderr


@pytest.fixture
def stack(database_url: str, moto_endpoint: str, tmp_path: Path) -> Iterator[Stack]:
    server = ProcServer(tmp_path / "server", database_url, moto_endpoint).start()
    shim = install_shim(tmp_path / "shimbin", python=sys.executable)
    session = "rel-" + tmp_path.name[-20:].replace("_", "-")
    dev = ClientHome(tmp_path / "dev" / "hoop", server.url, server.token("agent", ("developers",)), shim,
                     {"HOOP_SESSION_ID": session, "HOOP_AGENT": "reliability", "HOOP_UPLOADER_LINGER": "1",
                      "HOOP_TIMEOUT": "3", "HOOP_APPROVAL_WAIT": "0"})
    auditor = ClientHome(tmp_path / "aud" / "hoop", server.url, server.token("audrey", ("auditors",)), shim)
    try:
        yield Stack(server, moto_endpoint, dev, auditor, session)
    finally:
        server.stop()


def check_exactly_once(stack: Stack, expected_commands: dict[str, int] | None = None,
                       n_commands: int | None = None) -> list[dict[str, Any]]:
    """Every command's start and result arrived exactly once, with unique sequence numbers."""
    records = stack.exported()
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), "a record was stored twice"
    starts = {r["command_id"]: r for r in records if r["type"] == "command.start"}
    results = {r["command_id"]: r for r in records if r["type"] == "command.result"}
    assert len(starts) == sum(1 for r in records if r["type"] == "command.start")
    assert set(starts) == set(results), "a command's start or result is missing"
    seqs = [r["seq"] for r in starts.values()]
    assert len(seqs) == len(set(seqs)), "two commands of one session share a sequence number"
    if n_commands is not None:
        assert len(starts) == n_commands, (len(starts), n_commands)
    return records
