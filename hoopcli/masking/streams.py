"""Output streams of the shim: masked text on its way to the agent, and a capped capture of it
for the transcript. Binary writes (`aws s3 cp s3://b/k -`) pass through byte-exact and are
recorded by size only."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

DEFAULT_CAP = 1024 * 1024


class Capture:
    """The first `cap` bytes of what the agent saw (already masked), and the total size."""

    def __init__(self, cap: int = DEFAULT_CAP) -> None:
        self.cap = cap
        self.size = 0
        self.binary_size = 0
        self._parts: list[bytes] = []
        self._kept = 0

    def add(self, data: bytes) -> None:
        self.size += len(data)
        room = self.cap - self._kept
        if room > 0:
            piece = data[:room]
            self._parts.append(piece)
            self._kept += len(piece)

    def to_dict(self) -> dict[str, Any]:
        text = b"".join(self._parts).decode("utf-8", "replace")
        out: dict[str, Any] = {"text": text, "size": self.size, "truncated": self.size > self._kept}
        if self.binary_size:
            out["binary_size"] = self.binary_size
        return out


class _Identity:
    def feed(self, data: bytes) -> bytes:
        return data

    def close(self) -> bytes:
        return b""


class WholeSecret:
    """For commands whose whole output is a secret (`ecr get-login-password`): nothing is
    released until the end, then one marker stands for all of it. Bounded in memory."""

    def __init__(self, masker: Any, limit: int = DEFAULT_CAP) -> None:
        self.masker = masker
        self.limit = limit
        self._parts: list[bytes] = []
        self._size = 0

    def feed(self, data: bytes) -> bytes:
        if self._size < self.limit:
            self._parts.append(data[: self.limit - self._size])
        self._size += len(data)
        return b""

    def close(self) -> bytes:
        text = b"".join(self._parts).decode("utf-8", "surrogateescape")
        self._parts = []
        return self.masker.mask_whole(text).encode("utf-8", "surrogateescape") if text else b""


class MaskedBinary:
    """Where masked bytes go: the agent's real stream plus the capture."""

    def __init__(self, raw: IO[bytes], capture: Capture, masker: Any = None) -> None:
        self.raw = raw
        self.capture = capture
        self.masker = masker or _Identity()

    def write_masked(self, data: bytes) -> None:
        out = self.masker.feed(data)
        if out:
            self._emit(out)

    def _emit(self, out: bytes) -> None:
        self.capture.add(out)
        try:
            self.raw.write(out)
            self.raw.flush()
        except BrokenPipeError:
            pass

    def close(self) -> None:
        tail = self.masker.close()
        if tail:
            self._emit(tail)


class _Passthrough:
    """`sys.stdout.buffer` for awscli's binary writes: byte-exact, counted, not kept."""

    def __init__(self, raw: IO[bytes], capture: Capture, before: Callable[[], None]) -> None:
        self._raw = raw
        self._capture = capture
        self._before = before

    def write(self, data: bytes) -> int:
        self._before()
        self._capture.binary_size += len(data)
        self._raw.write(data)
        return len(data)

    def flush(self) -> None:
        self._raw.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


class MaskedTextStream:
    """A text stream for awscli's `sys.stdout`/`sys.stderr` that masks before the agent sees it."""

    def __init__(self, sink: MaskedBinary, real: IO[str]) -> None:
        self._sink = sink
        self._real = real
        self.buffer = _Passthrough(sink.raw, sink.capture, self._drain)
        self.encoding = "utf-8"
        self.errors = "strict"

    def _drain(self) -> None:
        tail = self._sink.masker.close()
        if tail:
            self._sink._emit(tail)

    def write(self, text: str) -> int:
        self._sink.write_masked(text.encode("utf-8", "surrogateescape"))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._sink.raw.flush()
        except (BrokenPipeError, ValueError):
            pass

    def isatty(self) -> bool:
        try:
            return self._real.isatty()
        except (AttributeError, ValueError):
            return False

    def fileno(self) -> int:
        return self._real.fileno()

    @property
    def closed(self) -> bool:
        return False
