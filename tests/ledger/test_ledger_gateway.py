"""The gateway's `api.call` records: the schema, the forged-record attack on POST /records, and
every reader of the ledger (list, show, export, verify, replay, timeline) against a real server
on SQLite and PostgreSQL, with the records appended the way the gateway appends them."""

from __future__ import annotations

import copy
import csv
import io
import json

import jsonschema
import pytest
from ledger_factory import append_calls, call, command, start, ts
from sqlalchemy import text

from hoopcli.server.ledger import log as ledger_log
from hoopcli.server.ledger import query
from hoopcli.server.ledger.calls import gateway_record
from hoopcli.server.ledger.ingest import check_records
from hoopcli.transcript import schema as transcript

# -- the record ------------------------------------------------------------------------------


def test_a_gateway_record_validates_with_both_validators() -> None:
    rec = call("s-1", approval={"id": "ap-1", "approver": "carol", "channel": "web",
                                "requested_at": ts(0), "decided_at": ts(1)},
               response_text='{"Deleted": true}')
    assert rec["type"] == "api.call" and rec["source"] == "gateway" and len(rec["id"]) == 32
    assert rec["response"] == {"text": '{"Deleted": true}', "size": 17, "truncated": False}
    assert transcript.validate(rec) == []
    jsonschema.Draft202012Validator(transcript.schema()).validate(rec)
    minimal = {"v": 1, "type": "api.call", "id": rec["id"], "session_id": "s-1", "time": ts(0),
               "service": "s3", "operation": "ListBuckets"}
    undecided = dict(minimal, decision=None, gateway_request_id="gw-1", future_field=[1])
    for ok in (minimal, undecided):
        assert transcript.validate(ok) == []
        jsonschema.Draft202012Validator(transcript.schema()).validate(ok)
    assert query.call_status(undecided) == "ok"


BAD_CALLS = [
    ("service", KeyError, "$.service"), ("operation", "", "$.operation"),
    ("session_id", KeyError, "$.session_id"), ("time", "now", "$.time"),
    ("source", "client", "$.source"), ("http_status", "204", "$.http_status"),
    ("decision", {"effect": "maybe"}, "$.decision"), ("decision", "allow", "$.decision"),
    ("actions", "s3:*", "$.actions"),
    ("resources", [1], "$.resources[0]"), ("response", {"size": 3}, "$.response.text"),
    ("duration_ms", -1, "$.duration_ms"), ("bytes_out", 1.5, "$.bytes_out"),
    ("params", [], "$.params"), ("approval", "yes", "$.approval"),
]


@pytest.mark.parametrize("field,value,where", BAD_CALLS, ids=[f"{b[0]}={b[1]!r}"[:40] for b in BAD_CALLS])
def test_bad_gateway_records_are_refused_by_both_validators(field: str, value: object, where: str) -> None:
    bad = copy.deepcopy(call("s-1"))
    if value is KeyError:
        del bad[field]
    else:
        bad[field] = value
    errors = transcript.validate(bad)
    assert errors and any(e.startswith(where) for e in errors), errors
    assert not jsonschema.Draft202012Validator(transcript.schema()).is_valid(bad)


def test_caps_cut_params_and_the_response_with_marks() -> None:
    big = "x" * (transcript.STREAM_CAP + 1000)
    rec = call("s-1", params={"Body": "p" * (transcript.STRING_CAP + 10)}, response_text=big)
    capped, marks = transcript.apply_caps(rec)
    assert capped["response"]["truncated"] is True and capped["response"]["size"] == len(big)
    assert len(capped["response"]["text"]) == transcript.STREAM_CAP
    assert capped["params"]["Body"].endswith("[hoop: truncated 10 bytes]")
    assert sorted(marks) == ["$.params.Body: 10 bytes cut", "$.response.text: 1000 bytes cut"]
    assert transcript.validate(capped) == []
    # the gateway path caps too, and keeps the marks for the receipt
    (good,), rejected = check_records([rec], gateway=True)
    assert rejected == [] and sorted(good[2]) == sorted(marks)


