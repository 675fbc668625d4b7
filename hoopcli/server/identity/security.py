"""Who is calling: bearer ID token verification, principals, roles, and the `require` dependency.

Every bearer is an OIDC ID token verified against the issuer's JWKS: signature, `iss`, `aud`
(= client_id), `exp`/`nbf`/`iat` with 30 s leeway, and an asymmetric algorithm allowlist (never
`none`, never HS*). Keys of an external provider come from its discovery document; keys of the
built-in dev IdP are read from its key files (the same set its JWKS endpoint publishes). An
unknown `kid` triggers a (rate-limited) refetch, so a key rotation is picked up.

Roles: everyone is a developer; groups from the configured claim map to approver / auditor /
admin through `roles:`; admin implies every role.

Session credentials (what `hoop run` and `hoop env` hand an agent) are not the user. On the API
they are accepted only as `Authorization: AWS4-HMAC-SHA256 ...`, a SigV4 signature over the
whole request (method, path, query, host, `x-amz-date`, body hash) with the credential scope's
service `hoop`, checked by the gateway's own verifier against the gateway's credential lookup: a
signature is good for 5 minutes around its `x-amz-date` and for that one request, and is compared
in constant time. Their principal carries the session (`Principal.session`), no role at all, and
`require()` refuses it on every route but those of `SESSION_ROUTES`, each with its own check.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt
from fastapi import Request

from hoopcli.errors import ConfigError, Unavailable
from hoopcli.server.errors import Forbidden, ServiceUnavailable, Unauthenticated
from hoopcli.server.settings import check_secure_url

if TYPE_CHECKING:
    from hoopcli.server.settings import Settings
    from hoopcli.server.store.db import Database

ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
LEEWAY_SECONDS = 30
MAX_TOKEN_BYTES = 16 * 1024
MAX_DOCUMENT_BYTES = 1024 * 1024
ROLES = ("developer", "approver", "auditor", "admin")


@dataclass(frozen=True)
class SessionScope:
    """What a session credential is bound to: its session, connection and agent."""

    session_id: str
    access_key_id: str
    connection: str
    agent: str | None = None


@dataclass(frozen=True)
class Principal:
    subject: str
    email: str | None
    name: str | None
    groups: tuple[str, ...]
    roles: frozenset[str]
    org: str = "default"
    session: SessionScope | None = None     # set for an agent's session credential: not the user

    @property
    def display(self) -> str:
        return self.email or self.subject

    def has(self, role: str) -> bool:
        return role in self.roles or "admin" in self.roles


class InvalidToken(Exception):
    """Internal: the reason is for tests and debugging, never sent to the caller."""


def roles_for(groups: tuple[str, ...], mapping: dict[str, tuple[str, ...]]) -> frozenset[str]:
    roles = {"developer"}
    wanted = set(groups)
    for role, role_groups in mapping.items():
        if wanted & set(role_groups):
            roles.add(role)
    if "admin" in roles:
        roles.update(ROLES)
    return frozenset(roles)


# -- key sources ---------------------------------------------------------------------------

class _Bucket:
    """Rate limit for JWKS refetches triggered by unknown key ids (attackers choose kids)."""

    def __init__(self, capacity: float = 5, per_second: float = 1 / 12) -> None:
        self.capacity, self.rate = capacity, per_second
        self.tokens, self.stamp = capacity, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class KeySet:
    """kid -> PyJWK with refetch-on-miss. Subclasses implement `fetch()` -> JWKS dict."""

    ttl_seconds = 3600.0

    def __init__(self) -> None:
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._declared: dict[str | None, str | None] = {}
        self._fetched_at = 0.0
        self._lock = threading.Lock()
        self._bucket = _Bucket()

    def fetch(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _load(self) -> None:
        data = self.fetch()
        keys: dict[str | None, jwt.PyJWK] = {}
        declared: dict[str | None, str | None] = {}
        raw = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(raw, list):
            raise Unavailable("the identity provider's JWKS has no `keys` list")
        for item in raw:
            if not isinstance(item, dict) or item.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(item)
            except (jwt.PyJWTError, ValueError, TypeError, KeyError):
                continue  # unsupported key types are skipped, not fatal
            keys[item.get("kid")] = key
            declared[item.get("kid")] = item.get("alg") if isinstance(item.get("alg"), str) else None
        self._keys, self._declared = keys, declared
        self._fetched_at = time.monotonic()

    def declared_alg(self, kid: str | None) -> str | None:
        """The `alg` the JWKS declares for this key, if any."""
        return self._declared.get(kid)

    def key_for(self, kid: str | None) -> jwt.PyJWK:
        with self._lock:
            stale = time.monotonic() - self._fetched_at > self.ttl_seconds
            if not self._keys or stale:
                try:
                    self._load()
                except Unavailable:
                    if not self._keys:
                        raise  # nothing cached: the provider must answer
            key = self._lookup(kid)
            if key is None and self._bucket.take():
                self._load()
                key = self._lookup(kid)
            if key is None:
                raise InvalidToken("unknown key id")
            return key

    def _lookup(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)


class LocalKeySet(KeySet):
    """The built-in dev IdP's keys, read from its key files (no HTTP round trip to ourselves)."""

    ttl_seconds = 60.0

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def fetch(self) -> dict[str, Any]:
        from hoopcli.server.idp.keys import jwks

        return jwks(self.settings)


