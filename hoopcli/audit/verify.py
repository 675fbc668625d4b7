"""`hoop sessions verify`: check the server's tamper-evident log from the outside.

1. The checkpoint signing key (GET /api/v1/checkpoints/key) is pinned in HOOP_HOME on first use
   (trust on first use); a different key later is reported and the pinned one stays in force.
2. Every checkpoint: Ed25519 signature under the pinned key, consecutive sequence numbers, each
   naming the SHA-256 of the previous one, sizes never shrinking.
3. Every leaf: the record's stored bytes hash to the leaf hash the log recorded; a record that was
   erased must be covered by a signed retention tombstone; nothing may be missing.
4. The tree recomputed from the records must reproduce every checkpoint's signed root (this is
   the inclusion of every record, and makes each checkpoint a prefix of the next), and the
   server's consistency proof between consecutive checkpoints (the latest 500 pairs) must verify.
5. With a session id: the server's inclusion proof of each of the session's records verifies
   against the latest signed checkpoint.
6. Server-observed records (the gateway's `api.call`) and client-reported ones (`command.*`,
   uploaded by the shim) are counted apart, and the client's are checked against the server's
   (`Trail`): a call the gateway saw (same AWS request id) that the client records differently,
   and a gap in a session's command sequence numbers (a command's records suppressed), are each
   a failure naming the session; a call the client claims on a connection where the gateway saw
   the session's other calls but not that one is a warning (the client may have reached AWS
   another way, or the gateway's record may be the one missing).

Every failure is one line naming the checkpoint, leaf, record and session concerned.
"""

from __future__ import annotations

import base64
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from hoopcli.config import read_file, write_file
from hoopcli.paths import Layout
from hoopcli.transcript import merkle
from hoopcli.transcript.checkpoints import checkpoint_hash, key_id, verify_signature

PAGE = 2000
MAX_CONSISTENCY_PAIRS = 500


@dataclass
class Report:
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    server_observed: int = 0       # records the server wrote from what it saw (the gateway's api.call)
    client_reported: int = 0       # records a client uploaded (command.start / command.result)

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, text: str) -> None:
        self.failures.append(text)


def pin_file(layout: Layout):
    return layout.home / "ledger_keys.json"


def pinned_key(client: Any, layout: Layout, report: Report, accept_new: bool = False) -> bytes | None:
    info = client.get("/api/v1/checkpoints/key").json()
    try:
        served = base64.b64decode(info["public_key"], validate=True)
        if len(served) != 32:
            raise ValueError
    except (KeyError, TypeError, ValueError):
        report.fail("the server's checkpoint key is not a valid Ed25519 public key")
        return None
    pins = read_file(pin_file(layout))
    pinned = pins.get(client.base_url)
    if pinned is None or accept_new:
        pins[client.base_url] = {"key_id": key_id(served), "public_key": info["public_key"]}
        write_file(pin_file(layout), pins)
        report.notes.append(f"pinned the server's checkpoint key {key_id(served)} in {pin_file(layout)}")
        return served
    try:
        pinned_raw = base64.b64decode(pinned["public_key"], validate=True)
    except (KeyError, TypeError, ValueError):
        report.fail(f"the pinned key in {pin_file(layout)} is unreadable; re-pin with --accept-new-key")
        return None
    if pinned_raw != served:
        report.warnings.append(
            f"the server's checkpoint key changed: pinned {key_id(pinned_raw)}, server now offers "
            f"{key_id(served)}; verifying with the pinned key (use --accept-new-key to trust the new one)")
    return pinned_raw


def _pages(client: Any, path: str, cursor_param: str, start: Any, **params: Any):
    cursor = start
    while cursor is not None:
        page = client.get(path, params={cursor_param: cursor, **params}, timeout=120).json()
        yield page
        cursor = page.get("next")


def _covered(tombstones: list[dict[str, Any]], index: int) -> bool:
    return any(lo <= index < hi for t in tombstones for lo, hi in t.get("leaves", []))


