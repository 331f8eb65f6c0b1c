"""The ``serving_svid`` block (ours, issue 15): defaults, the socket's fallbacks, and errors that
name the key."""

from __future__ import annotations

import pytest

from spire_oidc.config.load import parse_config
from spire_oidc.config.serving_svid import endpoint_socket
from spire_oidc.errors import ConfigError

WORKLOAD = 'workload_api {\n  socket_path = "/run/agent.sock"\n  trust_domain = "example.org"\n}\n'
FILE = 'file {\n  path = "/b.json"\n}\n'


def test_socket_defaults_to_the_workload_api_socket() -> None:
    """Without socket_path the listener uses workload_api.socket_path; addr defaults to :443."""
    cfg = parse_config(
        'domains = ["oidc.test"]\n' + WORKLOAD + 'serving_svid {\n  addr = "127.0.0.1:8443"\n}\n'
    )
    assert cfg.serving_svid is not None
    assert cfg.serving_svid.socket_path == "/run/agent.sock"
    assert (cfg.serving_svid.host, cfg.serving_svid.port) == ("127.0.0.1", 8443)
    default = parse_config('domains = ["oidc.test"]\n' + WORKLOAD + "serving_svid {}\n")
    assert default.serving_svid is not None and default.serving_svid.port == 443


def test_socket_falls_back_to_spiffe_endpoint_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """With another source, SPIFFE_ENDPOINT_SOCKET (unix:///path) names the agent socket."""
    monkeypatch.setenv("SPIFFE_ENDPOINT_SOCKET", "unix:///run/spire/agent.sock")
    cfg = parse_config('domains = ["oidc.test"]\n' + FILE + "serving_svid {}\n")
    assert cfg.serving_svid is not None
    assert cfg.serving_svid.socket_path == "/run/spire/agent.sock"


def test_missing_socket_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """No socket anywhere: an error naming serving_svid.socket_path and the fallbacks."""
    monkeypatch.delenv("SPIFFE_ENDPOINT_SOCKET", raising=False)
    with pytest.raises(ConfigError) as err:
        parse_config('domains = ["oidc.test"]\n' + FILE + "serving_svid {}\n")
    assert err.value.key == "serving_svid.socket_path"
    assert "SPIFFE_ENDPOINT_SOCKET" in str(err.value)


@pytest.mark.parametrize(
    "other",
    ['insecure_addr = ":8080"\n', 'listen_socket_path = "/tmp/o.sock"\n'],
)
def test_exclusive_with_other_listeners(other: str) -> None:
    """serving_svid is one more listener kind: with another, SPIRE-style exclusivity error."""
    with pytest.raises(ConfigError) as err:
        parse_config('domains = ["oidc.test"]\n' + other + WORKLOAD + "serving_svid {}\n")
    assert "serving_svid and" in str(err.value) and "mutually exclusive" in str(err.value)


def test_alone_it_satisfies_the_listener_rule() -> None:
    """SPIRE's 'either acme, serving_cert_file, …' error does not fire for serving_svid alone,
    and still does with no listener at all."""
    assert parse_config('domains = ["oidc.test"]\n' + WORKLOAD + "serving_svid {}\n")
    with pytest.raises(ConfigError, match="must be configured"):
        parse_config('domains = ["oidc.test"]\n' + WORKLOAD)


@pytest.mark.parametrize("value", ["example.org/oidc", "spiffe://", "https://x/y"])
def test_spiffe_id_must_be_a_spiffe_id(value: str) -> None:
    """A spiffe_id that is not spiffe://… is refused, naming the key."""
    with pytest.raises(ConfigError) as err:
        parse_config(
            'domains = ["oidc.test"]\n'
            + WORKLOAD
            + f'serving_svid {{\n  spiffe_id = "{value}"\n}}\n'
        )
    assert err.value.key == "serving_svid.spiffe_id"


def test_port_shared_with_health_is_refused() -> None:
    """serving_svid.addr on the health port fails validate with Go's bind text."""
    with pytest.raises(ConfigError, match="address already in use"):
        parse_config(
            'domains = ["oidc.test"]\n'
            + WORKLOAD
            + 'serving_svid {\n  addr = ":8008"\n}\nhealth_checks {}\n'
        )


def test_endpoint_socket_forms() -> None:
    """SPIFFE_ENDPOINT_SOCKET's unix:///p, unix:/p and bare path forms give the path."""
    assert endpoint_socket("unix:///a/b.sock") == "/a/b.sock"
    assert endpoint_socket("unix:/a/b.sock") == "/a/b.sock"
    assert endpoint_socket("/a/b.sock") == "/a/b.sock"
