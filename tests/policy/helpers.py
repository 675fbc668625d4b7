"""Hand-built invocations for policy tests (the parser has its own tests)."""

from __future__ import annotations

from typing import Any

from hoopcli.parse.invocation import ApiCall, GlobalOptions, Invocation


def call(actions: str | tuple[str, ...], level: str, resources: tuple[str, ...] = (),
         params: dict[str, Any] | None = None, service: str | None = None) -> ApiCall:
    acts = (actions,) if isinstance(actions, str) else tuple(actions)
    svc = service or (acts[0].split(":", 1)[0] if acts else "unknown")
    return ApiCall(svc, "Op", acts, level, tuple(resources), dict(params or {}))


def inv(*calls: ApiCall, region: str | None = None, endpoint_url: str | None = None,
        profile: str | None = None) -> Invocation:
    svc = calls[0].service if calls else "s3"
    return Invocation(("x",), "api", svc, "op",
                      GlobalOptions(region=region, endpoint_url=endpoint_url, profile=profile),
                      {}, tuple(calls))
