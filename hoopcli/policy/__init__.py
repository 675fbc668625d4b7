"""hoop's policy engine: model, evaluation, local cache (stdlib-only) and the YAML compiler.

    from hoopcli import policy
    p = policy.load_cached(layout)                       # fast, no network
    p = policy.refresh(layout, client)                   # TTL + conditional GET + offline rules
    d = p.evaluate(invocation, policy.Context(user=..., groups=(...), agent=..., connection=...))
    d.effect, d.rule, d.reason, d.review

Importing this package imports no YAML, requests or click: the shim calls it on every `aws`.
The compiler (YAML -> compiled JSON, with line/column errors) is `hoopcli.policy.compiler`.
"""

from __future__ import annotations

from hoopcli.policy.cache import CacheRefused, default_policy, load_cached, read_cached, refresh, write_cache
from hoopcli.policy.model import EFFECT_RANK, Context, Decision, Policy, PolicyFormatError, ReviewSpec

ensure_fresh = refresh   # the name the shim uses: the policy to decide with, refreshed per TTL

__all__ = ["EFFECT_RANK", "CacheRefused", "Context", "Decision", "Policy", "PolicyFormatError",
           "ReviewSpec", "default_policy", "ensure_fresh", "load_cached", "read_cached", "refresh",
           "write_cache"]
