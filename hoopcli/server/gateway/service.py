"""What the gateway does with one request, step by step (the ASGI app in app.py calls these).

Sync steps (verify, decode, decide, plan) run on the event loop while their caches answer, and in a
worker thread (`transport.run`) where they would read the database or wait (`may_block`,
hoopcli.server.nonblocking); hold, the exchange with AWS (aiohttp) and record are async.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from hoopcli.server.gateway import records
from hoopcli.server.gateway.decide import call_hash, invocation_for
from hoopcli.server.gateway.decode import Decoded, Decoder
from hoopcli.server.gateway.errors import GatewayError, InvalidClientTokenId
from hoopcli.server.gateway.request import GatewayRequest
from hoopcli.server.gateway.sigv4 import SigV4Verifier, Verified
from hoopcli.server.gateway.transport import Transport, TransportError
from hoopcli.server.gateway.upstream import RESPONSE_DROPPED, Upstream, UpstreamUnavailable
from hoopcli.server.nonblocking import may_block
from hoopcli.server.sessions.credentials import LiveCredential, Lookup

log = logging.getLogger("hoopcli.server.gateway")
MASK_ON_LOOP = 64 * 1024       # a larger answer is masked in a worker, not on the event loop


class AccessDenied(GatewayError):
    code, status = "AccessDenied", 403


class ExpiredToken(GatewayError):
    code, status = "ExpiredToken", 403


class RecordingFailed(GatewayError):
    """AWS answered but the record could not be stored: the answer is withheld. 424, which no
    SDK retries, so the call is not run twice; the agent must check before trying again."""

    code, status = "HoopRecordingFailed", 424


class ApprovalPending(GatewayError):
    """A reviewed request still waiting for a person. 409: no SDK retries it by itself."""

    code, status = "HoopApprovalPending", 409


@dataclass
class Call:
    """One request's state, from arrival to its record."""

    request_id: str
    started: float
    time: float
    protocol: str = "rest-xml"
    head: bool = False
    json_version: str | None = None
    query_compatible: bool = False
    credential: LiveCredential | None = None
    region: str | None = None
    decoded: Decoded | None = None
    masked_params: dict[str, Any] | None = None
    invocation: Any = None
    decision: Any = None
    decision_effect: str | None = None
    approval: Any = None
    http_status: int | None = None
    error_code: str | None = None
    aws_request_id: str | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    response_text: str | None = None
    response_size: int = 0
    response_started: bool = False
    forwarded: bool = False
    recorded: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def error(self, code: str, status: int) -> None:
        self.error_code = self.error_code or code
        self.http_status = status


