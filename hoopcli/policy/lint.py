"""Lint helpers for the policy compiler: does an action pattern match anything hoop can see?"""

from __future__ import annotations

from hoopcli.policy.glob import Glob

_KNOWN: dict[str, list[str]] | None = None


def known_actions() -> dict[str, list[str]]:
    """IAM prefix -> the (lower-case) actions some AWS CLI command can produce, from hoop's action
    index. Empty when the index is unavailable (then no "unknown action" warnings are given)."""
    global _KNOWN
    if _KNOWN is None:
        found: dict[str, set[str]] = {}
        try:
            from hoopcli.parse import index

            for name in index.index()["services"]:
                data = index.service(name) or {}
                lists = [entry[0] for entry in data.get("api", {}).values()]
                lists += [call[2] for custom in data.get("custom", {}).values()
                          for call in custom.get("calls", [])]
                for acts in lists:
                    for action in acts:
                        prefix, _, _ = action.lower().partition(":")
                        found.setdefault(prefix, set()).add(action.lower())
        except (ImportError, OSError, ValueError, KeyError, TypeError, IndexError):
            return {}   # not memoised: the index may be (re)generated later
        _KNOWN = {k: sorted(v) for k, v in found.items()}
    return _KNOWN


def unknown_action(pattern: str) -> str | None:
    """Why an action pattern can never match any call hoop classifies, or None."""
    head = pattern
    for wild in ("*", "?"):
        if wild in head:
            head = head[: head.index(wild)]
    if ":" not in head:
        return None
    known = known_actions()
    if not known:
        return None
    prefix = head.split(":", 1)[0].lower()
    if prefix not in known:
        return f"no AWS CLI command hoop knows makes a '{prefix}:' call"
    g = Glob(pattern, fold=True)
    if not any(g.match(a) for a in known[prefix]):
        return "it matches no IAM action any AWS CLI command makes (a typo?)"
    return None
