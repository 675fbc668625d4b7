"""The rules in force, ready to run: hoop's shipped rules (what each one selects from a call) and
the policy's own (its match language, an outcome, a count and a window).

A rule's `values(event)` says whether the event counts: None (it does not), else the values it
contributes: the secret names for mass-secret-reads, the service for enumeration-burst, one
label for a plain count. docs/detections.md explains every shipped rule and its threshold.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hoopcli.detect.events import Event, resolve
from hoopcli.parse.invocation import ApiCall
from hoopcli.policy.detections import effective
from hoopcli.policy.model import Context, match_rule

Select = Callable[[Event], "tuple[str, ...] | None"]

MINTING = frozenset({
    ("sts", "AssumeRole"), ("sts", "AssumeRoleWithSAML"), ("sts", "AssumeRoleWithWebIdentity"),
    ("sts", "GetSessionToken"), ("sts", "GetFederationToken"), ("iam", "CreateAccessKey"),
    ("iam", "CreateLoginProfile"), ("iam", "UpdateLoginProfile"), ("sso", "GetRoleCredentials"),
    ("ec2", "GetPasswordData"), ("rds", "GenerateDbAuthToken")})
EVASION = frozenset({
    ("cloudtrail", "StopLogging"), ("cloudtrail", "DeleteTrail"), ("cloudtrail", "PutEventSelectors"),
    ("cloudtrail", "DeleteEventDataStore"), ("guardduty", "DeleteDetector"),
    ("guardduty", "DisassociateFromMasterAccount"), ("guardduty", "DisassociateFromAdministratorAccount"),
    ("ec2", "DeleteFlowLogs"), ("config", "StopConfigurationRecorder"),
    ("config", "DeleteConfigurationRecorder"), ("config", "DeleteDeliveryChannel"),
    ("securityhub", "DisableSecurityHub")})


def _true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def secret_name(value: Any) -> str | None:
    """One secret's name: an ARN becomes its name (Secrets Manager's random 6-character suffix
    dropped), so the same secret by name and by ARN counts once."""
    if not isinstance(value, str) or not value:
        return None
    if value.startswith("arn:"):
        parts = value.split(":", 6)
        if len(parts) == 7 and parts[2] == "secretsmanager" and parts[5] == "secret":
            name = parts[6]
            head, dash, tail = name.rpartition("-")
            return head if dash and len(tail) == 6 and tail.isalnum() else name
        if len(parts) == 6 and parts[2] == "ssm" and parts[5].startswith("parameter"):
            return parts[5][len("parameter"):] or parts[5]
    return value[:512]


def secrets_read(ev: Event) -> tuple[str, ...] | None:
    """The secrets a successful call read: Secrets Manager values, SSM parameters with decryption."""
    if ev.status != "ok":
        return None
    p = ev.params
    names: list[Any] = []
    if ev.service == "secretsmanager":
        if ev.operation == "GetSecretValue":
            names = [p.get("SecretId")]
        elif ev.operation == "BatchGetSecretValue":
            ids = p.get("SecretIdList")
            names = list(ids) if isinstance(ids, list) else \
                ["filters:" + json.dumps(p.get("Filters"), sort_keys=True, default=str)[:400]]
    elif ev.service == "ssm" and _true(p.get("WithDecryption")):
        if ev.operation == "GetParameter":
            names = [p.get("Name")]
        elif ev.operation == "GetParameters":
            names = list(p.get("Names") or []) if isinstance(p.get("Names"), list) else []
        elif ev.operation == "GetParametersByPath":
            names = ["path:" + str(p.get("Path") or "")]
    else:
        return None
    out = tuple(n for n in (secret_name(x) for x in names) if n)
    return out or None


def _call(ev: Event) -> str:
    return f"{ev.service}.{ev.operation}"


def minting(ev: Event) -> tuple[str, ...] | None:
    return (_call(ev),) if ev.status == "ok" and (ev.service, ev.operation) in MINTING else None


def evasion(ev: Event) -> tuple[str, ...] | None:
    hit = (ev.service, ev.operation) in EVASION or (
        ev.service == "guardduty" and ev.operation == "UpdateDetector" and ev.params.get("Enable") in (False, "false"))
    return (_call(ev),) if hit else None


def denial(ev: Event) -> tuple[str, ...] | None:
    return (_call(ev),) if ev.status == "denied" else None


def attempt(ev: Event) -> tuple[str, ...] | None:
    """error-rate-spike: every call that got an answer; the value says whether it failed."""
    if ev.status == "pending":
        return None
    return ("error",) if ev.status in ("error", "denied") else ("ok",)


def listing(ev: Event) -> tuple[str, ...] | None:
    if ev.level == "List" or ev.operation.startswith(("List", "Describe")):
        return (ev.service,)
    return None


SHIPPED_SELECT: dict[str, Select] = {
    "mass-secret-reads": secrets_read, "first-secret-access": secrets_read, "credential-minting": minting,
    "defence-evasion": evasion, "policy-probing": denial, "error-rate-spike": attempt,
    "enumeration-burst": listing}
OUTCOME = {"any": ("ok", "error", "denied", "pending"), "succeeded": ("ok",), "failed": ("error", "denied"),
           "denied": ("denied",)}
DISTINCT: dict[str, Callable[[Event], tuple[str, ...]]] = {
    "resources": lambda ev: ev.resources, "services": lambda ev: (ev.service,),
    "actions": lambda ev: ev.actions, "operations": lambda ev: (_call(ev),),
    "regions": lambda ev: (ev.region,) if ev.region else ()}


def _custom_select(spec: dict[str, Any]) -> tuple[Select, frozenset[str] | None]:
    matcher = match_rule(spec["match"], spec["id"])
    statuses = OUTCOME[spec.get("outcome") or "any"]
    values = DISTINCT.get(spec.get("distinct") or "")
    needs_resources = "resources" in spec["match"] or spec.get("distinct") == "resources"

    def select(ev: Event) -> tuple[str, ...] | None:
        if ev.status not in statuses:
            return None
        if needs_resources and not ev.resolved:
            resolve(ev)
            ev.matchable = None
        if ev.matchable is None:          # built once per event, shared by every custom rule
            ev.matchable = (ApiCall(ev.service, ev.operation, ev.actions, ev.level, ev.resources, ev.params),
                            Context(user=ev.label, agent=ev.agent, connection=ev.connection, region=ev.region))
        call, ctx = ev.matchable
        if not matcher.matches(call, ev.level, ctx, ev.region, None, ev.connection):
            return None
        if values is None:
            return (_call(ev),)
        got = values(ev)
        return got or None

    # the services the rule can count (the engine looks rules up by a call's service and IAM
    # prefixes); None when a pattern could match any service
    actions, services = spec["match"].get("actions"), spec["match"].get("services")
    prefixes = None
    if isinstance(actions, list) and all(":" in a and not any(c in a.split(":", 1)[0] for c in "*?")
                                         for a in actions):
        prefixes = frozenset(a.split(":", 1)[0].lower() for a in actions)
    elif actions is None and isinstance(services, list) and not any(c in s for s in services for c in "*?"):
        prefixes = frozenset(s.lower() for s in services)
    return select, prefixes


class Rule:
    """One rule in force. `prefixes`: the IAM service prefixes it can count (None: any)."""

    __slots__ = ("id", "title", "kind", "noun", "count", "window", "scope", "severity", "action", "ratio",
                 "days", "learning", "shipped", "values", "prefixes")

    def __init__(self, spec: dict[str, Any]) -> None:
        self.id: str = spec["id"]
        self.title: str = spec.get("title") or spec["id"]
        self.kind: str = spec["kind"]                  # count | distinct | ratio | first_seen
        self.noun: str = spec.get("noun") or "calls"
        self.count: int = int(spec.get("count") or 1)
        self.window: float = float(spec.get("window") or 0)
        self.scope: str = spec.get("scope") or "session"
        self.severity: str = spec.get("severity") or "medium"
        self.action: str = spec.get("action") or "alert"
        self.ratio: float = float(spec.get("ratio") or 0)
        self.days: int = int(spec.get("days") or 30)
        self.learning: float = float(spec.get("learning") or 0)
        self.shipped: bool = bool(spec.get("shipped"))
        self.prefixes: frozenset[str] | None
        if self.shipped:
            self.values: Select = SHIPPED_SELECT[self.id]
            self.prefixes = None
        else:
            self.values, self.prefixes = _custom_select(spec)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "kind": self.kind, "count": self.count,
                "window": self.window, "scope": self.scope, "severity": self.severity,
                "action": self.action, "shipped": self.shipped}


def build(section: dict[str, Any] | None) -> list[Rule]:
    """The rules in force for a compiled policy's `detections` section (None: the shipped ones
    with their defaults)."""
    return [Rule(spec) for spec in effective(section)]
