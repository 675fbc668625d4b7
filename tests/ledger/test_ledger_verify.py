"""`hoop sessions verify` against a real server, then against a database edited behind its back."""

from __future__ import annotations

import base64
import json

from ledger_factory import command
from sqlalchemy import text

from hoopcli.server.ledger import checkpoints as cp
from hoopcli.transcript.checkpoints import body_bytes


def seed(ledger, sessions: int = 3, commands: int = 4) -> list[dict]:
    recs = []
    for s in range(sessions):
        for i in range(commands):
            recs += command(f"s-{s}", i * 2, t=s * 100 + i)
    ledger.post(recs[: len(recs) // 2])
    ledger.auditor().post("/api/v1/checkpoints", {})
    ledger.post(recs[len(recs) // 2:])
    return recs


def test_verify_passes_on_an_intact_log_and_pins_the_key(ledger, login, hoop, clean_env) -> None:
    recs = seed(ledger)
    login(ledger)
    code, out, err = hoop("sessions", "verify", "--session", "s-1")
    assert code == 0, out + err
    assert "verified: the log is intact" in out
    assert f"ok: {len(recs)} records recomputed" in out
    assert "ok: session s-1: 8 inclusion proofs checked against checkpoint #1" in out
    pins = json.loads((clean_env / "ledger_keys.json").read_text())
    assert list(pins) == [ledger.url]
    code, out, _ = hoop("sessions", "verify", "--json")
    assert code == 0 and json.loads(out)["ok"] is True


def _exec(ledger, sql: str, **params) -> None:
    with ledger.srv.db.engine.begin() as conn:
        conn.execute(text(sql), params)


def _leaf(ledger, index: int) -> tuple[str, str]:
    with ledger.srv.db.engine.connect() as conn:
        return conn.execute(text("SELECT id, leaf FROM ledger_records WHERE leaf_index = :i"),
                            {"i": index}).one()


def test_a_flipped_byte_in_a_stored_record_is_named(ledger, login, hoop) -> None:
    seed(ledger)
    rid, leaf = _leaf(ledger, 5)
    pos = leaf.index('"exit_code":0') + len('"exit_code":')
    _exec(ledger, "UPDATE ledger_records SET leaf = :l WHERE leaf_index = 5",
          l=leaf[:pos] + "1" + leaf[pos + 1:])
    login(ledger)
    code, out, _ = hoop("sessions", "verify")
    assert code == 1
    assert (f"FAIL: leaf 5 (record {rid}, session s-0, command.result seq 5): content differs "
            "from what was logged (modified after ingest)") in out
    assert "FAIL: checkpoint #0 (size 12" in out and "signed root does not match" in out
    assert "verification FAILED" in out


def test_a_removed_record_is_named(ledger, login, hoop) -> None:
    seed(ledger)
    _exec(ledger, "DELETE FROM ledger_records WHERE leaf_index = 2")
    login(ledger)
    code, out, _ = hoop("sessions", "verify")
    assert code == 1
    assert "FAIL: leaf 2: record removed from the database" in out


def test_a_removed_record_and_its_hash_is_named(ledger, login, hoop) -> None:
    seed(ledger)
    _exec(ledger, "DELETE FROM ledger_records WHERE leaf_index = 7")
    _exec(ledger, "DELETE FROM ledger_nodes WHERE level = 0 AND idx = 7")
    login(ledger)
    code, out, _ = hoop("sessions", "verify")
    assert code == 1
    assert "FAIL: leaf 7: record removed from the database" in out
    assert "FAIL: leaf 7: its logged hash is missing too" in out


def test_a_forged_checkpoint_is_named(ledger, login, hoop, tmp_path) -> None:
    seed(ledger)
    login(ledger)
    assert hoop("sessions", "verify")[0] == 0          # pins the genuine key
    # an attacker with DB access but not the key rewrites checkpoint #0's root
    with ledger.srv.db.engine.connect() as conn:
        body = json.loads(conn.execute(text("SELECT body FROM ledger_checkpoints WHERE seq = 0")).scalar())
    body["root"] = "00" * 32
    forged = body_bytes(body).decode()
    _exec(ledger, "UPDATE ledger_checkpoints SET body = :b, root = :r WHERE seq = 0", b=forged, r=body["root"])
    # ... and appends a checkpoint signed with a key of their own
    other = cp.SigningKey.load_or_create(tmp_path)
    body2 = dict(body, seq=99, root="11" * 32)
    _exec(ledger, "INSERT INTO ledger_checkpoints (org, seq, size, root, time, body, signature, key_id) "
                  "VALUES ('default', 99, :n, :r, CURRENT_TIMESTAMP, :b, :s, :k)",
          n=body2["size"], r=body2["root"], b=body_bytes(body2).decode(),
          s=other.sign(body_bytes(body2)), k=other.key_id)
    code, out, _ = hoop("sessions", "verify", "--no-seal")
    assert code == 1
    assert "FAIL: checkpoint #0 (size 12" in out and "signature does not verify with the pinned key" in out
    assert "FAIL: checkpoint #99 (size 12" in out


def test_a_replaced_signing_key_is_reported(ledger, login, hoop, clean_env) -> None:
    seed(ledger)
    login(ledger)
    assert hoop("sessions", "verify")[0] == 0
    pins = json.loads((clean_env / "ledger_keys.json").read_text())
    pins[ledger.url]["public_key"] = base64.b64encode(b"\x01" * 32).decode()
    (clean_env / "ledger_keys.json").write_text(json.dumps(pins))
    code, out, err = hoop("sessions", "verify")
    assert code == 1
    assert "warning: the server's checkpoint key changed" in err
    assert "signature does not verify with the pinned key" in out
    code, out, err = hoop("sessions", "verify", "--accept-new-key")
    assert code == 0, out


def test_developers_cannot_read_the_whole_log(ledger, login, hoop) -> None:
    seed(ledger)
    login(ledger, "alice", ())
    code, _, err = hoop("sessions", "verify")
    assert code == 1
    assert err.startswith("hoop: this needs the role auditor")
