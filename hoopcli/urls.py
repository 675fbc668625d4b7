"""Which hosts count as loopback: the one rule for "plain http only to this machine".

Client (login, server URLs) and server (issuer, public URLs) use the same answer. Only the name
`localhost` itself and loopback IP literals count: a name *under* `.localhost` is special only to
resolvers that implement RFC 6761, and plain http to a name that DNS answers is not local.
Stdlib only."""

from __future__ import annotations

import ipaddress


def is_loopback_host(host: str | None) -> bool:
    """True for `localhost` (any case, optional trailing dot) and loopback IP literals
    (127.0.0.0/8, ::1, bracketed or not); False for anything else, including names under
    `.localhost` and hosts that are not valid at all."""
    if not host:
        return False
    name = host.strip()
    if name.lower().rstrip(".") == "localhost" and name.count(".") <= 1 and not name.startswith("."):
        return True
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
