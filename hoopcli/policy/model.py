"""The compiled policy and its evaluation. Stdlib-only: this is the shim's hot path.

A compiled policy is plain JSON (produced by `hoopcli.policy.compiler` from YAML, on the server
or by `hoop policy validate/test`). `Policy(data)` checks its shape strictly, builds linear-time
glob matchers and an index of rules by IAM service prefix, then evaluates:

* every API call of an invocation is matched against every rule that can apply to it;
* the strictest matching effect wins: deny > review > allow; the first rule (file order) with
  that effect supplies the rule id, the reason and the review options;
* no match: the `defaults` for the call's access level (List/Read allow, else review);
* an `allow` rule never applies to a call whose access level is Unknown unless the rule's
  `access_levels` names Unknown explicitly, and the default for Unknown is never allow;
* the invocation is as strict as its strictest call.
"""

from __future__ import annotations

from typing import Any

from hoopcli.errors import Unavailable
from hoopcli.parse.invocation import (
    ACCESS_LEVEL_RANK,
    LIST,
    PERMISSIONS,
    READ,
    READ_ONLY_LEVELS,
    TAGGING,
    UNKNOWN,
    WRITE,
    ApiCall,
    Invocation,
)
from hoopcli.policy.glob import Glob

FORMAT = 1
EFFECTS = ("allow", "review", "deny")
EFFECT_RANK = {"allow": 0, "review": 1, "deny": 2}
CHANNELS = ("terminal", "cli", "slack", "web")
PRESENCE = ("fresh", "none")     # what a self-approval must prove (docs/approvals.md)
LEVELS = (LIST, READ, TAGGING, WRITE, PERMISSIONS, UNKNOWN)
# match keys whose values are globs against one context/call value
MATCH_KEYS = ("actions", "services", "access_levels", "resources", "params", "connections",
              "regions", "endpoint_urls", "groups", "agents", "users")


class PolicyFormatError(ValueError):
    """A compiled policy (cache file or server answer) does not have the expected shape."""


