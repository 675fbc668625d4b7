"""Raised once: two servers on one PostgreSQL database; a restart (a new server on the same SQLite
file) rebuilds the windows from the ledger and raises nothing twice; a failing detector or
commit hook never costs a record."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from detections_helpers import AUDITOR, Script, findings, rules_of, settle

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    import psycopg

    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(pg_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{pg_url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(pg_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_two_replicas_raise_a_finding_once(make_server: Any, pg_schema: str, tmp_path: Path) -> None:
    home = str(tmp_path / "shared-home")
    a = make_server(database_url=pg_schema, home=home, roles=AUDITOR)
    b = make_server(database_url=pg_schema, home=home, roles=AUDITOR)
    sa = Script(a, step=0.2)
    sb = Script(b, session=sa.session, step=0.2)
    for i in range(12):                     # one session's calls land on either replica
        left = sa.call("secretsmanager", "GetSecretValue", {"SecretId": f"a{i}"})
        sb.when = sa.when
        right = sb.call("secretsmanager", "GetSecretValue", {"SecretId": f"b{i}"})
        sa.when = sb.when
        sa.gateway(left)
        sb.gateway(right)
    settle(a)
    settle(b)
    got = findings(a, sa.session)
    assert rules_of(got) == ["mass-secret-reads"] and got[0]["count"] == 20
    assert [f["id"] for f in findings(b, sa.session)] == [got[0]["id"]]
    assert a.app.state.detector.raised + b.app.state.detector.raised == 1


def test_restart_rebuilds_the_windows_and_raises_nothing_twice(make_server: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hoop.db'}"
    home = str(tmp_path / "home")
    first = make_server(database_url=url, home=home, roles=AUDITOR)
    s = Script(first, step=0.5)
    s.gateway(s.call("sts", "GetSessionToken"))
    s.gateway(*[s.call("secretsmanager", "GetSecretValue", {"SecretId": f"s{i}"}) for i in range(15)])
    settle(first)
    assert rules_of(findings(first, s.session)) == ["credential-minting"]
    first.stop()

    second = make_server(database_url=url, home=home, roles=AUDITOR)
    s.server = second
    s.gateway(*[s.call("secretsmanager", "GetSecretValue", {"SecretId": f"t{i}"}) for i in range(5)])
    settle(second)
    got = findings(second, s.session)
    assert rules_of(got) == ["credential-minting", "mass-secret-reads"]
    mass = next(f for f in got if f["rule"] == "mass-secret-reads")
    assert mass["count"] == 20 and len(mass["records"]) == 20     # 15 from before the restart
    assert second.app.state.detector.raised == 1


def test_a_failing_detection_never_costs_a_record(make_server: Any, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    from hoopcli.server.detections import service
    from hoopcli.server.ledger import writer
    from tests.gateway.gateway_helpers import session_records

    srv = make_server(roles=AUDITOR)

    def broken(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("detector bug")

    real = service.raise_finding
    monkeypatch.setattr(service, "raise_finding", broken)
    writer.on_commit(srv.db, broken)             # a hook that raises too
    s = Script(srv)
    s.gateway(s.call("sts", "GetSessionToken"))
    s.gateway(s.call("s3", "ListBuckets"))        # the writer and the detector go on
    settle(srv)
    assert findings(srv, s.session) == []
    assert [r["operation"] for r in session_records(srv, s.session)] == ["GetSessionToken", "ListBuckets"]
    assert "finding credential-minting for session " + s.session in caplog.text
    monkeypatch.setattr(service, "raise_finding", real)
    other = Script(srv)
    other.gateway(other.call("sts", "GetSessionToken"))
    settle(srv)
    assert rules_of(findings(srv, other.session)) == ["credential-minting"]