def test_the_gateway_path_takes_only_gateway_records() -> None:
    rec = call("s-1")
    good, rejected = check_records([start("s-1", 0), dict(rec, source=None), rec], gateway=True)
    assert [i for i, _, _ in good] == [2]
    assert rejected[0]["errors"] == ["$.type: the gateway writes only api.call records",
                                     '$.source: a gateway record must say "source": "gateway"']
    assert rejected[1]["errors"] == ['$.source: a gateway record must say "source": "gateway"']


def test_the_response_size_given_by_the_gateway_is_kept() -> None:
    rec = gateway_record(session_id="s", service="s3", operation="GetObject", decision={"effect": "allow"},
                         response_text=b"abc\xff", response_size=10_000, response_truncated=True)
    assert rec["response"] == {"text": "abc\ufffd", "size": 10_000, "truncated": True}
    assert rec["time"].endswith("Z") and transcript.validate(rec) == []


# -- the attack: a client forging a server-observed record ----------------------------------


def test_a_client_cannot_upload_a_forged_gateway_record(ledger) -> None:
    """POST /records refuses api.call records and anything claiming "source": "gateway", with a
    reason, and appends none of them (the log and the session list stay empty)."""
    forged_call = call("s-forged", user="alice")
    forged_start = dict(start("s-forged", 0), source="gateway")
    sneaky = dict(start("s-forged", 2), source="Gateway ")
    out = ledger.post([forged_call, forged_start, sneaky], sub="mallory")
    assert out["accepted"] == [] and out["duplicates"] == [] and out["size"] == 0
    errors = {r["index"]: r["errors"] for r in out["rejected"]}
    assert errors[0] == ["$.type: api.call records are observed and written by the hoop server's "
                         "gateway only; a client cannot upload them",
                         "$.source: reserved for records the server observes (the hoop gateway); "
                         "a client record may not carry it"]
    assert errors[1] == errors[2] == ["$.source: reserved for records the server observes (the hoop "
                                      "gateway); a client record may not carry it"]
    assert {r["id"] for r in out["rejected"]} == {forged_call["id"], forged_start["id"], sneaky["id"]}
    aud = ledger.auditor()
    assert aud.get("/api/v1/sessions").json()["items"] == []
    assert aud.get("/api/v1/verify").json()["size"] == 0
    # the same call appended by the gateway is taken; a client re-posting it is still refused
    assert append_calls(ledger.srv, [forged_call]).accepted == [forged_call["id"]]
    again = ledger.post([forged_call], sub="alice")
    assert again["accepted"] == [] and again["duplicates"] == [] and len(again["rejected"]) == 1


def test_the_log_appends_api_calls_only_from_the_gateway(ledger) -> None:
    """Defence in depth below ingest: log.append itself refuses an api.call whose uploader is not
    the gateway."""
    rec = call("s-direct")
    with ledger.srv.db.session() as s:
        res = ledger_log.append(s, "default", ledger_log.Uploader("alice"), [(0, rec, [])])
    assert res.accepted == []
    assert res.rejected == [{"index": 0, "id": rec["id"],
                             "errors": ["$.type: api.call records are written only by the hoop gateway"]}]


# -- every reader of the ledger ----------------------------------------------------------------


def seed(ledger) -> list[dict]:
    """alice's session s-g: two shim commands (t=0, t=5) and four gateway calls (t=2, 3, 6, 7),
    appended out of time order; bob's session s-b made of gateway calls only."""
    ledger.post(command("s-g", 0, t=0) + command("s-g", 2, t=5, argv=["s3api", "get-object"],
                                                  actions=["s3:GetObject"]), sub="alice")
    calls = [
        call("s-g", 2),
        call("s-g", 6, http_status=500, error_code="InternalError", operation="PutObject",
             response_text='{"Error": "boom"}'),
        call("s-g", 3, effect="deny", http_status=403, service="iam", operation="DeleteRole",
             actions=["iam:DeleteRole"]),
        call("s-g", 7, effect="review", http_status=200, operation="PutBucketPolicy",
             approval={"id": "ap-7", "approver": "carol@example.com", "channel": "slack",
                       "requested_at": ts(6.5), "decided_at": ts(7)}),
    ]
    res = append_calls(ledger.srv, calls)
    assert res.accepted == [c["id"] for c in calls] and res.rejected == []
    bobs = [call("s-b", 100, user="bob", agent="cursor", connection="prod", operation="ListBuckets",
                 http_status=200, duration_ms=3.25)]
    assert append_calls(ledger.srv, bobs).accepted == [bobs[0]["id"]]
    return calls


