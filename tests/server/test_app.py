"""Error translation at the HTTP boundary: HoopErrors keep their meaning, nothing else leaks."""

from __future__ import annotations

import httpx
import pytest
from fastapi import Depends

from hoopcli.errors import ConfigError, HoopError, NotLoggedIn, Unavailable
from hoopcli.server.identity.security import public


class Conflict(HoopError):
    status_code = 409


ERRORS = {
    "unavailable": (Unavailable("the database is down"), 503, "the database is down"),
    "config": (ConfigError("bad policy file"), 400, "bad policy file"),
    "login": (NotLoggedIn("token expired"), 401, "token expired"),
    "declared": (Conflict("already decided"), 409, "already decided"),
    "plain-hoop": (HoopError("secret internals s3cr3t"), 500, "internal server error"),
    "bug": (RuntimeError("password=s3cr3t"), 500, "internal server error"),
}


@pytest.fixture
def failing_server(server):
    def raiser(exc: Exception):
        def endpoint() -> None:
            raise exc

        return endpoint

    for name, (exc, _status, _detail) in ERRORS.items():
        server.app.add_api_route(f"/test/{name}", raiser(exc), methods=["GET"],
                                 dependencies=[Depends(public("test route"))])
    return server


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors_are_translated(failing_server, name: str) -> None:
    _exc, status, detail = ERRORS[name]
    r = httpx.get(failing_server.url + f"/test/{name}")
    assert r.status_code == status
    assert r.json() == {"detail": detail}
    assert "s3cr3t" not in r.text


def test_unknown_paths_are_404(server) -> None:
    assert httpx.get(server.url + "/api/v1/nope").status_code == 404
    assert httpx.delete(server.url + "/api/v1/config").status_code == 405


def test_request_id_header(server) -> None:
    r = httpx.get(server.url + "/api/v1/health")
    assert r.json() == {"status": "ok"}
    assert len(r.headers["x-request-id"]) == 16


@pytest.mark.parametrize("name", ["plain-hoop", "bug"])
def test_internal_errors_are_logged_by_type_and_frame_never_by_message(failing_server, name: str,
                                                                       caplog) -> None:
    with caplog.at_level("ERROR", logger="hoopcli.server"):
        assert httpx.get(failing_server.url + f"/test/{name}").status_code == 500
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records
                       if r.name == "hoopcli.server")
    assert type(ERRORS[name][0]).__name__ in logged
    assert "test_app.py" in logged and "in endpoint" in logged      # where it happened
    assert "s3cr3t" not in logged
