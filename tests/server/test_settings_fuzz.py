"""Whatever a config file holds, loading it gives Settings or a ConfigError, never a crash."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hoopcli.errors import ConfigError
from hoopcli.server.settings import TOP_KEYS, Settings, load_settings

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                    st.text(max_size=30), st.sampled_from(["https://idp.example", "arn:aws:iam::123456789012:role/r",
                                                          "127.0.0.1:1", "us-east-1", "sqlite:///x.db"]))
keys = st.one_of(st.sampled_from([*TOP_KEYS, "issuer", "client_id", "role_arn", "approver", "default",
                                   "region", "groups", "password_hash"]), st.text(max_size=10))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(keys, inner, max_size=4)), max_leaves=12)
configs = st.dictionaries(st.sampled_from(TOP_KEYS), values, max_size=5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=configs)
def test_any_config_loads_or_is_refused_cleanly(tmp_path: Path, data: dict) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(data))
    try:
        result = load_settings(path, env={"HOOP_HOME": str(tmp_path)})
    except ConfigError as exc:
        assert exc.message and "\n" not in exc.line()
    else:
        assert isinstance(result, Settings)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_any_text_loads_or_is_refused_cleanly(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_settings(path, env={"HOOP_HOME": str(tmp_path)})
    except ConfigError:
        pass
