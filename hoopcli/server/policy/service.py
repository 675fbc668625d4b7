"""The server's policy decision: the same evaluation as the client, on the server's policy.

`decide()` is called by the credential broker before vending credentials and by approvals
before opening a request. The server's answer wins over whatever the client cached. The
Decision carries the invocation's actions and resources so the broker can narrow the vended
session policy to exactly what was allowed.

Which policy: the newest pushed version in the database; else `settings.policy_file`; else the
shipped default. Compiled policies are memoised by content hash, and which version is newest is
read from the database at most once per HEAD_TTL seconds per process (a push through this
process is seen at once; one through another replica within HEAD_TTL), so a decision usually
costs the evaluation alone.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from hoopcli.errors import ConfigError, Unavailable
from hoopcli.parse.invocation import Invocation
from hoopcli.policy.cache import default_policy
from hoopcli.policy.model import Context, Decision, Policy
from hoopcli.server.errors import Conflict, NotFound, Unprocessable
from hoopcli.server.nonblocking import may_block
from hoopcli.server.singleflight import SingleFlight

if TYPE_CHECKING:
    from hoopcli.server.store.db import Database

_lock = threading.Lock()
_memo: dict[str, Policy] = {}
_file_memo: dict[str, tuple[float, int, Policy, str, str]] = {}
_default: tuple[Policy, str, str] | None = None
# (id(db), org) -> (monotonic time read, (version, sha) or None): the newest version, re-read
# from the database after HEAD_TTL seconds (other replicas' pushes) or at once after a push here
HEAD_TTL = 1.0
_heads: dict[tuple[int, str], tuple[float, tuple[int, str] | None]] = {}
_head_generations: dict[tuple[int, str], int] = {}     # bumped by each push here
_head_reads: SingleFlight[tuple[int, str] | None] = SingleFlight()
log = logging.getLogger("hoopcli.server")
log_policy = logging.getLogger("hoopcli.server.policy")   # pushes, as the policy API logged them


def check_policy_file(settings: Any) -> None:
    """At startup: a `policy_file` that is missing or does not compile stops the server, with
    the file's own error (path, line, column) for the operator."""
    _file_policy(settings)


class PolicyFileBroken(Unavailable):
    """The policy file became unusable while the server runs (edited, removed). Clients get a
    503 that names no server path; the operator finds the reason in the server log."""


def _file_policy(settings: Any) -> tuple[Policy, str, str] | None:
    """(policy, source text, sha256 of compiled) from settings.policy_file, or None."""
    path = getattr(settings, "policy_file", None)
    if not path:
        return None
    from hoopcli.policy.compiler import compile_file, read_policy_file
    from hoopcli.server.store.policy import canonical, sha256_of

    try:
        st = path.stat()
    except OSError as exc:
        raise ConfigError(f"policy_file {path}: {exc.strerror or exc}") from exc
    key = str(path)
    with _lock:
        hit = _file_memo.get(key)
        if hit and hit[0] == st.st_mtime and hit[1] == st.st_size:
            return hit[2], hit[3], hit[4]
    may_block("policy file compile")
    compiled, _warnings = compile_file(path)
    source = read_policy_file(path).decode("utf-8")
    sha = sha256_of(canonical(compiled))
    policy = Policy(compiled, source="file", etag=f'"{sha}"', version=0)
    with _lock:
        _file_memo[key] = (st.st_mtime, st.st_size, policy, source, sha)
    return policy, source, sha


def baseline(settings: Any) -> tuple[Policy, str, str]:
    """The policy in force before any push: (policy, YAML source, sha256 of compiled)."""
    try:
        found = _file_policy(settings)
    except ConfigError as exc:
        log.error("policy_file unusable: %s", exc.message)
        raise PolicyFileBroken("the server's policy file cannot be used; an administrator must "
                               "fix it (the server log says why)") from exc
    if found is not None:
        return found
    global _default
    if _default is None:
        may_block("default policy load")
        from importlib import resources

        from hoopcli.server.store.policy import canonical, sha256_of

        policy = default_policy()
        source = resources.files("hoopcli.policy.data").joinpath("default.yaml").read_text("utf-8")
        sha = sha256_of(canonical(policy.data))
        policy.etag, policy.version = f'"{sha}"', 0
        _default = (policy, source, sha)
    return _default