def test_list_counts_gateway_calls_and_filters_find_them(ledger, login, hoop) -> None:
    seed(ledger)
    login(ledger)
    code, out, err = hoop("sessions", "list", "--json")
    assert code == 0, err
    by_id = {s["id"]: s for s in json.loads(out)}
    g = by_id["s-g"]
    assert (g["commands"], g["failed"], g["denied"], g["reviewed"], g["incomplete"]) == (6, 2, 1, 1, 0)
    assert g["status"] == "failed" and g["user"] == "alice" and g["user_email"] == "alice@example.com"
    b = by_id["s-b"]
    assert (b["user"], b["user_email"], b["agent"], b["connection"], b["host"]) == \
        ("bob", "bob@example.com", "cursor", "prod", None)
    assert (b["commands"], b["status"]) == (1, "ok")

    def ids(*args: str) -> list[str]:
        code, out, err = hoop("sessions", "list", "--json", *args)
        assert code == 0, err
        return [s["id"] for s in json.loads(out)]

    assert ids("--action", "iam:Delete*") == ["s-g"]
    assert ids("--action", "s3:ListBuckets") == ["s-b"]
    assert ids("--decision", "deny") == ["s-g"]
    assert ids("--decision", "review") == ["s-g"]
    assert ids("--status", "ok") == ["s-b"]
    assert ids("--connection", "prod") == ["s-b"]
    # the session a gateway call opened belongs to the user the gateway authenticated
    login(ledger, "bob", ())
    assert ids() == ["s-b"]
    code, out, _ = hoop("sessions", "list")
    assert code == 0 and "cursor" in out and "bob@example.com" in out


def test_show_places_gateway_calls_by_time_among_commands(ledger, login, hoop) -> None:
    seed(ledger)
    login(ledger)
    code, out, err = hoop("sessions", "show", "s-g")
    assert code == 0, err
    assert "6 commands, 2 failed, 0 incomplete, 1 denied  (4 gateway calls, server-observed)" in out
    heads = [line for line in out.splitlines() if line.startswith("[")]
    assert heads == [
        "[2026-11-27T04:00:00Z] $ aws s3 ls",
        "[2026-11-27T04:00:02Z] GATEWAY s3.DeleteObject allow 204 12ms",
        "[2026-11-27T04:00:03Z] GATEWAY iam.DeleteRole deny 403 12ms",
        "[2026-11-27T04:00:05Z] $ aws s3api get-object",
        "[2026-11-27T04:00:06Z] GATEWAY s3.PutObject allow 500 InternalError 12ms",
        "[2026-11-27T04:00:07Z] GATEWAY s3.PutBucketPolicy review 200 12ms",
    ]
    assert "  approval: ap-7 by carol@example.com via slack at 2026-11-27T04:00:07Z" in out
    assert "  actions: iam:DeleteRole  (Write)" in out
    assert "  resources: arn:aws:s3:::logs/key.txt" in out
    assert '  params: {"Bucket": "logs", "Key": "key.txt"}' in out
    assert '    {"Error": "boom"}' in out
    assert "  status: denied  (gateway: observed by the server)" in out
    assert "  status: failed  (gateway: observed by the server)" in out
    code, out, _ = hoop("sessions", "show", "s-g", "--json")
    data = json.loads(out)
    assert [(c["kind"], c["status"]) for c in data["commands"]] == [
        ("command", "ok"), ("api.call", "ok"), ("api.call", "denied"), ("command", "ok"),
        ("api.call", "failed"), ("api.call", "ok")]
    gw = data["commands"][1]
    assert gw["source"] == "gateway" and gw["call"]["operation"] == "DeleteObject"
    assert gw["command_id"] == gw["call"]["id"] and gw["start"] is None and gw["result"] is None
    code, out, _ = hoop("sessions", "show", "s-b")
    assert "GATEWAY s3.ListBuckets allow 200 3.2ms" in out


