from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hoopcli.errors import Unavailable
from hoopcli.parse.invocation import LIST, PERMISSIONS, READ, TAGGING, UNKNOWN, WRITE, Invocation
from hoopcli.policy import EFFECT_RANK, Context, Policy, default_policy
from hoopcli.policy.compiler import compile_source

from .helpers import call, inv


def policy(text: str) -> Policy:
    compiled, _warnings = compile_source(text)
    return Policy(compiled)


def test_no_rules_defaults_by_access_level() -> None:
    p = policy("rules: []\n")
    expected = {LIST: "allow", READ: "allow", TAGGING: "review", WRITE: "review",
                PERMISSIONS: "review", UNKNOWN: "review"}
    for level, effect in expected.items():
        d = p.evaluate(inv(call("s3:X", level)))
        assert (d.effect, d.rule) == (effect, f"defaults.{ {LIST: 'list', READ: 'read', TAGGING: 'tagging', WRITE: 'write', PERMISSIONS: 'permissions', UNKNOWN: 'unknown'}[level]}")


def test_configurable_defaults() -> None:
    p = policy("defaults: {read: review, write: deny}\n")
    assert p.evaluate(inv(call("s3:GetObject", READ))).effect == "review"
    assert p.evaluate(inv(call("s3:PutObject", WRITE))).effect == "deny"
    assert p.evaluate(inv(call("s3:ListBuckets", LIST))).effect == "allow"


def test_deny_beats_review_beats_allow_regardless_of_order() -> None:
    p = policy("rules:\n"
               "  - {id: a, effect: allow, match: {actions: ['s3:*']}}\n"
               "  - {id: r, effect: review, match: {actions: ['s3:Delete*']}}\n"
               "  - {id: d, effect: deny, match: {actions: ['s3:DeleteBucket']}, reason: nope}\n")
    assert p.evaluate(inv(call("s3:GetObject", READ))).rule == "a"
    assert p.evaluate(inv(call("s3:DeleteObject", WRITE))).rule == "r"
    d = p.evaluate(inv(call("s3:DeleteBucket", WRITE)))
    assert (d.effect, d.rule, d.reason) == ("deny", "d", "nope")


def test_first_rule_of_the_strictest_effect_reports() -> None:
    p = policy("rules:\n"
               "  - {id: one, effect: review, match: {services: [s3]}, review: {approvers: [sre]}}\n"
               "  - {id: two, effect: review, match: {actions: ['s3:*']}}\n")
    d = p.evaluate(inv(call("s3:PutObject", WRITE)))
    assert d.rule == "one" and d.review is not None and d.review.approvers == ("sre",)


def test_unknown_never_defaults_to_allow_and_broad_allow_skips_it() -> None:
    p = policy("defaults: {unknown: review}\nrules:\n  - {id: all, effect: allow, match: {actions: ['*']}}\n")
    assert p.evaluate(inv(call("foo:Bar", UNKNOWN))).effect == "review"
    assert p.evaluate(inv(call("foo:Bar", "Bogus level"))).effect == "review"
    explicit = policy("rules:\n  - {id: u, effect: allow, match: {actions: ['foo:*'], access_levels: [Unknown]}}\n")
    assert explicit.evaluate(inv(call("foo:Bar", UNKNOWN))).effect == "allow"


def test_command_as_strict_as_strictest_call() -> None:
    p = default_policy()
    d = p.evaluate(inv(call("s3:ListBucket", LIST), call("iam:CreateAccessKey", WRITE),
                       call("s3:PutObject", WRITE)))
    assert (d.effect, d.rule) == ("deny", "deny-iam-access-keys")
    assert [c["effect"] for c in d.calls] == ["allow", "deny", "review"]
    assert set(d.actions) == {"s3:ListBucket", "iam:CreateAccessKey", "s3:PutObject"}


def test_invocation_without_calls() -> None:
    p = default_policy()
    assert p.evaluate(Invocation(("--version",), "version", "", None)).effect == "allow"
    d = p.evaluate(Invocation(("configure",), "custom", "configure", "set"))
    assert (d.effect, d.access_level) == ("review", UNKNOWN)


