"""The policy's `detections:` section: hoop's shipped detection rules (their defaults) and the
validation of what a policy file may change or add, with line/column errors like the rest.

    detections:
      shipped:                          # tune or switch off hoop's rules (docs/detections.md)
        mass-secret-reads: {count: 30, window: 15m, action: revoke}
        enumeration-burst: {enabled: false}
      rules:                            # your own: the policy's match language, a count, a window
        - id: bulk-deletes
          match: {actions: ["s3:DeleteObject"]}
          count: 100
          window: 5m

Compiled form (only present when the source has the section, so existing policies keep their
ETag): {"shipped": {id: {key: value}}, "rules": [{id, description, match, count, window,
distinct, outcome, scope, severity, action}]}. `hoopcli.detect.rules.build` turns it into
runnable rules. Imports yaml through the walker: never on the shim's hot path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import yaml

from hoopcli.policy.walker import Walker

SEVERITIES = ("low", "medium", "high", "critical")
ACTIONS = ("alert", "hold", "revoke")
SCOPES = ("session", "user")
OUTCOMES = ("any", "succeeded", "failed", "denied")
DISTINCT = ("resources", "services", "actions", "operations", "regions")
MAX_WINDOW = 6 * 3600          # the detector replays twice the longest window after a restart
MAX_COUNT = 100_000
MAX_CUSTOM = 500
# The policy's match keys a detection can use: records carry no groups and no endpoint URL.
NOT_IN_RECORDS = ("groups", "endpoint_urls")

# Shipped rules: kind, defaults and what a policy may tune. docs/detections.md explains each.
SHIPPED: dict[str, dict[str, Any]] = {
    "mass-secret-reads": {
        "title": "Mass secret reads", "kind": "distinct", "noun": "secrets read", "count": 20,
        "window": 600, "scope": "user", "severity": "high", "action": "hold"},
    "first-secret-access": {
        "title": "First access to a secret", "kind": "first_seen", "noun": "secret", "count": 1,
        "window": 0, "days": 30, "learning": 7 * 86400, "scope": "user", "severity": "low",
        "action": "alert"},
    "credential-minting": {
        "title": "Credential-minting call", "kind": "count", "noun": "credential-minting calls",
        "count": 1, "window": 600, "scope": "session", "severity": "medium", "action": "alert"},
    "defence-evasion": {
        "title": "Defence evasion", "kind": "count", "noun": "calls that blind logging or detection",
        "count": 1, "window": 600, "scope": "session", "severity": "high", "action": "hold"},
    "policy-probing": {
        "title": "Policy probing", "kind": "count", "noun": "denied calls", "count": 5,
        "window": 600, "scope": "session", "severity": "medium", "action": "alert"},
    "error-rate-spike": {
        "title": "Error-rate spike", "kind": "ratio", "noun": "failed calls", "count": 20,
        "ratio": 0.5, "window": 300, "scope": "session", "severity": "low", "action": "alert"},
    "enumeration-burst": {
        "title": "Enumeration burst", "kind": "distinct", "noun": "services listed", "count": 10,
        "window": 300, "scope": "session", "severity": "medium", "action": "alert"},
}
COMMON_KEYS = ("enabled", "severity", "action", "scope")
KIND_KEYS = {"distinct": ("count", "window"), "count": ("count", "window"),
             "ratio": ("count", "window", "ratio"), "first_seen": ("days", "learning")}
CUSTOM_KEYS = ("id", "description", "match", "count", "window", "distinct", "outcome", "scope",
               "severity", "action")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")

MatchFn = Callable[[Walker, Any, str], "dict[str, Any] | None"]


def _int(w: Walker, node: Any, what: str, low: int, high: int) -> int | None:
    value = w.scalar(node, what)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        w.err(node, f"{what} must be a whole number from {low} to {high}")
        return None
    return value


def _window(w: Walker, node: Any, what: str, low: int = 1) -> int | None:
    seconds = w.duration(node, what)
    if seconds is not None and not low <= seconds <= MAX_WINDOW:
        w.err(node, f"{what} must be between {low}s and {MAX_WINDOW // 3600}h")
        return None
    return seconds


def _common(w: Walker, key: str, node: Any, what: str, out: dict[str, Any]) -> None:
    if key == "enabled":
        value = w.scalar(node, what)
        if isinstance(value, bool):
            out[key] = value
        else:
            w.err(node, f"{what} must be true or false")
        return
    options = {"severity": SEVERITIES, "action": ACTIONS, "scope": SCOPES, "outcome": OUTCOMES,
               "distinct": DISTINCT}[key]
    value = w.choice(node, what, options)
    if value is not None:
        out[key] = value


def _shipped(w: Walker, node: Any) -> dict[str, Any]:
    found = w.mapping(node, "detections.shipped", tuple(SHIPPED))
    out: dict[str, Any] = {}
    for rid, (_knode, vnode) in (found or {}).items():
        spec = SHIPPED[rid]
        what = f"detections.shipped.{rid}"
        if isinstance(vnode, yaml.ScalarNode) and w.scalar(vnode, what) is False:
            out[rid] = {"enabled": False}      # `rule: off` switches it off
            continue
        allowed = (*COMMON_KEYS, *KIND_KEYS[spec["kind"]])
        m = w.mapping(vnode, what, allowed)
        if m is None:
            continue
        tuned: dict[str, Any] = {}
        for key, (_k, value_node) in m.items():
            path = f"{what}.{key}"
            if key in COMMON_KEYS:
                _common(w, key, value_node, path, tuned)
            elif key == "count":
                tuned[key] = _int(w, value_node, path, 1, MAX_COUNT)
            elif key == "window":
                tuned[key] = _window(w, value_node, path)
            elif key == "days":
                tuned[key] = _int(w, value_node, path, 1, 365)
            elif key == "learning":
                tuned[key] = w.duration(value_node, path)     # 0 (no learning period) to 30d
            elif key == "ratio":
                tuned[key] = _ratio(w, value_node, path)
        out[rid] = {k: v for k, v in tuned.items() if v is not None}
    return out


def _ratio(w: Walker, node: Any, what: str) -> float | None:
    value = w.scalar(node, what)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        w.err(node, f"{what} must be a number above 0 and at most 1 (0.5 is half the calls)")
        return None
    return float(value)


def _custom(w: Walker, node: Any, index: int, ids: dict[str, Any], match_fn: MatchFn) -> dict[str, Any] | None:
    what = f"detections.rules[{index}]"
    m = w.mapping(node, what, CUSTOM_KEYS)
    if m is None:
        return None
    rid = None
    if "id" not in m:
        w.err(node, f"{what} needs an id")
    else:
        rid = w.string(m["id"][1], f"{what}.id", 128)
        if rid is not None and not _ID_RE.match(rid):
            w.err(m["id"][1], f"{what}.id '{rid}' may use letters, digits and _ . : / - only")
            rid = None
        elif rid is not None and rid in SHIPPED:
            w.err(m["id"][1], f"{what}.id '{rid}' is a shipped rule: tune it under detections.shipped")
            rid = None
        elif rid is not None and rid in ids:
            w.err(m["id"][1], f"duplicate detection id '{rid}' (first at line {ids[rid].start_mark.line + 1})")
            rid = None
        elif rid is not None:
            ids[rid] = m["id"][1]
            what = f"detection '{rid}'"
    rule: dict[str, Any] = {"id": rid, "description": None, "distinct": None, "outcome": "any",
                            "scope": "session", "severity": "medium", "action": "alert"}
    for key in ("count", "window", "match"):
        if key not in m:
            w.err(node, f"{what} needs a {key}")
    if "description" in m:
        rule["description"] = w.string(m["description"][1], f"{what}.description", 1000)
    if "count" in m:
        rule["count"] = _int(w, m["count"][1], f"{what}.count", 1, MAX_COUNT)
    if "window" in m:
        rule["window"] = _window(w, m["window"][1], f"{what}.window")
    for key in ("distinct", "outcome", "scope", "severity", "action"):
        if key in m:
            _common(w, key, m[key][1], f"{what}.{key}", rule)
    if "match" in m:
        for knode, _v in getattr(m["match"][1], "value", []) or []:
            if isinstance(knode, yaml.ScalarNode) and knode.value in NOT_IN_RECORDS:
                w.err(knode, f"{what}.match: detections cannot match on {knode.value} "
                             "(records do not carry it)")
        rule["match"] = match_fn(w, m["match"][1], f"{what}.match")
    if rid is None or any(rule.get(k) is None for k in ("count", "window", "match")):
        return None
    return rule


def compile_section(w: Walker, node: Any, match_fn: MatchFn) -> dict[str, Any]:
    """The compiled `detections:` section; problems go to the walker with their line/column.
    `match_fn` is the compiler's match-block validator (the policy's own match language)."""
    out: dict[str, Any] = {"shipped": {}, "rules": []}
    if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
        return out
    top = w.mapping(node, "detections", ("shipped", "rules"))
    if top is None:
        return out
    if "shipped" in top:
        out["shipped"] = _shipped(w, top["shipped"][1])
    if "rules" in top:
        rnode = top["rules"][1]
        w.visit(rnode)
        if not isinstance(rnode, yaml.SequenceNode):
            w.err(rnode, "detections.rules must be a list")
        elif len(rnode.value) > MAX_CUSTOM:
            w.err(rnode, f"a policy may have at most {MAX_CUSTOM} detection rules")
        else:
            ids: dict[str, Any] = {}
            for i, item in enumerate(rnode.value):
                rule = _custom(w, item, i, ids, match_fn)
                if rule is not None:
                    out["rules"].append(rule)
    return out


def effective(section: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every rule in force: the shipped ones (defaults merged with the policy's tuning, the
    disabled left out) and then the policy's own, as plain dicts with every key set."""
    section = section or {}
    tuned = section.get("shipped") or {}
    out: list[dict[str, Any]] = []
    for rid, spec in SHIPPED.items():
        merged = {**spec, **(tuned.get(rid) or {}), "id": rid, "shipped": True}
        if merged.pop("enabled", True):
            out.append(merged)
    for rule in section.get("rules") or []:
        out.append({**rule, "kind": "distinct" if rule.get("distinct") else "count", "shipped": False,
                    "title": rule["id"], "noun": f"{rule['distinct']} seen" if rule.get("distinct") else "calls"})
    return out
