"""The approvals service on a real database (SQLite and PostgreSQL): rules, races, single use."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from approvals_helpers import make_invocation, principal, review
from sqlalchemy import update

from hoopcli.approval.canonical import hash_invocation
from hoopcli.policy.model import Decision, ReviewSpec
from hoopcli.server.approvals import service as svc
from hoopcli.server.store.approvals import ApprovalRow

ALICE = principal("alice")
BOB = principal("bob", ("approvers",))
SRE_BOB = principal("bob", ("approvers", "sre"))
CAROL = principal("carol")                       # no approver role
EVE = principal("eve", ("approvers",), org="other")


def open_request(db: Any, settings: Any, *, who: Any = ALICE, bucket: str = "a", **kw: Any) -> Any:
    row, created = svc.create(db, settings, who, invocation=make_invocation(bucket),
                              decision=review(**kw), connection="default", reason="cleanup",
                              agent="claude")
    assert created and row is not None
    return row


def events(db: Any, row: Any) -> list[str]:
    return [e["event"] for e in svc.events(db, row.org, row.id)]


def test_request_is_recorded_with_the_call_hash(db: Any, settings: Any) -> None:
    row = open_request(db, settings)
    assert row.status == "pending"
    assert row.call_hash == hash_invocation(make_invocation("a"), "default")
    assert row.command == "aws s3 rb s3://a"
    assert row.approvers == ["self"] and row.justification == "cleanup"
    assert 1790 < row.expires_at - row.requested_at <= 1800
    assert events(db, row) == ["requested"]


def test_same_call_again_resumes_the_pending_request(db: Any, settings: Any) -> None:
    row = open_request(db, settings)
    again, created = svc.create(db, settings, ALICE, invocation=make_invocation("a"), decision=review(),
                                connection="default")
    assert not created and again.id == row.id
    other, created = svc.create(db, settings, ALICE, invocation=make_invocation("b"), decision=review(),
                                connection="default")
    assert created and other.id != row.id


def test_allow_needs_no_approval_and_deny_is_refused(db: Any, settings: Any) -> None:
    from hoopcli.policy.model import Decision

    assert svc.create(db, settings, ALICE, invocation=make_invocation(), connection="default",
                      decision=Decision("allow", "allow-reads", None)) == (None, False)
    with pytest.raises(svc.ApprovalForbidden, match="denied by rule deny-x: never"):
        svc.create(db, settings, ALICE, invocation=make_invocation(), connection="default",
                   decision=Decision("deny", "deny-x", "never"))


def test_missing_justification_is_refused_with_how_to_give_one(db: Any, settings: Any) -> None:
    with pytest.raises(svc.JustificationRequired, match="HOOP_REASON"):
        svc.create(db, settings, ALICE, invocation=make_invocation(), connection="default",
                   decision=review(justification=True), reason="   ")


def test_client_hash_must_match_the_servers(db: Any, settings: Any) -> None:
    with pytest.raises(svc.ApprovalConflict, match="does not match"):
        svc.create(db, settings, ALICE, invocation=make_invocation("a"), decision=review(),
                   connection="default", client_hash=hash_invocation(make_invocation("b"), "default"))


def fresh() -> svc.Presence:
    """What the console establishes after the person signed in again (auth_time: now)."""
    return svc.Presence("sign-in", time.time())


def test_self_approval_only_when_the_rule_says_self(db: Any, settings: Any) -> None:
    mine = open_request(db, settings, approvers=("self",))
    decided = svc.decide(db, ALICE, mine.id, approve=True, channel="web", presence=fresh())
    assert (decided.status, decided.decided_by, decided.decision_channel) == ("approved", "alice", "web")

    theirs = open_request(db, settings, bucket="b", approvers=("role:approver",))
    with pytest.raises(svc.ApprovalForbidden, match="cannot approve their own"):
        svc.decide(db, ALICE, theirs.id, approve=True)
    assert svc.get(db, "default", theirs.id).status == "pending"
    assert events(db, theirs) == ["requested", "refused"]


def test_approvers_need_the_role_and_a_listed_group(db: Any, settings: Any) -> None:
    row = open_request(db, settings, approvers=("sre",))
    with pytest.raises(svc.ApprovalForbidden, match="approver role"):
        svc.decide(db, CAROL, row.id, approve=True)
    with pytest.raises(svc.ApprovalForbidden, match="needs an approver from sre"):
        svc.decide(db, BOB, row.id, approve=True)
    assert svc.decide(db, SRE_BOB, row.id, approve=False, reason="not today").status == "rejected"
    final = svc.get(db, "default", row.id)
    assert (final.decision_reason, final.decided_by_email) == ("not today", "bob@example.com")


def test_only_self_rule_refuses_other_approvers(db: Any, settings: Any) -> None:
    row = open_request(db, settings, approvers=("self",))
    with pytest.raises(svc.ApprovalForbidden, match="only the requester"):
        svc.decide(db, BOB, row.id, approve=True)


def test_channels_of_the_rule_are_enforced(db: Any, settings: Any) -> None:
    row = open_request(db, settings, approvers=("role:approver",), channels=("slack",))
    with pytest.raises(svc.ApprovalForbidden, match="only via slack"):
        svc.decide(db, BOB, row.id, approve=True, channel="cli")


def test_approving_with_a_hash_for_a_different_call_is_refused(db: Any, settings: Any) -> None:
    row = open_request(db, settings, approvers=("role:approver",))
    other = hash_invocation(make_invocation("b"), "default")
    with pytest.raises(svc.ApprovalConflict, match="different command"):
        svc.decide(db, BOB, row.id, approve=True, call_hash=other)
    assert svc.get(db, "default", row.id).status == "pending"


def test_second_decision_is_refused_and_first_stands(db: Any, settings: Any) -> None:
    row = open_request(db, settings, approvers=("role:approver",))
    svc.decide(db, BOB, row.id, approve=True, channel="cli")
    with pytest.raises(svc.ApprovalConflict, match="already approved"):
        svc.decide(db, SRE_BOB, row.id, approve=False, channel="slack")
    final = svc.get(db, "default", row.id)
    assert (final.status, final.decision_channel) == ("approved", "cli")


def test_racing_decisions_from_two_channels_exactly_one_wins(db: Any, settings: Any) -> None:
    for round_ in range(5):
        row = open_request(db, settings, bucket=f"race{round_}", approvers=("role:approver",))
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        # the round's values are bound now: a thread outliving its join must not see the next round's
        def go(approve: bool, channel: str, *, barrier: threading.Barrier = barrier, row: Any = row,
               outcomes: list[str] = outcomes) -> None:
            barrier.wait()
            try:
                svc.decide(db, BOB, row.id, approve=approve, channel=channel)
                outcomes.append(f"won:{channel}")
            except svc.ApprovalConflict:
                outcomes.append("lost")

        threads = [threading.Thread(target=go, args=(True, "cli")),
                   threading.Thread(target=go, args=(False, "slack"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(o.startswith("won") for o in outcomes) == [False, True], outcomes
        final = svc.get(db, "default", row.id)
        winner = next(o for o in outcomes if o.startswith("won")).split(":")[1]
        assert final.decision_channel == winner
        assert final.status == ("approved" if winner == "cli" else "rejected")
        assert events(db, row).count("approved") + events(db, row).count("rejected") == 1


def test_decision_after_expiry_is_refused(db: Any, settings: Any) -> None:
    row = open_request(db, settings, approvers=("role:approver",))
    with db.session() as s:
        s.execute(update(ApprovalRow).where(ApprovalRow.id == row.id).values(expires_at=time.time() - 1))
    with pytest.raises(svc.ApprovalConflict, match="already expired"):
        svc.decide(db, BOB, row.id, approve=True)
    assert svc.get(db, "default", row.id).status == "expired"
    assert svc.list_(db, "default", status="expired")[0].id == row.id


def test_another_orgs_approval_is_not_found(db: Any, settings: Any) -> None:
    row = open_request(db, settings, approvers=("role:approver",))
    with pytest.raises(svc.ApprovalNotFound):
        svc.decide(db, EVE, row.id, approve=True)
    with pytest.raises(svc.ApprovalNotFound):
        svc.get(db, "other", row.id)
    assert svc.list_(db, "other") == []
    with pytest.raises(svc.ApprovalNotFound):
        svc.consume(db, row.id, principal("alice", org="other"), row.call_hash)
    assert svc.get(db, "default", row.id).status == "pending"


def test_consume_is_single_use_and_bound_to_the_call(db: Any, settings: Any) -> None:
    row = open_request(db, settings)
    with pytest.raises(svc.ApprovalConflict, match="pending, not approved"):
        svc.consume(db, row.id, ALICE, row.call_hash)
    svc.decide(db, ALICE, row.id, approve=True, channel="web", presence=fresh())
    with pytest.raises(svc.ApprovalConflict, match="different command"):
        svc.consume(db, row.id, ALICE, hash_invocation(make_invocation("b"), "default"))
    with pytest.raises(svc.ApprovalForbidden, match="someone else"):
        svc.consume(db, row.id, BOB, row.call_hash)
    used = svc.consume(db, row.id, ALICE, row.call_hash)
    assert used.consumed_at is not None
    with pytest.raises(svc.ApprovalConflict, match="already used"):
        svc.consume(db, row.id, ALICE, row.call_hash)
    assert events(db, row) == ["requested", "refused", "approved", "refused", "refused", "consumed", "refused"]


def test_rejected_approval_cannot_be_consumed(db: Any, settings: Any) -> None:
    row = open_request(db, settings)
    svc.decide(db, ALICE, row.id, approve=False, reason="no", channel="cli")
    with pytest.raises(svc.ApprovalConflict, match="rejected"):
        svc.consume(db, row.id, ALICE, row.call_hash)


@pytest.mark.parametrize("bad", ["", "apr_", "apr_XYZ", "../../etc", "apr_" + "0" * 15 + "'", "x" * 5000])
def test_malformed_ids_are_not_found(db: Any, bad: str) -> None:
    with pytest.raises(svc.ApprovalNotFound):
        svc.get(db, "default", bad)
    assert svc.find(db, bad) is None


def test_display_command_masks_secret_flags() -> None:
    shown = svc.display_command(["secretsmanager", "put-secret-value", "--secret-id", "x",
                                 "--secret-string", "hunter2", "--client-token=abc"])
    assert "hunter2" not in shown and "abc" not in shown
    assert "--secret-string [masked]" in shown and "--client-token=[masked]" in shown
    assert "--secret-id x" in shown


# -- presence: the agent is not its user (issue 14) ----------------------------------------------

def test_a_self_approval_without_presence_is_refused_on_every_channel(db: Any, settings: Any) -> None:
    """The requester's stored or refreshed token proves nothing: through the API (cli) or Slack,
    with no presence, the requester cannot approve their own request; the refusal is recorded."""
    row = open_request(db, settings, approvers=("self", "role:approver"))
    for channel in ("cli", "web", "slack"):
        with pytest.raises(svc.ApprovalForbidden, match="needs proof that you are there"):
            svc.decide(db, ALICE, row.id, approve=True, channel=channel)
    assert svc.get(db, "default", row.id).status == "pending"
    assert events(db, row) == ["requested", "refused", "refused", "refused"]
    # another approver needs no step-up; the requester may always deny their own request
    assert svc.decide(db, BOB, row.id, approve=True, channel="cli").status == "approved"
    other = open_request(db, settings, bucket="b")
    assert svc.decide(db, ALICE, other.id, approve=False, channel="cli").status == "rejected"


def test_presence_must_come_after_the_request_and_be_recent(db: Any, settings: Any) -> None:
    row = open_request(db, settings)
    with pytest.raises(svc.ApprovalForbidden, match="older than this request"):
        svc.decide(db, ALICE, row.id, approve=True, channel="web",
                   presence=svc.Presence("sign-in", row.requested_at - 1))
    with pytest.raises(svc.ApprovalForbidden, match="needs proof"):
        svc.decide(db, ALICE, row.id, approve=True, channel="web", presence=svc.Presence("password", time.time()))
    assert svc.presence_refusal(row, svc.Presence("passkey", time.time() - svc.STEP_UP_WINDOW - 5)) is not None
    decided = svc.decide(db, ALICE, row.id, approve=True, channel="web", presence=svc.Presence("passkey", time.time()))
    assert decided.status == "approved"
    assert "[presence: passkey at " in svc.events(db, "default", row.id)[-1]["detail"]


def test_presence_none_is_a_confirmation_only(db: Any, settings: Any) -> None:
    """`presence: none` (on purpose, never by default): the requester's API decision counts."""
    row, _ = svc.create(db, settings, ALICE, invocation=make_invocation("c"), connection="default",
                        decision=Decision("review", "r", None, ReviewSpec(presence="none")))
    assert row is not None and svc.to_json(row)["presence"] == "none"
    assert svc.decide(db, ALICE, row.id, approve=True, channel="cli").status == "approved"


def test_terminal_in_channels_admits_only_the_requesters_own_decision(db: Any, settings: Any) -> None:
    row = open_request(db, settings, approvers=("self", "role:approver"), channels=("terminal",))
    with pytest.raises(svc.ApprovalForbidden, match="only via terminal"):
        svc.decide(db, BOB, row.id, approve=True, channel="web")
    assert svc.decide(db, ALICE, row.id, approve=True, channel="web", presence=fresh()).status == "approved"
    with pytest.raises(svc.ApprovalError, match="unknown channel"):
        svc.decide(db, ALICE, row.id, approve=True, channel="terminal")
