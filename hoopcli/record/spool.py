"""The local write-ahead spool. Stdlib-only: the shim appends to it on every call.

The spool is a directory, HOOP_HOME/spool (0700), holding one file per record (0600):

    <time_ns, 19 digits>-<record id>.rec      a record waiting for upload (sorted = time order)
    .tmp.<pid>.<record id>                    a record being written (never read; cleaned when stale)
    .uploader.lock                            flock'ed by the running background uploader (holds its pid)
    .uploader.state                           the uploader's last outcome, for `hoop status`
    quarantine/<name> + <name>.reason         files that could not be read, with why

A record is written to a temporary file, fsync'ed, renamed into place and the directory fsync'ed, so
a record is either wholly in the spool or absent, whatever kills the writer. Concurrent shims never
share a file, so the hot path takes no lock. Each file starts with a header line carrying the body's
length and CRC-32 so a damaged file is recognised and quarantined instead of uploaded or crashing.
"""

from __future__ import annotations

import errno
import json
import os
import re
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from hoopcli.errors import SpoolError
from hoopcli.paths import Layout, ensure_dir

DEFAULT_MAX_RECORD = 4 << 20          # bytes of one encoded record; larger ones are shrunk with a mark
SUFFIX = ".rec"
TMP_PREFIX = ".tmp."
QUARANTINE = "quarantine"
MAGIC = b"hoop-spool/1"
STALE_TMP_SECONDS = 3600.0

# Checked without a regex on the shim's path (compiling one costs more than the check).
_ID_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-")
_NAME_PATTERN = r"(\d{19})-([0-9A-Za-z_-]{1,64})\.rec"   # re.fullmatch: compiled once, by re's cache


def now_rfc3339(ts: float | None = None) -> str:
    """RFC 3339 UTC with microseconds, e.g. 2026-11-27T04:01:28.123456Z."""
    ts = time.time() if ts is None else ts
    micros = round((ts % 1) * 1_000_000)
    if micros >= 1_000_000:
        ts, micros = ts + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(ts))) + f".{micros:06d}Z"


def _cut_utf8(data: bytes, cap: int) -> str:
    """At most `cap` bytes of `data` as text, cut on a character boundary."""
    if len(data) > cap:
        end = max(cap, 0)
        while end > 0 and (data[end] & 0xC0) == 0x80:
            end -= 1
        data = data[:end]
    return data.decode("utf-8", "replace")



# --------------------------------------------------------------------------------------------------
# encoding and framing

def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):          # datetime / date from botocore
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return _cut_utf8(bytes(value), len(value))
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _dumps(record: Any) -> bytes:
    try:
        return json.dumps(record, ensure_ascii=False, separators=(",", ":"),
                          default=_json_default).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: keep them as \u escapes
        return json.dumps(record, separators=(",", ":"), default=_json_default).encode("ascii")


def _cap_tree(value: Any, chars: int, items: int) -> Any:
    """Strings cut to `chars` (with a mark), lists to their first `items` entries."""
    if isinstance(value, str) and len(value) > chars:
        from hoopcli.transcript.schema import cut_marked  # only for an oversized record

        return cut_marked(value, chars)
    if isinstance(value, list):
        return [_cap_tree(v, chars, items) for v in value[:items]]
    if isinstance(value, dict):
        return {k: _cap_tree(v, chars, items) for k, v in list(value.items())[:items * 4]}
    return value


_SKELETON = ("v", "type", "id", "command_id", "session_id", "seq", "time", "exit_code",
             "started_at", "ended_at", "user", "agent", "host", "connection", "record_truncated")


_IDENTITY = ("v", "type", "id", "command_id", "session_id", "seq", "time", "exit_code",
             "record_truncated")


def _cap_record(rec: dict[str, Any], chars: int, items: int) -> dict[str, Any]:
    return {k: (v if k in _SKELETON else _cap_tree(v, chars, items)) for k, v in rec.items()}


