"""Stage 1 of the data path: argv -> Invocation -> API calls -> IAM actions and access level.

    parse(argv)            the arguments after `aws` -> Invocation (hoopcli.parse.invocation)
    call_for(service, op)  one real API call (botocore names, final parameters) -> ApiCall

The parser (hoopcli.parse.parser, with s3 and customs) reads the compact action index in
hoopcli/parse/data (hoopcli.parse.index, written by hoopcli.parse.generate); `hoop explain` is
hoopcli.parse.explain. Stdlib only at import: the shim imports this on every call, and nothing
here is imported until it is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hoopcli.parse.invocation import ApiCall, Invocation


def parse(argv: list[str] | tuple[str, ...]) -> Invocation:
    """Parse the arguments after `aws`. Raises InvocationError for anything unclassifiable.

    Globals are accepted anywhere on the line, like the real CLI; the service, operation, API
    calls, IAM actions, access levels and resources come from the generated index in
    hoopcli/parse/data (see docs/explain.md).
    """
    from hoopcli.parse.parser import parse as _parse

    return _parse(argv)


def call_for(service: str, operation: str, params: dict[str, Any] | None = None,
             region: str | None = None) -> ApiCall:
    """Classify one real API call (botocore service model name, API operation name, final
    parameters): actions, access level and resources. Never raises for unknown names: an
    operation missing from the index is access level Unknown."""
    from hoopcli.parse.parser import call_for as _call_for

    return _call_for(service, operation, params or {}, region)