class _Value:
    """Immutable value object with equality and repr from __slots__ (plain classes, not
    dataclasses: building three dataclasses costs milliseconds at import on the shim's path)."""

    __slots__: tuple[str, ...] = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:  # copy and pickle: __init__ takes the slots in order
        return type(self), tuple(getattr(self, k) for k in self.__slots__)

    def _set(self, **values: Any) -> None:
        for k, v in values.items():
            object.__setattr__(self, k, v)

    def _items(self) -> tuple[Any, ...]:
        return tuple(getattr(self, k) for k in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._items() == other._items()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._items()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"{type(self).__name__}({inner})"


class Context(_Value):
    """Who runs the command and where. Region/endpoint of the invocation's globals win."""

    __slots__ = ("user", "groups", "agent", "connection", "region", "endpoint_url")
    user: str | None
    groups: tuple[str, ...]
    agent: str | None
    connection: str | None
    region: str | None
    endpoint_url: str | None

    def __init__(self, user: str | None = None, groups: tuple[str, ...] = (), agent: str | None = None,
                 connection: str | None = None, region: str | None = None,
                 endpoint_url: str | None = None) -> None:
        self._set(user=user, groups=tuple(groups), agent=agent, connection=connection,
                  region=region, endpoint_url=endpoint_url)


class ReviewSpec(_Value):
    __slots__ = ("approvers", "channels", "expiry", "wait", "require_justification", "presence")
    approvers: tuple[str, ...]
    channels: tuple[str, ...]
    expiry: int                  # seconds an approval stays valid once granted
    wait: int                    # seconds the shim waits for a decision
    require_justification: bool
    presence: str                # self-approval needs: "fresh" (sign-in or passkey after the request) | "none"

    def __init__(self, approvers: tuple[str, ...] = ("self",), channels: tuple[str, ...] = CHANNELS,
                 expiry: int = 1800, wait: int = 600, require_justification: bool = False,
                 presence: str = "fresh") -> None:
        self._set(approvers=tuple(approvers), channels=tuple(channels), expiry=expiry, wait=wait,
                  require_justification=require_justification, presence=presence)

    @property
    def self_approval(self) -> bool:
        return "self" in self.approvers

    def to_dict(self) -> dict[str, Any]:
        out = {"approvers": list(self.approvers), "channels": list(self.channels),
               "expiry": self.expiry, "wait": self.wait,
               "require_justification": self.require_justification}
        if self.presence != "fresh":      # the default is left out: older compiled forms stay equal
            out["presence"] = self.presence
        return out

    @classmethod
    def from_dict(cls, data: Any) -> ReviewSpec:
        if not isinstance(data, dict):
            raise PolicyFormatError("review must be an object")
        try:
            approvers = tuple(_strs(data["approvers"]))
            channels = tuple(_strs(data["channels"]))
            expiry, wait = data["expiry"], data["wait"]
            just = data["require_justification"]
        except KeyError as exc:
            raise PolicyFormatError(f"review lacks {exc}") from None
        if not approvers or any(c not in CHANNELS for c in channels) or not channels:
            raise PolicyFormatError("review approvers/channels are invalid")
        if not (_int(expiry) and _int(wait)) or not isinstance(just, bool):
            raise PolicyFormatError("review expiry/wait/require_justification are invalid")
        presence = data.get("presence", "fresh")
        if presence not in PRESENCE:
            raise PolicyFormatError("review presence is invalid")
        return cls(approvers, channels, expiry, wait, just, presence)


class Decision(_Value):
    __slots__ = ("effect", "rule", "reason", "review", "access_level", "actions", "resources", "calls")
    effect: str                              # allow | review | deny
    rule: str | None                         # rule id, or "defaults.<level>"
    reason: str | None
    review: ReviewSpec | None
    access_level: str | None
    actions: tuple[str, ...]                 # what the credentials may be narrowed to
    resources: tuple[str, ...]
    calls: tuple[dict[str, Any], ...]        # per API call: operation, effect, rule

    def __init__(self, effect: str, rule: str | None, reason: str | None, review: ReviewSpec | None = None,
                 access_level: str | None = None, actions: tuple[str, ...] = (),
                 resources: tuple[str, ...] = (), calls: tuple[dict[str, Any], ...] = ()) -> None:
        self._set(effect=effect, rule=rule, reason=reason, review=review, access_level=access_level,
                  actions=tuple(actions), resources=tuple(resources), calls=tuple(calls))

    def _items(self) -> tuple[Any, ...]:   # `calls` is detail, not identity
        return tuple(getattr(self, k) for k in self.__slots__ if k != "calls")

    @property
    def allowed(self) -> bool:
        return self.effect == "allow"

    def to_dict(self) -> dict[str, Any]:
        return {"effect": self.effect, "rule": self.rule, "reason": self.reason,
                "review": self.review.to_dict() if self.review else None,
                "access_level": self.access_level, "actions": list(self.actions),
                "resources": list(self.resources), "calls": list(self.calls)}


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _strs(v: Any) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise PolicyFormatError("expected a list of strings")
    return v


def _globs(v: Any, fold: bool = False) -> tuple[Glob, ...]:
    try:
        return tuple(Glob(p, fold) for p in _strs(v))
    except ValueError as exc:
        raise PolicyFormatError(str(exc)) from None


def _any(globs: tuple[Glob, ...], value: str) -> bool:
    for g in globs:  # noqa: SIM110 - evaluation hot path: a loop is cheaper than any(<generator>)
        if g.match(value):
            return True
    return False


def _param_values(params: dict[str, Any], name: str) -> list[str] | None:
    value: Any = params
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, (str, int, float)):
            out.append(str(item))
        else:
            return None
    return out


