"""Is a real API call within what was approved? (issue 15, item 2). Stdlib only.

The in-process runner checks every API call awscli makes. When the command needed an approval,
a call passes only if the approval showed it: its IAM actions are among the approved command's,
each of its resources is one the approved command named (an approved `arn:...:b/dir*` covers the
objects under it), and each parameter the approver saw has the value the call sends.
"""

from __future__ import annotations

from typing import Any

from hoopcli.parse.invocation import ApiCall, Invocation


def _covered(resource: str, approved: list[str]) -> bool:
    from fnmatch import fnmatchcase  # only on a reviewed command's calls

    for pattern in approved:
        if resource == pattern or ("*" in pattern and fnmatchcase(resource, pattern.replace("[", "[[]"))):
            return True
    return False


def _plain(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _comparable(value: Any) -> bool:
    if isinstance(value, (str, bool, int, float)):
        return True
    return isinstance(value, (list, tuple)) and all(isinstance(v, (str, bool, int, float)) for v in value)


def outside_approval(call: ApiCall, inv: Invocation) -> str | None:
    """None when `call` is within the approved invocation `inv`; else the refusal (one line)."""
    name = f"{call.service}:{call.operation}"
    # Dependent actions (iam:PassRole, ec2:CreateTags, KMS) are what AWS checks inside the
    # approved calls, never calls of their own: they approve no real call.
    own = [c for c in inv.api_calls if c.dependent_of is None]
    approved_actions = {a for c in own for a in c.actions}
    extra = [a for a in call.actions if a not in approved_actions]
    if extra or not call.actions:
        return (f"{name} ({', '.join(extra or ['unclassified'])}) was not part of the approved "
                f"command; run it as its own command so it can be reviewed")
    approved_resources = list(dict.fromkeys(r for c in own for r in c.resources))
    for resource in call.resources:
        if not _covered(resource, approved_resources):
            return (f"{name} on {resource} is outside what was approved "
                    f"({', '.join(approved_resources[:3]) or 'no resource'}); "
                    f"run it as its own command so it can be reviewed")
    for shown in own:
        if shown.operation != call.operation or not shown.params:
            continue
        for member, value in shown.params.items():
            if isinstance(value, dict) or (isinstance(value, str) and value.startswith(("file://", "fileb://"))):
                continue
            sent = call.params.get(member)
            if member in call.params and not _comparable(sent):
                continue  # shorthand/JSON, blobs, timestamps: awscli's own conversion of the text
            if member not in call.params or _plain(sent) != _plain(value):
                return (f"{name} sends {member}={str(_plain(sent))[:80]!r}, not the "
                        f"{str(_plain(value))[:80]!r} the approval showed; run it as its own "
                        f"command so it can be reviewed")
    return None
