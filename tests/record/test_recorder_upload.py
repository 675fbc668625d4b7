"""Uploading the spool: batches, idempotency, a server that is down, failing or refusing a record."""

from __future__ import annotations

import pytest
from recorder_helpers import Ingest, free_port, make_result, make_start

from hoopcli.client import Client
from hoopcli.errors import NotLoggedIn, Unavailable
from hoopcli.record.spool import Spool
from hoopcli.record.upload import upload


def _spool_commands(spool: Spool, n: int) -> list[str]:
    ids = []
    for i in range(n):
        start = make_start(seq=i)
        result = make_result(seq=i)
        result["command_id"] = start["command_id"]
        for rec in (start, result):
            spool.append(rec)
            ids.append(rec["id"])
    return ids


def test_server_down_for_100_records_then_back_delivers_all_exactly_once(spool: Spool) -> None:
    port = free_port()
    client = Client(f"http://127.0.0.1:{port}", token="test-token", timeout=5)
    ids = _spool_commands(spool, 50)                    # 100 records while nothing listens
    with pytest.raises(Unavailable, match="cannot reach the hoop server"):
        upload(spool, client)
    assert len(spool.pending()) == 100
    server = Ingest(port=port).start()
    try:
        assert upload(spool, client) == (100, 0)
        assert spool.pending() == [] and spool.quarantined() == []
        assert set(server.stored) == set(ids) and len(server.stored) == 100
        assert set(server.posts.values()) == {1}
        assert upload(spool, client) == (0, 0)
    finally:
        server.stop()


def test_a_record_sent_twice_is_acknowledged_as_a_duplicate(spool: Spool, ingest: Ingest) -> None:
    client = Client(ingest.url, token="test-token")
    rec = make_start()
    ingest.stored[rec["id"]] = rec                      # delivered before, but the ack was lost
    spool.append(rec)
    spool.append(make_result())
    assert upload(spool, client) == (2, 0)
    assert spool.pending() == []
    assert ingest.posts[rec["id"]] == 1 and len(ingest.stored) == 2


def test_batches_respect_the_record_and_byte_limits(spool: Spool, ingest: Ingest) -> None:
    client = Client(ingest.url, token="test-token")
    ids = _spool_commands(spool, 25)
    assert upload(spool, client, batch_records=7, batch_bytes=1 << 20) == (50, 0)
    assert set(ingest.stored) == set(ids)
    _spool_commands(spool, 3)
    assert upload(spool, client, limit=4) == (4, 0)
    assert len(spool.pending()) == 2


def test_a_record_the_server_refuses_is_quarantined_and_does_not_block_the_rest(
        spool: Spool, ingest: Ingest) -> None:
    client = Client(ingest.url, token="test-token")
    good = _spool_commands(spool, 10)
    bad = make_start(seq=3)
    bad["seq"] = -1                                      # the schema says seq >= 0
    bad_path = spool.append(bad)
    good += _spool_commands(spool, 5)
    assert upload(spool, client) == (30, 1)
    assert set(ingest.stored) == set(good)
    assert spool.pending() == []
    [moved] = spool.quarantined()
    assert moved.name == bad_path.name
    reason = (moved.parent / (moved.name + ".reason")).read_text()
    assert "server refused the record (HTTP 422)" in reason and "$.seq" in reason


def test_a_5xx_leaves_everything_spooled_and_the_next_pass_sends_it(spool: Spool, ingest: Ingest) -> None:
    client = Client(ingest.url, token="test-token")
    ids = _spool_commands(spool, 3)
    ingest.fail_next = 1
    with pytest.raises(Unavailable, match="HTTP 500"):
        upload(spool, client)
    assert len(spool.pending()) == 6
    assert upload(spool, client) == (6, 0)
    assert set(ingest.stored) == set(ids)


def test_not_logged_in_keeps_the_spool(spool: Spool, ingest: Ingest) -> None:
    _spool_commands(spool, 2)
    with pytest.raises(NotLoggedIn):
        upload(spool, Client(ingest.url, token="wrong"))
    assert len(spool.pending()) == 4 and ingest.stored == {}


def test_records_the_server_does_not_confirm_stay_pending(spool: Spool, ingest: Ingest) -> None:
    client = Client(ingest.url, token="test-token")
    ids = _spool_commands(spool, 2)
    ingest.forget = {ids[1]}
    assert upload(spool, client) == (3, 1)
    [left] = list(spool.records())
    assert left[1]["id"] == ids[1]
    ingest.forget = set()
    assert upload(spool, client) == (1, 0)


def test_damaged_spool_files_are_skipped_and_quarantined_during_upload(
        spool: Spool, ingest: Ingest) -> None:
    client = Client(ingest.url, token="test-token")
    ids = _spool_commands(spool, 2)
    (spool.dir / f"1000000000000000000-{'ab' * 16}.rec").write_bytes(b"\x00garbage")
    assert upload(spool, client) == (4, 0)
    assert set(ingest.stored) == set(ids)
    assert len(spool.quarantined()) == 1
