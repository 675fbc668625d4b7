"""StreamMasker: mask a byte stream chunk by chunk (stdout of `aws logs tail --follow`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hoopcli.masking.detect import LazyBytesPattern

if TYPE_CHECKING:
    from hoopcli.masking import Masker

_PEM_END = LazyBytesPattern(rb"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")


class StreamMasker:
    """Masks a byte stream chunk by chunk without splitting a secret across chunks.

    Complete lines are masked and released at once (so `aws logs tail --follow` still streams);
    a line longer than `max_line` is cut at its last whitespace (or hard, at worst); a private key
    block is held until its END line (up to `hold_limit`). The last `context` characters already
    released are kept (unmasked, in memory only) so a secret key on the line after its key id or
    label is still recognised."""

    def __init__(self, masker: Masker, *, debug: bool = False, max_line: int = 64 * 1024,
                 hold_limit: int = 1024 * 1024, context: int = 512) -> None:
        self.masker = masker
        self.debug = debug
        self.max_line = max_line
        self.hold_limit = hold_limit
        self.context = context
        self._buf = b""
        self._ctx = ""

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        cut = self._cut_point()
        if cut <= 0:
            return b""
        ready, self._buf = self._buf[:cut], self._buf[cut:]
        return self._emit(ready)

    def close(self) -> bytes:
        ready, self._buf = self._buf, b""
        return self._emit(ready) if ready else b""

    def _cut_point(self) -> int:
        buf = self._buf
        begin = buf.rfind(b"-----BEGIN ")
        if begin != -1 and b"PRIVATE KEY" in buf[begin:begin + 80] and len(buf) < self.hold_limit:
            end = _PEM_END.search(buf, begin)
            if end is None or buf.rfind(b"\n") + 1 < end.end():
                return buf.rfind(b"\n", 0, begin) + 1  # release only what precedes the block
        cut = buf.rfind(b"\n") + 1
        if cut == 0 and len(buf) > self.max_line:
            space = max(buf.rfind(b" "), buf.rfind(b"\t"), buf.rfind(b","))
            cut = space + 1 if space > 0 else len(buf)
        return cut

    def _emit(self, ready: bytes) -> bytes:
        text = ready.decode("utf-8", "surrogateescape")
        ctx = self._ctx
        whole = ctx + text
        spans = []
        for start, end, kind in self.masker._spans(whole, self.debug):
            if end <= len(ctx):
                continue
            spans.append((max(start, len(ctx)) - len(ctx), end - len(ctx), kind))
        self._ctx = whole[-self.context:] if self.context else ""
        return self.masker._apply(text, spans).encode("utf-8", "surrogateescape")