def _latest_head(db: Any, org: str) -> tuple[int, str] | None:
    from hoopcli.server.store import policy as store

    key = (id(db), org)
    now = time.monotonic()
    hit = _heads.get(key)
    if hit is not None and now - hit[0] < HEAD_TTL:
        return hit[1]
    may_block("policy head read")
    generation = _head_generations.get(key, 0)

    def read() -> tuple[int, str] | None:
        with db.session() as session:
            head = store.latest_sha(session, org)
        with _lock:
            if _head_generations.get(key, 0) == generation:   # no push here while it read
                _heads[key] = (now, head)
        return head

    # a caller after a push joins no read that began before it (the generation is in the key)
    return _head_reads.do((key, generation), read)


def forget_head(db: Any, org: str) -> None:
    """A version was stored: the next decision reads the newest from the database."""
    key = (id(db), org)
    with _lock:
        _head_generations[key] = _head_generations.get(key, 0) + 1
        _heads.pop(key, None)


def current_policy(db: Any, settings: Any, org: str = "default") -> Policy:
    """The policy in force: newest stored version, else the baseline."""
    from hoopcli.server.store import policy as store

    for _attempt in range(2):
        head = _latest_head(db, org)
        if head is None:
            return baseline(settings)[0]
        version, sha = head
        with _lock:
            cached = _memo.get(sha)
        if cached is not None and cached.version == version:
            return cached
        may_block("policy version read")
        with db.session() as session:
            row = store.get_version(session, version, org)
            if row is None:        # the database changed under a cached head: read it again
                forget_head(db, org)
                continue
            policy = Policy(json.loads(row.compiled), source="server", etag=store.etag_of(sha),
                            version=version)
        with _lock:
            if len(_memo) > 64:
                _memo.clear()
            _memo[sha] = policy
        return policy
    raise Unavailable("the policy store changed while it was read; try again")


def context_for(settings: Any, principal: Any, connection: str | None, agent: str | None = None) -> Context:
    """The evaluation context of a principal on a connection. `groups` also carries the
    principal's roles as "role:<name>" so rules can match roles as well as IdP groups."""
    conn = (getattr(settings, "connections", None) or {}).get(connection) if connection else None
    groups = tuple(getattr(principal, "groups", ()) or ())
    roles = tuple(f"role:{r}" for r in sorted(getattr(principal, "roles", ()) or ()))
    return Context(user=getattr(principal, "email", None) or getattr(principal, "subject", None),
                   groups=groups + roles, agent=agent, connection=connection,
                   region=getattr(conn, "region", None), endpoint_url=getattr(conn, "endpoint_url", None))


def decide(db: Any, settings: Any, principal: Any, invocation: Invocation, connection: str | None,
           *, agent: str | None = None) -> Decision:
    """Evaluate `invocation` for `principal` on `connection` with the server's current policy."""
    policy = current_policy(db, settings, getattr(principal, "org", "default") or "default")
    return policy.evaluate(invocation, context_for(settings, principal, connection, agent))


# -- distribution and history (the policy API and the console's policy page) -------------------

def current(db: Database, settings: Any, org: str) -> dict[str, Any]:
    """The policy in force: the newest pushed version, else version 0 (the file or the default)."""
    from hoopcli.server.store import policy as store

    with db.session() as session:
        row = store.latest(session, org)
        if row is not None:
            out = row.summary()
            out.update(source=row.source, compiled=json.loads(row.compiled), origin="pushed")
            return out
    policy, source, sha = baseline(settings)
    return {"version": 0, "sha256": sha, "etag": f'"{sha}"', "created_at": None,
            "created_by": None, "comment": None, "diff": "", "source": source,
            "compiled": policy.data, "origin": "file" if policy.source == "file" else "default"}


def for_client(db: Database, settings: Any, org: str,
               if_none_match: str | None) -> tuple[str, dict[str, Any] | None]:
    """(ETag, the policy in force), or (ETag, None) when `if_none_match` already names it."""
    if if_none_match:   # the common case (every client, every TTL): answer from the hash alone
        etag = current_etag(db, settings, org)
        if etag_matches(if_none_match, etag):
            return etag, None
    now = current(db, settings, org)
    return now["etag"], now


