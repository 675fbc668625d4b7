"""Fixtures of the security suite: a real `hoop server` process in front of a recording proxy
to a real moto_server, with a logged-in developer and auditor."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from reliability.procserver import ALLOW_ALL, ClientHome, ProcServer, RecordingProxy

from hoopcli.agents.shimfile import install_shim


@dataclass
class World:
    server: ProcServer
    proxy: RecordingProxy
    moto: str
    dev: ClientHome
    auditor: ClientHome
    tmp: Path


@pytest.fixture
def world(database_url: str, moto_endpoint: str, tmp_path: Path) -> Iterator[World]:
    proxy = RecordingProxy(moto_endpoint)
    server = ProcServer(tmp_path / "server", database_url, proxy.url, policy=ALLOW_ALL).start()
    shim = install_shim(tmp_path / "shimbin", python=sys.executable)
    dev = ClientHome(tmp_path / "dev" / "hoop", server.url, server.token("alice", ("developers",)), shim,
                     {"HOOP_AGENT": "canary-agent", "HOOP_UPLOADER_LINGER": "0.5"})
    auditor = ClientHome(tmp_path / "aud" / "hoop", server.url, server.token("audrey", ("auditors",)), shim)
    try:
        yield World(server, proxy, moto_endpoint, dev, auditor, tmp_path)
    finally:
        server.stop()
        proxy.close()


def boto(moto: str, service: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=moto, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")
