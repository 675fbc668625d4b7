"""Auditor commands through the real `hoop` entry point against a real server."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from ledger_factory import command, start

from hoopcli.server.ledger import checkpoints as cp
from hoopcli.server.ledger import retention


def seed(ledger) -> None:
    ledger.post(command("s-a", 0, t=0, agent="claude", actions=["s3:ListAllMyBuckets"])
                + command("s-a", 2, t=5, argv=["s3api", "get-object"], actions=["s3:GetObject"]))
    ledger.post(command("s-b", 0, t=100, agent="cursor", connection="prod", effect="deny",
                        actions=["iam:DeleteRole"], exit_code=77), sub="bob")
    ledger.post([start("s-c", 0, t=200, agent="claude", actions=["ec2:TerminateInstances"],
                       effect="review")], sub="carol")


def test_list_filters_and_visibility(ledger, login, hoop) -> None:
    seed(ledger)
    login(ledger)
    code, out, _ = hoop("sessions", "list", "--json")
    assert code == 0
    items = json.loads(out)
    assert [s["id"] for s in items] == ["s-c", "s-b", "s-a"]
    assert {s["id"]: s["status"] for s in items} == {"s-a": "ok", "s-b": "failed", "s-c": "incomplete"}

    def ids(*args: str) -> list[str]:
        code, out, err = hoop("sessions", "list", "--json", *args)
        assert code == 0, err
        return [s["id"] for s in json.loads(out)]

    assert ids("--agent", "claude") == ["s-c", "s-a"]
    assert ids("--user", "bob@example.com") == ["s-b"]
    assert ids("--user", "carol") == ["s-c"]
    assert ids("--connection", "prod") == ["s-b"]
    assert ids("--action", "s3:Get*") == ["s-a"]
    assert ids("--action", "S3:*") == ["s-a"]
    assert ids("--action", "s3:%") == []
    assert ids("--action", "*:*Role") == ["s-b"]
    assert ids("--decision", "deny") == ["s-b"]
    assert ids("--decision", "review") == ["s-c"]
    assert ids("--status", "incomplete") == ["s-c"]
    assert ids("--status", "ok") == ["s-a"]
    assert ids("--exit-code", "77") == ["s-b"]
    assert ids("--since", "2026-11-27T04:01:00Z") == ["s-c", "s-b"]
    assert ids("--until", "2026-11-27T04:01:00Z") == ["s-a"]
    code, out, err = hoop("sessions", "list", "--since", "yesterday")
    assert code == 1 and err.startswith("hoop: since: not an RFC 3339 time")
    # a developer sees only their own sessions
    login(ledger, "bob", ())
    assert ids() == ["s-b"]
    code, out, err = hoop("sessions", "show", "s-a")
    assert code == 1 and err == "hoop: no such session\n"


def test_list_table(ledger, login, hoop) -> None:
    seed(ledger)
    login(ledger)
    code, out, _ = hoop("sessions", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["STARTED", "SESSION", "USER", "AGENT", "CONNECTION", "CMDS", "STATUS", "DENIED"]
    assert "s-c" in lines[1] and "incomplete" in lines[1] and "carol@example.com" in lines[1]


def test_keyset_pagination_walks_every_session_once(ledger) -> None:
    recs = []
    for i in range(57):
        recs.append(start(f"p-{i:03d}", 0, t=i // 3))   # ties on time: the id breaks them
    ledger.post(recs)
    aud = ledger.auditor()
    seen, cursor = [], None
    while True:
        page = aud.get("/api/v1/sessions", params={"limit": 10, "cursor": cursor}).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next"]
        if not cursor:
            break
    assert len(seen) == 57 and len(set(seen)) == 57
    assert seen == sorted(seen, key=lambda x: (int(x[2:]) // 3, x), reverse=True)


@pytest.mark.parametrize("params", [{"cursor": "garbage"}, {"cursor": "W10"}, {"since": "x"},
                                    {"status": "weird"}, {"decision": "maybe"}, {"limit": 0},
                                    {"limit": 501}, {"exit_code": "x"}])
def test_bad_list_parameters_are_4xx(ledger, params: dict) -> None:
    from hoopcli.client import ServerError

    with pytest.raises(ServerError) as exc:
        ledger.auditor().get("/api/v1/sessions", params=params)
    assert exc.value.status in (400, 422)


def test_show_timeline_marks_incomplete(ledger, login, hoop) -> None:
    seed(ledger)
    login(ledger)
    code, out, _ = hoop("sessions", "show", "s-c")
    assert code == 0
    assert "$ aws s3 ls" in out and "decision: review" in out and "INCOMPLETE" in out
    code, out, _ = hoop("sessions", "show", "s-a")
    assert "api: s3.ListBuckets -> 200" in out and '{"Buckets": []}' in out and "exit: 0  (ok)" in out
    code, out, _ = hoop("sessions", "show", "s-a", "--json")
    data = json.loads(out)
    assert [c["status"] for c in data["commands"]] == ["ok", "ok"]
    code, out, err = hoop("sessions", "show", "nope")
    assert code == 1 and err == "hoop: no such session\n"


def test_export_jsonl_and_csv(ledger, login, hoop, tmp_path) -> None:
    seed(ledger)
    ledger.post([dict(start("s-x", 0, t=300), agent="=HYPERLINK(\"http://evil\")")], sub="dave")
    login(ledger)
    out_file = tmp_path / "all.jsonl"
    code, _, err = hoop("sessions", "export", "-o", str(out_file))
    assert code == 0, err
    lines = [json.loads(x) for x in out_file.read_text().splitlines()]
    assert [x["index"] for x in lines] == list(range(8))
    assert lines[0]["receipt"]["uploader"] == "alice"
    code, _, _ = hoop("sessions", "export", "--format", "csv", "--agent", "claude", "-o", str(tmp_path / "c.csv"))
    rows = list(csv.DictReader(io.StringIO((tmp_path / "c.csv").read_text())))
    assert {r["session_id"] for r in rows} == {"s-a", "s-c"} and len(rows) == 5
    code, _, _ = hoop("sessions", "export", "--format", "csv", "--session", "s-x", "-o", str(tmp_path / "x.csv"))
    row = next(csv.DictReader(io.StringIO((tmp_path / "x.csv").read_text())))
    assert row["agent"].startswith("'=HYPERLINK")          # no formula injection
    login(ledger, "bob", ())
    code, _, _ = hoop("sessions", "export", "-o", str(out_file))
    assert {json.loads(x)["record"]["session_id"] for x in out_file.read_text().splitlines()} == {"s-b"}


def test_retention_erases_content_keeps_proofs_and_signs_a_tombstone(ledger, login, hoop) -> None:
    seed(ledger)
    srv = ledger.srv
    key = cp.SigningKey.load_or_create(srv.settings.home)
    cutoff = datetime(2026, 11, 27, 4, 1, tzinfo=timezone.utc)
    from hoopcli.errors import UsageError

    with pytest.raises(UsageError, match="in the future"):
        retention.apply(srv.db, "default", datetime.now(timezone.utc) + timedelta(days=1), key, "root", "x")
    body = retention.apply(srv.db, "default", cutoff, key, actor="root@server", reason="test retention")
    assert body["leaves"] == [[0, 4]] and body["records"] == 4
    assert retention.apply(srv.db, "default", cutoff, key, "root", "again") is None
    login(ledger)
    code, out, _ = hoop("sessions", "verify")
    assert code == 0, out
    assert "4 erased under a signed tombstone" in out
    # erasing content without a tombstone is caught
    from sqlalchemy import text

    with srv.db.engine.begin() as conn:
        conn.execute(text("UPDATE ledger_records SET leaf = NULL WHERE leaf_index = 5"))
    code, out, _ = hoop("sessions", "verify")
    assert code == 1 and "FAIL: leaf 5 (record " in out and "erased without a signed tombstone" in out


def test_play_back_with_timing(ledger, login, hoop, monkeypatch) -> None:
    seed(ledger)
    login(ledger)
    waits: list[float] = []
    from hoopcli.audit import replay

    monkeypatch.setattr(replay, "_sleep", waits.append)
    code, out, _ = hoop("sessions", "replay", "s-a", "--speed", "2")
    assert code == 0
    assert out.splitlines()[0] == "$ aws s3 ls"
    assert "# exit 0" in out
    # recorded: 0.5 s run, 4.5 s gap, 0.5 s run; at speed 2
    assert waits == [0.25, 2.25, 0.25]
    waits.clear()
    code, out, _ = hoop("sessions", "replay", "s-a", "--speed", "0")
    assert code == 0 and waits == []


def test_retention_command_line(sqlite_ledger, login, hoop, tmp_path, capsys) -> None:
    ledger = sqlite_ledger
    seed(ledger)
    srv = ledger.srv
    cfg = tmp_path / "server.yaml"
    cfg.write_text(f"home: {srv.settings.home}\ndatabase_url: {srv.settings.database_url}\n")
    assert retention.main(["--config", str(cfg), "--before", "not-a-time", "--reason", "r", "--yes"]) == 2
    assert retention.main(["--config", str(cfg), "--before", "2026-11-27T04:00:03Z",
                           "--reason", "policy", "--yes"]) == 0
    assert "erased 2 records; tombstone #0 signed by key" in capsys.readouterr().out
    login(ledger)
    code, out, _ = hoop("sessions", "verify")
    assert code == 0 and "2 erased under a signed tombstone" in out
    tomb = ledger.auditor().get("/api/v1/tombstones").json()["items"][0]["parsed"]
    assert tomb["reason"] == "policy" and tomb["leaves"] == [[0, 2]]
