"""What the gateway does with one request, step by step (the ASGI app in app.py calls these).

Sync steps (verify, decode, decide) touch the database and botocore's models and run in the
thread pool; hold, forward and record are async.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool

from hoopcli.server.gateway import records
from hoopcli.server.gateway.decide import call_hash, invocation_for
from hoopcli.server.gateway.decode import Decoded, Decoder
from hoopcli.server.gateway.errors import GatewayError, InvalidClientTokenId
from hoopcli.server.gateway.request import GatewayRequest
from hoopcli.server.gateway.sigv4 import SigV4Verifier, Verified
from hoopcli.server.gateway.upstream import RESPONSE_DROPPED, Upstream, UpstreamUnavailable
from hoopcli.server.sessions.credentials import LiveCredential, Lookup

log = logging.getLogger("hoopcli.server.gateway")


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
        self._http: dict[int, Any] = {}

    # -- verify --------------------------------------------------------------------------------
    def _secret(self, access_key_id: str) -> str | None:
        status, _ = self.lookup.state(access_key_id)
        if status == "expired":
            raise ExpiredToken("The security token included in the request is expired")
        if status == "revoked":
            raise InvalidClientTokenId("The security token included in the request is invalid "
                                       "(hoop: this session credential was revoked)")
        return self.lookup.secret(access_key_id)

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
    def _client(self) -> Any:
        import httpx

        loop = id(asyncio.get_running_loop())
        client = self._http.get(loop)
        if client is None:
            client = httpx.AsyncClient(
                trust_env=False, follow_redirects=False,
                timeout=httpx.Timeout(connect=10.0, read=300.0, write=300.0, pool=30.0),
                limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))
            self._http[loop] = client
        return client

    async def forward(self, request: GatewayRequest, decoded: Decoded, verified: Verified, call: Call,
                      content: Any, streamed_length: int | None, send: Any, counter: list[int]) -> None:
        import httpx

        credential = call.credential
        assert credential is not None
        connection = self.settings.connection(credential.connection)
        assert connection is not None
        user = credential.principal.email or credential.principal.subject
        creds = await run_in_threadpool(self.upstream.credentials, connection, credential.session_id, user)
        path = request.path
        host_prefix = self.decoder._host_prefix(request)
        if host_prefix and decoded.service == "s3":       # virtual-host style: forward path style
            path = "/" + host_prefix + (path if path != "/" else "")
        target = self.upstream.target(decoded.service, decoded.operation, verified.region, connection, path,
                                      request.query)
        from hoopcli.server.gateway.mask import passes_through

        masked_response = not passes_through(self.model(decoded.service).operation_model(decoded.operation))
        headers = [(k, v) for k, v in request.headers.items()]
        if masked_response:
            headers = [(k, v) for k, v in headers if k != "accept-encoding"] + [("accept-encoding", "identity")]
        body = content if streamed_length is None else None
        signed = self.upstream.sign(target, request.method, headers, creds, body, streamed_length)
        parts = urlsplit(target.url)
        url = httpx.URL(scheme=parts.scheme, host=parts.hostname or "", port=parts.port,
                        raw_path=(parts.path + ("?" + parts.query if parts.query else "")).encode("ascii"))
        client = self._client()
        upstream_request = client.build_request(request.method, url, headers=signed,
                                                content=content if content is not None else b"")
        try:
            response = await client.send(upstream_request, stream=True)
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"hoop: AWS did not answer ({type(exc).__name__})") from None
        call.forwarded = True
        try:
            if streamed_length is not None:
                call.bytes_in = counter[0]
            call.http_status = response.status_code
            call.aws_request_id = response.headers.get("x-amz-request-id") or \
                response.headers.get("x-amzn-requestid")
            out_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw
                           if k.decode("latin-1").lower() not in RESPONSE_DROPPED]
            if masked_response or response.status_code >= 300:
                await self._send_masked(response, decoded, call, out_headers, send)
            else:
                await self._send_streamed(response, call, out_headers, send)
        finally:
            await response.aclose()

    async def _send_masked(self, response: Any, decoded: Decoded, call: Call, headers: list[tuple[str, str]],
                           send: Any) -> None:
        cap = self.settings.gateway.max_response_bytes
        parts: list[bytes] = []
        size = 0
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > cap:
                raise GatewayError(f"hoop: the response is larger than the gateway masks ({cap} bytes)",
                                   code="InternalError", status=502)
            parts.append(chunk)
        raw = b"".join(parts)
        model = self.model(decoded.service)
        masked = await run_in_threadpool(self.masker()[1].mask, model, decoded.operation, decoded.protocol,
                                         response.status_code, response.headers, raw)
        if masked is not raw:
            from hoopcli.server.gateway.mask import masked_headers

            headers = [(k, v) for k, v in masked_headers(dict(headers), masked) if k.lower() != "content-length"]
        call.response_size = len(masked)
        call.bytes_out = len(masked)
        call.response_text = masked[:records.RESPONSE_CAP].decode("utf-8", "replace")
        if response.status_code >= 300:
            call.error_code = records.error_code(masked, response.headers)
        await self.record(call)
        call.response_started = True
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": _encode([*headers, ("content-length", str(len(masked)))])})
        await send({"type": "http.response.body", "body": masked})

    async def _send_streamed(self, response: Any, call: Call, headers: list[tuple[str, str]], send: Any) -> None:
        length = response.headers.get("content-length")
        extra = [("content-length", length)] if length is not None else []
        call.response_started = True
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": _encode(headers + extra)})
        async for chunk in response.aiter_raw():
            call.bytes_out += len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        call.response_size = call.bytes_out
        await self.record(call)
        await send({"type": "http.response.body", "body": b""})

    # -- record --------------------------------------------------------------------------------
    async def record(self, call: Call) -> None:
        if call.recorded or call.credential is None:
            return
        call.recorded = True
        try:
            await records.append(self.api_app, call)
        except Exception as exc:
            log.error("gateway record not stored: %s", type(exc).__name__)
            if call.forwarded:
                raise RecordingFailed("hoop: AWS ran this request but the gateway could not record it, so its "
                                      "answer is withheld; check the resource before sending it again") from None
            raise UpstreamUnavailable("hoop: the gateway could not record this request; try again") from None

    async def close(self) -> None:
        for client in list(self._http.values()):
            try:
                await client.aclose()
            except Exception:
                pass
        self._http.clear()


def _encode(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
