"""The incoming request as the gateway's listener hands it over, validated and bounded.

Headers are single-valued: a repeated header name is refused, because the signature's
canonicalization joins repeats with commas while a decoder (or AWS) may take the first or the
last, and a guard must not read a request differently from the service it forwards to."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from hoopcli.server.gateway.errors import HeadersTooLarge, InvalidRequest

MAX_HEADERS = 128
MAX_HEADER_VALUE = 8 * 1024
MAX_HEADER_BYTES = 32 * 1024
MAX_TARGET = 16 * 1024
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class Headers(Mapping[str, str]):
    """Case-insensitive, single-valued, size-bounded HTTP headers (names kept lower case)."""

    __slots__ = ("_map",)

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        items: dict[str, str] = {}
        total = 0
        for name, value in pairs:
            lname = name.lower()
            if not lname or not set(lname) <= _TOKEN:
                raise InvalidRequest("invalid header name")
            if any(c in value for c in "\r\n\x00"):
                raise InvalidRequest(f"invalid characters in header {lname}")
            if len(value) > MAX_HEADER_VALUE:
                raise HeadersTooLarge(f"header {lname[:64]} is longer than {MAX_HEADER_VALUE} bytes")
            total += len(lname) + len(value) + 4
            if total > MAX_HEADER_BYTES or len(items) >= MAX_HEADERS:
                raise HeadersTooLarge(f"request headers exceed {MAX_HEADER_BYTES} bytes or {MAX_HEADERS} fields")
            if lname in items:
                raise InvalidRequest(f"header {lname} is repeated")
            items[lname] = value
        self._map = items

    def __getitem__(self, name: str) -> str:
        return self._map[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._map

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def __repr__(self) -> str:
        return f"Headers({sorted(self._map)})"


@dataclass(frozen=True)
class GatewayRequest:
    """method, the raw request-target (origin form: percent-encoded path and query as received),
    headers, and the body when the listener has buffered it (``None`` while it streams)."""

    method: str
    target: str
    headers: Headers
    body: bytes | None = None
    path: str = field(init=False)
    query: str = field(init=False)

    def __post_init__(self) -> None:
        if not self.method.isalpha() or not self.method.isupper() or len(self.method) > 16:
            raise InvalidRequest("invalid HTTP method")
        if len(self.target) > MAX_TARGET:
            raise HeadersTooLarge(f"request target is longer than {MAX_TARGET} bytes")
        # Origin form only: an absolute URI or authority form never names a host to us.
        if not self.target.startswith("/") or "#" in self.target:
            raise InvalidRequest("request target must be an absolute path")
        if any(ord(c) <= 0x20 or ord(c) >= 0x7F for c in self.target):
            raise InvalidRequest("request target must be percent-encoded ASCII")
        path, _, query = self.target.partition("?")
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "query", query)

    @classmethod
    def build(cls, method: str, target: str, headers: Iterable[tuple[str, str]] | Mapping[str, str],
              body: bytes | None = None) -> GatewayRequest:
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        return cls(method, target, Headers(pairs), body)


def _unquote(text: str) -> str:
    from urllib.parse import unquote_to_bytes

    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("query string is not valid UTF-8 once percent-decoded") from None


def query_pairs(query: str) -> list[tuple[str, str]]:
    """The query string's (name, value) pairs, percent-decoded, in order.

    A literal ``+`` is refused: RFC 3986 reads it as a plus, form decoding as a space, and AWS
    services differ; every SDK sends ``%2B`` or ``%20``, so nothing legitimate is lost."""
    if not query:
        return []
    if "+" in query:
        raise InvalidRequest("a literal '+' in the query string is ambiguous; send %2B or %20")
    out = []
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        out.append((_unquote(name), _unquote(value)))
    return out
