"""POST /api/v1/records against a real server on SQLite and PostgreSQL: idempotency, caps,
hostile input, concurrency."""

from __future__ import annotations

import json
import threading
import urllib.request

import pytest
from ledger_factory import command, start

from hoopcli.client import ServerError
from hoopcli.transcript import merkle


def test_ingest_appends_and_is_idempotent(ledger) -> None:
    recs = command("s-1", 0) + command("s-1", 2, t=1)
    out = ledger.post(recs)
    assert out["accepted"] == [r["id"] for r in recs]
    assert out["duplicates"] == [] and out["rejected"] == [] and out["size"] == 4
    again = ledger.post(recs[1:] + command("s-1", 4, t=2))
    assert again["duplicates"] == [r["id"] for r in recs[1:]]
    assert len(again["accepted"]) == 2 and again["size"] == 6
    # the same id twice in one batch is appended once
    s = start("s-2", 0)
    twice = ledger.post([s, s])
    assert twice["accepted"] == [s["id"]] and twice["duplicates"] == [s["id"]]


def test_bad_records_are_rejected_with_reasons_and_good_ones_kept(ledger) -> None:
    good = command("s-1", 0)
    bad = dict(good[0], id="nope")
    worse = "not an object"
    out = ledger.post([bad, good[0], worse, good[1], {"type": "command.result"}])
    assert out["accepted"] == [good[0]["id"], good[1]["id"]]
    rej = {r["index"]: r for r in out["rejected"]}
    assert set(rej) == {0, 2, 4}
    assert rej[0]["errors"] == ["$.id: has an invalid format"]
    assert rej[2]["errors"] == ["$: a record must be a JSON object"]
    assert "$.exit_code: is required" in rej[4]["errors"]


def test_oversized_output_is_truncated_with_marks_not_rejected(ledger) -> None:
    from hoopcli.transcript import schema as transcript

    big = "x" * (transcript.STREAM_CAP + 300_000)
    s, r = command("s-big", 0, stdout=big)
    r["api_calls"][0]["error_code"] = "E" * 100_000
    out = ledger.post([s, r])
    assert out["accepted"] == [s["id"], r["id"]]
    shown = ledger.auditor().get("/api/v1/sessions/s-big").json()
    res = shown["commands"][0]["result"]
    assert res["stdout"]["truncated"] is True and res["stdout"]["size"] == len(big)
    assert len(res["stdout"]["text"]) == transcript.STREAM_CAP
    assert res["api_calls"][0]["error_code"].endswith("bytes]")
    line = ledger.auditor().get("/api/v1/export", params={"session_id": "s-big"}).body.splitlines()[1]
    assert sorted(json.loads(line)["receipt"]["truncated"]) == [
        f"$.api_calls[0].error_code: {100_000 - transcript.STRING_CAP} bytes cut",
        "$.stdout.text: 300000 bytes cut"]


@pytest.mark.parametrize("body,status", [
    (b"", 400), (b"{", 400), (b"[]", 422), (b'{"records": {}}', 422), (b"[" * 100_000, 400),
])
def test_hostile_bodies(ledger, body: bytes, status: int) -> None:
    req = urllib.request.Request(ledger.url + "/api/v1/records", data=body, method="POST",
                                 headers={"Authorization": "Bearer " + ledger.srv.token("alice"),
                                          "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=10)
    assert exc.value.code == status


def test_too_many_records_is_a_clear_413(ledger) -> None:
    with pytest.raises(ServerError) as exc:
        ledger.post([start("s", i) for i in range(501)])
    assert "at most 500 records" in exc.value.message


def test_unauthenticated_ingest_is_refused(ledger) -> None:
    req = urllib.request.Request(ledger.url + "/api/v1/records", data=b'{"records": []}', method="POST")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=10)
    assert exc.value.code == 401


def test_another_users_session_cannot_be_written_into(ledger) -> None:
    ledger.post(command("s-alice", 0), sub="alice")
    out = ledger.post(command("s-alice", 2), sub="mallory")
    assert out["accepted"] == []
    assert [r["errors"] for r in out["rejected"]] == [["$.session_id: belongs to another user"]] * 2


def test_concurrent_uploaders_keep_one_consistent_tree(ledger) -> None:
    errors: list[BaseException] = []

    def upload(n: int) -> None:
        try:
            c = ledger.client(f"user{n}")
            for batch in range(3):
                recs = []
                for i in range(5):
                    recs += command(f"s-{n}", batch * 10 + i * 2, t=i)
                c.post("/api/v1/records", {"records": recs})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    aud = ledger.auditor()
    cp = aud.post("/api/v1/checkpoints", {}).json()["checkpoint"]
    assert cp["size"] == 12 * 3 * 10
    tree = merkle.MemoryTree()
    start_at = 0
    while start_at is not None:
        page = aud.get("/api/v1/verify/leaves", params={"start": start_at, "limit": 100}).json()
        for item in page["items"]:
            assert item["present"]
            h = merkle.leaf_hash(item["leaf"].encode())
            assert h.hex() == item["hash"]
            tree.append_hash(h)
        start_at = page["next"]
    assert tree.root().hex() == cp["root"]
    listed = aud.get("/api/v1/sessions", params={"limit": 500}).json()["items"]
    assert len(listed) == 12 and all(s["commands"] == 15 and s["status"] == "ok" for s in listed)


def test_two_server_processes_on_one_database_keep_one_tree(make_server, database_url, clean_env,
                                                            login, hoop) -> None:
    from ledger_factory import AUDITORS, BODY, Ledger

    home = str(clean_env / "shared-server-home")
    a = Ledger(make_server(database_url=database_url, roles=AUDITORS, max_body_bytes=BODY, home=home))
    b = Ledger(make_server(database_url=database_url, roles=AUDITORS, max_body_bytes=BODY, home=home))
    errors: list[BaseException] = []

    def upload(srv: Ledger, n: int) -> None:
        try:
            for i in range(4):
                srv.post(command(f"two-{n}", i * 2, t=i), sub=f"u{n}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=((a, b)[n % 2], n)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    login(a)
    code, out, _ = hoop("sessions", "verify")
    assert code == 0, out
    assert "ok: 80 records recomputed" in out


def test_the_api_has_no_route_that_changes_or_deletes_the_log(sqlite_ledger) -> None:
    ledger_paths = ("/api/v1/records", "/api/v1/sessions", "/api/v1/export", "/api/v1/checkpoints",
                    "/api/v1/verify", "/api/v1/tombstones")
    writes = set()
    for path, methods in sqlite_ledger.srv.app.openapi()["paths"].items():
        if path.startswith(ledger_paths):
            writes |= {(m.upper(), path) for m in methods if m.upper() not in ("GET", "HEAD")}
    # appends (records), sealing a checkpoint, and server-core's open/close of an agent session
    # (agent_sessions, not the log) and its gateway credentials: nothing updates or deletes a
    # record, node or checkpoint
    # (and detections' release of a held session: detection_holds, not the log)
    assert writes == {("POST", "/api/v1/records"), ("POST", "/api/v1/checkpoints"),
                      ("POST", "/api/v1/sessions"), ("POST", "/api/v1/sessions/{session_id}/close"),
                      ("POST", "/api/v1/sessions/{session_id}/credentials"),
                      ("POST", "/api/v1/sessions/{session_id}/release")}