def check_checkpoints(items: list[dict[str, Any]], key: bytes, report: Report) -> list[dict[str, Any]]:
    """The checkpoints whose signature and chain hold, as parsed bodies."""
    good: list[dict[str, Any]] = []
    prev: dict[str, Any] | None = None
    expected_seq = 0
    for item in items:
        try:
            body = json.loads(item["body"])
            assert isinstance(body, dict)
        except (KeyError, ValueError, AssertionError):
            report.fail(f"checkpoint #{item.get('seq')}: unreadable body")
            continue
        seq = body.get("seq")
        label = f"checkpoint #{seq} (size {body.get('size')}, {body.get('time')})"
        if not verify_signature(key, body, str(item.get("signature", ""))):
            report.fail(f"{label}: signature does not verify with the pinned key (forged or altered)")
            continue
        if seq != expected_seq:
            report.fail(f"checkpoint #{expected_seq}"
                        + (f"..#{seq - 1}" if isinstance(seq, int) and seq - 1 > expected_seq else "")
                        + ": missing from the chain")
        want_prev = checkpoint_hash(prev) if prev is not None else None
        if prev is not None and body.get("previous") != want_prev:
            report.fail(f"{label}: does not name checkpoint #{prev.get('seq')} as its previous (chain broken)")
        if prev is not None and int(body.get("size", -1)) < int(prev.get("size", 0)):
            report.fail(f"{label}: smaller than checkpoint #{prev.get('seq')} (the log shrank)")
        good.append(body)
        prev = body
        expected_seq = (seq if isinstance(seq, int) else expected_seq) + 1
    return good


@dataclass
class Trail:
    """What the server observed and what clients reported, per session, to hold one against the
    other (`contradictions`)."""

    gateway: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)   # session -> request id -> call
    gateway_connections: dict[str, set[str]] = field(default_factory=dict)
    seqs: dict[str, set[int]] = field(default_factory=dict)
    starts: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)     # (session, command) -> start
    results: list[dict[str, Any]] = field(default_factory=list)

    def add(self, rec: dict[str, Any]) -> None:
        sid = str(rec.get("session_id"))
        kind = rec.get("type")
        if kind == "api.call":
            rid = rec.get("request_id")
            if isinstance(rid, str) and rid:
                self.gateway.setdefault(sid, {})[rid] = rec
            if rec.get("connection"):
                self.gateway_connections.setdefault(sid, set()).add(str(rec["connection"]))
            return
        if isinstance(rec.get("seq"), int):
            self.seqs.setdefault(sid, set()).add(rec["seq"])
        if kind == "command.start":
            self.starts[(sid, str(rec.get("command_id")))] = rec
        elif kind == "command.result":
            self.results.append(rec)

    def contradictions(self, erased: bool = False) -> tuple[list[str], list[str]]:
        """(failures, warnings). With records `erased` by retention (oldest first, their sessions
        unknown) a session's sequence is checked from its first readable command on."""
        out: list[str] = []
        unseen: list[str] = []
        for rec in self.results:
            sid = str(rec.get("session_id"))
            seen = self.gateway.get(sid, {})
            start = self.starts.get((sid, str(rec.get("command_id")))) or {}
            through_gateway = start.get("connection") in self.gateway_connections.get(sid, set())
            for i, call in enumerate(rec.get("api_calls") or []):
                if not isinstance(call, dict):
                    continue
                what = (f"session {sid}: client-reported command.result seq {rec.get('seq')} call #{i} "
                        f"{call.get('service')}.{call.get('operation')}")
                observed = seen.get(str(call.get("request_id") or ""))
                if observed is None:
                    if through_gateway:
                        unseen.append(f"{what} (request {call.get('request_id')}): the gateway observed no such "
                                   "request on this session's connection")
                    continue
                differs = [f"{name} {call.get(name)!r} != {observed.get(name)!r}"
                           for name in ("operation", "http_status", "error_code")
                           if call.get(name) != observed.get(name) and not (name == "operation"
                                                                             and _same_op(call, observed))]
                if differs:
                    out.append(f"{what} (request {call.get('request_id')}) contradicts the gateway's "
                               f"api.call: {', '.join(differs)}")
        for sid, seqs in sorted(self.seqs.items()):
            first = min(seqs) if erased else min(min(seqs), 1)
            missing = sorted(set(range(first, max(seqs) + 1)) - seqs)
            if missing:
                out.append(f"session {sid}: client-reported commands {_ranges(missing)} are missing "
                           "(a gap in the sequence numbers: records suppressed or lost)")
        return out, unseen


