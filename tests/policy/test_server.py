"""The policy endpoints, the cache's conditional refresh and authority.decide, against a real
hoop server (uvicorn thread, real database, real signed tokens)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from hoopcli.client import Client, Forbidden, ServerError
from hoopcli.parse.invocation import PERMISSIONS, READ, WRITE
from hoopcli.paths import Layout
from hoopcli.policy import load_cached, refresh
from hoopcli.server.identity.security import Principal
from hoopcli.server.policy.service import decide

from .helpers import call, inv

STRICT = """version: 1
rules:
  - id: no-prod-deletes
    effect: deny
    match: {actions: ["s3:Delete*"], resources: ["arn:aws:s3:::prod-*"]}
    reason: Production buckets are never emptied by an agent.
  - id: sre-may-change-iam
    effect: allow
    match: {groups: [sre], access_levels: [Permissions management]}
"""


def client(srv: Any, groups: tuple[str, ...] = (), sub: str = "alice") -> Client:
    return Client(srv.url, token=srv.token(sub, email=f"{sub}@example.com", groups=groups), timeout=10)


def push(srv: Any, source: str, groups: tuple[str, ...] = ("admins",), **kw: Any) -> Any:
    return client(srv, groups, sub="root").put("/api/v1/policy", json={"source": source, **kw},
                                                 expect=(200, 201))


def test_get_policy_etag_304_round_trip(server: Any) -> None:
    c = client(server)
    first = c.get("/api/v1/policy")
    body = first.json()
    assert body["version"] == 0 and body["origin"] == "default"
    assert first.etag == body["etag"] and first.etag.startswith('"')
    assert "deny-iam-access-keys" in body["source"]
    again = c.get("/api/v1/policy", headers={"If-None-Match": first.etag}, expect=(304,))
    assert again.status == 304 and again.body == b"" and again.etag == first.etag
    other = c.get("/api/v1/policy", headers={"If-None-Match": '"nope"'})
    assert other.status == 200
    for header in (f'"x", W/{first.etag}', "*"):
        assert c.get("/api/v1/policy", headers={"If-None-Match": header}, expect=(304,)).status == 304
    push(server, STRICT)
    changed = c.get("/api/v1/policy", headers={"If-None-Match": first.etag})
    assert changed.status == 200 and changed.etag != first.etag and changed.json()["version"] == 1
    assert c.get("/api/v1/policy", headers={"If-None-Match": changed.etag}, expect=(304,)).status == 304


def test_get_policy_needs_a_login(server: Any) -> None:
    from hoopcli.errors import NotLoggedIn

    with pytest.raises(NotLoggedIn):
        Client(server.url).get("/api/v1/policy")


def test_refresh_caches_then_revalidates_then_picks_up_a_push(server: Any, clean_env: Any) -> None:
    layout = Layout(clean_env).ensure()
    c = client(server)
    p = refresh(layout, c)
    assert p.source == "server" and p.version == 0
    cached = load_cached(layout)
    assert cached.source == "cache" and cached.etag == p.etag
    later = time.time() + 3600
    p2 = refresh(layout, c, now=later)             # stale: conditional GET -> 304
    assert p2.source == "cache" and p2.checked_at == later and p2.etag == p.etag
    assert load_cached(layout).checked_at == later
    push(server, STRICT)
    p3 = refresh(layout, c, force=True)
    assert p3.version == 1 and p3.etag != p.etag
    d = p3.evaluate(inv(call("s3:DeleteObject", WRITE, ("arn:aws:s3:::prod-logs/a",))))
    assert (d.effect, d.rule) == ("deny", "no-prod-deletes")


def test_refresh_replaces_a_damaged_cache(server: Any, clean_env: Any) -> None:
    layout = Layout(clean_env).ensure()
    c = client(server)
    refresh(layout, c)
    layout.policy_cache.write_bytes(layout.policy_cache.read_bytes()[:-3])
    p = refresh(layout, c)          # not trusted: fetched again, unconditionally
    assert p.source == "server"
    assert load_cached(layout).source == "cache"


def test_push_requires_admin(server: Any) -> None:
    with pytest.raises(Forbidden):
        push(server, STRICT, groups=("developers",))
    with pytest.raises(Forbidden):
        push(server, STRICT, groups=("approvers",))
    assert client(server).get("/api/v1/policy").json()["version"] == 0


def test_push_rejects_invalid_policy_with_positions(server: Any) -> None:
    with pytest.raises(ServerError) as info:
        push(server, "version: 1\nrules:\n  - id: x\n    efect: deny\n    match: {}\n")
    assert info.value.status == 422
    detail = info.value.detail
    assert detail["message"] == "invalid policy: line 3, column 5: rule 'x' needs an effect (allow, review or deny)"
    assert {"severity": "error", "line": 4, "column": 5,
            "message": "unknown key 'efect' in rules[0] (expected one of: id, description, effect, match, reason, review)"} in detail["problems"]


def test_push_rejects_oversized_and_malformed_bodies(server: Any) -> None:
    with pytest.raises(ServerError) as info:
        push(server, "# " + "x" * (600 * 1024))       # over the policy cap, under the body cap
    assert info.value.status == 413
    assert info.value.message == "policy too large: the limit is 524288 bytes (512 KiB)"
    c = client(server, ("admins",))
    with pytest.raises(ServerError) as info:
        c.put("/api/v1/policy", json={"source": "rules: []", "extra": 1})
    assert info.value.status == 400
    with pytest.raises(ServerError):
        c.put("/api/v1/policy", json=["rules: []"])


@pytest.mark.postgres
def test_history_who_when_diff(make_server: Any, database_url: str) -> None:
    srv = make_server(database_url=database_url)
    before = time.time()
    r1 = push(srv, STRICT, comment="lock prod buckets")
    assert r1.status == 201 and r1.json()["version"] == 1
    same = push(srv, STRICT)
    assert same.status == 200 and same.json()["created"] is False
    r2 = push(srv, STRICT.replace("sre-may-change-iam", "sre-iam"))
    assert r2.json()["version"] == 2
    auditor = client(srv, ("auditors",), sub="audrey")
    versions = auditor.get("/api/v1/policy/versions").json()
    assert [v["version"] for v in versions] == [2, 1]
    v1 = versions[1]
    assert v1["created_by"] == "root" and v1["created_by_email"] == "root@example.com"
    assert v1["created_at"] >= before and v1["comment"] == "lock prod buckets"
    assert "--- version 0 (built-in)" in v1["diff"] and "+  - id: no-prod-deletes" in v1["diff"]
    assert "-  - id: sre-may-change-iam" in versions[0]["diff"] and "+  - id: sre-iam" in versions[0]["diff"]
    one = auditor.get("/api/v1/policy/versions/1").json()
    assert one["source"] == STRICT
    with pytest.raises(Forbidden):
        client(srv).get("/api/v1/policy/versions")
    current = client(srv).get("/api/v1/policy").json()
    assert current["version"] == 2 and current["created_by"] == "root"


def principal(groups: tuple[str, ...] = (), roles: tuple[str, ...] = ("developer",)) -> Principal:
    return Principal("alice", "alice@example.com", "Alice", groups, frozenset(roles))


def test_authority_uses_the_default_then_the_pushed_policy(server: Any) -> None:
    db, settings = server.db, server.settings
    put = inv(call("s3:PutObject", WRITE))
    assert decide(db, settings, principal(), put, None).rule == "review-writes"
    assert decide(db, settings, principal(), inv(call("iam:CreateAccessKey", WRITE)), None).effect == "deny"
    push(server, STRICT)
    d = decide(db, settings, principal(), inv(call("s3:DeleteBucket", WRITE, ("arn:aws:s3:::prod-x",))), None)
    assert (d.effect, d.rule, d.actions, d.resources) == ("deny", "no-prod-deletes", ("s3:DeleteBucket",),
                                                           ("arn:aws:s3:::prod-x",))
    iam = inv(call("iam:AttachRolePolicy", PERMISSIONS))
    assert decide(db, settings, principal(("sre",)), iam, None).effect == "allow"
    assert decide(db, settings, principal(("dev",)), iam, None).effect == "review"
    read = decide(db, settings, principal(), inv(call("s3:GetObject", READ, ("arn:aws:s3:::b/k",))), None)
    assert read.effect == "allow" and read.actions == ("s3:GetObject",)


def test_authority_matches_roles_and_connection_settings(make_server: Any, tmp_path: Any) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(
        "rules:\n"
        "  - {id: approvers-write, effect: allow, match: {groups: ['role:approver'], access_levels: [Write]}}\n"
        "  - {id: prod-region, effect: deny, match: {connections: [prod], regions: [eu-west-1]}}\n")
    srv = make_server(policy_file=str(policy_file), connections={
        "prod": {"credentials": "vend", "role_arn": "arn:aws:iam::123456789012:role/hoop", "region": "eu-west-1"}})
    body = client(srv).get("/api/v1/policy").json()
    assert body["origin"] == "file" and "prod-region" in body["source"]
    d = decide(srv.db, srv.settings, principal(), inv(call("s3:GetObject", READ)), "prod")
    assert d.rule == "prod-region"
    assert decide(srv.db, srv.settings, principal(), inv(call("s3:GetObject", READ)), None).effect == "allow"
    put = inv(call("s3:PutObject", WRITE))
    assert decide(srv.db, srv.settings, principal(roles=("approver",)), put, None).rule == "approvers-write"
    assert decide(srv.db, srv.settings, principal(), put, None).effect == "review"


def test_unwritable_cache_does_not_fail_the_command(server: Any, clean_env: Any) -> None:
    layout = Layout(clean_env).ensure()
    layout.cache_dir.write_text("not a directory")      # the cache can be neither read nor written
    p = refresh(layout, client(server))
    assert p.source == "server" and p.version == 0 and not p.offline_expired
    assert load_cached(layout).source == "default"


def test_a_broken_policy_file_stops_the_server_at_startup_with_its_line(make_server: Any, tmp_path: Any) -> None:
    from hoopcli.errors import ConfigError

    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text("rules:\n  - {id: x, effect: maybe}\n")
    with pytest.raises(ConfigError) as info:
        make_server(policy_file=str(policy_file))
    assert "policy.yaml" in info.value.message and "2" in info.value.message     # file and line
    with pytest.raises(ConfigError) as missing:
        make_server(policy_file=str(tmp_path / "absent.yaml"))
    assert "absent.yaml" in missing.value.message


def test_a_policy_file_broken_while_running_answers_503_without_the_server_path(
        make_server: Any, tmp_path: Any) -> None:
    import time

    from hoopcli.server.policy.service import PolicyFileBroken

    policy_file = tmp_path / "secret-dir" / "policy.yaml"
    policy_file.parent.mkdir()
    policy_file.write_text("rules:\n  - {id: reads, effect: allow, match: {access_levels: [Read]}}\n")
    srv = make_server(policy_file=str(policy_file))
    time.sleep(0.01)
    policy_file.write_text("rules: [[[\n")                       # an operator's bad edit
    resp = client(srv).get("/api/v1/policy", expect=(503,))
    assert resp.status == 503
    assert "secret-dir" not in resp.body.decode() and "policy.yaml" not in resp.body.decode()
    with pytest.raises(PolicyFileBroken):
        decide(srv.db, srv.settings, principal(), inv(call("s3:GetObject", READ)), None)