def test_show_pages_through_a_long_session_with_calls(ledger) -> None:
    seed(ledger)
    aud = ledger.auditor()
    first = aud.get("/api/v1/sessions/s-g", params={"limit": 3}).json()   # cuts a command in two
    rest = aud.get("/api/v1/sessions/s-g", params={"after": first["next"]}).json()
    kinds = [c["kind"] for c in first["commands"]] + [c["kind"] for c in rest["commands"]]
    assert kinds.count("api.call") == 4 and rest["next"] is None
    # `hoop sessions show` joins the pages back into the one-page order
    from hoopcli.cli.sessions import _merge

    whole = aud.get("/api/v1/sessions/s-g").json()["commands"]
    assert _merge(first["commands"], rest["commands"]) == whole


def test_export_carries_gateway_records_in_jsonl_and_csv(ledger, login, hoop, tmp_path) -> None:
    calls = seed(ledger)
    login(ledger)
    out_file = tmp_path / "g.jsonl"
    code, _, err = hoop("sessions", "export", "--session", "s-g", "-o", str(out_file))
    assert code == 0, err
    lines = [json.loads(x) for x in out_file.read_text().splitlines()]
    gateway = [x for x in lines if x["record"]["type"] == "api.call"]
    assert [x["record"]["id"] for x in gateway] == [c["id"] for c in calls]       # log order
    assert all(x["receipt"]["uploader"] == "hoop-gateway" for x in gateway)
    assert {x["receipt"]["uploader"] for x in lines if x not in gateway} == {"alice"}
    assert gateway[0]["record"] == calls[0]
    code, _, err = hoop("sessions", "export", "--format", "csv", "--session", "s-g", "-o",
                        str(tmp_path / "g.csv"))
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO((tmp_path / "g.csv").read_text())))
    assert [r["source"] for r in rows] == ["client"] * 4 + ["gateway"] * 4
    denied = rows[6]
    assert (denied["type"], denied["uploader"], denied["service"], denied["operation"], denied["effect"],
            denied["http_status"], denied["actions"], denied["api_calls"], denied["region"]) == \
        ("api.call", "hoop-gateway", "iam", "DeleteRole", "deny", "403", "iam:DeleteRole",
         "iam:DeleteRole", "us-east-1")
    assert rows[5]["error_code"] == "InternalError" and rows[5]["response_size"] == "17"
    assert rows[0]["service"] == "s3" and rows[0]["actions"] == "s3:ListAllMyBuckets"
    # a developer's export has the gateway calls of their own sessions only
    login(ledger, "bob", ())
    code, _, _ = hoop("sessions", "export", "-o", str(out_file))
    assert [json.loads(x)["record"]["session_id"] for x in out_file.read_text().splitlines()] == ["s-b"]


def test_verify_covers_gateway_records_and_names_a_tampered_one(ledger, login, hoop) -> None:
    calls = seed(ledger)
    login(ledger)
    code, out, err = hoop("sessions", "verify", "--session", "s-g")
    assert code == 0, out + err
    assert "ok: 9 records recomputed" in out
    assert "ok: session s-g: 8 inclusion proofs checked against checkpoint #" in out
    # rewrite the denied call into an allowed one behind the server's back
    with ledger.srv.db.engine.connect() as conn:
        index, leaf = conn.execute(text("SELECT leaf_index, leaf FROM ledger_records WHERE id = :i"),
                                   {"i": calls[2]["id"]}).one()
    with ledger.srv.db.engine.begin() as conn:
        conn.execute(text("UPDATE ledger_records SET leaf = :l WHERE leaf_index = :i"),
                     {"l": leaf.replace('"effect":"deny"', '"effect":"allow"'), "i": index})
    code, out, _ = hoop("sessions", "verify")
    assert code == 1
    assert (f"FAIL: leaf {index} (record {calls[2]['id']}, session s-g, gateway api.call "
            "iam.DeleteRole): content differs from what was logged") in out


