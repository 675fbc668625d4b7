"""The FastAPI application factory.

`create_app(settings)` opens and migrates the database (refusing one written by a newer hoop),
sets up token verification, mounts every domain's router, and installs the body
cap, the access log and the error translation (hoopcli.server.errors: HoopError -> JSON with the
right status; never a stack trace or a library message with secrets in it).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from hoopcli import __version__
from hoopcli.server.errors import install_error_handlers
from hoopcli.server.identity.security import TokenVerifier
from hoopcli.server.logging import AccessLogMiddleware, BodyLimitMiddleware
from hoopcli.server.settings import Settings
from hoopcli.server.store.db import Database

# At DEBUG, botocore logs whole STS responses (the vended secret) and urllib3 logs request lines;
# the server never lets them, nor aiohttp (the gateway's client to AWS), below WARNING, whatever
# the root logger says.
QUIET_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer", "aiohttp")


def quiet_libraries() -> None:
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


def _routers() -> list[Any]:
    """Every domain's router, in the order they are mounted."""
    from hoopcli.server.approvals import router as approvals
    from hoopcli.server.approvals import slack_router
    from hoopcli.server.credentials import router as credentials
    from hoopcli.server.detections import router as detections
    from hoopcli.server.identity import router as identity
    from hoopcli.server.idp import routes as idp
    from hoopcli.server.ledger import records_router
    from hoopcli.server.ledger import router as ledger
    from hoopcli.server.policy import router as policy
    from hoopcli.server.sessions import router as sessions
    from hoopcli.server.web import auth as web_auth
    from hoopcli.server.web import findings_pages as web_findings
    from hoopcli.server.web import pages as web_pages

    return [identity.router, sessions.router, credentials.router, policy.router, approvals.router,
            slack_router.router, records_router.router, ledger.router, detections.router, idp.router,
            web_auth.router, web_pages.router, web_findings.router]


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    detector = getattr(app.state, "detector", None)
    if detector is not None:
        detector.stop()


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    aws_session: Any = None,
    migrate: bool = True,
) -> FastAPI:
    """Build the app. `aws_session` (a boto3 Session) overrides the standard AWS credential
    chain the broker uses for its own calls; tests pass one holding moto's fake keys."""
    quiet_libraries()
    from hoopcli.server.policy.service import check_policy_file

    check_policy_file(settings)       # a broken policy_file stops the server here, not per request
    db = database or Database(settings.database_url)
    if migrate:
        db.migrate()

    app = FastAPI(
        lifespan=_lifespan,
        title="hoop server",
        version=__version__,
        description="Policy, approvals, short-lived AWS credentials and a tamper-evident trail "
        "for AI agents that run the AWS CLI.",
    )
    app.state.settings = settings
    app.state.db = db
    app.state.verifier = TokenVerifier(settings)
    app.state.aws_session = aws_session

    for router in _routers():
        app.include_router(router)

    # Detection (docs/detections.md): a thread that evaluates every record the ledger commits.
    from hoopcli.server.detections.detector import start_detector

    app.state.detector = start_detector(db, settings)

    install_error_handlers(app)
    # Outermost first in the request path: the access log sees the body cap's 413 too.
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes,
                       per_path={"/api/v1/records": settings.max_records_body_bytes})
    app.add_middleware(AccessLogMiddleware)
    return app


def uvicorn_configs(app: FastAPI, uvicorn: Any, *, api_sockets: bool = False) -> tuple[Any, Any]:
    """(API config, gateway config) for the two listeners of one hoop server process."""
    from hoopcli.server.gateway.app import create_gateway_app
    from hoopcli.server.gateway.listener import GatewayHttpProtocol

    settings: Settings = app.state.settings
    gateway = create_gateway_app(app)
    app.state.gateway = gateway
    # The API: h11, whose bound on the request head is its default (16 KiB incomplete event).
    api = uvicorn.Config(app, host=settings.host, port=settings.port, access_log=False,
                         log_level=settings.log_level, server_header=False, proxy_headers=False,
                         timeout_keep_alive=5, timeout_graceful_shutdown=10, http="h11")
    # The gateway: AWS clients keep connections open; httptools with the request target kept as
    # sent and the head bounded (listener.py); request.py refuses smaller excesses in the client's
    # protocol. No WebSocket upgrades, whatever is installed: every request is an AWS request.
    gw = uvicorn.Config(gateway, host=settings.gateway.host, port=settings.gateway.port, access_log=False,
                        log_level=settings.log_level, server_header=False, proxy_headers=False,
                        date_header=True, timeout_keep_alive=60, timeout_graceful_shutdown=10,
                        http=GatewayHttpProtocol, ws="none", lifespan="on")
    return api, gw


def serve_both(app: FastAPI, uvicorn: Any) -> None:
    """Run the API and the gateway in one event loop until a signal stops them."""
    import asyncio
    import threading

    api_config, gw_config = uvicorn_configs(app, uvicorn)
    threading.Thread(target=app.state.gateway.service.warm, name="hoop-gateway-warm", daemon=True).start()
    servers = [uvicorn.Server(api_config), uvicorn.Server(gw_config)]

    async def run() -> None:
        tasks = [asyncio.ensure_future(s.serve()) for s in servers]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for s in servers:          # one stopped (a signal, a port in use): stop the other too
            s.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(run())
