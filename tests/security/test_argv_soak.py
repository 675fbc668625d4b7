"""hypothesis on argv parsing at 10,000+ cases (make soak). The fast 600-case version is
tests/test_invocation_fuzz.py; this one reuses its strategy and checks, and also feeds every
parsed invocation through argv masking (what the shim stores), which must not crash either."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from test_invocation_fuzz import argv, check

from hoopcli.errors import InvocationError
from hoopcli.masking import Masker
from hoopcli.parse import parse

MASKER = Masker(b"k" * 32)


@pytest.mark.soak
@pytest.mark.timeout(1800)
@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(argv)
def test_parse_and_mask_never_crash_10k(args: list[str]) -> None:
    try:
        inv = parse(args)
    except InvocationError as exc:
        assert exc.message and "\n" not in exc.line()
        return
    check(inv)
    masked = MASKER.mask_argv(list(args))
    assert isinstance(masked, list) and len(masked) == len(args)
    assert all(isinstance(a, str) for a in masked)
