"""The spool on its own: durable appends, order, acks, caps, and damaged files quarantined."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zlib

import pytest
from recorder_helpers import make_result, make_start

from hoopcli.errors import HoopError, SpoolError
from hoopcli.record import shapes as recorder
from hoopcli.record.spool import Spool, encode_record, now_rfc3339
from hoopcli.transcript import schema as transcript


def test_append_writes_one_private_file_per_record_in_a_private_dir(spool: Spool) -> None:
    rec = make_start()
    path = spool.append(rec)
    assert path.parent == spool.dir
    assert path.name.endswith(f"-{rec['id']}.rec")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(spool.dir.stat().st_mode) == 0o700
    assert spool.load(path) == rec
    assert [p.name for p in spool.pending()] == [path.name]


def test_pending_is_in_append_order_and_ack_removes_only_the_named_ids(spool: Spool) -> None:
    recs = [make_start(seq=i) if i % 2 == 0 else make_result(seq=i) for i in range(10)]
    for rec in recs:
        spool.append(rec)
    assert [r["id"] for _, r in spool.records()] == [r["id"] for r in recs]
    assert spool.ack([recs[0]["id"], recs[5]["id"], "not-there"]) == 2
    assert [r["id"] for _, r in spool.records()] == [r["id"] for i, r in enumerate(recs) if i not in (0, 5)]
    assert [r["id"] for _, r in spool.records(limit=3)] == [recs[1]["id"], recs[2]["id"], recs[3]["id"]]


def test_builders_produce_records_the_schema_accepts(spool: Spool) -> None:
    start = make_start(approval={"id": "a1", "approver": "bob", "channel": "slack",
                                 "requested_at": now_rfc3339(), "decided_at": None},
                       credentials={"assumed_role_arn": "arn:aws:sts::1:assumed-role/r/s",
                                    "sts_session_name": "s", "expiration": None})
    result = recorder.record_result(
        command_id=start["command_id"], session_id="sess-1", seq=0, exit_code=254,
        api_calls=[{"service": "s3", "operation": "ListBuckets", "params": {}, "request_id": "R",
                    "http_status": 403, "error_code": "AccessDenied", "duration_ms": 12.5}],
        stdout=b"bytes \xff out", stderr={"text": "err", "size": 3, "truncated": False},
        started_at=1_700_000_000.25, ended_at=1_700_000_001.5, timings={"run_ms": 3.0})
    assert transcript.validate(start) == []
    assert transcript.validate(result) == []
    assert result["started_at"] == "2023-11-14T22:13:20.250000Z"
    assert result["stdout"] == {"text": "bytes \ufffd out", "size": 11, "truncated": False}
    for rec in (start, result):
        assert spool.load(spool.append(rec)) == rec


def test_outputs_past_the_cap_are_cut_on_a_character_boundary_with_their_size() -> None:
    text = "é" * 1000                     # 2000 bytes of UTF-8
    rec = make_result(stdout=text, stderr="short", output_cap=999)
    assert rec["stdout"]["size"] == 2000 and rec["stdout"]["truncated"] is True
    assert rec["stdout"]["text"] == "é" * 499
    assert rec["stderr"] == {"text": "short", "size": 5, "truncated": False}
    default = make_result(stdout="x" * ((1 << 20) + 5))
    assert len(default["stdout"]["text"]) == 1 << 20 and default["stdout"]["size"] == (1 << 20) + 5
    # a capture that was already cut upstream stays marked
    pre = make_result(stdout={"text": "abc", "size": 10_000, "truncated": True, "binary_size": 4})
    assert pre["stdout"] == {"binary_size": 4, "text": "abc", "size": 10_000, "truncated": True}


def test_an_oversized_record_is_shrunk_with_a_mark_never_dropped(layout) -> None:  # type: ignore[no-untyped-def]
    small = Spool(layout, max_record_bytes=64 * 1024)
    rec = make_result(stdout="o" * 200_000, stderr="e" * 200_000,
                      api_calls=[{"service": "s3", "operation": "PutObject",
                                  "params": {"Body": "b" * 50_000}} for _ in range(40)])
    kept = small.load(small.append(rec))
    assert kept is not None
    assert kept["id"] == rec["id"] and kept["command_id"] == rec["command_id"]
    assert kept["record_truncated"]["original_size"] > 64 * 1024
    assert kept["stdout"]["truncated"] is True and kept["stdout"]["size"] == 200_000
    assert len(encode_record(rec, 64 * 1024)) <= 64 * 1024
    assert transcript.validate(kept) == []
    # even a record made of one enormous list is kept as its identity and the mark
    huge = make_start(argv=["x" * 10] * 200_000)
    tiny = Spool(layout, max_record_bytes=4096)
    got = tiny.load(tiny.append(huge))
    assert got is not None and got["id"] == huge["id"] and "record_truncated" in got
    assert transcript.validate(got) == []


def test_values_json_cannot_encode_are_stored_as_text(spool: Spool) -> None:
    import datetime

    rec = make_result(api_calls=[{"service": "s3", "operation": "ListBuckets",
                                  "params": {"When": datetime.datetime(2026, 1, 2, 3, 4, 5),
                                             "Blob": b"\x00\x01", "Tags": {"a"},
                                             "Lone": "\udcff"}}])
    kept = spool.load(spool.append(rec))
    assert kept is not None
    params = kept["api_calls"][0]["params"]
    assert params["When"] == "2026-01-02T03:04:05" and params["Tags"] == ["a"]
    assert params["Blob"] == "\x00\x01" and params["Lone"] == "\udcff"


@pytest.mark.parametrize("bad_id", [None, "", "../../etc/passwd", "a/b", "x" * 65, "id with space", "abc\n",
                                    "ab\x00c", "ïd",
                                    7, ".hidden"])
def test_a_record_without_a_safe_id_is_refused_with_a_hoop_error(spool: Spool, bad_id) -> None:  # type: ignore[no-untyped-def]
    rec = make_start()
    rec["id"] = bad_id
    with pytest.raises(SpoolError) as info:
        spool.append(rec)
    assert isinstance(info.value, HoopError)
    assert info.value.line().startswith("hoop: refusing to spool a record without a valid id")
    assert spool.pending() == []


def _frame(body: bytes) -> bytes:
    return b"hoop-spool/1 %d %08x\n" % (len(body), zlib.crc32(body)) + body


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x20]) + data[at + 1:]


def test_damaged_files_are_quarantined_with_a_reason_and_the_rest_still_read(spool: Spool) -> None:
    good = [spool.append(make_start(seq=i)) for i in range(3)]
    raw = good[1].read_bytes()
    rid = "ab" * 16
    cases = {
        f"1000000000000000001-{rid}.rec": b"",                                   # empty
        f"1000000000000000002-{rid}.rec": b"garbage\n{}",                         # bad header
        f"1000000000000000003-{rid}.rec": raw[: len(raw) - 7],                   # torn
        f"1000000000000000004-{rid}.rec": _flip(raw, len(raw) - 20),             # flipped byte
        f"1000000000000000005-{rid}.rec": _frame(b"\xff\xfe not utf-8"),        # bad encoding
        f"1000000000000000006-{rid}.rec": _frame(b"[1, 2, 3]"),                  # not an object
        f"1000000000000000007-{rid}.rec": _frame(b'{"id": "other"}'),            # id != name
        f"1000000000000000008-{rid}.rec": _frame(b'{"id": "' + rid.encode() + b'"'),  # bad JSON
        "junk.rec": _frame(b'{"id": "junk"}'),                                    # bad name
    }
    for name, data in cases.items():
        (spool.dir / name).write_bytes(data)
    (spool.dir / f"1000000000000000009-{rid}.rec").mkdir()                      # a directory
    (spool.dir / "notes.txt").write_text("ignored: not a record name")
    got = [rec["id"] for _, rec in spool.records()]
    assert got == [spool.load(p)["id"] for p in good]  # type: ignore[index]
    assert sorted(p.name for p in spool.pending()) == sorted(p.name for p in good)
    quarantined = spool.quarantined()
    assert sorted(p.name for p in quarantined) == sorted([*cases, f"1000000000000000009-{rid}.rec"])
    reasons = {p.name: json.loads((p.parent / (p.name + ".reason")).read_text())["reason"]
               for p in quarantined}
    assert reasons[f"1000000000000000003-{rid}.rec"].startswith("length")
    assert reasons[f"1000000000000000004-{rid}.rec"] == "checksum mismatch (damaged)"
    assert reasons[f"1000000000000000007-{rid}.rec"] == "record id differs from the file name"
    assert reasons["junk.rec"] == "file name is not <time>-<id>.rec"
    assert (spool.dir / "notes.txt").exists()


def test_a_name_clash_in_quarantine_keeps_both_files(spool: Spool) -> None:
    name = f"1000000000000000001-{'cd' * 16}.rec"
    spool.dir.mkdir(mode=0o700)
    for content in (b"first", b"second"):
        (spool.dir / name).write_bytes(content)
        assert spool.load(spool.dir / name) is None
    assert sorted(p.read_bytes() for p in spool.quarantined()) == [b"first", b"second"]


def test_stale_temporary_files_of_dead_writers_are_cleaned_live_ones_kept(spool: Spool) -> None:
    spool.append(make_start())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_tmp = spool.dir / f".tmp.{dead.stdout.strip()}.{'ef' * 16}"
    live_tmp = spool.dir / f".tmp.{os.getpid()}.{'01' * 16}"
    old_live_tmp = spool.dir / f".tmp.{os.getpid()}.{'02' * 16}"
    for p in (dead_tmp, live_tmp, old_live_tmp):
        p.write_bytes(b"hoop-spool/1 999 00000000\n{partial")
    os.utime(old_live_tmp, (1, 1))
    assert len(spool.pending()) == 1                       # temporary files are never pending
    assert spool.clean_tmp() == 2
    assert live_tmp.exists() and not dead_tmp.exists() and not old_live_tmp.exists()
    assert spool.quarantined() == []


def test_oldest_age_comes_from_the_oldest_pending_record(spool: Spool) -> None:
    assert spool.oldest_age() is None and spool.pending() == [] and spool.quarantined() == []
    spool.append(make_start())
    age = spool.oldest_age()
    assert age is not None and 0 <= age < 60
    (spool.dir / f"0000000000000000001-{'aa' * 16}.rec").write_bytes(b"")
    assert spool.oldest_age() > 1e9  # type: ignore[operator]


def test_shrinking_leaves_small_outputs_unmarked_and_caps_hostile_identity_text(layout) -> None:  # type: ignore[no-untyped-def]
    spool = Spool(layout, max_record_bytes=32 * 1024)
    rec = make_result(stdout="short", api_calls=[{"service": "s3", "operation": "GetObject",
                                                  "params": {"Key": "k" * 100_000}}])
    kept = spool.load(spool.append(rec))
    assert kept is not None and "record_truncated" in kept
    assert kept["stdout"] == {"text": "short", "size": 5, "truncated": False}
    hostile = make_start(host="h" * 1_000_000, argv=["x"] * 100_000)
    got = spool.load(spool.append(hostile))
    assert got is not None and got["id"] == hostile["id"]
    assert len(got["host"]) < 1000 and "record_truncated" in got


def test_a_shrunk_record_marks_cut_strings_like_the_server_does() -> None:
    from hoopcli.transcript.schema import TRUNCATION_MARK

    record = {"v": 1, "type": "command.start", "id": "a" * 32, "argv": ["x" * 50_000, "\ud800" * 9_000]}
    body = encode_record(record, limit=8192)
    assert len(body) <= 8192
    argv = json.loads(body)["argv"]
    prefix, _, _ = TRUNCATION_MARK.partition("{n}")
    assert argv[0].startswith("x" * 100) and prefix in argv[0] and argv[0].endswith("bytes]")


def test_server_caps_cope_with_lone_surrogates() -> None:
    record = {"v": 1, "type": "command.start", "argv": ["\udc80" * 40_000]}
    capped, marks = transcript.apply_caps(record, string_cap=1024)
    assert marks and len(capped["argv"][0]) < 1100
