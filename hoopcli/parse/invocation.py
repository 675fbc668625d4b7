"""argv -> Invocation: service, operation, API calls, IAM actions and access level.

Stdlib-only at module level: this runs on every `aws` call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self is 3.11+; never imported at run time

# Access levels of the Service Authorization Reference, from least to most powerful. "Unknown"
# is never treated as read-only: policy treats it like Write or stricter.
LIST = "List"
READ = "Read"
TAGGING = "Tagging"
WRITE = "Write"
PERMISSIONS = "Permissions management"
UNKNOWN = "Unknown"
ACCESS_LEVEL_RANK = {LIST: 0, READ: 1, TAGGING: 2, WRITE: 3, PERMISSIONS: 4, UNKNOWN: 5}
READ_ONLY_LEVELS = frozenset({LIST, READ})
# `aws configure` subcommands that only read the local configuration (no AWS call, no secret).
CONFIGURE_READ_ONLY = frozenset({"list", "list-profiles"})


def strictest(levels: Any) -> str:
    """The most powerful access level of `levels` (Unknown beats everything); List when empty."""
    best = LIST
    for level in levels:
        if ACCESS_LEVEL_RANK.get(level, 5) > ACCESS_LEVEL_RANK[best]:
            best = level if level in ACCESS_LEVEL_RANK else UNKNOWN
    return best


class _Value:
    """Immutable value object. Plain classes rather than dataclasses: this module is imported on
    every `aws` call and a frozen dataclass costs about half a millisecond to create.

    Each subclass lists its fields twice: in __slots__ (constructor order: replace, pickling and
    repr rely on it) and as class-level annotations without values, which is how a type checker
    sees them (an annotation alone creates no class attribute, so it does not clash with the
    slot). __init__ stores them with object.__setattr__, since __setattr__ refuses."""

    __slots__: tuple[str, ...] = ()
    _key_fields: ClassVar[tuple[str, ...]] = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._key_fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def replace(self, **changes: Any) -> Self:
        """A copy with `changes` (what dataclasses.replace did for the dataclasses these were)."""
        unknown = set(changes) - set(self.__slots__)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        return type(self)(*(changes.get(name, getattr(self, name)) for name in self.__slots__))

    __replace__ = replace   # copy.replace() (Python 3.13+)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:  # copy and pickle: __init__ takes the slots in order
        return type(self), tuple(getattr(self, name) for name in self.__slots__)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({shown})"


_set = object.__setattr__


class GlobalOptions(_Value):
    __slots__ = ("profile", "region", "endpoint_url", "output", "query", "debug", "no_verify_ssl",
                 "no_paginate", "no_sign_request", "ca_bundle", "cli_read_timeout",
                 "cli_connect_timeout", "color")
    _key_fields = __slots__
    profile: str | None
    region: str | None
    endpoint_url: str | None
    output: str | None
    query: str | None
    debug: bool
    no_verify_ssl: bool
    no_paginate: bool
    no_sign_request: bool
    ca_bundle: str | None
    cli_read_timeout: str | None
    cli_connect_timeout: str | None
    color: str | None

    def __init__(self, profile: str | None = None, region: str | None = None,
                 endpoint_url: str | None = None, output: str | None = None,
                 query: str | None = None, debug: bool = False, no_verify_ssl: bool = False,
                 no_paginate: bool = False, no_sign_request: bool = False,
                 ca_bundle: str | None = None, cli_read_timeout: str | None = None,
                 cli_connect_timeout: str | None = None, color: str | None = None) -> None:
        values = locals()
        for name in self.__slots__:
            _set(self, name, values[name])

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if value is not None and value is not False:
                out[name] = value
        return out


class ApiCall(_Value):
    """One AWS API call an invocation makes (or may make).

    service: botocore service name ("s3", "cloudwatch", "ec2"); operation: API operation name
    ("ListObjectsV2"); actions: IAM actions (("s3:ListBucket",)); access_level: one of the levels
    above; resources: ARNs or names derived from the parameters; params: the parameters (not part
    of equality or hash).

    A *dependent action* (hoopcli.parse.dependent: iam:PassRole on the role a call passes,
    ec2:CreateTags for tag specifications, KMS for an SSE-KMS key) is an ApiCall too, so policy,
    `hoop explain` and the session policy see it like any call: `dependent_of` names the API
    operation that needs it (None for a real call) and `note` says why its resource could not be
    derived (its level is then Unknown: the default policy reviews it, a session policy refuses).
    """

    __slots__ = ("service", "operation", "actions", "access_level", "resources", "params",
                 "dependent_of", "note")
    _key_fields = ("service", "operation", "actions", "access_level", "resources", "dependent_of")
    service: str
    operation: str
    actions: tuple[str, ...]
    access_level: str
    resources: tuple[str, ...]
    params: dict[str, Any]
    dependent_of: str | None
    note: str | None

    def __init__(self, service: str, operation: str, actions: tuple[str, ...], access_level: str,
                 resources: tuple[str, ...] = (), params: dict[str, Any] | None = None,
                 dependent_of: str | None = None, note: str | None = None) -> None:
        _set(self, "service", service)
        _set(self, "operation", operation)
        _set(self, "actions", actions)
        _set(self, "access_level", access_level)
        _set(self, "resources", resources)
        _set(self, "params", {} if params is None else params)
        _set(self, "dependent_of", dependent_of)
        _set(self, "note", note)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "service": self.service,
            "operation": self.operation,
            "actions": list(self.actions),
            "access_level": self.access_level,
            "resources": list(self.resources),
        }
        if self.dependent_of is not None:
            out["dependent_of"] = self.dependent_of
        if self.note:
            out["note"] = self.note
        return out


_NO_GLOBALS = GlobalOptions()


class Invocation(_Value):
    """A parsed `aws ...` command line.

    argv: the arguments after `aws`, as given; kind: api | s3 | help | version | configure | wait |
    custom; service: CLI command name ("s3api", "s3", "cloudwatch"); operation: CLI operation name
    ("list-buckets", "cp"; None for `--version`); params: not part of equality or hash.
    """

    __slots__ = ("argv", "kind", "service", "operation", "globals", "params", "api_calls")
    _key_fields = ("argv", "kind", "service", "operation", "globals", "api_calls")
    argv: tuple[str, ...]
    kind: str
    service: str
    operation: str | None
    globals: GlobalOptions
    params: dict[str, Any]
    api_calls: tuple[ApiCall, ...]

    def __init__(self, argv: tuple[str, ...], kind: str, service: str, operation: str | None,
                 globals: GlobalOptions = _NO_GLOBALS, params: dict[str, Any] | None = None,
                 api_calls: tuple[ApiCall, ...] = ()) -> None:
        _set(self, "argv", argv)
        _set(self, "kind", kind)
        _set(self, "service", service)
        _set(self, "operation", operation)
        _set(self, "globals", globals)
        _set(self, "params", {} if params is None else params)
        _set(self, "api_calls", api_calls)

    @property
    def api_operations(self) -> list[str]:
        """The API operations the command calls (dependent actions are not calls)."""
        return [c.operation for c in self.api_calls if c.dependent_of is None]

    @property
    def dependent_actions(self) -> list[dict[str, Any]]:
        """What the calls need besides their own actions (hoopcli.parse.dependent)."""
        return [{"action": a, "for": c.dependent_of, "resources": list(c.resources),
                 **({"note": c.note} if c.note else {})}
                for c in self.api_calls if c.dependent_of is not None for a in c.actions]

    @property
    def actions(self) -> list[str]:
        seen: dict[str, None] = {}
        for call in self.api_calls:
            for action in call.actions:
                seen.setdefault(action, None)
        return list(seen)

    @property
    def resources(self) -> list[str]:
        seen: dict[str, None] = {}
        for call in self.api_calls:
            for res in call.resources:
                seen.setdefault(res, None)
        return list(seen)

    @property
    def access_level(self) -> str:
        if not self.api_calls:
            if self.kind in ("help", "version"):
                return LIST
            if self.kind == "configure" and self.operation in CONFIGURE_READ_ONLY:
                return READ
            return UNKNOWN
        return strictest(c.access_level for c in self.api_calls)

    @property
    def read_only(self) -> bool:
        return self.access_level in READ_ONLY_LEVELS

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "operation": self.operation,
            "kind": self.kind,
            "api_operations": self.api_operations,
            "actions": self.actions,
            "access_level": self.access_level,
            "resources": self.resources,
            "globals": self.globals.to_dict(),
            "api_calls": [c.to_dict() for c in self.api_calls],
            "dependent_actions": self.dependent_actions,
        }


def partition_of(region: str | None) -> str:
    """The AWS partition a region belongs to, for ARNs."""
    if region and region.startswith("cn-"):
        return "aws-cn"
    if region and region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"