def test_allow_needs_every_resource_deny_needs_one() -> None:
    p = policy("rules:\n"
               "  - {id: a, effect: allow, match: {resources: ['arn:aws:s3:::dev-*']}}\n"
               "  - {id: d, effect: deny, match: {resources: ['arn:aws:s3:::prod-*']}}\n"
               "defaults: {write: review}\n")
    both = call("s3:CopyObject", WRITE, ("arn:aws:s3:::dev-a/k", "arn:aws:s3:::other/k"))
    assert p.evaluate(inv(both)).effect == "review"
    dev = call("s3:PutObject", WRITE, ("arn:aws:s3:::dev-a/k",))
    assert p.evaluate(inv(dev)).rule == "a"
    mixed = call("s3:CopyObject", WRITE, ("arn:aws:s3:::dev-a/k", "arn:aws:s3:::prod-b/k"))
    assert p.evaluate(inv(mixed)).rule == "d"
    assert p.evaluate(inv(call("s3:PutObject", WRITE))).effect == "review"  # no resource known


def test_params_match() -> None:
    p = default_policy()
    off = call("guardduty:UpdateDetector", WRITE, params={"DetectorId": "x", "Enable": False})
    on = call("guardduty:UpdateDetector", WRITE, params={"DetectorId": "x", "Enable": True})
    assert p.evaluate(inv(off)).rule == "deny-guardduty-pause"
    assert p.evaluate(inv(on)).rule == "review-writes"
    q = policy("rules:\n  - {id: t, effect: deny, match: {params: {Tags.Owner: ['bob*'], Count: 3}}}\n")
    assert q.evaluate(inv(call("x:Y", WRITE, params={"Tags": {"Owner": "bobby"}, "Count": 3}))).rule == "t"
    assert q.evaluate(inv(call("x:Y", WRITE, params={"Tags": {"Owner": "bobby"}}))).rule != "t"


def test_context_keys() -> None:
    p = policy("rules:\n"
               "  - {id: prod, effect: deny, match: {connections: ['prod*'], access_levels: [Write]}}\n"
               "  - {id: east, effect: deny, match: {regions: [us-east-2]}}\n"
               "  - {id: local, effect: allow, match: {endpoint_urls: ['http://127.0.0.1:*'], access_levels: [Write]}}\n"
               "  - {id: sre, effect: allow, match: {groups: [sre], access_levels: [Permissions management]}}\n"
               "  - {id: bot, effect: deny, match: {agents: [rogue-*]}}\n"
               "  - {id: me, effect: deny, match: {users: ['mallory@*']}}\n")
    w = call("s3:PutObject", WRITE)
    assert p.evaluate(inv(w), Context(connection="production")).rule == "prod"
    assert p.evaluate(inv(w, profile="prod-eu"), Context()).rule == "prod"
    assert p.evaluate(inv(w, region="us-east-2"), Context(region="us-west-2")).rule == "east"
    assert p.evaluate(inv(w), Context(region="us-east-2")).rule == "east"
    assert p.evaluate(inv(w, endpoint_url="http://127.0.0.1:5000")).rule == "local"
    assert p.evaluate(inv(call("iam:AttachRolePolicy", PERMISSIONS)), Context(groups=("dev", "sre"))).rule == "sre"
    assert p.evaluate(inv(call("iam:AttachRolePolicy", PERMISSIONS)), Context(groups=("dev",))).effect == "review"
    assert p.evaluate(inv(call("s3:GetObject", READ)), Context(agent="rogue-7")).rule == "bot"
    assert p.evaluate(inv(call("s3:GetObject", READ)), Context(user="mallory@example.com")).rule == "me"
    assert p.evaluate(inv(call("s3:GetObject", READ)), Context(user="alice@example.com")).effect == "allow"


def test_offline_expired_fails_closed_except_reads() -> None:
    p = default_policy()
    p.offline_expired = True
    assert p.evaluate(inv(call("s3:GetObject", READ))).effect == "allow"
    with pytest.raises(Unavailable) as info:
        p.evaluate(inv(call("s3:PutObject", WRITE)))
    assert info.value.exit_status == 69
    assert p.evaluate(inv(call("iam:CreateAccessKey", WRITE))).effect == "deny"
    q = policy("offline: {offline_reads: deny}\n")
    q.offline_expired = True
    with pytest.raises(Unavailable):
        q.evaluate(inv(call("s3:GetObject", READ)))