def etag_matches(header: str | None, etag: str) -> bool:
    """Does an If-None-Match header name `etag` (or `*`)? Weak tags compare by their value."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    for part in header.split(","):
        tag = part.strip()
        tag = tag.removeprefix("W/")
        if tag == etag:
            return True
    return False


def current_etag(db: Database, settings: Any, org: str) -> str:
    """The ETag of the policy in force, from its hash alone (the conditional GET's fast path)."""
    from hoopcli.server.store import policy as store

    with db.session() as session:
        head = store.latest_sha(session, org)
    return store.etag_of(head[1] if head else baseline(settings)[2])


def push(db: Database, settings: Any, principal: Any, source: str,
         comment: str | None) -> tuple[dict[str, Any], bool]:
    """Validate `source` and store it as a new version -> (summary with warnings, created).
    Unprocessable lists every problem with line and column."""
    from hoopcli.policy.compiler import check_source

    compiled, problems = check_source(source)
    listed = [p.to_dict() for p in problems]
    if compiled is None:
        first = next((p for p in problems if p.severity == "error"), None)
        message = f"invalid policy: line {first.line}, column {first.column}: {first.message}" if first else "invalid policy"
        raise Unprocessable(message, detail={"message": message, "problems": listed})
    warnings = [p for p in listed if p["severity"] == "warning"]
    summary, created = _store(db, settings, principal, source, compiled, comment, warnings)
    summary.update(created=created, warnings=warnings)
    if created:
        log_policy.info("policy version %s pushed by %s (org %s, sha256 %s)", summary["version"],
                        principal.subject, principal.org, summary["sha256"][:12])
    return summary, created


def _store(db: Database, settings: Any, principal: Any, source: str, compiled: dict[str, Any],
           comment: str | None, warnings: list[dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    from sqlalchemy.exc import IntegrityError

    from hoopcli.server.store import policy as store

    for _attempt in range(3):
        try:
            with db.session() as session:
                previous = store.latest(session, principal.org)
                if previous is not None:
                    prev_source, prev_name = previous.source, f"version {previous.version}"
                else:
                    prev_source, prev_name = baseline(settings)[1], "version 0 (built-in)"
                row, created = store.add_version(
                    session, source=source, compiled=compiled, created_by=principal.subject,
                    created_by_email=principal.email, comment=comment, warnings=warnings,
                    previous_source=prev_source, previous_name=prev_name, org=principal.org)
                summary = row.summary()
            forget_head(db, principal.org)
            return summary, created
        except IntegrityError:   # a concurrent push took this version number; number again
            continue
    raise Conflict("concurrent policy pushes; retry")


def list_versions(db: Database, org: str, limit: int) -> list[dict[str, Any]]:
    from hoopcli.server.store import policy as store

    with db.session() as session:
        return [row.summary() for row in store.list_versions(session, org, max(1, min(limit, 1000)))]


def get_version(db: Database, org: str, version: int) -> dict[str, Any]:
    from hoopcli.server.store import policy as store

    with db.session() as session:
        row = store.get_version(session, version, org)
        if row is None:
            raise NotFound(f"no policy version {version}")
        out = row.summary()
        out.update(source=row.source, warnings=row.warnings)
        return out


def console_view(db: Database, settings: Any, org: str, *, history: bool,
                 version: int | None) -> tuple[dict[str, Any], int, list[dict[str, Any]]]:
    """(the version shown, the version in force, the history) for the console's policy page;
    the history and older versions only when `history` (admins and auditors)."""
    from hoopcli.server.store import policy as store

    now = current(db, settings, org)
    shown = {"version": now["version"], "source": now["source"], "origin": now["origin"],
             "created_by": now.get("created_by"), "diff": now.get("diff") or ""}
    versions: list[dict[str, Any]] = []
    if history:
        with db.session() as s:
            versions = [v.summary() for v in store.list_versions(s, org, 100)]
            if version is not None:
                row = store.get_version(s, version, org)
                if row is not None:
                    shown = {"version": row.version, "source": row.source, "origin": "pushed",
                             "created_by": row.created_by_email or row.created_by, "diff": row.diff}
    return shown, now["version"], versions
