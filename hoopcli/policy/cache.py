"""The local policy cache in HOOP_HOME (layout.policy_cache). Stdlib-only.

File format (one file, written atomically, mode 0600):

    hoop-policy-cache/1 <sha256 hex of the JSON below>\n
    {"etag": ..., "version": ..., "checked_at": <epoch seconds>, "server": ..., "policy": {compiled}}

A file whose checksum, JSON or compiled shape is wrong is discarded (and refetched); a file that
is not owned by the current user, is writable by group or others, or is a symlink is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from pathlib import Path
from typing import Any

from hoopcli.errors import ConfigError, Unavailable
from hoopcli.paths import Layout, ensure_dir, write_private
from hoopcli.policy.model import Policy, PolicyFormatError

MAGIC = b"hoop-policy-cache/1 "
MAX_CACHE_BYTES = 8 * 1024 * 1024
POLICY_PATH = "/api/v1/policy"

_default: Policy | None = None


class CacheRefused(ConfigError):
    """The cache file is not safe to trust (owner, mode, symlink) or is damaged."""


def default_policy() -> Policy:
    """The shipped default policy (hoopcli/policy/data/default.yaml), compiled once per process.

    Compiling needs PyYAML; this only happens until a server policy is cached."""
    global _default
    if _default is None:
        from importlib import resources

        from hoopcli.policy.compiler import compile_source

        data = resources.files("hoopcli.policy.data").joinpath("default.yaml").read_bytes()
        compiled, _warnings = compile_source(data, "default.yaml")
        _default = Policy(compiled, source="default")
    return _copy(_default, source="default")


def _copy(p: Policy, **attrs: Any) -> Policy:
    clone = Policy.__new__(Policy)
    clone.__dict__.update(p.__dict__)
    clone.__dict__.update(attrs)
    return clone


def _read(path: Path) -> dict[str, Any]:
    """Read and verify the cache file; raise CacheRefused with the reason, FileNotFoundError if absent."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:  # ELOOP: a symlink
        raise CacheRefused(f"policy cache {path} refused: {exc.strerror or exc}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CacheRefused(f"policy cache {path} refused: not a regular file")
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            raise CacheRefused(f"policy cache {path} refused: owned by uid {st.st_uid}, not {os.getuid()}")
        if st.st_mode & 0o022:
            raise CacheRefused(f"policy cache {path} refused: writable by group or others "
                               f"(mode {stat.S_IMODE(st.st_mode):o})")
        if st.st_size > MAX_CACHE_BYTES:
            raise CacheRefused(f"policy cache {path} discarded: too large")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read(st.st_size + 1)   # sized by fstat: no 8 MiB buffer per call
    finally:
        os.close(fd)
    head, sep, body = raw.partition(b"\n")
    if not sep or not head.startswith(MAGIC):
        raise CacheRefused(f"policy cache {path} discarded: not a hoop policy cache")
    digest = head[len(MAGIC):].decode("ascii", "replace")
    if hashlib.sha256(body).hexdigest() != digest:
        raise CacheRefused(f"policy cache {path} discarded: checksum mismatch (truncated or modified)")
    try:
        entry = json.loads(body)
    except ValueError as exc:
        raise CacheRefused(f"policy cache {path} discarded: unreadable JSON") from exc
    if not isinstance(entry, dict) or not isinstance(entry.get("policy"), dict):
        raise CacheRefused(f"policy cache {path} discarded: unexpected content")
    checked = entry.get("checked_at")
    if not isinstance(checked, (int, float)) or isinstance(checked, bool):
        raise CacheRefused(f"policy cache {path} discarded: no timestamp")
    return entry


def _policy_from_entry(entry: dict[str, Any], path: Path) -> Policy:
    try:
        etag = entry.get("etag")
        version = entry.get("version")
        return Policy(entry["policy"], source="cache",
                      etag=etag if isinstance(etag, str) else None,
                      version=version if isinstance(version, int) else None,
                      checked_at=float(entry["checked_at"]))
    except (PolicyFormatError, ValueError, TypeError) as exc:
        raise CacheRefused(f"policy cache {path} discarded: {exc}") from exc


def write_cache(layout: Layout, compiled: dict[str, Any], *, etag: str | None,
                version: int | None, checked_at: float, server: str | None = None) -> None:
    """Atomically replace the cache file (0600, in a 0700 directory)."""
    ensure_dir(layout.cache_dir)
    body = json.dumps({"etag": etag, "version": version, "checked_at": checked_at,
                       "server": server, "policy": compiled},
                      separators=(",", ":"), sort_keys=True).encode("utf-8")
    data = MAGIC + hashlib.sha256(body).hexdigest().encode("ascii") + b"\n" + body
    write_private(layout.policy_cache, data, fsync=True)


def read_cached(layout: Layout) -> tuple[Policy | None, str | None]:
    """(cached policy, None) or (None, why it was not usable; None when simply absent)."""
    path = layout.policy_cache
    try:
        return _policy_from_entry(_read(path), path), None
    except FileNotFoundError:
        return None, None
    except CacheRefused as exc:
        return None, exc.message


def load_cached(layout: Layout) -> Policy:
    """The cached server policy, else the shipped default. Fast, no network, never raises for a
    bad cache (a bad cache is ignored here and replaced by the next `refresh`)."""
    policy, _problem = read_cached(layout)
    return policy if policy is not None else default_policy()


def refresh(layout: Layout, client: Any, force: bool = False, now: float | None = None) -> Policy:
    """The policy to decide with, refreshing the cache when it is older than its TTL.

    Conditional GET (If-None-Match) through `client` (hoopcli.client.Client). When the server is
    unreachable the cache is used while it is younger than the policy's `offline.max_staleness`;
    after that the returned policy has `offline_expired` set and `evaluate` fails closed for
    anything but reads (which follow `offline.offline_reads`). NotLoggedIn and other refusals
    from the server propagate."""
    now = time.time() if now is None else now
    cached, _problem = read_cached(layout)
    if cached is not None and cached.checked_at is not None and not force:
        age: float = now - cached.checked_at
        if 0 <= age < cached.cache_ttl:
            return cached
    headers = {"If-None-Match": cached.etag} if cached is not None and cached.etag else {}
    try:
        resp = client.get(POLICY_PATH, headers=headers, expect=(200, 304))
    except Unavailable:
        base = cached if cached is not None else default_policy()
        stale = now - cached.checked_at if cached is not None and cached.checked_at is not None else None
        if stale is not None and 0 <= stale <= base.max_staleness:
            return base
        return _copy(base, offline_expired=True)
    server = getattr(client, "base_url", None)
    if resp.status == 304 and cached is not None:
        _save(layout, cached.data, cached.etag, cached.version, now, server)
        return _copy(cached, checked_at=now)
    if resp.status == 304:  # we sent no ETag we could still use: ask again, unconditionally
        resp = client.get(POLICY_PATH, expect=(200,))
    body = resp.json()
    try:
        if not isinstance(body, dict):
            raise PolicyFormatError("not an object")
        compiled: dict[str, Any] = body.get("compiled")  # type: ignore[assignment]  # Policy checks it
        version = body.get("version") if isinstance(body.get("version"), int) else None
        etag = resp.etag or body.get("etag")
        policy = Policy(compiled, source="server", etag=etag, version=version, checked_at=now)
        _ = policy.rules   # build every rule now: the cache is only ever written fully checked
    except PolicyFormatError as exc:
        raise Unavailable(f"the hoop server sent a policy hoop cannot use ({exc})") from exc
    _save(layout, compiled, etag, version, now, server)
    return policy


def _save(layout: Layout, compiled: dict[str, Any], etag: str | None, version: int | None,
          now: float, server: str | None) -> None:
    """Write the cache; a failure (disk full, read-only home) must not fail the command: the
    policy in hand is good, and the next call fetches again."""
    try:
        write_cache(layout, compiled, etag=etag, version=version, checked_at=now, server=server)
    except OSError:
        pass