class GatewayService:
    def __init__(self, api_app: Any) -> None:
        state = api_app.state
        self.api_app = api_app
        self.settings = state.settings
        self.db = state.db
        self.lookup = Lookup(self.db, self.settings)
        self.verifier = SigV4Verifier(self._secret)
        self.upstream = Upstream(getattr(state, "aws_session", None))
        self._decoder: Decoder | None = None
        self._decoder_lock = threading.Lock()
        self._masker: Any = None
        self.transport = Transport()

    # -- verify --------------------------------------------------------------------------------
    def _secret(self, access_key_id: str) -> str | None:
        status, credential = self.lookup.state(access_key_id)
        if status == "expired":
            raise ExpiredToken("The security token included in the request is expired")
        if status == "revoked":
            raise InvalidClientTokenId("The security token included in the request is invalid "
                                       "(hoop: this session credential was revoked)")
        return self.lookup.derive(access_key_id) if credential is not None else None

    def verify(self, request: GatewayRequest, call: Call) -> Verified:
        verified = self.verifier.verify(request)
        _status, credential = self.lookup.state(verified.access_key)
        if credential is None:
            raise InvalidClientTokenId("The security token included in the request is invalid.")
        call.credential = credential
        call.region = verified.region
        return verified

    # -- decode --------------------------------------------------------------------------------
    @property
    def decoder(self) -> Decoder:
        if self._decoder is None:
            may_block("botocore model load")
            with self._decoder_lock:
                if self._decoder is None:
                    from hoopcli.server.gateway.decode.index import shared_index

                    self._decoder = Decoder(shared_index(), domain=self.settings.gateway.domain)
        return self._decoder

    def warm(self) -> None:
        """Load botocore's models before the first request (about 3 s), off the request path."""
        self.decoder.index.candidates("s3")
        self.masker()

    def masker(self) -> Any:
        """(Masker for parameters, ResponseMasker for bodies), keyed by the server's masking key."""
        if self._masker is None:
            may_block("masking rules load")
            from hoopcli.server.gateway.mask import ResponseMasker, server_masker

            params = server_masker(self.settings.home)
            self._masker = (params, ResponseMasker(params))
        return self._masker

    def decode(self, request: GatewayRequest, verified: Verified, call: Call) -> Decoded:
        decoded = self.decoder.decode(request, verified.service)
        call.decoded = decoded
        model = self.model(decoded.service)
        call.json_version = model.metadata.get("jsonVersion")
        call.query_compatible = "awsQueryCompatible" in model.metadata
        call.protocol = decoded.protocol
        return decoded

    def model(self, service: str) -> Any:
        return self.decoder.index.model(service)

    # -- decide --------------------------------------------------------------------------------
    def decide(self, decoded: Decoded, verified: Verified, call: Call) -> None:
        from hoopcli.server.policy.service import decide

        credential = call.credential
        assert credential is not None
        connection = self.settings.connection(credential.connection)
        if connection is None or connection.credentials != "gateway":
            raise AccessDenied(f"hoop: connection {credential.connection!r} is not served by the gateway")
        masked = self.masker()[0].mask_params(decoded.service, decoded.operation, decoded.params)
        call.masked_params = masked
        call.invocation = invocation_for(self.model(decoded.service), decoded, verified.region, masked)
        call.decision = decide(self.db, self.settings, credential.principal, call.invocation, credential.connection,
                               agent=credential.agent)
        # Detections (docs/detections.md): while a finding holds this session, every call needs an
        # approver, whatever the policy says: allow and review become review under `detection:<rule>`.
        from hoopcli.server.detections.holds import held_decision

        call.decision = held_decision(self.db, credential.org, credential.session_id, call.decision)
        call.decision_effect = call.decision.effect
        if call.decision.effect == "deny":
            raise AccessDenied(f"hoop: denied by policy rule {call.decision.rule or '(default)'}: "
                               f"{call.decision.reason or 'denied by policy'}")

    # -- hold ----------------------------------------------------------------------------------
    async def hold(self, call: Call) -> None:
        from hoopcli.server.approvals import service as approvals
        from hoopcli.server.approvals.notify import get_notifier

        credential = call.credential
        assert credential is not None
        principal = credential.principal
        digest = call_hash(call.invocation, credential.connection)
        # a held session's call goes through only with an approval asked under the hold's rule
        from hoopcli.server.detections.holds import held_rule

        held = held_rule(call.decision.rule)
        row = await run_in_threadpool(lambda: approvals.consume_matching(self.db, principal, digest, rule=held))
        if row is not None:
            call.approval = row
            return
        row, created = await run_in_threadpool(
            lambda: approvals.create(self.db, self.settings, principal, invocation=call.invocation,
                                     decision=call.decision, connection=credential.connection,
                                     session_id=credential.session_id, agent=credential.agent))
        assert row is not None
        if created:
            self._slack(row)
        notifier = get_notifier(self.api_app)
        deadline = time.monotonic() + self.settings.gateway.hold_seconds
        while row.status == "pending" and time.monotonic() < deadline:
            seen = notifier.version(row.id)
            await notifier.wait(row.id, min(deadline - time.monotonic(), notifier.poll_interval), since=seen)
            row = await run_in_threadpool(approvals.get, self.db, principal.org, row.id)
        call.approval = row
        if row.status == "approved":
            call.approval = await run_in_threadpool(lambda: approvals.consume(self.db, row.id, principal, digest,
                                                                              rule=held))
            return
        if row.status == "rejected":
            by = row.decided_by_email or row.decided_by or "an approver"
            raise AccessDenied(f"hoop: approval {row.id} was rejected by {by}"
                               + (f": {row.decision_reason}" if row.decision_reason else ""))
        if row.status != "pending":
            raise AccessDenied(f"hoop: approval {row.id} is {row.status}; send the request again to ask anew")
        who = ", ".join(row.approvers or []) or "an approver"
        url = f"{self.settings.public_url.rstrip('/')}/approvals/{row.id}"
        why = f"{call.decision.reason.removeprefix('hoop: ')}; " if held and call.decision.reason else ""
        raise ApprovalPending(f"hoop: {why}approval {row.id} pending ({row.rule or 'review'}); approvers: {who}; "
                              f"approve at {url} (your own request: a fresh sign-in or a passkey there) or "
                              f"`hoop approvals approve {row.id}` (another approver), "
                              "then send the same request again")

    def _slack(self, row: Any) -> None:
        if self.settings.slack is None or (row.channels and "slack" not in row.channels):
            return
        from hoopcli.server.approvals.slack_service import slack_post

        threading.Thread(target=slack_post, args=(self.db, self.settings, row.id), daemon=True,
                         name="hoop-gateway-slack").start()

    # -- forward -------------------------------------------------------------------------------
    def plan(self, request: GatewayRequest, decoded: Decoded, verified: Verified, call: Call, body: bytes | None,
              streamed_length: int | None) -> tuple[str, list[tuple[str, str]], bool]:
        """In a worker: the server's credentials (cached; AssumeRole when not), the target and the
        re-signed headers -> (url, headers, whether the answer is masked)."""
        credential = call.credential
        assert credential is not None
        connection = self.settings.connection(credential.connection)
        assert connection is not None
        creds = self.upstream.cached_credentials(connection, credential.session_id) or self.upstream.credentials(
            connection, credential.session_id, credential.principal.email or credential.principal.subject)
        path = request.path
        host_prefix = self.decoder._host_prefix(request)
        if host_prefix and decoded.service == "s3":       # virtual-host style: forward path style
            path = "/" + host_prefix + (path if path != "/" else "")
        target = self.upstream.target(decoded.service, decoded.operation, verified.region, connection, path,
                                      request.query)
        from hoopcli.server.gateway.mask import passes_through

        masked = not passes_through(self.model(decoded.service).operation_model(decoded.operation))
        headers = [(k, v) for k, v in request.headers.items()]
        if masked:
            headers = [(k, v) for k, v in headers if k != "accept-encoding"] + [("accept-encoding", "identity")]
        return target.url, self.upstream.sign(target, request.method, headers, creds, body, streamed_length), masked

    async def forward_whole(self, request: GatewayRequest, decoded: Decoded, verified: Verified, call: Call,
                            plan: tuple[str, list[tuple[str, str]], bool] | None = None) -> Any:
        """Forward a request whose body is read: plan (in a worker, unless the caller's worker
        did already), send and read on the loop, mask."""
        if plan is None:
            plan = await self.transport.run(self.plan, request, decoded, verified, call, request.body or b"", None)
        url, signed, masked = plan
        answer = await self._exchange(url, request.method, signed, request.body or b"", masked, decoded, call)
        if answer.masked is not None:
            self._settle(answer, call)
        return answer

    async def forward(self, request: GatewayRequest, decoded: Decoded, verified: Verified, call: Call,
                      content: Any, streamed_length: int | None, send: Any, counter: list[int],
                      receive: Any = None) -> None:
        if streamed_length is None:
            answer = await self.forward_whole(request, decoded, verified, call)
        else:
            url, signed, masked = await self.transport.run(self.plan, request, decoded, verified, call, None,
                                                           streamed_length)
            answer = await self._upload(url, request.method, signed, content, masked, decoded, call)
            call.bytes_in = counter[0]
            if answer.masked is not None:
                self._settle(answer, call)
        await self.deliver(answer, call, send, receive)

    async def deliver(self, answer: Any, call: Call, send: Any, receive: Any = None) -> None:
        """Send AWS's answer to the client: masked and recorded first, or streamed then recorded."""
        try:
            if answer.masked is not None:
                await self._send_masked(answer, call, send)
            else:
                await self._send_streamed(answer, call, send, receive)
        finally:
            answer.close()

    def _settle(self, answer: Any, call: Call) -> None:
        """A masked answer's headers and what its record says."""
        masked, raw = answer.masked, answer.body
        call.aws_request_id = answer.headers.get("x-amz-request-id") or answer.headers.get("x-amzn-requestid")
        headers = [(k, v) for k, v in answer.raw_headers() if k.lower() not in RESPONSE_DROPPED]
        if masked is not raw:
            from hoopcli.server.gateway.mask import masked_headers

            headers = [(k, v) for k, v in masked_headers(dict(headers), masked) if k.lower() != "content-length"]
        answer.out_headers = _encode([*headers, ("content-length", str(len(masked)))])
        call.response_size = len(masked)
        call.bytes_out = len(masked)
        call.response_text = masked[:records.RESPONSE_CAP].decode("utf-8", "replace")
        if answer.status >= 300:
            call.error_code = records.error_code(masked, answer.headers)

    async def _exchange(self, url: str, method: str, headers: list[tuple[str, str]], body: Any, masked: bool,
                        decoded: Decoded, call: Call) -> Any:
        """Send, read the answer, and mask it when it is masked."""
        try:
            answer = await self.transport.send(method, url, headers, body, masked,
                                               self.settings.gateway.max_response_bytes)
        except TransportError as exc:
            raise UpstreamUnavailable(f"hoop: {exc}") from None
        except OverflowError:
            raise GatewayError(f"hoop: the response is larger than the gateway masks "
                               f"({self.settings.gateway.max_response_bytes} bytes)",
                               code="InternalError", status=502) from None
        try:
            if answer.body is not None and len(answer.body) > MASK_ON_LOOP:
                return await self.transport.run(self._answered, answer, masked, decoded, call)
            return self._answered(answer, masked, decoded, call)
        except BaseException:
            answer.close()
            raise

    def _answered(self, answer: Any, masked: bool, decoded: Decoded, call: Call) -> Any:
        """AWS answered: note it, and mask a body read whole that is masked (errors always)."""
        call.forwarded = True
        call.http_status = answer.status
        if answer.body is not None and (masked or answer.status >= 300):
            answer.masked = self.masker()[1].mask(self.model(decoded.service), decoded.operation, decoded.protocol,
                                                  answer.status, answer.headers, answer.body)
        return answer

    async def _upload(self, url: str, method: str, headers: list[tuple[str, str]], content: Any, masked: bool,
                      decoded: Decoded, call: Call) -> Any:
        """A streamed upload: the client's pieces, checked as they arrive, written upstream. A
        piece that fails its check stops the upload before its last bytes; the client gets
        that check's error, not AWS's."""
        refused: list[BaseException] = []

        async def checked() -> Any:
            try:
                async for piece in content:
                    yield piece
            except Exception as exc:
                refused.append(exc)
                raise

        try:
            return await self._exchange(url, method, headers, checked(), masked, decoded, call)
        except Exception:
            if refused:
                raise refused[0] from None
            raise

    async def _send_masked(self, answer: Any, call: Call, send: Any) -> None:
        await self.record(call)
        call.response_started = True
        await send({"type": "http.response.start", "status": answer.status, "headers": answer.out_headers})
        await send({"type": "http.response.body", "body": answer.masked})

    async def _send_streamed(self, answer: Any, call: Call, send: Any, receive: Any = None) -> None:
        call.aws_request_id = answer.headers.get("x-amz-request-id") or answer.headers.get("x-amzn-requestid")
        headers = [(k, v) for k, v in answer.raw_headers() if k.lower() not in RESPONSE_DROPPED]
        length = answer.headers.get("content-length")
        extra = [("content-length", length)] if length is not None else []
        call.response_started = True
        try:
            await send({"type": "http.response.start", "status": answer.status,
                        "headers": _encode(headers + extra)})
            if answer.body is not None:
                call.bytes_out = len(answer.body)
                if answer.body:
                    await send({"type": "http.response.body", "body": answer.body, "more_body": True})
            else:
                gone = asyncio.Event()
                watcher = asyncio.ensure_future(_watch_disconnect(receive, gone)) if receive is not None else None
                try:
                    async for piece in self.transport.pieces(answer):
                        if gone.is_set():      # the server would send the rest into the void
                            raise ClientGone("the client went away in the middle of the answer")
                        call.bytes_out += len(piece)
                        await send({"type": "http.response.body", "body": piece, "more_body": True})
                finally:
                    if watcher is not None:
                        watcher.cancel()
            call.response_size = call.bytes_out
            # the client has every byte already (no answer can be withheld any more): end the
            # response first, so its next request on this connection does not wait for the commit
            await send({"type": "http.response.body", "body": b""})
        except BaseException as exc:
            # AWS ran the call: it is recorded even when the relay broke off (the client went
            # away, AWS cut the body), saying how far it got
            call.response_size = call.bytes_out
            call.error_code = call.error_code or ("HoopRelayInterrupted" if isinstance(exc, Exception)
                                                  else "HoopRelayCancelled")
            try:
                await asyncio.shield(self.record(call))
            except Exception:
                pass
            raise
        await self.record(call)

    # -- record --------------------------------------------------------------------------------
    def submit_record(self, call: Call) -> Any:
        """Build the call's record and hand it to the ledger's writer -> a future of the append
        (`record` waits for it)."""
        try:
            return records.submit(self.api_app, call)
        except Exception as exc:
            failed: concurrent.futures.Future[Any] = concurrent.futures.Future()
            failed.set_exception(exc)
            return failed

    async def record(self, call: Call) -> None:
        """The call's record, submitted to the ledger's writer and committed."""
        if call.recorded or call.credential is None:
            return
        call.recorded = True
        future = self.submit_record(call)
        try:
            records.check_result(await asyncio.wrap_future(future))
        except Exception as exc:
            log.error("gateway record not stored: %s", type(exc).__name__)
            if call.forwarded:
                raise RecordingFailed("hoop: AWS ran this request but the gateway could not record it, so its "
                                      "answer is withheld; check the resource before sending it again") from None
            raise UpstreamUnavailable("hoop: the gateway could not record this request; try again") from None

    async def close(self) -> None:
        await self.transport.close()


class ClientGone(Exception):
    """The client closed its connection while a streamed answer was being relayed."""


async def _watch_disconnect(receive: Any, gone: asyncio.Event) -> None:
    """Set `gone` when the client disconnects (the request body is read already: the next
    message uvicorn gives is the disconnect)."""
    try:
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                gone.set()
                return
    except Exception:
        return


def _encode(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
