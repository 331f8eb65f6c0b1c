"""Our health_checks keys: ``bind_host`` (the health/metrics listener's address) and ``metrics``."""

from __future__ import annotations

import pytest

from spire_oidc.config.model import HealthChecksConfig, effective_config, parse_config
from spire_oidc.errors import ConfigError

BASE = 'domains = ["a.test"]\ninsecure_addr = ":8080"\nfile { path = "/b.spiffe" }\n'


def health(block: str) -> HealthChecksConfig:
    cfg = parse_config(BASE + f"health_checks {{ {block} }}\n")
    assert cfg.health_checks is not None
    assert not cfg.warnings, cfg.warnings
    return cfg.health_checks


def test_defaults_are_spire_behaviour() -> None:
    """Without our keys the listener binds every interface and serves no metrics (as SPIRE)."""
    hc = health("")
    assert (hc.bind_host, hc.metrics) == ("", False)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "0.0.0.0", "::", "10.1.2.3", "localhost"])
def test_bind_host_accepted(host: str) -> None:
    """bind_host takes an IP address (v4 or v6) or "localhost"."""
    assert health(f'bind_host = "{host}" metrics = true') == HealthChecksConfig(
        bind_host=host, metrics=True
    )


def test_json_form() -> None:
    """The JSON form (the Helm chart's) carries the same keys."""
    cfg = parse_config(
        '{"domains": ["a.test"], "insecure_addr": ":1", "file": {"path": "/x"}, '
        '"health_checks": {"bind_port": "8008", "bind_host": "127.0.0.1", "metrics": true}}'
    )
    assert cfg.health_checks == HealthChecksConfig(bind_host="127.0.0.1", metrics=True)


@pytest.mark.parametrize("host", ["example.org", "127.0.0.1:8008", "[::1]", " "])
def test_bind_host_rejected(host: str) -> None:
    """Anything but an IP address or "localhost" is an error naming the key."""
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + f'health_checks {{ bind_host = "{host}" }}\n')
    assert info.value.key == "health_checks.bind_host"
    assert 'bind_host must be an IP address or "localhost"' in str(info.value)


def test_metrics_must_be_a_bool() -> None:
    """metrics follows SPIRE's bool rule: only real booleans."""
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + 'health_checks { metrics = "true" }\n')
    assert "health_checks.metrics" in str(info.value)


@pytest.mark.parametrize("key", ["ready_path", "live_path"])
def test_metrics_path_clash(key: str) -> None:
    """With metrics on, ready_path/live_path may not take /metrics."""
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + f'health_checks {{ metrics = true {key} = "/metrics" }}\n')
    assert info.value.key == f"health_checks.{key}"
    assert health(f'{key} = "/metrics"').metrics is False  # fine while metrics are off


def test_bind_address_stays_spire_unknown_key() -> None:
    """SPIRE ignores health_checks.bind_address (its server/agent key); so do we, with a warning."""
    cfg = parse_config(BASE + 'health_checks { bind_address = "127.0.0.1" }\n')
    assert cfg.health_checks == HealthChecksConfig()
    assert any("health_checks.bind_address" in w for w in cfg.warnings)


def test_effective_config_shows_keys() -> None:
    """validate -json prints both keys."""
    cfg = parse_config(BASE + 'health_checks { bind_host = "::1" metrics = true }\n')
    shown = effective_config(cfg)["health_checks"]
    assert isinstance(shown, dict)
    assert (shown["bind_host"], shown["metrics"]) == ("::1", True)