def encode_record(record: Mapping[str, Any], limit: int = DEFAULT_MAX_RECORD) -> bytes:
    """The record as compact UTF-8 JSON, shrunk to at most `limit` bytes with a mark, never dropped.

    Shrinking keeps the record's identity: first stdout/stderr are cut further (their `truncated`
    flag set, `size` kept), then every other long string and list is cut, then only the
    identifying fields are kept. The record gains `"record_truncated": {"original_size": N,
    "limit": L}`. The server applies its own caps too (hoopcli.transcript.schema.apply_caps).
    """
    body = _dumps(record)
    if len(body) <= limit:
        return body
    rec: dict[str, Any] = json.loads(body)
    prior = rec.get("record_truncated")
    earlier = prior.get("original_size") if isinstance(prior, dict) else None
    original = max(len(body), earlier if isinstance(earlier, int) else 0)
    mark = {"original_size": original, "limit": limit}
    rec["record_truncated"] = mark
    for key in ("stdout", "stderr"):
        out = rec.get(key)
        if isinstance(out, dict) and isinstance(out.get("text"), str):
            data = out["text"].encode("utf-8", "surrogatepass")
            if len(data) > limit // 8:
                out["text"] = _cut_utf8(data, limit // 8)
                out["truncated"] = True
    body = _dumps(rec)
    for chars, items in ((limit // 16, 1000), (4096, 100), (256, 10), (32, 2)):
        if len(body) <= limit:
            return body
        body = _dumps(_cap_record(rec, chars, items))
    if len(body) <= limit:
        return body
    return _dumps({k: (rec[k] if k in _IDENTITY else _cap_tree(rec[k], 256, 2))
                   for k in _SKELETON if k in rec})


def frame(body: bytes) -> bytes:
    """A spool file: header line `hoop-spool/1 <len> <crc32>` then the JSON body."""
    return b"%s %d %08x\n" % (MAGIC, len(body), zlib.crc32(body)) + body


def unframe(data: bytes) -> dict[str, Any]:
    """Parse a spool file; ValueError says what is wrong with it."""
    head, sep, body = data.partition(b"\n")
    parts = head.split(b" ")
    if not sep or len(parts) != 3 or parts[0] != MAGIC:
        raise ValueError("not a hoop spool file (bad header)")
    try:
        length, crc = int(parts[1]), int(parts[2], 16)
    except ValueError:
        raise ValueError("bad header fields") from None
    if length != len(body):
        raise ValueError(f"length {len(body)} differs from header {length} (torn or damaged)")
    if zlib.crc32(body) != crc:
        raise ValueError("checksum mismatch (damaged)")
    try:
        record = json.loads(body.decode("utf-8", "surrogatepass"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"unreadable JSON ({type(exc).__name__})") from None
    if not isinstance(record, dict):
        raise ValueError("record is not a JSON object")  # "damaged file", not a caller bug
    return record


def _describe(exc: OSError, where: Path) -> str:
    reasons = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
               errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
               errno.EPERM: "operation not permitted"}
    why = reasons.get(exc.errno or 0) or (exc.strerror or type(exc).__name__).lower()
    return f"cannot write the local spool at {where}: {why}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quiet(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# --------------------------------------------------------------------------------------------------
# the spool

class Spool:
    """One file per record under `layout.spool_dir`; safe under concurrent writers without locks."""

    def __init__(self, layout: Layout, *, max_record_bytes: int = DEFAULT_MAX_RECORD) -> None:
        self.layout = layout
        self.dir = layout.spool_dir
        self.quarantine_dir = self.dir / QUARANTINE
        self.max_record_bytes = max_record_bytes
        self._ready = False

    def _ensure(self) -> Path:
        if not self._ready:
            try:
                ensure_dir(self.dir)
            except OSError as exc:
                raise SpoolError(_describe(exc, self.dir)) from exc
            self._ready = True
        return self.dir

    # ---- writing
    def append(self, record: Mapping[str, Any]) -> Path:
        """Durably add `record` (its `id` names the file); returns the spool file. Raises SpoolError."""
        rid = record.get("id") if isinstance(record, Mapping) else None
        if not isinstance(rid, str) or not 0 < len(rid) <= 64 or not _ID_CHARS.issuperset(rid):
            raise SpoolError("refusing to spool a record without a valid id (letters, digits, - or _)")
        data = frame(encode_record(record, self.max_record_bytes))
        directory = self._ensure()
        tmp = directory / f"{TMP_PREFIX}{os.getpid()}.{rid}"
        final = directory / f"{time.time_ns():019d}-{rid}{SUFFIX}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, final)
            _fsync_dir(directory)
        except OSError as exc:
            _unlink_quiet(tmp)
            raise SpoolError(_describe(exc, directory)) from exc
        return final

    # ---- reading
    def _names(self) -> list[str]:
        try:
            return sorted(os.listdir(self.dir))
        except OSError:
            return []

    def pending(self) -> list[Path]:
        """Spool files waiting for upload, oldest first (damaged ones included; `load` sorts them out)."""
        return [self.dir / n for n in self._names() if n.endswith(SUFFIX) and not n.startswith(".")]

    def load(self, path: Path) -> dict[str, Any] | None:
        """The record in `path`, or None when it is gone or damaged (then it is quarantined)."""
        match = re.fullmatch(_NAME_PATTERN, path.name)
        if match is None:
            self.quarantine(path, "file name is not <time>-<id>.rec")
            return None
        try:
            with open(path, "rb") as fh:
                data = fh.read(self.max_record_bytes + 4096)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.quarantine(path, f"unreadable: {exc.strerror or type(exc).__name__}")
            return None
        try:
            record = unframe(data)
        except ValueError as exc:
            self.quarantine(path, str(exc))
            return None
        if record.get("id") != match.group(2):
            self.quarantine(path, "record id differs from the file name")
            return None
        return record

    def records(self, limit: int | None = None) -> Iterator[tuple[Path, dict[str, Any]]]:
        """(path, record) for readable pending records, oldest first, at most `limit`."""
        count = 0
        for path in self.pending():
            if limit is not None and count >= limit:
                return
            record = self.load(path)
            if record is not None:
                count += 1
                yield path, record

    # ---- removing
    def ack(self, ids: Iterable[str]) -> int:
        """Remove the spool files of uploaded record ids; returns how many were removed."""
        wanted = set(ids)
        removed = 0
        for path in self.pending():
            match = re.fullmatch(_NAME_PATTERN, path.name)
            if match and match.group(2) in wanted:
                try:
                    os.unlink(path)
                    removed += 1
                except FileNotFoundError:
                    pass
        if removed:
            try:
                _fsync_dir(self.dir)
            except OSError:
                pass
        return removed

    def quarantine(self, path: Path, why: str) -> bool:
        """Move a damaged file to spool/quarantine/ with a `.reason` file. Never raises."""
        try:
            ensure_dir(self.quarantine_dir)
            target = self.quarantine_dir / path.name
            if target.exists():
                target = self.quarantine_dir / f"{path.name}.{time.time_ns()}"
            os.rename(path, target)
            reason = {"file": path.name, "reason": why, "quarantined_at": now_rfc3339()}
            fd = os.open(f"{target}.reason", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(reason, fh)
            return True
        except OSError:
            return False

    def quarantined(self) -> list[Path]:
        try:
            names = sorted(os.listdir(self.quarantine_dir))
        except OSError:
            return []
        return [self.quarantine_dir / n for n in names if not n.endswith(".reason")]

    def clean_tmp(self, max_age: float = STALE_TMP_SECONDS) -> int:
        """Delete temporary files left by writers that died (their pid is gone, or too old)."""
        removed = 0
        now = time.time()
        for name in self._names():
            if not name.startswith(TMP_PREFIX):
                continue
            path = self.dir / name
            pid_text = name[len(TMP_PREFIX):].split(".", 1)[0]
            try:
                age = now - path.stat().st_mtime
            except OSError:
                continue
            if age > max_age or not _pid_alive(int(pid_text) if pid_text.isdigit() else -1):
                _unlink_quiet(path)
                removed += 1
        return removed

    def oldest_age(self) -> float | None:
        """Seconds since the oldest pending record was spooled (from its file name)."""
        for path in self.pending():
            match = re.fullmatch(_NAME_PATTERN, path.name)
            if match:
                return max(0.0, time.time() - int(match.group(1)) / 1e9)
        return None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

