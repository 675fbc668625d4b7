from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from hoopcli.client import Client
from hoopcli.errors import Unavailable
from hoopcli.parse.invocation import READ, WRITE
from hoopcli.paths import Layout
from hoopcli.policy import default_policy, load_cached, read_cached, refresh, write_cache
from hoopcli.policy.compiler import compile_source

from .helpers import call, inv

STRICT = "defaults: {read: deny}\noffline: {cache_ttl: 60, max_staleness: 600}\n"


@pytest.fixture
def layout(clean_env: Path) -> Layout:
    return Layout(clean_env).ensure()


def dead_client() -> Client:
    """A real client pointed at a port nobody listens on: every request is Unavailable."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return Client(f"http://127.0.0.1:{port}", token="t", timeout=2)


def cache_strict(layout: Layout, checked_at: float) -> None:
    compiled, _ = compile_source(STRICT)
    write_cache(layout, compiled, etag='"abc"', version=3, checked_at=checked_at)


def test_round_trip_and_file_mode(layout: Layout) -> None:
    cache_strict(layout, time.time())
    p = load_cached(layout)
    assert (p.source, p.version, p.etag) == ("cache", 3, '"abc"')
    assert p.evaluate(inv(call("s3:GetObject", READ))).effect == "deny"
    assert layout.policy_cache.stat().st_mode & 0o777 == 0o600


def test_no_cache_means_shipped_default(layout: Layout) -> None:
    p = load_cached(layout)
    assert p.source == "default"
    assert p.evaluate(inv(call("iam:CreateAccessKey", WRITE))).rule == "deny-iam-access-keys"


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "garbage", "bad-shape"])
def test_damaged_cache_is_discarded(layout: Layout, damage: str) -> None:
    cache_strict(layout, time.time())
    path = layout.policy_cache
    data = path.read_bytes()
    if damage == "flip":
        i = len(data) - 20
        data = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "empty":
        data = b""
    elif damage == "garbage":
        data = os.urandom(300)
    else:   # a valid checksum over JSON of the wrong shape: still not trusted
        import hashlib
        body = b'{"checked_at": 1, "policy": {"format": 1, "rules": "nope"}}'
        data = b"hoop-policy-cache/1 " + hashlib.sha256(body).hexdigest().encode() + b"\n" + body
    path.write_bytes(data)
    policy, problem = read_cached(layout)
    assert policy is None and problem and "discarded" in problem
    assert load_cached(layout).source == "default"


def test_group_writable_cache_refused(layout: Layout) -> None:
    cache_strict(layout, time.time())
    os.chmod(layout.policy_cache, 0o620)
    policy, problem = read_cached(layout)
    assert policy is None and "writable by group or others" in (problem or "")


def test_symlinked_cache_refused(layout: Layout, tmp_path: Path) -> None:
    cache_strict(layout, time.time())
    real = tmp_path / "elsewhere.json"
    layout.policy_cache.rename(real)
    layout.policy_cache.symlink_to(real)
    policy, problem = read_cached(layout)
    assert policy is None and "refused" in (problem or "")


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")
def test_foreign_owned_cache_refused(layout: Layout) -> None:
    cache_strict(layout, time.time())
    os.chown(layout.policy_cache, 65534, 65534)
    policy, problem = read_cached(layout)
    assert policy is None and "owned by uid 65534" in (problem or "")


def test_fresh_cache_needs_no_server(layout: Layout) -> None:
    cache_strict(layout, time.time() - 5)
    p = refresh(layout, dead_client())      # within the TTL: no request is made at all
    assert p.source == "cache" and not p.offline_expired


def test_stale_cache_used_while_unreachable_up_to_max_staleness(layout: Layout) -> None:
    now = time.time()
    cache_strict(layout, now - 300)          # older than the TTL (60), younger than 600
    p = refresh(layout, dead_client(), now=now)
    assert p.source == "cache" and not p.offline_expired
    assert p.evaluate(inv(call("s3:PutObject", WRITE))).effect == "review"


def test_too_stale_fails_closed_for_writes_reads_follow_offline_reads(layout: Layout) -> None:
    now = time.time()
    compiled, _ = compile_source("offline: {cache_ttl: 60, max_staleness: 600, offline_reads: allow}\n")
    write_cache(layout, compiled, etag='"x"', version=1, checked_at=now - 601)
    p = refresh(layout, dead_client(), now=now)
    assert p.offline_expired
    assert p.evaluate(inv(call("s3:GetObject", READ))).effect == "allow"
    with pytest.raises(Unavailable) as info:
        p.evaluate(inv(call("s3:PutObject", WRITE)))
    assert int(info.value.exit_status) == 69


def test_no_cache_and_unreachable_fails_closed(layout: Layout) -> None:
    p = refresh(layout, dead_client())
    assert p.source == "default" and p.offline_expired
    with pytest.raises(Unavailable):
        p.evaluate(inv(call("s3:PutObject", WRITE)))


def test_damaged_cache_is_never_used_even_offline(layout: Layout) -> None:
    cache_strict(layout, time.time())
    layout.policy_cache.write_bytes(layout.policy_cache.read_bytes()[:-5])
    p = refresh(layout, dead_client())
    # the strict cached policy would deny this read; the damaged file is not trusted
    assert p.source == "default" and p.offline_expired
    assert p.evaluate(inv(call("s3:GetObject", READ))).effect == "allow"


def test_default_policy_is_memoised_but_copies_are_independent() -> None:
    a, b = default_policy(), default_policy()
    a.offline_expired = True
    assert not b.offline_expired and a._raw is b._raw
