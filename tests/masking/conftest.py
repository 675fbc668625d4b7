"""Fixtures for masking tests: a masker with a real key, AWS env aimed at the shared moto_server,
and an in-process awscli v1 runner with the masking hook on botocore's after-call event."""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from hoopcli.masking import Masker, load_key
from hoopcli.masking.hook import install
from hoopcli.paths import Layout


@pytest.fixture
def masker(clean_env: Any) -> Masker:
    return Masker(load_key(Layout.from_env()))


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # awscli sets AWS_DATA_PATH at import (for its "cli" data); clean_env removed it.
    import awscli

    monkeypatch.setenv("AWS_DATA_PATH", os.path.join(os.path.dirname(awscli.__file__), "data"))
    return moto_endpoint


@dataclass
class CliResult:
    rc: int
    stdout: str
    stderr: str
    raw: list[Any] = field(default_factory=list)  # unmasked parsed responses (test spy only)


@pytest.fixture
def run_cli(aws_env: str, masker: Masker, capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run `aws ARGS` in process (awscli v1) against moto with masking installed. stderr is passed
    through mask_debug like the shim does."""

    def run(*args: str, hook: bool = True) -> CliResult:
        from awscli.clidriver import create_clidriver

        driver = create_clidriver()
        raw: list[Any] = []
        emitter = driver.session.get_component("event_emitter")
        emitter.register_first("after-call", lambda parsed=None, **_: raw.append(copy.deepcopy(parsed)))
        if hook:
            install(masker, driver.session)
        masker.mask_argv(args)  # the shim masks argv for the record first; values are remembered
        capsys.readouterr()
        before = list(logging.getLogger().handlers), list(logging.getLogger("botocore").handlers)
        try:
            rc = driver.main(["--endpoint-url", aws_env, *args])
        finally:
            for name, handlers in (("", before[0]), ("botocore", before[1])):
                logger = logging.getLogger(name)
                for handler in list(logger.handlers):
                    if handler not in handlers:
                        logger.removeHandler(handler)
            logging.getLogger("botocore").setLevel(logging.WARNING)
        out, err = capsys.readouterr()
        return CliResult(rc, out, masker.mask_debug(err), raw)

    return run


@pytest.fixture
def boto(aws_env: str) -> Callable[[str], Any]:
    import boto3

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=aws_env, region_name="us-east-1")

    return client
