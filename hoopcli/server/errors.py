"""The server's errors and the ONE table that turns them into HTTP answers.

Services raise a `ServiceError` subclass (or one of the shared HoopErrors in STATUS_OF); routers
neither catch nor translate them. `install_error_handlers` answers every HoopError as
`{"detail": message}` with its status; anything else (and any HoopError without a status) is a
500 logged by type and frames only: a message or a local may hold a secret.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from hoopcli.errors import ConfigError, HoopError, NotLoggedIn, Unavailable, where

log = logging.getLogger("hoopcli.server")


class ServiceError(HoopError):
    """An error a service raises on purpose; `status_code` is the HTTP status it means.

    `detail` replaces the message in the JSON body when a route's contract has a structured one
    (a policy push lists every problem); `extra` adds keys beside `detail` (what a client needs
    to act on the refusal); `headers` go on the response (WWW-Authenticate)."""

    status_code = 400

    def __init__(self, message: str, *, detail: Any = None, extra: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.detail = message if detail is None else detail
        self.extra = extra or {}
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, **self.extra}


class SignInFirst(ServiceError):
    """A console page visited without a session: 303 to sign-in (headers carry the Location)."""

    status_code = 303


class BadRequest(ServiceError):
    status_code = 400


class Unauthenticated(ServiceError):
    status_code = 401


class Forbidden(ServiceError):
    status_code = 403


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409


class TooLarge(ServiceError):
    status_code = 413


class Unprocessable(ServiceError):
    status_code = 422


class BadGateway(ServiceError):
    status_code = 502


class ServiceUnavailable(ServiceError):
    status_code = 503


# Shared (client-side) errors that reach the server's routes, by the status they mean there.
STATUS_OF: list[tuple[type[HoopError], int]] = [
    (NotLoggedIn, 401),
    (Unavailable, 503),
    (ConfigError, 400),
]


def status_of(exc: HoopError) -> int:
    """The HTTP status `exc` means: its own status_code if it declares one, else STATUS_OF, else 500."""
    declared = getattr(exc, "status_code", None)
    if isinstance(declared, int) and (400 <= declared <= 599 or isinstance(exc, SignInFirst)):
        return declared
    return next((code for cls, code in STATUS_OF if isinstance(exc, cls)), 500)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Same shape as FastAPI's default, without echoing the submitted values back.
        errors = [
            {k: v for k, v in err.items() if k in ("type", "loc", "msg")} for err in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(HoopError)
    async def hoop_error(_request: Request, exc: HoopError) -> JSONResponse:
        status = status_of(exc)
        if status == 500:
            # Type and frames only: a message or a local may hold a secret (canary-tested).
            log.error("internal error: %s", " | ".join(where(exc)))
            return JSONResponse({"detail": "internal server error"}, status_code=500)
        if isinstance(exc, ServiceError):
            return JSONResponse(exc.body(), status_code=status, headers=exc.headers)
        return JSONResponse({"detail": exc.message}, status_code=status)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error: %s", " | ".join(where(exc)))
        return JSONResponse({"detail": "internal server error"}, status_code=500)