def _same_op(call: dict[str, Any], observed: dict[str, Any]) -> bool:
    """The shim records botocore's operation name; the gateway too, but a CLI alias may differ in
    case only."""
    return str(call.get("operation", "")).lower() == str(observed.get("operation", "")).lower()


def _ranges(numbers: list[int]) -> str:
    parts: list[str] = []
    for _k, group in itertools.groupby(enumerate(numbers), key=lambda p: p[1] - p[0]):
        run = [n for _i, n in group]
        parts.append(f"seq {run[0]}" if len(run) == 1 else f"seq {run[0]}-{run[-1]}")
    return ", ".join(parts)


def verify(client: Any, layout: Layout, *, accept_new_key: bool = False, seal: bool = True,
           session_id: str | None = None) -> Report:
    from hoopcli.client import Forbidden

    report = Report()
    key = pinned_key(client, layout, report, accept_new_key)
    if key is None:
        return report
    if seal:
        try:
            client.post("/api/v1/checkpoints", {})
        except Forbidden:
            report.warnings.append("cannot seal a fresh checkpoint (needs the auditor role)")
    items: list[dict[str, Any]] = []
    for page in _pages(client, "/api/v1/checkpoints", "after", -1, limit=5000):
        items += page.get("items", [])
    checkpoints = check_checkpoints(items, key, report)
    tombstones: list[dict[str, Any]] = []
    for t in client.get("/api/v1/tombstones").json().get("items", []):
        try:
            body = json.loads(t["body"])
        except (KeyError, ValueError):
            body = None
        if not isinstance(body, dict) or not verify_signature(key, body, str(t.get("signature", ""))):
            report.fail(f"tombstone #{t.get('seq')}: signature does not verify (forged or altered)")
            continue
        tombstones.append(body)

    tree = merkle.MemoryTree()
    trail = Trail()
    size = 0
    records = redacted = 0
    for page in _pages(client, "/api/v1/verify/leaves", "start", 0, limit=PAGE):
        size = page.get("size", size)
        for item in page.get("items", []):
            i = item["index"]
            if i != tree.size:
                report.fail(f"leaf {tree.size}: missing from the server's answer")
                break
            stored = bytes.fromhex(item["hash"]) if item.get("hash") else None
            leaf = item.get("leaf")
            rid = item.get("id")
            if leaf is None:
                if _covered(tombstones, i):
                    redacted += 1
                elif item.get("present"):
                    report.fail(f"leaf {i} (record {rid}): content erased without a signed tombstone")
                else:
                    report.fail(f"leaf {i}: record removed from the database")
                if stored is None:
                    report.fail(f"leaf {i}: its logged hash is missing too; the tree cannot be rebuilt")
                    stored = merkle.EMPTY_ROOT
                tree.append_hash(stored)
                continue
            computed = merkle.leaf_hash(leaf.encode("utf-8"))
            where = f"leaf {i} (record {rid}"
            try:
                data = json.loads(leaf)
                rec = data["record"]
                what = (f"gateway api.call {rec.get('service')}.{rec.get('operation')}"
                        if rec.get("type") == "api.call" else f"{rec.get('type')} seq {rec.get('seq')}")
                where += f", session {rec.get('session_id')}, {what})"
                if str(rec.get("id", "")).replace("-", "").lower() != rid:
                    report.fail(f"{where}: the stored record id does not match the leaf")
                if rec.get("type") == "api.call" and data.get("receipt", {}).get("uploader") == "hoop-gateway":
                    report.server_observed += 1
                else:
                    report.client_reported += 1
                trail.add(rec)
            except (ValueError, KeyError, TypeError, AttributeError):
                where += ")"
                report.fail(f"{where}: stored content is not a readable record")
            if stored is None:
                report.fail(f"{where}: its logged leaf hash is missing")
            elif computed != stored:
                report.fail(f"{where}: content differs from what was logged (modified after ingest)")
            records += 1
            tree.append_hash(computed)
    if tree.size < size:
        report.fail(f"leaves {tree.size}..{size - 1}: missing from the server's answer")

    for body in checkpoints:
        n = int(body.get("size", -1))
        label = f"checkpoint #{body.get('seq')} (size {n}, {body.get('time')})"
        if n > tree.size:
            report.fail(f"{label}: covers {n} records but the log now holds {tree.size} (records removed)")
            continue
        if tree.root(n).hex() != body.get("root"):
            report.fail(f"{label}: signed root does not match the root recomputed from the records")
    # The recomputed roots above already prove every checkpoint is a prefix of the same tree;
    # the server's own consistency proofs are checked for the most recent pairs as well.
    pairs = list(itertools.pairwise(checkpoints))[-MAX_CONSISTENCY_PAIRS:]
    for a, b in pairs:
        try:
            proof = client.get("/api/v1/verify/consistency",
                               params={"first": a["size"], "second": b["size"]}).json()["proof"]
            hashes = [bytes.fromhex(p) for p in proof]
            ok = merkle.verify_consistency(int(a["size"]), int(b["size"]), bytes.fromhex(a["root"]),
                                           bytes.fromhex(b["root"]), hashes)
        except Exception as exc:  # a server that cannot prove is a failure, named
            ok = False
            report.warnings.append(f"consistency proof #{a['seq']} -> #{b['seq']}: {type(exc).__name__}")
        if not ok:
            report.fail(f"checkpoints #{a['seq']} -> #{b['seq']}: no valid consistency proof "
                        "(the log was not only appended to)")

    if session_id:
        _check_session(client, session_id, checkpoints, report)
    contradictions, unseen = trail.contradictions(erased=redacted > 0)
    for text in contradictions:
        report.fail(text)
    report.warnings.extend(unseen)

    last = checkpoints[-1] if checkpoints else None
    if last is None:
        if tree.size:
            report.fail(f"{tree.size} records but no valid signed checkpoint covers them")
    elif int(last["size"]) < tree.size:
        report.warnings.append(f"{tree.size - int(last['size'])} records after checkpoint "
                               f"#{last['seq']} are not covered by a signature yet")
    report.notes.append(f"{len(items)} checkpoints, {len(checkpoints)} with a valid signature and chain")
    report.notes.append(f"{records} records recomputed" + (f", {redacted} erased under a signed tombstone"
                                                           if redacted else ""))
    report.notes.append(f"{report.server_observed} server-observed records (the gateway's api.call: "
                        f"authoritative), {report.client_reported} client-reported records (command.start/"
                        "result, uploaded by clients), checked against them")
    if last is not None and report.ok:
        report.notes.append(f"every record is included in the tree signed by checkpoint #{last['seq']} "
                            f"(size {last['size']}, root {last['root'][:16]}…)")
    return report


def _check_session(client: Any, session_id: str, checkpoints: list[dict[str, Any]],
                   report: Report) -> None:
    data = client.get("/api/v1/verify", params={"session_id": session_id}, timeout=120).json()
    cp = data.get("checkpoint") or {}
    try:
        body = json.loads(cp.get("body", ""))
    except ValueError:
        body = None
    if body is None or body not in checkpoints:
        report.fail(f"session {session_id}: the server's latest checkpoint is not one of the verified ones")
        return
    root, size = bytes.fromhex(body["root"]), int(body["size"])
    n = 0
    for p in data.get("proofs", []):
        leaf = p.get("leaf")
        if leaf is None:
            continue
        n += 1
        ok = merkle.verify_inclusion(int(p["index"]), size, merkle.leaf_hash(leaf.encode("utf-8")),
                                     [bytes.fromhex(h) for h in p.get("proof", [])], root)
        if not ok:
            report.fail(f"session {session_id}: record {p.get('id')} (leaf {p.get('index')}) has no "
                        f"valid inclusion proof in checkpoint #{body['seq']}")
    report.notes.append(f"session {session_id}: {n} inclusion proofs checked against checkpoint #{body['seq']}")