# -- hypothesis: adding a deny rule never makes a decision more permissive -------------------------

ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:DeleteBucket", "iam:CreateRole", "iam:PassRole",
           "ec2:RunInstances", "kms:Decrypt", "sts:GetCallerIdentity"]
LEVELS = [LIST, READ, TAGGING, WRITE, PERMISSIONS, UNKNOWN]
PATTERNS = ["*", "s3:*", "s3:Get*", "s3:Put?bject", "iam:*", "*:Delete*", "ec2:RunInstances", "kms:*"]
RESOURCES = ["arn:aws:s3:::prod-a/k", "arn:aws:s3:::dev-b/k", "arn:aws:iam::123456789012:role/x"]
RES_PATTERNS = ["arn:aws:s3:::prod-*", "*dev*", "arn:aws:iam::*", "*"]

match_st = st.fixed_dictionaries({}, optional={
    "actions": st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=3),
    "access_levels": st.lists(st.sampled_from(LEVELS), min_size=1, max_size=3),
    "resources": st.lists(st.sampled_from(RES_PATTERNS), min_size=1, max_size=2),
    "groups": st.lists(st.sampled_from(["dev", "sre"]), min_size=1, max_size=2),
    "regions": st.lists(st.sampled_from(["us-east-1", "eu-*"]), min_size=1, max_size=2),
    "params": st.fixed_dictionaries({"Bucket": st.lists(st.sampled_from(["prod-*", "dev-b"]), min_size=1)}),
})
REVIEW = {"approvers": ["self"], "channels": ["terminal"], "expiry": 60, "wait": 60,
          "require_justification": False}


@st.composite
def rules_st(draw: Any, effects: tuple[str, ...] = ("allow", "review", "deny")) -> dict[str, Any]:
    effect = draw(st.sampled_from(effects))
    return {"id": f"r{draw(st.integers(0, 10**6))}", "effect": effect, "reason": None,
            "match": draw(match_st), "review": REVIEW if effect == "review" else None}


def compiled(rules: list[dict[str, Any]], defaults: dict[str, str]) -> dict[str, Any]:
    return {"format": 1, "defaults": defaults, "review": REVIEW,
            "offline": {"cache_ttl": 60, "max_staleness": 60, "offline_reads": "allow"},
            "masking": [], "rules": rules}


defaults_st = st.fixed_dictionaries({
    "list": st.sampled_from(["allow", "review", "deny"]), "read": st.sampled_from(["allow", "review", "deny"]),
    "tagging": st.sampled_from(["allow", "review", "deny"]), "write": st.sampled_from(["allow", "review", "deny"]),
    "permissions": st.sampled_from(["allow", "review", "deny"]), "unknown": st.sampled_from(["review", "deny"])})
call_st = st.builds(
    lambda acts, level, res, bucket: call(tuple(acts), level, tuple(res), {"Bucket": bucket} if bucket else {}),
    st.lists(st.sampled_from(ACTIONS), min_size=0, max_size=3), st.sampled_from(LEVELS),
    st.lists(st.sampled_from(RESOURCES), max_size=2), st.one_of(st.none(), st.sampled_from(["prod-a", "dev-b"])))