class _Rule:
    __slots__ = ("id", "effect", "rank", "reason", "review", "pos", "actions", "services",
                 "levels", "resources", "params", "connections", "regions", "endpoint_urls",
                 "groups", "agents", "users")

    def __init__(self, data: Any, pos: int) -> None:
        if not isinstance(data, dict):
            raise PolicyFormatError("a rule must be an object")
        self.pos = pos
        self.id = data.get("id")
        self.effect: str = data.get("effect")  # type: ignore[assignment]  # checked next
        if not isinstance(self.id, str) or self.effect not in EFFECT_RANK:
            raise PolicyFormatError("a rule needs an id and an effect")
        self.rank = EFFECT_RANK[self.effect]
        self.reason = data.get("reason")
        if self.reason is not None and not isinstance(self.reason, str):
            raise PolicyFormatError("reason must be a string")
        review = data.get("review")
        self.review = ReviewSpec.from_dict(review) if review is not None else None
        if self.effect == "review" and self.review is None:
            raise PolicyFormatError(f"review rule {self.id} lacks its review options")
        m = data.get("match")
        if not isinstance(m, dict) or set(m) - set(MATCH_KEYS):
            raise PolicyFormatError(f"rule {self.id}: bad match")
        get = m.get
        self.actions = _globs(get("actions"), True) if "actions" in m else None
        self.services = _globs(get("services"), True) if "services" in m else None
        if "access_levels" in m:
            levels = _strs(get("access_levels"))
            if any(x not in LEVELS for x in levels):
                raise PolicyFormatError(f"rule {self.id}: unknown access level")
            self.levels: frozenset[str] | None = frozenset(levels)
        else:
            self.levels = None
        self.resources = _globs(get("resources")) if "resources" in m else None
        self.params: tuple[tuple[str, tuple[Glob, ...]], ...] | None = None
        if "params" in m:
            p = get("params")
            if not isinstance(p, dict):
                raise PolicyFormatError(f"rule {self.id}: params must be an object")
            self.params = tuple((str(k), _globs(v)) for k, v in p.items())
        self.connections = _globs(get("connections")) if "connections" in m else None
        self.regions = _globs(get("regions"), True) if "regions" in m else None
        self.endpoint_urls = _globs(get("endpoint_urls")) if "endpoint_urls" in m else None
        self.groups = _globs(get("groups")) if "groups" in m else None
        self.agents = _globs(get("agents")) if "agents" in m else None
        self.users = _globs(get("users")) if "users" in m else None

    def matches(self, call: ApiCall, level: str, ctx: Context, region: str | None,
                endpoint: str | None, connection: str | None) -> bool:
        # allow rules must cover every action/resource/value of the call; deny and review rules
        # apply when any one matches. So adding rules can only make decisions stricter.
        every = self.rank == 0
        if every and level == UNKNOWN and (self.levels is None or UNKNOWN not in self.levels):
            return False
        if self.levels is not None and level not in self.levels:
            return False
        if self.actions is not None:
            acts = call.actions
            if not acts:
                return False
            hits = [_any(self.actions, a) for a in acts]
            if not (all(hits) if every else any(hits)):
                return False
        if self.services is not None:
            names = {call.service, *(a.split(":", 1)[0] for a in call.actions)}
            if not any(_any(self.services, n) for n in names):
                return False
        if self.resources is not None:
            res = call.resources
            if not res:
                return False
            hits = [_any(self.resources, r) for r in res]
            if not (all(hits) if every else any(hits)):
                return False
        if self.params is not None:
            for name, globs in self.params:
                values = _param_values(call.params, name)
                if not values:
                    return False
                hits = [_any(globs, v) for v in values]
                if not (all(hits) if every else any(hits)):
                    return False
        checks: tuple[tuple[tuple[Glob, ...] | None, str | None], ...] = (
            (self.connections, connection), (self.regions, region),
            (self.endpoint_urls, endpoint), (self.agents, ctx.agent), (self.users, ctx.user))
        for wanted, value in checks:
            if wanted is not None and (value is None or not _any(wanted, value)):
                return False
        return self.groups is None or any(_any(self.groups, g) for g in ctx.groups)