def test_replay_shows_gateway_calls_and_a_rerun_skips_them(ledger, login, hoop, monkeypatch) -> None:
    seed(ledger)
    login(ledger)
    waits: list[float] = []
    from hoopcli.audit import replay

    monkeypatch.setattr(replay, "_sleep", waits.append)
    code, out, err = hoop("sessions", "replay", "s-g", "--speed", "1")
    assert code == 0, err
    assert [line for line in out.splitlines() if line.startswith(("$", "# gateway"))] == [
        "$ aws s3 ls",
        "# gateway: s3.DeleteObject allow -> 204 (12.0 ms)",
        "# gateway: iam.DeleteRole deny (rule r-gw) -> 403 (12.0 ms)",
        "$ aws s3api get-object",
        "# gateway: s3.PutObject allow -> 500 InternalError (12.0 ms)",
        "# gateway: s3.PutBucketPolicy review (rule r-gw) -> 200 (12.0 ms)",
    ]
    # the recorded gaps: 0.5 s run, 1.5 s to the first call, 1 s, 2 s, 0.5 s run, 0.5 s, 1 s
    assert waits == [0.5, 1.5, 1.0, 2.0, 0.5, 0.5, 1.0]
    data = ledger.auditor().get("/api/v1/sessions/s-b").json()
    assert replay.rerun(data["commands"], "http://127.0.0.1:9") == []


def test_the_gateway_cannot_write_into_another_users_session(ledger) -> None:
    ledger.post(command("s-alice", 0), sub="alice")
    intruder = call("s-alice", 1, user="mallory")
    anonymous = call("s-alice", 2, user=None)
    res = append_calls(ledger.srv, [intruder, anonymous, call("s-alice", 3, user="alice")])
    assert len(res.accepted) == 1
    assert [(r["index"], r["errors"]) for r in res.rejected] == [
        (0, ["$.session_id: belongs to another user"]), (1, ["$.session_id: belongs to another user"])]
    again = append_calls(ledger.srv, [call("s-alice", 3, user="alice", id=res.accepted[0])])
    assert again.duplicates == res.accepted and again.accepted == []
    bad = append_calls(ledger.srv, [dict(call("s-x"), user="u" * 300), command("s-x", 0)[0]])
    assert bad.accepted == []
    assert [r["errors"][0] for r in bad.rejected] == ["$.user: longer than 255 characters",
                                                      "$.type: the gateway writes only api.call records"]


# -- the timeline, as a function ---------------------------------------------------------------


def test_timeline_orders_calls_by_time_and_keeps_the_commands_order() -> None:
    c1 = command("s", 0, t=10)
    c2 = command("s", 2, t=20)
    early, mid, tie, late = call("s", 1), call("s", 15), call("s", 20), call("s", 99)
    odd = dict(call("s", 0), time="2026-11-27T05:00:00+01:00")      # 04:00:00Z, another offset
    entries = [{"index": i, "record": r} for i, r in enumerate(
        [late, *c2, mid, *c1, early, tie, odd, None])]
    got = query.timeline(entries)
    kinds = [(e["kind"], (e.get("call") or e.get("start") or {}).get("time")) for e in got]
    assert [e["command_id"] for e in got] == [
        odd["id"], early["id"], c1[0]["command_id"], mid["id"], c2[0]["command_id"], tie["id"],
        late["id"]], kinds
    assert query.call_status(call("s", 0, effect="deny", http_status=None)) == "denied"
    assert query.call_status(call("s", 0, http_status=None, error_code="ConnectTimeout")) == "failed"
    assert query.call_status(call("s", 0, http_status=None)) == "ok"
    assert query.call_status(call("s", 0, http_status=404)) == "failed"
