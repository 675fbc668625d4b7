"""Identity routes: GET /api/v1/config (what a client needs to log in, no authentication),
/health, and GET /api/v1/whoami (who the server thinks the caller is)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from hoopcli import __version__
from hoopcli.server.identity.security import Principal, get_db, get_settings, public, require
from hoopcli.server.identity.service import remember_user
from hoopcli.server.settings import Settings
from hoopcli.server.store.db import Database

router = APIRouter(prefix="/api/v1", tags=["identity"])


@router.get("/config", dependencies=[Depends(public("clients read it before they can log in"))])
def get_config(settings: Settings = Depends(get_settings)) -> dict[str, Any]:
    return {
        "issuer": settings.issuer,
        "client_id": settings.client_id,
        "scopes": list(settings.scopes),
        "groups_claim": settings.groups_claim,
        "dev_idp": settings.dev_idp,
        "server_version": __version__,
        "connections": sorted(settings.connections),
    }


@router.get("/health", dependencies=[Depends(public("load balancer health check"))])
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/whoami")
def whoami(principal: Principal = Depends(require()), db: Database = Depends(get_db)) -> dict[str, Any]:
    # `hoop login` calls this: the server then knows the user's email and groups, so their Slack
    # clicks can be matched before they ever call an approvals endpoint
    remember_user(db, principal)
    return {
        "subject": principal.subject,
        "email": principal.email,
        "name": principal.name,
        "groups": list(principal.groups),
        "roles": sorted(principal.roles),
        "org": principal.org,
    }
