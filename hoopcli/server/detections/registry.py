"""Which detector runs for which database (one per Database object), without importing it:
the decision paths ask it to catch up, the detector registers itself."""

from __future__ import annotations

import threading
from typing import Any

_detectors: dict[int, Any] = {}
lock = threading.Lock()


def detector_of(db: Any) -> Any:
    """The running detector of `db` (a hoopcli.server.detections.detector.Detector), or None."""
    det = _detectors.get(id(db))
    return det if det is not None and det.db is db else None


def register(db: Any, det: Any) -> None:
    _detectors[id(db)] = det
