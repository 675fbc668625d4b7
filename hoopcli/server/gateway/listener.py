"""The gateway's HTTP/1.1 parser: uvicorn's httptools protocol (llhttp, in C), kept to the request
as it arrived.

httptools costs the gateway's event loop about a quarter of a millisecond less CPU per request
than h11 (docs/benchmarks.md, "Gateway"). Two things h11 gave that httptools does not, restored
here:

- **The request target as sent.** uvicorn parses the target with `httptools.parse_url`, which
  keeps only the path of an absolute-form target (`GET http://host/x`). The gateway refuses any
  target that is not origin-form (request.py), so `raw_path` and `query_string` are set from the
  bytes the client sent, as uvicorn's h11 protocol does.
- **A bound on the request head.** llhttp has no limit of its own and httptools holds a header
  until it is complete; once more than MAX_HEAD bytes arrived without the head being complete,
  the connection gets uvicorn's plain 400 and is closed, as with h11's
  `h11_max_incomplete_event_size`. request.py's own, smaller caps answer in the client's
  protocol below that.
- **Requests before bad bytes are served first.** httptools parses all that arrived at once, so
  bytes that fail to parse after a complete request (say, past its Content-Length) would close the
  connection while that request runs. The 400 waits until the requests before it have their
  answers, as with h11, which parses no further until then.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD = 48 * 1024


class GatewayHttpProtocol(HttpToolsProtocol):
    _in_head = True        # between two messages or inside a request head
    _head = 0              # bytes received since the head began
    _refuse: str | None = None     # a 400 that waits for the answers of the requests before it

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head += len(data)
        super().data_received(data)
        if self._in_head and self._head > MAX_HEAD and not self.transport.is_closing():
            self.send_400_response("Invalid HTTP request received.")

    def send_400_response(self, msg: str) -> None:
        cycle = self.cycle
        if (cycle is not None and not cycle.more_body and not cycle.response_complete) or self.pipeline:
            self._refuse = msg             # the bad bytes follow whole requests: answer those first
            self.flow.pause_reading()
            return
        super().send_400_response(msg)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._refuse is not None and not self.transport.is_closing():
            self.flow.pause_reading()
            if not self.pipeline and (self.cycle is None or self.cycle.response_complete):
                super().send_400_response(self._refuse)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head, self._head = False, 0
        super().on_headers_complete()
        # the ASGI task has not run yet (or waits in the pipeline) and reads this same scope
        raw_path, _, query = self.url.partition(b"?")
        self.scope["raw_path"] = raw_path
        self.scope["query_string"] = query

    def on_message_complete(self) -> None:
        self._in_head = True
        super().on_message_complete()
