"""GET /api/v1/whoami: who the server thinks the caller is (any authenticated user)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from ..security import Principal, require

router = APIRouter(prefix="/api/v1", tags=["identity"])


@router.get("/whoami")
def whoami(principal: Principal = Depends(require())) -> dict[str, Any]:
    return {
        "subject": principal.subject,
        "email": principal.email,
        "name": principal.name,
        "groups": list(principal.groups),
        "roles": sorted(principal.roles),
        "org": principal.org,
    }
