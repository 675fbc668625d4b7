"""YAML policy -> compiled JSON, with exact line/column errors. Imports yaml: never on the hot path.

The YAML is composed into nodes (which carry their marks) and walked by hand against the schema,
so every problem points at the line and column of the offending key or value. Aliases are
refused (no billion-laughs), the input is size-capped before parsing, globs are checked for
length and wildcard count.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from hoopcli.errors import ConfigError
from hoopcli.policy.glob import check_pattern
from hoopcli.policy.lint import known_actions, unknown_action
from hoopcli.policy.model import CHANNELS, EFFECT_RANK, FORMAT, LEVELS, MATCH_KEYS, PRESENCE, Policy
from hoopcli.policy.walker import PolicyInvalid, Problem, Stop, Walker

__all__ = ["MAX_POLICY_BYTES", "PolicyInvalid", "Problem", "check_source", "compile_file",
           "compile_source", "known_actions", "read_policy_file"]

MAX_POLICY_BYTES = 512 * 1024   # the server also caps request bodies (1 MiB by default)
MAX_RULES = 5000
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")
_LEVEL_NAMES = {lvl.lower(): lvl for lvl in LEVELS}
_LEVEL_NAMES.update({"permissions": "Permissions management", "permissions-management":
                     "Permissions management", "permissions_management": "Permissions management"})
_DEFAULT_KEYS = ("list", "read", "tagging", "write", "permissions", "unknown")
_BUILTIN_DEFAULTS = {"list": "allow", "read": "allow", "tagging": "review", "write": "review",
                     "permissions": "review", "unknown": "review"}
_BUILTIN_REVIEW = {"approvers": ["self"], "channels": list(CHANNELS), "expiry": 1800, "wait": 600,
                   "require_justification": False}
_BUILTIN_OFFLINE = {"cache_ttl": 60, "max_staleness": 3600, "offline_reads": "allow"}

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# -- schema ---------------------------------------------------------------------------------------

TOP_KEYS = ("version", "description", "defaults", "offline", "masking", "rules", "detections")
DEFAULTS_KEYS = (*_DEFAULT_KEYS, "review")
OFFLINE_KEYS = ("cache_ttl", "max_staleness", "offline_reads")
REVIEW_KEYS = ("approvers", "channels", "expiry", "wait", "require_justification", "presence")
RULE_KEYS = ("id", "description", "effect", "match", "reason", "review")
MASKING_KEYS = ("service", "operation", "paths")


def _review(w: Walker, node: Any, base: dict[str, Any], what: str) -> dict[str, Any]:
    spec: dict[str, Any] = dict(base)
    m = w.mapping(node, what, REVIEW_KEYS)
    if m is None:
        return spec
    if "approvers" in m:
        items = w.str_list(m["approvers"][1], f"{what}.approvers")
        if items is not None:
            approvers = []
            for item, value in items:
                if value != "self" and not re.match(r"^(role:|group:)?[A-Za-z0-9][\w.@:/-]{0,127}$", value):
                    w.err(item, f"approver '{value}' must be 'self', 'role:NAME' or a group name")
                value = value.removeprefix("group:")
                if value not in approvers:
                    approvers.append(value)
            if not approvers:
                w.err(m["approvers"][1], f"{what}.approvers must name at least one approver")
            else:
                spec["approvers"] = approvers
    if "channels" in m:
        items = w.str_list(m["channels"][1], f"{what}.channels")
        if items is not None:
            chans = []
            for item, value in items:
                if value not in CHANNELS:
                    w.err(item, f"unknown channel '{value}' (expected one of: {', '.join(CHANNELS)})")
                elif value not in chans:
                    chans.append(value)
            if not items:
                w.err(m["channels"][1], f"{what}.channels must name at least one channel")
            elif chans:
                spec["channels"] = chans
    for key in ("expiry", "wait"):
        if key in m:
            seconds = w.duration(m[key][1], f"{what}.{key}")
            if seconds is not None:
                spec[key] = seconds
    if "require_justification" in m:
        value = w.scalar(m["require_justification"][1], f"{what}.require_justification")
        if isinstance(value, bool):
            spec["require_justification"] = value
        else:
            w.err(m["require_justification"][1], f"{what}.require_justification must be true or false")
    if "presence" in m:
        value = w.scalar(m["presence"][1], f"{what}.presence")
        if value not in PRESENCE:
            w.err(m["presence"][1], f"{what}.presence must be one of: {', '.join(PRESENCE)}")
        elif value == "fresh":
            spec.pop("presence", None)          # the default; kept out of the compiled form
        else:
            spec["presence"] = value
            w.warn(m["presence"][1], f"{what}: presence: none lets the requester's stored login approve "
                                     "their own request, so an agent running as the requester can approve "
                                     "its own calls; it guards against mistakes, not against a hostile agent")
    if spec["approvers"] == ["self"] and spec["channels"] == ["slack"]:
        w.warn(node, f"{what}: self-approval only over Slack; the requester approves their own request")
    return spec




def _globs(w: Walker, node: Any, what: str, *, actions: bool = False,
           allow_scalars: bool = False) -> list[str] | None:
    items = w.str_list(node, what, allow_scalars=allow_scalars)
    if items is None:
        return None
    out = []
    for item, value in items:
        problem = check_pattern(value)
        if problem:
            w.err(item, f"{what}: {problem}")
            continue
        if actions and value != "*" and ":" not in value:
            w.err(item, f"{what}: '{value}' is not an IAM action (expected service:Action, like s3:GetObject or s3:*)")
            continue
        if actions:
            why = unknown_action(value)
            if why:
                w.warn(item, f"{what}: '{value}' can never match: {why}")
        out.append(value)
    if not items:
        w.warn(node, f"{what} is an empty list: this rule can never match")
    return out


def _match(w: Walker, node: Any, what: str) -> dict[str, Any] | None:
    m = w.mapping(node, what, MATCH_KEYS)
    if m is None:
        return None
    out: dict[str, Any] = {}
    for key in MATCH_KEYS:
        if key not in m:
            continue
        vnode = m[key][1]
        if key == "access_levels":
            items = w.str_list(vnode, f"{what}.access_levels")
            if items is None:
                continue
            levels = []
            for item, value in items:
                level = _LEVEL_NAMES.get(value.strip().lower())
                if level is None:
                    w.err(item, f"unknown access level '{value}' (expected one of: {', '.join(LEVELS)})")
                elif level not in levels:
                    levels.append(level)
            if not items:
                w.warn(vnode, f"{what}.access_levels is an empty list: this rule can never match")
            out[key] = levels
        elif key == "params":
            pm = w.mapping(vnode, f"{what}.params", None)
            if pm is None:
                continue
            params = {}
            for name, (_k, pnode) in pm.items():
                globs = _globs(w, pnode, f"{what}.params.{name}", allow_scalars=True)
                if globs is not None:
                    params[name] = globs
            out[key] = params
        else:
            globs = _globs(w, vnode, f"{what}.{key}", actions=key == "actions")
            if globs is not None:
                out[key] = globs
    return out


def _rule(w: Walker, node: Any, index: int, review_base: dict[str, Any], ids: dict[str, Any]) -> dict[str, Any] | None:
    what = f"rules[{index}]"
    m = w.mapping(node, what, RULE_KEYS)
    if m is None:
        return None
    ok = True
    rid = None
    if "id" not in m:
        w.err(node, f"{what} needs an id")
        ok = False
    else:
        rid = w.string(m["id"][1], f"{what}.id", 128)
        if rid is not None and not _ID_RE.match(rid):
            w.err(m["id"][1], f"{what}.id '{rid}' may use letters, digits and _ . : / - only")
            ok = False
        elif rid is not None and rid in ids:
            w.err(m["id"][1], f"duplicate rule id '{rid}' (first at line {ids[rid].start_mark.line + 1})")
            ok = False
        elif rid is not None:
            ids[rid] = m["id"][1]
            what = f"rule '{rid}'"
        else:
            ok = False
    effect = None
    if "effect" not in m:
        w.err(node, f"{what} needs an effect (allow, review or deny)")
    else:
        effect = w.choice(m["effect"][1], f"{what}.effect", tuple(EFFECT_RANK))
    if "description" in m:
        w.string(m["description"][1], f"{what}.description")
    reason = w.string(m["reason"][1], f"{what}.reason", 1000) if "reason" in m else None
    if "match" not in m:
        w.err(node, f"{what} needs a match (use `match: {{}}` to match every call)")
        match = None
    else:
        match = _match(w, m["match"][1], f"{what}.match")
    review = None
    if "review" in m:
        if effect is not None and effect != "review":
            w.err(m["review"][0], f"{what}: review options on a rule whose effect is {effect}")
        review = _review(w, m["review"][1], review_base, f"{what}.review")
    elif effect == "review":
        review = dict(review_base)
    if not ok or effect is None or match is None:
        return None
    return {"id": rid, "effect": effect, "reason": reason, "match": match,
            "review": review if effect == "review" else None, "_node": node}


def _shadow_warnings(w: Walker, rules: list[dict[str, Any]]) -> None:
    seen: list[dict[str, Any]] = []
    for rule in rules:
        for earlier in seen:
            if earlier["match"] == rule["match"] and EFFECT_RANK[earlier["effect"]] >= EFFECT_RANK[rule["effect"]]:
                w.warn(rule["_node"], f"rule '{rule['id']}' can never decide anything: rule "
                       f"'{earlier['id']}' has the same match and an equal or stricter effect")
                break
        seen.append(rule)


def _compile_node(w: Walker, root: Any) -> dict[str, Any] | None:
    if root is None:
        w.problems.append(Problem("error", 1, 1, "the policy is empty"))
        return None
    top = w.mapping(root, "the policy", TOP_KEYS)
    if top is None:
        return None
    if "version" in top:
        v = w.scalar(top["version"][1], "version")
        if v != 1:
            w.err(top["version"][1], "version must be 1")
    else:
        w.warn(root, "no `version: 1`; assuming version 1")
    if "description" in top:
        w.string(top["description"][1], "description", 10000)
    defaults = dict(_BUILTIN_DEFAULTS)
    review_base = dict(_BUILTIN_REVIEW)
    if "defaults" in top:
        dm = w.mapping(top["defaults"][1], "defaults", DEFAULTS_KEYS)
        for key in _DEFAULT_KEYS:
            if dm and key in dm:
                value = w.choice(dm[key][1], f"defaults.{key}", tuple(EFFECT_RANK))
                if value == "allow" and key == "unknown":
                    w.err(dm[key][1], "defaults.unknown cannot be allow: a call hoop cannot classify is never allowed by default")
                elif value is not None:
                    defaults[key] = value
        if dm and "review" in dm:
            review_base = _review(w, dm["review"][1], review_base, "defaults.review")
    offline: dict[str, Any] = dict(_BUILTIN_OFFLINE)
    if "offline" in top:
        om = w.mapping(top["offline"][1], "offline", OFFLINE_KEYS)
        for key in ("cache_ttl", "max_staleness"):
            if om and key in om:
                seconds = w.duration(om[key][1], f"offline.{key}")
                if seconds is not None:
                    offline[key] = seconds
        if om and "offline_reads" in om:
            value = w.choice(om["offline_reads"][1], "offline.offline_reads", ("allow", "deny"))
            if value is not None:
                offline["offline_reads"] = value
        if offline["max_staleness"] < offline["cache_ttl"]:
            w.warn(top["offline"][1], "offline.max_staleness is shorter than offline.cache_ttl")
    masking = []
    if "masking" in top:
        mnode = top["masking"][1]
        w.visit(mnode)
        if not isinstance(mnode, yaml.SequenceNode):
            w.err(mnode, "masking must be a list of {service, operation, paths}")
        else:
            for i, item in enumerate(mnode.value):
                mm = w.mapping(item, f"masking[{i}]", MASKING_KEYS)
                if mm is None:
                    continue
                entry: dict[str, Any] = {}
                for key in ("service", "operation"):
                    if key not in mm:
                        w.err(item, f"masking[{i}] needs {key}")
                    else:
                        entry[key] = w.string(mm[key][1], f"masking[{i}].{key}", 128)
                if "paths" not in mm:
                    w.err(item, f"masking[{i}] needs paths")
                else:
                    paths = w.str_list(mm["paths"][1], f"masking[{i}].paths")
                    if paths is not None and not paths:
                        w.err(mm["paths"][1], f"masking[{i}].paths must not be empty")
                    entry["paths"] = [v for _n, v in paths or ()]
                if all(entry.get(k) for k in MASKING_KEYS):
                    masking.append(entry)
    rules: list[dict[str, Any]] = []
    if "rules" in top:
        rnode = top["rules"][1]
        w.visit(rnode)
        if isinstance(rnode, yaml.ScalarNode) and rnode.tag.endswith(":null"):
            pass
        elif not isinstance(rnode, yaml.SequenceNode):
            w.err(rnode, "rules must be a list")
        elif len(rnode.value) > MAX_RULES:
            w.err(rnode, f"a policy may have at most {MAX_RULES} rules")
        else:
            ids: dict[str, Any] = {}
            for i, item in enumerate(rnode.value):
                rule = _rule(w, item, i, review_base, ids)
                if rule is not None:
                    rules.append(rule)
    _shadow_warnings(w, rules)
    for r in rules:
        del r["_node"]
    compiled = {"format": FORMAT, "defaults": defaults, "review": review_base, "offline": offline,
                "masking": masking, "rules": rules}
    if "detections" in top:      # only when present: policies without it keep their compiled form
        from hoopcli.policy.detections import compile_section

        compiled["detections"] = compile_section(w, top["detections"][1], _match)
    return compiled


def _decode(data: str | bytes) -> tuple[str | None, list[Problem]]:
    if isinstance(data, bytes):
        if len(data) > MAX_POLICY_BYTES:
            return None, [_too_big(len(data))]
        try:
            return data.decode("utf-8"), []
        except UnicodeDecodeError as exc:
            line = data[:exc.start].count(b"\n") + 1
            return None, [Problem("error", line, 1, "the policy is not valid UTF-8")]
    if len(data) > MAX_POLICY_BYTES:
        return None, [_too_big(len(data))]
    return data, []


def _too_big(size: int) -> Problem:
    return Problem("error", 0, 0, f"the policy is {size} bytes; the limit is {MAX_POLICY_BYTES} bytes (512 KiB)")


def check_source(data: str | bytes) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Validate and compile. Returns (compiled or None when there are errors, problems)."""
    text, problems = _decode(data)
    if text is None:
        return None, problems
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent):
                mark = event.start_mark
                line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
                return None, [Problem("error", line, col,
                                      "YAML anchors and aliases are not allowed in a policy")]
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        msg = " ".join(str(x) for x in (exc.context, exc.problem) if x) or "invalid YAML"
        return None, [Problem("error", line, col, f"invalid YAML: {msg}")]
    except yaml.YAMLError as exc:
        return None, [Problem("error", 0, 0, f"invalid YAML: {exc}")]
    except RecursionError:
        return None, [Problem("error", 0, 0, "invalid YAML: nested too deeply")]
    w = Walker()
    try:
        compiled = _compile_node(w, root)
    except Stop:
        compiled = None
    except RecursionError:
        w.problems.append(Problem("error", 0, 0, "the policy is nested too deeply"))
        compiled = None
    problems = sorted(w.problems, key=lambda p: (p.line, p.column))
    if compiled is None or any(p.severity == "error" for p in problems):
        return None, problems
    _ = Policy(compiled).rules  # the compiled form must load; a failure here is a bug, not a user error
    return compiled, problems


def compile_source(data: str | bytes, filename: str = "<policy>") -> tuple[dict[str, Any], list[Problem]]:
    """Compile or raise PolicyInvalid. Returns (compiled, warnings)."""
    compiled, problems = check_source(data)
    if compiled is None:
        raise PolicyInvalid(problems, filename)
    return compiled, problems


def read_policy_file(path: str | os.PathLike[str]) -> bytes:
    """Read a policy file, refusing anything over the size cap before reading it."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_POLICY_BYTES:
            raise ConfigError(f"{p}: the policy is {size} bytes; the limit is {MAX_POLICY_BYTES} bytes (512 KiB)")
        with p.open("rb") as fh:
            data = fh.read(MAX_POLICY_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read policy file {p}: {exc.strerror or exc}") from exc
    if len(data) > MAX_POLICY_BYTES:
        raise ConfigError(f"{p}: the policy is larger than {MAX_POLICY_BYTES} bytes (512 KiB)")
    return data


def compile_file(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[Problem]]:
    return compile_source(read_policy_file(path), str(path))
