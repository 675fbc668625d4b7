from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from human import users_config


@pytest.fixture
def idp_server(make_server: Any) -> Any:
    """A real hoop server with the dev IdP, two local accounts and a 1 s polling interval."""
    from hoopcli.server.idp.routes import provider_for

    srv = make_server(users=users_config())
    provider = provider_for(srv.app)
    provider.interval = 1
    srv.idp = provider
    return srv
