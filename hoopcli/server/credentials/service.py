"""Vending short-lived STS credentials for one aws invocation.

The server never trusts the client's classification: it re-parses the raw argv, evaluates the
policy itself (hoopcli.server.policy.service), consumes an approval when the policy asks for review,
and only then calls STS. The answer carries the secret exactly once; the database and the log
keep the assumed-role ARN and the decision, never the secret or the raw argv.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from hoopcli.approval.canonical import hash_invocation
from hoopcli.errors import InvocationError
from hoopcli.parse import parse
from hoopcli.parse.invocation import Invocation
from hoopcli.server.approvals import service as approvals
from hoopcli.server.credentials.broker import BrokerError, assume_role
from hoopcli.server.detections.holds import held_rule, held_view
from hoopcli.server.errors import BadGateway, BadRequest, Conflict, Forbidden, Unprocessable
from hoopcli.server.identity.security import Principal
from hoopcli.server.identity.service import check_connection, remember_user
from hoopcli.server.policy import service as policy
from hoopcli.server.sessions import service as sessions
from hoopcli.server.sessions.service import SESSION_ID_RE
from hoopcli.server.settings import Settings
from hoopcli.server.store.db import Database
from hoopcli.server.store.models import CredentialGrant

log = logging.getLogger("hoopcli.server.credentials")
APPROVAL_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ApprovalRequired(Conflict):
    """The policy sends this call to review and no approval came with it (409, with the decision)."""


def decide(db: Database, settings: Settings, principal: Principal, invocation: Invocation,
           connection: str) -> dict[str, Any]:
    """The server's policy decision, as the parts a client needs (`calls`, the parameters, stays
    on the server): {effect, rule, reason, review, access_level}."""
    data = policy.decide(db, settings, principal, invocation, connection).to_dict()
    return {k: data.get(k) for k in ("effect", "rule", "reason", "review", "access_level")}


def vend(db: Database, settings: Settings, principal: Principal, aws_session: Any, *, connection_name: str,
         session_id: str, argv: list[str], approval_id: str | None) -> dict[str, Any]:
    """Credentials for `argv` on `connection_name`, or the error that says why not."""
    connection = check_connection(settings, connection_name)
    if connection.credentials == "gateway":
        raise Forbidden(f"connection {connection.name!r} keeps its AWS credentials on the server "
                        "(credentials: gateway); send AWS requests through hoop's gateway (`hoop run`, "
                        "`hoop env`)")
    if not SESSION_ID_RE.match(session_id):
        raise Unprocessable("session_id: use letters, digits, '-' and '_' (at most 64)")
    if approval_id is not None and not APPROVAL_ID_RE.match(approval_id):
        raise Unprocessable("approval_id: not a valid approval id")
    if any("\x00" in arg for arg in argv):
        raise Unprocessable("argv: NUL characters are not allowed")
    try:
        invocation = parse(list(argv))
    except InvocationError as exc:
        raise BadRequest(f"cannot classify this aws command: {exc.message}") from None
    if not invocation.actions:
        raise BadRequest("this aws command makes no AWS API calls; it needs no credentials")

    decision = decide(db, settings, principal, invocation, connection.name)
    # Detections (docs/detections.md): a session a finding holds needs an approver for every call.
    decision = held_view(db, principal.org, session_id, decision)
    if decision["effect"] == "deny":
        rule = decision.get("rule") or "policy"
        reason = decision.get("reason") or "denied by policy"
        raise Forbidden(f"denied by {rule}: {reason}")
    if decision["effect"] != "allow":
        if approval_id is None:
            raise ApprovalRequired("this command needs an approval; request one and retry with approval_id",
                                   extra={"approval_required": True, "decision": decision})
        # the approval for exactly this call, used once (ApprovalError carries its own status)
        approvals.consume(db, approval_id, principal, hash_invocation(invocation, connection.name),
                          rule=held_rule(decision.get("rule")))

    sessions.claim(db, principal, session_id, connection.name)
    try:
        vended = assume_role(connection, invocation, session_id=session_id,
                             user=principal.email or principal.subject, aws_session=aws_session)
    except BrokerError as exc:
        log.warning("AssumeRole refused for connection %s: %s", connection.name, exc.message)
        raise BadGateway(exc.message) from None

    grant_id = uuid.uuid4().hex
    remember_user(db, principal)
    with db.session() as s:
        s.add(CredentialGrant(
            id=grant_id, org=principal.org, session_id=session_id, user=principal.subject,
            connection=connection.name, assumed_role_arn=vended.assumed_role_arn,
            sts_session_name=vended.sts_session_name, actions=list(invocation.actions),
            decision=decision, approval_id=approval_id, expiration=vended.expiration,
        ))
    log.info(
        "credentials vended grant=%s user=%s connection=%s role=%s actions=%d",
        grant_id, principal.subject, connection.name, vended.assumed_role_arn, len(invocation.actions),
    )
    return {**vended.response(), "decision": decision, "grant_id": grant_id}
