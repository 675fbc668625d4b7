"""The gateway's listener: an ASGI app on its own port that speaks the AWS wire protocols.

For every request, in order (docs/gateway.md):

    read      headers (bounded, single-valued), the body when the signature or decoder needs it
    verify    SigV4 with the session credential's secret (hoopcli.server.sessions.credentials)
    decode    service, operation, parameters from botocore's models (decode/)
    decide    the server's policy on the same Invocation shape the shim uses (decide.py)
    hold      review: open or resume the approval, wait up to gateway.hold_seconds
    forward   re-signed with the server's own STS credentials to the resolved endpoint (upstream.py)
    mask      the response per operation, unless it is an object body or event stream (mask.py)
    record    one `api.call` record in the session's ledger, committed before the answer leaves

Errors go back in the request's own protocol (wire.py), so every SDK shows code and message.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import replace
from typing import Any

from hoopcli.errors import HoopError, where
from hoopcli.server.gateway import body as bodies
from hoopcli.server.gateway import wire
from hoopcli.server.gateway.errors import GatewayError, InvalidRequest, SerializationError
from hoopcli.server.gateway.request import GatewayRequest
from hoopcli.server.gateway.service import Call, ClientGone, GatewayService
from hoopcli.server.gateway.sigv4 import PayloadMode, needs_body
from hoopcli.server.nonblocking import WouldBlock, on_loop

log = logging.getLogger("hoopcli.server.gateway")
STREAMED_SERVICES = frozenset({"s3", "s3express"})
STREAM_MIN_BYTES = 1024 * 1024
# A larger body is decoded (and its parameters masked) in a worker, never on the event loop.
INLINE_MAX_BODY = 64 * 1024


class GatewayApp:
    """ASGI entry point; the work is in GatewayService (sync parts run in the thread pool)."""

    def __init__(self, service: GatewayService) -> None:
        self.service = service

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.service.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        call = Call(request_id=uuid.uuid4().hex.upper()[:20], started=time.perf_counter(), time=time.time())
        try:
            await self._handle(scope, receive, send, call)
        except ClientGone:
            return                       # recorded as interrupted; nobody is left to answer
        except GatewayError as exc:
            call.error(exc.code, exc.status)
            await self._answer_error(send, call, exc)
        except HoopError as exc:   # a server-side refusal (approvals, STS) with a safe message
            status = 503 if exc.exit_status == 69 else 403
            err = GatewayError(f"hoop: {exc.message}", code="ServiceUnavailable" if status == 503
                               else "AccessDenied", status=status)
            call.error(err.code, err.status)
            await self._answer_error(send, call, err)
        except Exception as exc:
            log.error("gateway internal error: %s", " | ".join(where(exc)))
            call.error("InternalError", 500)
            await self._answer_error(send, call, GatewayError("We encountered an internal error. Please try again.",
                                                              code="InternalError", status=500))

    async def _handle(self, scope: dict[str, Any], receive: Any, send: Any, call: Call) -> None:
        svc = self.service
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        query = scope.get("query_string") or b""
        target = raw_path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        request = GatewayRequest.build(scope["method"], target, headers)
        call.protocol = wire.guess_protocol(request, None)
        call.head = request.method == "HEAD"
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/x-amz-json-"):
            # an error before decode (signature, body) answers in the request's json version
            call.json_version = content_type[len("application/x-amz-json-"):].split(";")[0].strip()
        if "transfer-encoding" in request.headers and "content-length" in request.headers:
            raise InvalidRequest("a request carries either Content-Length or Transfer-Encoding, not both")
        if not _may_stream(request):
            # the common case: the (bounded) body first, then verify, decode, decide and re-sign
            # together, on the event loop when everything they need is in memory, else in one
            # worker (hoopcli.server.nonblocking); the exchange with AWS on the event loop
            raw = await bodies.read_all(receive, svc.settings.gateway.max_body_bytes)
            request = replace(request, body=raw)
            try:
                if len(raw) > INLINE_MAX_BODY:
                    raise WouldBlock("a large body")
                with on_loop():
                    request, verified, decoded, plan = self._prepare(request, call)
            except WouldBlock:
                request, verified, decoded, plan = await svc.transport.run(self._prepare, request, call)
            if plan is None:                        # review: hold, then forward once approved
                await svc.hold(call)
            answer = await svc.forward_whole(request, decoded, verified, call, plan)
            await svc.deliver(answer, call, send, receive)
            return
        if needs_body(request):
            request = replace(request, body=await bodies.read_all(receive, svc.settings.gateway.max_body_bytes))
        verified = await svc.transport.run(svc.verify, request, call)
        call.protocol = wire.guess_protocol(request, verified.service)

        streamed_length: int | None = None
        decoded = None
        if request.body is None and verified.service in STREAMED_SERVICES and request.method in ("PUT", "POST") \
                and verified.payload is not PayloadMode.VERIFIED:
            length = bodies.decoded_length(verified, request.headers)
            if length is not None and length >= STREAM_MIN_BYTES:
                try:
                    decoded = await svc.transport.run(svc.decode, request, verified, call)
                except SerializationError:
                    decoded = None    # the operation reads its body: read it whole below
                if decoded is not None and decoded.streaming_member:
                    streamed_length = length
                else:
                    decoded = None
        if streamed_length is None:
            if request.body is None:
                raw = await bodies.read_all(receive, svc.settings.gateway.max_body_bytes)
                payload = bodies.check_whole(verified, request.headers, raw)
                request = replace(request, body=payload)
            call.bytes_in = len(request.body or b"")
            decoded = await svc.transport.run(svc.decode, request, verified, call)
        assert decoded is not None
        await svc.transport.run(svc.decide, decoded, verified, call)
        await self._decided(request, verified, decoded, call, receive, send, streamed_length)

    def _prepare(self, request: GatewayRequest, call: Call) -> tuple[GatewayRequest, Any, Any, Any]:
        """Verify, check the body, decode, decide and, unless the call is held for review, plan its
        forwarding -> (request, verified, decoded, plan or None). On the event loop inside
        `on_loop()` (WouldBlock where it would wait: nothing is decided yet), else in a worker."""
        svc = self.service
        verified = svc.verify(request, call)
        call.protocol = wire.guess_protocol(request, verified.service)
        if verified.payload is not PayloadMode.VERIFIED:
            assert request.body is not None
            request = replace(request, body=bodies.check_whole(verified, request.headers, request.body))
        call.bytes_in = len(request.body or b"")
        decoded = svc.decode(request, verified, call)
        svc.decide(decoded, verified, call)
        if call.decision_effect == "review":
            return request, verified, decoded, None
        return request, verified, decoded, svc.plan(request, decoded, verified, call, request.body or b"", None)

    async def _decided(self, request: GatewayRequest, verified: Any, decoded: Any, call: Call, receive: Any,
                       send: Any, streamed_length: int | None) -> None:
        svc = self.service
        if call.decision_effect == "review":
            await svc.hold(call)
        counter = [0]
        content: Any = request.body if streamed_length is None else \
            bodies.stream(receive, verified, request.headers, streamed_length, counter)
        await svc.forward(request, decoded, verified, call, content, streamed_length, send, counter, receive)


    async def _answer_error(self, send: Any, call: Call, exc: GatewayError) -> None:
        if call.response_started:
            return        # mid-stream: the connection is closed by the server; the record says why
        status, headers, payload = wire.error_response(
            call.protocol, exc.code, exc.message, exc.status, call.request_id, head=call.head,
            json_version=call.json_version, query_compatible=call.query_compatible)
        call.http_status = status
        await self.service.record(call)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
                    + [(b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


def create_gateway_app(api_app: Any) -> GatewayApp:
    """The gateway for a hoop server app: it shares the app's settings, database, approvals
    notifier and AWS session (create_app's `aws_session`)."""
    return GatewayApp(GatewayService(api_app))


def _may_stream(request: GatewayRequest) -> bool:
    """A body that might stream upstream (an S3 upload of STREAM_MIN_BYTES or more, or of a length
    not known yet): verify first, then decide whether to read it whole or stream it."""
    if request.method not in ("PUT", "POST"):
        return False
    headers = request.headers
    if "transfer-encoding" in headers:
        return True
    for name in ("content-length", "x-amz-decoded-content-length"):
        value = headers.get(name)
        if value is not None and (not value.isdigit() or int(value) >= STREAM_MIN_BYTES):
            return True
    return False