def fetch_json(url: str, timeout: float) -> Any:
    """GET a JSON document with a timeout and a size cap; failures -> Unavailable."""
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "hoop-server"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(MAX_DOCUMENT_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise Unavailable(f"the identity provider answered HTTP {exc.code} for {url}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unavailable(f"the identity provider is unreachable ({url}): {reason}") from None
    if len(body) > MAX_DOCUMENT_BYTES:
        raise Unavailable(f"the identity provider's document is too large: {url}")
    try:
        return json.loads(body)
    except ValueError:
        raise Unavailable(f"the identity provider returned invalid JSON: {url}") from None


class RemoteKeySet(KeySet):
    """An external provider's keys: discovery document -> jwks_uri -> JWKS."""

    def __init__(self, issuer: str, timeout: float = 5.0) -> None:
        super().__init__()
        self.issuer = issuer.rstrip("/")
        self.timeout = timeout
        self._jwks_uri: str | None = None

    def discover(self) -> dict[str, Any]:
        doc = fetch_json(self.issuer + "/.well-known/openid-configuration", self.timeout)
        if not isinstance(doc, dict):
            raise Unavailable("the identity provider's discovery document is not a JSON object")
        if str(doc.get("issuer", "")).rstrip("/") != self.issuer:
            raise Unavailable(
                f"the identity provider's discovery document names issuer {doc.get('issuer')!r}, "
                f"not the configured {self.issuer!r}"
            )
        return doc

    def fetch(self) -> dict[str, Any]:
        if self._jwks_uri is None:
            uri = self.discover().get("jwks_uri")
            if not isinstance(uri, str):
                raise Unavailable("the identity provider's discovery document has no jwks_uri")
            try:
                self._jwks_uri = check_secure_url(uri, "jwks_uri")
            except ConfigError as exc:  # the provider is misconfigured for us
                raise Unavailable(f"refusing the identity provider's jwks_uri: {exc}") from None
        data = fetch_json(self._jwks_uri, self.timeout)
        if not isinstance(data, dict):
            raise Unavailable("the identity provider's JWKS is not a JSON object")
        return data


# -- verification --------------------------------------------------------------------------

class TokenVerifier:
    def __init__(self, settings: Settings, keys: KeySet | None = None, timeout: float = 5.0) -> None:
        self.settings = settings
        self.issuer = settings.issuer
        self.audience = settings.client_id
        self.groups_claim = settings.groups_claim
        self.roles = settings.roles
        if keys is None:
            keys = LocalKeySet(settings) if settings.dev_idp else RemoteKeySet(settings.issuer, timeout)
        self.keys = keys

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; InvalidToken otherwise; Unavailable if the IdP is down."""
        if not token or len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
            raise InvalidToken("malformed")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"bad header: {exc}") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
            raise InvalidToken(f"algorithm not allowed: {alg!r}")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("bad kid")
        jwk = self.keys.key_for(kid)
        declared = self.keys.declared_alg(kid)
        if declared is not None and declared != alg:
            raise InvalidToken("algorithm does not match the key")
        if declared is None and jwk.algorithm_name != alg and not _same_family(jwk.algorithm_name, alg):
            raise InvalidToken("algorithm does not match the key")
        try:
            claims = jwt.decode(
                token,
                jwk.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        except (ValueError, TypeError) as exc:
            raise InvalidToken(f"undecodable: {type(exc).__name__}") from None
        # OIDC Core 3.1.3.7: with several audiences `azp` must name us; when present it must match.
        aud, azp = claims.get("aud"), claims.get("azp")
        if isinstance(aud, list) and len(aud) > 1 and azp is None:
            raise InvalidToken("several audiences and no azp")
        if azp is not None and azp != self.audience:
            raise InvalidToken("azp is another client")
        return self.principal_from(claims)

    def principal_from(self, claims: dict[str, Any]) -> Principal:
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > 255:
            raise InvalidToken("bad sub")
        if self.groups_claim not in claims:
            _missing_groups_claim(sub, self.groups_claim)
        raw = claims.get(self.groups_claim) or ()
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, (list, tuple)):
            raw = ()
        groups = tuple(str(g) for g in raw if isinstance(g, (str, int)))[:256]
        email = claims.get("email") if isinstance(claims.get("email"), str) else None
        name = claims.get("name") or claims.get("preferred_username")
        return Principal(
            subject=sub,
            email=email,
            name=name if isinstance(name, str) else None,
            groups=groups,
            roles=roles_for(groups, self.roles),
        )


_warned_subjects: set[str] = set()


def _missing_groups_claim(subject: str, claim: str) -> None:
    """Log once per subject (issue 15, item 7): a token without the groups claim gives no
    groups, so no approver/auditor/admin role; `hoop login` and `hoop doctor` say so too."""
    if subject in _warned_subjects or len(_warned_subjects) > 10_000:
        return
    _warned_subjects.add(subject)
    logging.getLogger("hoopcli.server.identity").warning(
        "ID token for subject %s has no %r claim (oidc.groups_claim): no groups, so no role mapped "
        "from groups; check the identity provider's claim mapping and the scopes clients request",
        subject[:64], claim)


def _same_family(key_alg: str, token_alg: str) -> bool:
    """PyJWK defaults an RSA key without `alg` to RS256; let PS*/RS* of the same key through."""
    return key_alg[:2] in ("RS", "PS") and token_alg[:2] in ("RS", "PS")


# -- FastAPI dependencies ------------------------------------------------------------------

UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


SIGV4_SCHEME = "AWS4-HMAC-SHA256"
SESSION_SIGNING_NAME = "hoop"


def authenticate(request: Request) -> Principal:
    """The verified principal of this request, or Unauthenticated (401) / ServiceUnavailable (503)."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    header = request.headers.get("authorization") or ""
    if header.startswith(SIGV4_SCHEME + " "):
        principal = authenticate_session(request)
        request.state.principal = principal
        return principal
    token = bearer_token(request)
    if token is None:
        raise Unauthenticated("not authenticated", headers=UNAUTHORIZED)
    verifier: TokenVerifier = request.app.state.verifier
    try:
        principal = verifier.verify(token)
    except InvalidToken:
        raise Unauthenticated("invalid token", headers=UNAUTHORIZED) from None
    except Unavailable as exc:
        raise ServiceUnavailable(f"cannot verify the token: {exc.message}") from None
    request.state.principal = principal
    return principal


def _request_body(request: Request) -> bytes:
    """The body, from a sync dependency (FastAPI runs those in a worker thread of the loop)."""
    cached = getattr(request, "_body", None)
    if isinstance(cached, bytes):
        return cached
    import anyio.from_thread

    return anyio.from_thread.run(request.body)


def authenticate_session(request: Request) -> Principal:
    """A session credential's SigV4 signature over this API request -> its (roleless) principal.

    The credential is looked up through the gateway's own `Lookup` (the same cache and
    revocation as the gateway); without a gateway no session credential is accepted."""
    from hoopcli.server.gateway.errors import GatewayError
    from hoopcli.server.gateway.request import GatewayRequest
    from hoopcli.server.gateway.sigv4 import PayloadMode, SigV4Verifier

    gateway = getattr(request.app.state, "gateway", None)
    lookup = getattr(getattr(gateway, "service", None), "lookup", None)
    if lookup is None:
        raise Unauthenticated("session credentials are accepted only where the gateway runs",
                              headers=UNAUTHORIZED)
    if request.url.query and "X-Amz-" in request.url.query:
        raise Unauthenticated("presigned requests are not accepted on the API", headers=UNAUTHORIZED)
    target = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
    if request.url.query:
        target += "?" + request.url.query
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
    try:
        gw_request = GatewayRequest.build(request.method, target, headers, _request_body(request))
        verified = SigV4Verifier(lookup.secret).verify(gw_request)
    except GatewayError as exc:
        status, _ = lookup.state(_access_key_hint(request))
        reason = {"expired": "the session credential has expired",
                  "revoked": "the session credential was revoked"}.get(status, f"bad signature ({exc.code})")
        raise Unauthenticated(f"invalid session credential: {reason}", headers=UNAUTHORIZED) from None
    if verified.service != SESSION_SIGNING_NAME or verified.presigned or verified.payload is not PayloadMode.VERIFIED:
        raise Unauthenticated(f"invalid session credential: sign API requests for the service "
                              f"{SESSION_SIGNING_NAME!r} over the whole body", headers=UNAUTHORIZED)
    status, live = lookup.state(verified.access_key)
    if live is None:
        raise Unauthenticated(f"invalid session credential: {status}", headers=UNAUTHORIZED)
    user = live.principal
    return Principal(subject=user.subject, email=user.email, name=user.name, groups=(), roles=frozenset(),
                     org=live.org, session=SessionScope(live.session_id, live.access_key_id, live.connection,
                                                        live.agent))


def _access_key_hint(request: Request) -> str:
    header = request.headers.get("authorization") or ""
    marker = "Credential="
    at = header.find(marker)
    return header[at + len(marker):].split("/", 1)[0] if at >= 0 else ""


# -- what a session credential may reach ---------------------------------------------------------

def _own_session_body(request: Request, principal: Principal) -> None:
    """POST /api/v1/approvals: for the credential's own session and connection, with a reason."""
    assert principal.session is not None
    try:
        body = json.loads(_request_body(request) or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise Forbidden("a session credential opens approvals for its own session only")
    if body.get("session_id") != principal.session.session_id:
        raise Forbidden("a session credential opens approvals for its own session only")
    if body.get("connection") != principal.session.connection:
        raise Forbidden("a session credential opens approvals on its own session's connection only")
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise Forbidden("an agent's approval request needs a justification (`reason`)")


def _own_session_approval(request: Request, principal: Principal) -> None:
    """GET /api/v1/approvals/{id}: only an approval of the credential's own session."""
    from hoopcli.server.errors import NotFound
    from hoopcli.server.store.approvals import ApprovalRow

    assert principal.session is not None
    approval_id = str(request.path_params.get("approval_id", ""))
    db: Database = request.app.state.db
    with db.session() as s:
        row = s.get(ApprovalRow, approval_id) if 0 < len(approval_id) <= 64 else None
        mine = row is not None and row.org == principal.org and row.session_id == principal.session.session_id
    if not mine:
        raise NotFound("no such approval")


SESSION_ROUTES: dict[tuple[str, str], Callable[[Request, Principal], None]] = {
    ("POST", "/api/v1/approvals"): _own_session_body,
    ("GET", "/api/v1/approvals/{approval_id}"): _own_session_approval,
}
"""The only routes a session credential reaches, each with the check that keeps it to its own
session. Every other route refuses it (403), whatever roles its user holds."""


def _session_allowed(request: Request, principal: Principal) -> None:
    route = request.scope.get("route")
    check = SESSION_ROUTES.get((request.method, str(getattr(route, "path", ""))))
    if check is None:
        raise Forbidden("a session credential cannot call this endpoint; it acts for an agent, not its user")
    check(request, principal)


def require(*roles: str) -> Callable[[Request], Principal]:
    """Dependency: the caller's Principal; 401 without a valid token, 403 without one of `roles`.

    `require()` accepts any authenticated user. Admin satisfies every role. A session
    credential's principal passes only on `SESSION_ROUTES`.
    """
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles: {sorted(unknown)}")
    wanted = frozenset(roles)

    def dependency(request: Request) -> Principal:
        principal = authenticate(request)
        if principal.session is not None:
            _session_allowed(request, principal)
            if wanted:
                raise Forbidden(f"this needs the role {' or '.join(sorted(wanted))}")
            return principal
        if wanted and not (principal.roles & wanted):
            raise Forbidden(f"this needs the role {' or '.join(sorted(wanted))}")
        return principal

    dependency.__hoop_roles__ = wanted  # type: ignore[attr-defined]
    dependency.__name__ = f"require_{'_'.join(sorted(wanted)) or 'any'}"
    return dependency


def public(reason: str) -> Callable[[], None]:
    """Dependency that marks a route as deliberately unauthenticated (e.g. Slack signs its own
    requests; login pages). The authorization-matrix test accepts a route with this marker."""

    def dependency() -> None:
        return None

    dependency.__hoop_public__ = reason  # type: ignore[attr-defined]
    return dependency


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_settings(request: Request) -> Settings:
    return request.app.state.settings