def _prefixes(actions: Any) -> frozenset[str] | None:
    """IAM service prefixes a rule's action patterns are confined to; None: any service."""
    if not isinstance(actions, list):
        raise PolicyFormatError("actions must be a list")
    out = set()
    for pattern in actions:
        if not isinstance(pattern, str):
            raise PolicyFormatError("actions must be strings")
        head, colon, _rest = pattern.partition(":")
        if not colon or "*" in head or "?" in head:
            return None
        out.add(head.lower())
    return frozenset(out)


_DEFAULT_KEYS = {LIST: "list", READ: "read", TAGGING: "tagging", WRITE: "write",
                 PERMISSIONS: "permissions", UNKNOWN: "unknown"}


class Policy:
    """A compiled policy, ready to evaluate. `data` is the compiled JSON (see compiler.py)."""

    def __init__(self, data: Any, *, source: str = "compiled", etag: str | None = None,
                 version: int | None = None, checked_at: float | None = None) -> None:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise PolicyFormatError("not a compiled hoop policy (format 1)")
        self.data = data
        self.source = source              # "default" | "cache" | "server" | "file" | "compiled"
        self.etag = etag
        self.version = version
        self.checked_at = checked_at      # last time the server confirmed this policy
        self.offline_expired = False      # server unreachable for longer than max_staleness
        defaults = data.get("defaults")
        if not isinstance(defaults, dict) or set(defaults) != set(_DEFAULT_KEYS.values()):
            raise PolicyFormatError("defaults must name every access level")
        if any(v not in EFFECT_RANK for v in defaults.values()) or defaults["unknown"] == "allow":
            raise PolicyFormatError("bad default effect")
        self.defaults: dict[str, str] = {lvl: defaults[k] for lvl, k in _DEFAULT_KEYS.items()}
        self.default_review = ReviewSpec.from_dict(data.get("review"))
        offline = data.get("offline")
        if not isinstance(offline, dict):
            raise PolicyFormatError("offline settings missing")
        self.cache_ttl: int = offline.get("cache_ttl")  # type: ignore[assignment]  # checked below
        self.max_staleness: int = offline.get("max_staleness")  # type: ignore[assignment]
        self.offline_reads: str = offline.get("offline_reads")  # type: ignore[assignment]
        if not (_int(self.cache_ttl) and _int(self.max_staleness)) or \
                self.offline_reads not in ("allow", "deny"):
            raise PolicyFormatError("bad offline settings")
        masking = data.get("masking", [])
        if not isinstance(masking, list):
            raise PolicyFormatError("masking must be a list")
        self.masking: list[dict[str, Any]] = masking
        rules = data.get("rules")
        if not isinstance(rules, list):
            raise PolicyFormatError("rules must be a list")
        # Rules are indexed by IAM service prefix now and built (globs compiled) on first use:
        # a command touching one service builds only that service's rules and the global ones.
        self._raw: list[Any] = rules
        self._built: list[_Rule | None] = [None] * len(rules)
        self._any_service: list[int] = []
        self._by_prefix: dict[str, list[int]] = {}
        for i, r in enumerate(rules):
            if not isinstance(r, dict) or not isinstance(r.get("match"), dict):
                raise PolicyFormatError("each rule must be an object with a match")
            prefixes = _prefixes(r["match"].get("actions")) if "actions" in r["match"] else None
            if prefixes is None:
                self._any_service.append(i)
            else:
                for p in prefixes:
                    self._by_prefix.setdefault(p, []).append(i)
        self._ranks = [EFFECT_RANK.get(r.get("effect"), -1) for r in rules]
        self._memo: dict[frozenset[str], list[int]] = {}

    def _rule(self, i: int) -> _Rule:
        rule = self._built[i]
        if rule is None:
            rule = self._built[i] = _Rule(self._raw[i], i)
        return rule

    @property
    def rules(self) -> list[_Rule]:
        """Every rule, built (and so fully checked)."""
        return [self._rule(i) for i in range(len(self._raw))]

    # -- evaluation ---------------------------------------------------------------------------

    def _candidates(self, prefixes: frozenset[str]) -> list[int]:
        """Indexes of the rules that can apply to calls with these IAM prefixes, strictest
        effect first and in file order within an effect (so the first match decides)."""
        found = self._memo.get(prefixes)
        if found is None:
            idx = set(self._any_service)
            for p in prefixes:
                idx.update(self._by_prefix.get(p, ()))
            found = sorted(idx, key=lambda i: (-self._ranks[i], i))
            if len(self._memo) < 1024:
                self._memo[prefixes] = found
        return found

    def evaluate_call(self, call: ApiCall, invocation: Invocation | None, ctx: Context) -> Decision:
        level = call.access_level if call.access_level in ACCESS_LEVEL_RANK else UNKNOWN
        g = invocation.globals if invocation is not None else None
        region = (g.region if g else None) or ctx.region
        endpoint = (g.endpoint_url if g else None) or ctx.endpoint_url
        connection = ctx.connection or (g.profile if g else None)
        prefixes = frozenset(a.split(":", 1)[0].lower() for a in call.actions)
        best: _Rule | None = None
        for i in self._candidates(prefixes):
            rule = self._built[i] or self._rule(i)   # rules are built on first use only
            if rule.matches(call, level, ctx, region, endpoint, connection):
                best = rule
                break
        if best is None:
            effect: str = self.defaults[level]
            return Decision(effect, f"defaults.{_DEFAULT_KEYS[level]}",
                            f"no rule matched; the default for {level} calls is {effect}",
                            self.default_review if effect == "review" else None, level,
                            call.actions, call.resources)
        return Decision(best.effect, best.id, best.reason,
                        best.review if best.effect == "review" else None, level,
                        call.actions, call.resources)

    def evaluate(self, invocation: Invocation, ctx: Context | None = None) -> Decision:
        ctx = ctx or Context()
        calls = invocation.api_calls
        if not calls:
            if invocation.kind in ("help", "version"):
                return Decision("allow", None, "no AWS API call", None, LIST)
            calls = (ApiCall(invocation.service, invocation.operation or "", (), UNKNOWN),)
        worst: Decision | None = None
        per_call = []
        for call in calls:
            d = self.evaluate_call(call, invocation, ctx)
            per_call.append({"operation": call.operation, "effect": d.effect, "rule": d.rule})
            if worst is None or EFFECT_RANK[d.effect] > EFFECT_RANK[worst.effect]:
                worst = d
        assert worst is not None
        level = invocation.access_level if invocation.api_calls else UNKNOWN
        decision = Decision(worst.effect, worst.rule, worst.reason, worst.review, level,
                            tuple(invocation.actions), tuple(invocation.resources), tuple(per_call))
        if self.offline_expired and decision.effect != "deny" and (
                level not in READ_ONLY_LEVELS or self.offline_reads != "allow"):
            raise Unavailable(
                f"the hoop server has been unreachable for longer than the policy's "
                f"max staleness ({self.max_staleness}s); failing closed for this "
                f"{level} command")
        return decision

    def summary(self) -> dict[str, Any]:
        return {"source": self.source, "version": self.version, "etag": self.etag,
                "rules": len(self._raw), "checked_at": self.checked_at,
                "offline_expired": self.offline_expired}


def match_rule(match: dict[str, Any], rule_id: str = "match") -> _Rule:
    """A match block alone, with deny semantics (any one action, resource or value may match):
    how detection rules written in the policy's match language test a call (hoopcli.detect)."""
    return _Rule({"id": rule_id, "effect": "deny", "match": match}, 0)
