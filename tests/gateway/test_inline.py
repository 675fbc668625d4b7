"""The gateway's steps on the event loop (hoopcli.server.nonblocking): a request whose credential,
policy and hold state are in memory is verified, decided and re-signed without a worker; anything
that would wait (a cache miss, the detector catching up) sends the whole step to a worker, which
decides exactly as before."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from hoopcli.server.nonblocking import WouldBlock, may_block, on_loop
from tests.gateway.gateway_helpers import boto3_client, credential, gateway_server, open_session

pytestmark = pytest.mark.e2e


def test_may_block_raises_only_on_the_loop_and_passes_except_exception() -> None:
    may_block("outside")                         # a worker: nothing happens
    with on_loop(), pytest.raises(WouldBlock):
        try:
            may_block("a database read")
        except Exception:                    # what a step's own error handling looks like
            pytest.fail("WouldBlock must not be caught as an ordinary error")
    may_block("outside again")


@pytest.fixture
def gw(make_server: Any, tmp_path: Path, moto_endpoint: str) -> Any:
    return gateway_server(make_server, tmp_path, moto_endpoint, gateway={"hold_seconds": 1})


def _count_worker_prepares(gw: Any) -> list[str]:
    """Wrap the gateway's worker hand-off: the names of the steps it ran."""
    service = gw.app.state.gateway.service
    ran: list[str] = []
    real = service.transport.run

    async def run(fn: Any, *args: Any) -> Any:
        ran.append(getattr(fn, "__name__", "?"))
        return await real(fn, *args)

    service.transport.run = run
    return ran


def _settled(gw: Any, size: int) -> int:
    """Wait until the last call's record is committed (a streamed answer's commits after the
    client has it) and the detector has evaluated it -> the log's size now. Else the next call's
    decide would wait for the detector, which is the worker's job."""
    from hoopcli.server.detections.registry import detector_of

    detector = detector_of(gw.db)
    assert detector is not None
    deadline = time.monotonic() + 10
    while detector._appended.get("default", 0) <= size:
        assert time.monotonic() < deadline, "the call's record was not committed"
        time.sleep(0.01)
    assert detector.wait_caught_up("default", 10.0)
    return int(detector._appended["default"])


def test_warm_requests_run_on_the_loop_cold_ones_in_a_worker(gw: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from hoopcli.server.detections import holds
    from hoopcli.server.policy import service as policy_service

    # the caches that normally live about a second live a minute here, so that a slow machine
    # cannot turn a warm request into a cold one
    monkeypatch.setattr(policy_service, "HEAD_TTL", 60.0)
    monkeypatch.setattr(holds, "CACHE_SECONDS", 60.0)
    gw.app.state.gateway.service.lookup.ttl = 60.0
    ran = _count_worker_prepares(gw)
    s3 = boto3_client("s3", credential(gw, open_session(gw)))
    s3.create_bucket(Bucket="gw-inline")             # cold: the credential is read from the database
    assert ran.count("_prepare") == 1
    s3.put_object(Bucket="gw-inline", Key="k", Body=b"inline")
    size = _settled(gw, 0)
    why: list[str] = []
    real_init = WouldBlock.__init__

    def noted(self: WouldBlock, *args: Any) -> None:
        why.append(str(args))
        real_init(self, *args)

    monkeypatch.setattr(WouldBlock, "__init__", noted)
    ran.clear()
    for _ in range(5):
        assert s3.get_object(Bucket="gw-inline", Key="k")["Body"].read() == b"inline"
        size = _settled(gw, size)
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="gw-inline")["Contents"]] == ["k"]
        size = _settled(gw, size)
    # every one of the ten ran on the loop (before: each took the worker); one is let through for
    # a loaded machine, where a cache can still miss at the wrong moment
    assert ran.count("_prepare") <= 1, why


def test_a_revoked_credential_is_refused_when_its_cache_entry_expires_on_the_loop(gw: Any) -> None:
    service = gw.app.state.gateway.service
    sid = open_session(gw)
    s3 = boto3_client("s3", credential(gw, sid))
    ran = _count_worker_prepares(gw)
    s3.list_buckets()
    r = httpx.post(f"{gw.url}/api/v1/sessions/{sid}/close", headers=gw.headers("alice"), json={"exit_code": 0})
    assert r.status_code == 200 and r.json()["revoked_credentials"] == 1
    ran.clear()
    time.sleep(service.lookup.ttl + 0.1)
    with pytest.raises(ClientError) as exc:
        s3.list_buckets()
    assert exc.value.response["Error"]["Code"] == "InvalidClientTokenId"
    assert ran == ["_prepare"]        # the loop would have read the database: the worker did


def test_large_bodies_are_decoded_in_a_worker(gw: Any) -> None:
    cred = credential(gw, open_session(gw))
    sqs = boto3_client("sqs", cred)
    url = sqs.create_queue(QueueName="gw-inline-big")["QueueUrl"]
    ran = _count_worker_prepares(gw)
    sqs.send_message(QueueUrl=url, MessageBody="x" * (100 * 1024))
    assert "_prepare" in ran


def test_the_detector_catching_up_is_waited_for_in_a_worker(gw: Any) -> None:
    from hoopcli.policy.model import Decision
    from hoopcli.server.detections.holds import held_decision
    from hoopcli.server.detections.registry import detector_of

    detector = detector_of(gw.db)
    assert detector is not None                      # misuse detection is on by default
    allow = Decision("allow", None, None, None, "Read", (), (), ())
    with detector._cond:                             # a record this server appended, not evaluated yet
        detector._appended["default"] = detector._done.get("default", 0) + 1
        detector._lagging = False
        assert detector.wait_caught_up("default", 5.0, wait=False) is None
        with on_loop(), pytest.raises(WouldBlock):
            held_decision(gw.db, "default", "s-1", allow)
        assert not detector._lagging                 # probing on the loop is not lagging
        detector._appended["default"] = detector._done.get("default", 0)
    assert detector.wait_caught_up("default", 5.0, wait=False) is True
    assert held_decision(gw.db, "default", "s-1", allow).effect == "allow"   # in a worker: the hold read
    with on_loop():                                  # then on the loop, from memory
        assert held_decision(gw.db, "default", "s-1", allow).effect == "allow"


def test_loading_botocore_models_on_the_loop_is_left_to_a_worker() -> None:
    """The warm-up thread loads every model at start (seconds); a request meanwhile must not
    wait on its lock on the event loop."""
    from hoopcli.server.gateway.decode.index import ServiceIndex

    index = ServiceIndex(services=["s3", "sqs"])
    with on_loop(), pytest.raises(WouldBlock):
        index.candidates("s3")
    with on_loop(), pytest.raises(WouldBlock):
        index.model("sqs")
    assert [m.service_name for m in index.candidates("s3")] == ["s3"]      # in a worker: loads
    with on_loop():
        assert index.model("sqs").service_name == "sqs" and index.candidates("s3")
