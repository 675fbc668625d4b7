"""Value detectors for free text: find the spans of secrets, decide nothing else.

Every function returns spans (start, end, kind) over the text it was given; hoopcli.masking
merges them and replaces each with a marker. Stdlib-only.
"""

from __future__ import annotations

import bisect
import json
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

Span = tuple[int, int, str]


class LazyPattern:
    """A pattern compiled on first use. This module is imported on every `aws` call, and compiling
    all its detectors up front costs milliseconds; find_spans() runs most of them only when a
    cheap substring test says they can match, so most calls never compile most of them.

    The methods forward to the compiled re.Pattern[str] with its signatures (LazyBytesPattern
    is the bytes twin). Not Generic[AnyStr]: subclassing Generic costs measurable instructions
    at import, on every `aws` call."""

    __slots__ = ("_pattern", "_flags", "_compiled")
    _pattern: str
    _flags: int
    _compiled: re.Pattern[str] | None

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self._pattern = pattern
        self._flags = flags
        self._compiled = None

    def compiled(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = re.compile(self._pattern, self._flags)
        return self._compiled

    @property
    def pattern(self) -> str:
        return self._pattern

    def search(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        return (self._compiled or self.compiled()).search(string, pos, endpos)

    def match(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        return (self._compiled or self.compiled()).match(string, pos, endpos)

    def fullmatch(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        return (self._compiled or self.compiled()).fullmatch(string, pos, endpos)

    def finditer(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> Iterator[re.Match[str]]:
        return (self._compiled or self.compiled()).finditer(string, pos, endpos)


class LazyBytesPattern:
    """LazyPattern for a bytes pattern (hoopcli.masking.stream); only what is used there."""

    __slots__ = ("_pattern", "_flags", "_compiled")
    _pattern: bytes
    _flags: int
    _compiled: re.Pattern[bytes] | None

    def __init__(self, pattern: bytes, flags: int = 0) -> None:
        self._pattern = pattern
        self._flags = flags
        self._compiled = None

    def compiled(self) -> re.Pattern[bytes]:
        if self._compiled is None:
            self._compiled = re.compile(self._pattern, self._flags)
        return self._compiled

    @property
    def pattern(self) -> bytes:
        return self._pattern

    def search(self, string: bytes, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[bytes] | None:
        return (self._compiled or self.compiled()).search(string, pos, endpos)


MARKER_RE = LazyPattern(r"\[masked:[a-z0-9-]{1,32}:[0-9a-f]{8}\]")

# Credential key ids (long-term AKIA, temporary ASIA, bearer ABIA, context ACCA). Unique ids of
# users/roles/groups (AIDA, AROA, AGPA, ...) are identifiers, not credentials: masked only when
# asked (Masker(unique_ids=True)), because they appear in ordinary output (get-caller-identity).
KEY_ID_RE = LazyPattern(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])")
UNIQUE_ID_RE = LazyPattern(
    r"(?<![A-Za-z0-9])(?:AIDA|AROA|AGPA|AIPA|ANPA|ANVA|APKA|ASCA)[A-Z0-9]{16,17}(?![A-Za-z0-9])"
)
# A bare 40-character secret access key: only next to a key id or after a label.
# The *_LABELLED_RE, QUERY_SECRET_RE, BEARER_RE and DEBUG_HEADER_RE patterns are lowercase and run
# on an ASCII-lowercased copy of the text (same indices): much faster than (?i).
SECRET_KEY_CANDIDATE_RE = LazyPattern(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])")
SECRET_KEY_LABELLED_RE = LazyPattern(
    r"(?:aws_?secret_?access_?key|secret_?access_?key|aws_?secret_?key|secret_?key)"
    r"[\"']?[\s\"':=|,>]{1,12}([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
)
KEY_ID_WINDOW = 300  # characters either side of a key id in which a 40-char token is its secret

# Session tokens: the protobuf-in-base64 prefixes STS uses, or any long token after a label.
SESSION_TOKEN_RE = LazyPattern(
    r"(?<![A-Za-z0-9/+])(?:IQoJb3JpZ2lu|IQoDYXdz|FwoGZXIvYXdz|FQoGZXIvYXdz|AQoDYXdz|AQoEXAMPLE)"
    r"[A-Za-z0-9/+=%]{20,}"
)
SESSION_TOKEN_LABELLED_RE = LazyPattern(
    r"(?:aws_?session_?token|aws_?security_?token|session_?token|security_?token|"
    r"x-amz-security-token)[\"']?[\s\"':=|,>]{1,12}b?[\"']?([A-Za-z0-9/+=%]{16,})"
)
PRIVATE_KEY_RE = LazyPattern(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
    r".*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)
JWT_RE = LazyPattern(
    r"(?<![A-Za-z0-9_.-])ey[A-Za-z0-9_-]{8,}\.ey[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"
    r"(?![A-Za-z0-9_.\[-])"
)
# Signatures and tokens carried in URLs (presigned URLs, SigV2 query auth, --debug request lines).
QUERY_SECRET_RE = LazyPattern(
    r"(?<=[?&;])(x-amz-signature|x-amz-security-token|signature)="
    r"([^&\s\"'<>\\]+)"
)
BEARER_RE = LazyPattern(r"\b(?:bearer|basic)\s+([A-Za-z0-9._~+/=-]{12,})")

# `name = value` forms. The name must look like a secret (keyword) or be a member name that
# botocore flags as a secret somewhere (_names.json); is_secret_name() then filters.
KEYWORDS = (
    r"passw(?:or)?d|passphrase|secret|token|pwd|api_?key|private_?key|credential|plaintext|"
    r"cookie|otp|auth_?code|authorization_?code|client_?secret"
)
_KEYWORD_RE = LazyPattern(KEYWORDS, re.IGNORECASE)
NOT_SECRET_RE = LazyPattern(
    r"(?i)(?:id|ids|arn|arns|name|names|type|types|status|date|time|description|length|version|"
    r"expiration|expires|count|enabled|required|policy|age|ttl|format|source|location|url|uri|"
    r"provider|config|configuration|rotation|reuse|prevention|used|duration|list|set|kms.*|"
    r"expression|selection|validity|days|hours|minutes|seconds|host|tokens|ciphertext|"
    r"ciphertextblob|generation|mode|endpoint|enforcement|options|settings|hint|"
    r"(?:next|continuation|client|clientrequest|idempotency|pagination|starting|change|sync|"
    r"page|resume|request|sequence|upload|marker|fleet|cursor|receipt|creation|purchase)_?token)$"

)
_FLAG_PREFIX_RE = LazyPattern(r"(?:last|is|has|min|max|num|total|minimum|maximum)[A-Z_]")
VALUE_ALT = r"\"(?:[^\"\\\n]|\\.)*\"?|'[^'\n]*'?|[^\s,;&\"'<>|{}\[\]]+"
NOT_VALUES = frozenset({"", "true", "false", "null", "none", "None", "-", "***", "****", "*"})


@lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """A member/field/variable name whose value is a secret (by keyword or flagged name)."""
    if not name:
        return False
    base = name.rsplit(".", 1)[-1]
    low = base.lower()
    # cheap prefilter (most names, e.g. "Buckets", "CreationDate"): no keyword, not flagged
    if not any(k in low for k in _KEYWORD_SUBSTRINGS) and base not in flagged_names():
        return False
    if NOT_SECRET_RE.search(base) or _FLAG_PREFIX_RE.match(base):
        return False
    return bool(_KEYWORD_RE.search(base)) or base in flagged_names()


@lru_cache(maxsize=1)
def flagged_names() -> frozenset[str]:
    path = Path(__file__).resolve().parent / "data" / "_names.json"
    try:
        return frozenset(json.loads(path.read_text()))
    except (OSError, ValueError):
        return frozenset()


# Any `name: value` / `name = value` / `<name>value</name>`; is_secret_name() decides in Python
# (a keyword alternation inside the regex backtracks badly on long words).
PAIR_RE = LazyPattern(
    rf"(?<![A-Za-z0-9_.-])([A-Za-z][A-Za-z0-9_.-]{{1,80}})[\"']?\s*[:=]\s*b?({VALUE_ALT})"
)
XML_RE = LazyPattern(r"<([A-Za-z][A-Za-z0-9_.-]{1,80})>([^<]+)</\1>")


def kind_for_name(name: str) -> str:
    low = name.lower().replace("_", "").replace("-", "")
    if "passw" in low or low.endswith("pwd") or "passphrase" in low:
        return "password"
    if "secretaccesskey" in low or low.endswith("secretkey"):
        return "secret-key"
    if "sessiontoken" in low or "securitytoken" in low:
        return "session-token"
    if "privatekey" in low:
        return "private-key"
    if "token" in low:
        return "token"
    return "secret"


def _unquote(value: str, start: int) -> tuple[int, int] | None:
    """Span of the value's content without quotes, or None when it is not worth masking."""
    end = start + len(value)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        start, end, value = start + 1, end - 1, value[1:-1]
    if value in NOT_VALUES or MARKER_RE.fullmatch(value) or value.startswith(("[masked:", "arn:")):
        return None
    return start, end


_ASCII_LOWER = {c: c + 32 for c in range(65, 91)}
_SESSION_PREFIXES = ("IQoJb3JpZ2lu", "IQoDYXdz", "FwoGZXIvYXdz", "FQoGZXIvYXdz", "AQoDYXdz",
                     "AQoEXAMPLE")


def _lower(text: str) -> str:
    """ASCII-lowercased copy with the same indices (str.lower() may change lengths)."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def find_spans(text: str, *, unique_ids: bool = False, debug: bool = False) -> list[Span]:
    """All secret spans in `text` (may overlap; merge_spans resolves). Each detector runs only
    when a cheap substring test says it can match (regex scans dominate the cost)."""
    spans: list[Span] = []
    low = _lower(text)
    if "-----BEGIN " in text:
        spans.extend((m.start(), m.end(), "private-key") for m in PRIVATE_KEY_RE.finditer(text))
    key_ids: list[int] = []
    if "AKIA" in text or "ASIA" in text or "ABIA" in text or "ACCA" in text:
        key_ids = [m.start() for m in KEY_ID_RE.finditer(text)]
        spans.extend((s, s + 20, "access-key-id") for s in key_ids)
    if unique_ids:
        spans.extend((m.start(), m.end(), "principal-id") for m in UNIQUE_ID_RE.finditer(text))
    # the label patterns are lowercase and run on `low` (same indices as `text`)
    if "secret" in low:
        spans.extend((m.start(1), m.end(1), "secret-key") for m in SECRET_KEY_LABELLED_RE.finditer(low))
    for lo, hi in _windows(key_ids, len(text)):
        for m in SECRET_KEY_CANDIDATE_RE.finditer(text, lo, hi):
            if _looks_random(m.group()):
                spans.append((m.start(), m.end(), "secret-key"))
    if any(p in text for p in _SESSION_PREFIXES):
        spans.extend((m.start(), m.end(), "session-token") for m in SESSION_TOKEN_RE.finditer(text))
    if "token" in low:
        spans.extend((m.start(1), m.end(1), "session-token")
                     for m in SESSION_TOKEN_LABELLED_RE.finditer(low))
    if ".ey" in text:
        spans.extend((m.start(), m.end(), "jwt") for m in JWT_RE.finditer(text))
    if "signature=" in low or "security-token=" in low:
        for m in QUERY_SECRET_RE.finditer(low):
            kind = "session-token" if "token" in m.group(1) else "signature"
            spans.append((m.start(2), m.end(2), kind))
    if "bearer" in low or "basic" in low:
        spans.extend((m.start(1), m.end(1), "token") for m in BEARER_RE.finditer(low))
    if ":" in text or "=" in text:
        covered = -1  # like finditer: a name inside an earlier match's value is not a name
        for start in _name_starts(low):
            if start < covered:
                continue
            pair = PAIR_RE.match(text, start)
            if pair is None:
                continue
            covered = pair.end()
            if is_secret_name(pair.group(1)):
                inner = _unquote(pair.group(2), pair.start(2))
                if inner:
                    spans.append((inner[0], inner[1], kind_for_name(pair.group(1))))
    if "</" in text:
        for m in XML_RE.finditer(text):
            if is_secret_name(m.group(1)) and not MARKER_RE.fullmatch(m.group(2)):
                spans.append((m.start(2), m.end(2), kind_for_name(m.group(1))))
    if debug:
        spans.extend(_debug_spans(text, low))
    if "[masked:" in text:
        spans = _outside_markers(text, spans)
    return spans


def _outside_markers(text: str, spans: list[Span]) -> list[Span]:
    """Drop spans that touch an existing marker (masking twice changes nothing)."""
    markers = [(m.start(), m.end()) for m in MARKER_RE.finditer(text)]
    starts = [a for a, _ in markers]
    kept = []
    for start, end, kind in spans:
        i = bisect.bisect_right(starts, end) - 1
        hit = False
        while i >= 0 and not hit:
            a, b = markers[i]
            if b <= start:
                break
            hit = a < end and start < b
            i -= 1
        if not hit:
            kept.append((start, end, kind))
    return kept


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")
_KEYWORD_SUBSTRINGS = ("passw", "pwd", "passphrase", "secret", "token", "apikey", "api_key",
                       "privatekey", "private_key", "credential", "plaintext", "cookie", "otp",
                       "authcode", "auth_code", "authorizationcode", "authorization_code")


@lru_cache(maxsize=1)
def _name_substrings() -> tuple[str, ...]:
    """Keywords plus every flagged member name (lowercase) that contains none of them."""
    extra = {n.lower() for n in flagged_names()
             if not any(k in n.lower() for k in _KEYWORD_SUBSTRINGS)}
    return _KEYWORD_SUBSTRINGS + tuple(sorted(extra))


def _name_starts(low: str) -> list[int]:
    """Start offsets of the words that contain a secret-looking name (found with str.find, which
    is far cheaper than a regex scan of the whole text)."""
    starts: set[int] = set()
    for sub in _name_substrings():
        idx = low.find(sub)
        while idx != -1:
            start = idx
            while start > 0 and low[start - 1] in _NAME_CHARS:
                start -= 1
            while start < idx and not low[start].isalpha():
                start += 1
            # a word inside an ARN or a path ("arn:aws:secretsmanager:...") is not a field name
            if not (start and low[start - 1] in ":/"):
                starts.add(start)
            idx = low.find(sub, idx + len(sub))
    return sorted(starts)


def _windows(key_ids: list[int], size: int) -> list[tuple[int, int]]:
    """Merged regions within KEY_ID_WINDOW characters of a key id (where its secret may sit)."""
    out: list[tuple[int, int]] = []
    for start in key_ids:
        lo, hi = max(0, start - KEY_ID_WINDOW - 40), min(size, start + 20 + KEY_ID_WINDOW + 40)
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def _looks_random(token: str) -> bool:
    """A 40-char token shaped like a secret key: mixed case and a digit or / or +."""
    return (
        any(c.islower() for c in token)
        and any(c.isupper() for c in token)
        and any(c.isdigit() or c in "/+" for c in token)
    )


# --debug: header values (botocore logs header dicts as reprs, and raw HTTP lines).
DEBUG_HEADER_RE = LazyPattern(
    r"([\"']?(?:authorization|proxy-authorization|x-amz-security-token|"
    r"x-amz-server-side-encryption-customer-key(?:-md5)?|x-amz-copy-source-server-side-"
    r"encryption-customer-key|x-api-key|cookie|set-cookie)[\"']?\s*[:=]\s*b?)"
    r"(\"[^\"\n]*\"|'[^'\n]*'|[^\r\n,}]+)"
)
SECURESTRING_VALUE_RE = LazyPattern(r"(?i)[\"']?Value[\"']?\s*[:=]\s*(\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*')")


_DEBUG_HEADER_WORDS = ("authorization", "security-token", "customer-key", "x-api-key", "cookie")


def _debug_spans(text: str, low: str) -> list[Span]:
    spans: list[Span] = []
    headers = DEBUG_HEADER_RE.finditer(low) if any(w in low for w in _DEBUG_HEADER_WORDS) else ()
    for m in headers:
        raw = text[m.start(2):m.end(2)]
        inner = _unquote(raw.strip(), m.start(2) + (len(raw) - len(raw.lstrip())))
        if inner:
            spans.append((inner[0], inner[1], "authorization"))
    if "SecureString" in text:
        # SSM bodies: the parameter value sits next to "Type": "SecureString" (request or reply).
        for line_match in re.finditer(r"[^\n]*SecureString[^\n]*", text):
            base = line_match.start()
            for m in SECURESTRING_VALUE_RE.finditer(line_match.group()):
                inner = _unquote(m.group(1), base + m.start(1))
                if inner:
                    spans.append((inner[0], inner[1], "secret"))
    return spans


def merge_spans(spans: list[Span]) -> list[Span]:
    """Non-overlapping spans, left to right; an overlap is merged into one (first kind wins,
    except that a longer earlier span absorbs the later one)."""
    if not spans:
        return []
    spans = sorted(spans, key=lambda s: (s[0], -s[1]))
    out = [spans[0]]
    for start, end, kind in spans[1:]:
        last_start, last_end, last_kind = out[-1]
        if start < last_end:
            if end > last_end:
                out[-1] = (last_start, end, last_kind)
            continue
        out.append((start, end, kind))
    return out