ctx_st = st.builds(Context, groups=st.lists(st.sampled_from(["dev", "sre"]), max_size=2).map(tuple),
                   region=st.sampled_from([None, "us-east-1", "eu-west-1"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rules_st(), max_size=6), rules_st(("deny",)), st.integers(0, 6), defaults_st,
       st.lists(call_st, min_size=1, max_size=3), ctx_st)
def test_adding_a_deny_rule_never_loosens(rules: list[dict[str, Any]], deny: dict[str, Any], where: int,
                                          defaults: dict[str, str], calls: list[Any], ctx: Context) -> None:
    invocation = inv(*calls)
    before = Policy(compiled(rules, defaults)).evaluate(invocation, ctx)
    extended = [*rules[:where], deny, *rules[where:]]
    after = Policy(compiled(extended, defaults)).evaluate(invocation, ctx)
    assert EFFECT_RANK[after.effect] >= EFFECT_RANK[before.effect]


@settings(max_examples=200, deadline=None)
@given(st.lists(rules_st(), max_size=6), defaults_st, call_st, ctx_st)
def test_unknown_is_never_allowed_without_saying_so(rules: list[dict[str, Any]], defaults: dict[str, str],
                                                    c: Any, ctx: Context) -> None:
    for r in rules:   # no rule names Unknown explicitly
        levels = r["match"].get("access_levels")
        if levels and UNKNOWN in levels:
            r["match"]["access_levels"] = [x for x in levels if x != UNKNOWN] or [WRITE]
    unknown_call = call(c.actions, UNKNOWN, c.resources, c.params)
    assert Policy(compiled(rules, defaults)).evaluate(inv(unknown_call), ctx).effect != "allow"


# -- the indexed, lazy, strictest-first evaluation equals the plain definition ---------------------

INDEX_PATTERNS = [*PATTERNS, "S3:get*", "s3*:Get*", "*:*", "?3:PutObject", "iam:Pass*", "kms:Decrypt"]
index_match_st = st.fixed_dictionaries({}, optional={
    "actions": st.lists(st.sampled_from(INDEX_PATTERNS), min_size=1, max_size=3),
    "access_levels": st.lists(st.sampled_from(LEVELS), min_size=1, max_size=3),
    "groups": st.lists(st.sampled_from(["dev", "sre"]), min_size=1, max_size=2),
})


@st.composite
def index_rules_st(draw: Any) -> dict[str, Any]:
    effect = draw(st.sampled_from(["allow", "review", "deny"]))
    return {"id": f"r{draw(st.integers(0, 10**6))}", "effect": effect, "reason": None,
            "match": draw(index_match_st), "review": REVIEW if effect == "review" else None}


def reference(policy: Policy, c: Any, ctx: Context) -> tuple[str, str]:
    """The definition: every rule in file order, strictest matching effect, first of it."""
    level = c.access_level if c.access_level in LEVELS else UNKNOWN
    best = None
    for rule in policy.rules:
        if rule.matches(c, level, ctx, ctx.region, None, None) and (best is None or rule.rank > best.rank):
            best = rule
    if best is None:
        effect = policy.defaults[level]
        return effect, "defaults"
    return best.effect, best.id


@settings(max_examples=300, deadline=None)
@given(st.lists(index_rules_st(), max_size=8), defaults_st, st.lists(call_st, min_size=1, max_size=4), ctx_st)
def test_indexed_evaluation_equals_the_definition(rules: list[dict[str, Any]], defaults: dict[str, str],
                                                  calls: list[Any], ctx: Context) -> None:
    p = Policy(compiled(rules, defaults))
    fresh = Policy(compiled(rules, defaults))       # evaluated before anything was built
    for c in calls:
        got = p.evaluate_call(c, None, ctx)
        want = reference(fresh, c, ctx)
        assert (got.effect, got.rule if not got.rule.startswith("defaults.") else "defaults") == want


def test_policy_values_are_immutable_and_survive_copy_and_pickle() -> None:
    import copy
    import pickle

    from hoopcli.policy.model import Decision, ReviewSpec

    review = ReviewSpec(approvers=("role:approver",), expiry=60, require_justification=True)
    decision = Decision("review", "r1", "why", review, WRITE, ("s3:DeleteBucket",),
                        ("arn:aws:s3:::b",), ({"operation": "DeleteBucket", "effect": "review", "rule": "r1"},))
    ctx = Context(user="alice", groups=("dev",), region="eu-west-1")
    for value in (review, decision, ctx):
        assert copy.copy(value) == copy.deepcopy(value) == pickle.loads(pickle.dumps(value)) == value
        assert hash(pickle.loads(pickle.dumps(value))) == hash(value)
        with pytest.raises(AttributeError):
            value.user = "mallory"  # type: ignore[union-attr]
    assert pickle.loads(pickle.dumps(decision)).calls == decision.calls
    with pytest.raises(AttributeError):
        del ctx.user  # type: ignore[misc]
    assert ctx.user == "alice"
