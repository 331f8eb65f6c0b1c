"""Properties: whatever the text, the config layer answers with a Config or a ConfigError."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spire_oidc.config.domains import DomainError, to_domain_key
from spire_oidc.config.gocompat import DurationError, parse_duration
from spire_oidc.config.model import Config, expand_env, parse_config
from spire_oidc.errors import ConfigError

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = [
    "domains",
    "domain",
    "log_level",
    "log_format",
    "insecure_addr",
    "listen_socket_path",
    "set_key_use",
    "jwt_issuer",
    "jwks_uri",
    "server_path_prefix",
    "acme",
    "serving_cert_file",
    "server_api",
    "workload_api",
    "file",
    "health_checks",
    "registration_api",
    "experimental",
    "email",
    "tos_accepted",
    "cache_dir",
    "cert_file_path",
    "key_file_path",
    "addr",
    "address",
    "socket_path",
    "trust_domain",
    "poll_interval",
    "path",
    "bind_port",
    "ready_path",
    "live_path",
    "LOG_LEVEL",
    "unknown",
]
STRINGS = st.sampled_from(
    [
        "",
        "a.test",
        "A.test",
        ":8080",
        "127.0.0.1:1",
        ":https",
        "unix:/s",
        "/x",
        "10s",
        "-1s",
        "1d",
        "huh",
        "8008",
        "abc",
        "true",
        "https://i.test",
        "/prefix",
        "spiffe://td",
        "x\ny",
    ]
) | st.text(max_size=12)


def _hcl_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is also a valid HCL string


def _hcl_value(depth: int) -> st.SearchStrategy[str]:
    scalars = st.one_of(
        STRINGS.map(_hcl_string),
        st.integers(-(2**70), 2**70).map(str),
        st.sampled_from(["true", "false", "1.5", "0x1F", "ident", "<<EOT\nx\nEOT\n"]),
    )
    if depth <= 0:
        return scalars
    return st.one_of(
        scalars,
        st.lists(scalars, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        _hcl_body(depth - 1).map(lambda body: "{\n" + body + "}"),
    )


def _hcl_body(depth: int) -> st.SearchStrategy[str]:
    item = st.tuples(st.sampled_from(KEYS), st.sampled_from([" = ", " ", ": "]), _hcl_value(depth))
    return st.lists(item, max_size=6).map(
        lambda items: "".join(f"{k}{op}{v}\n" for k, op, v in items)
    )


def _outcome(text: str) -> None:
    try:
        result = parse_config(text, path="p.conf")
    except ConfigError as exc:
        assert exc.path == "p.conf"
        assert str(exc)
    else:
        assert isinstance(result, Config)
        assert result.domains and all(isinstance(w, str) for w in result.warnings)


@FAST
@given(st.text(max_size=200))
def test_any_text_gives_config_or_config_error(text: str) -> None:
    """Arbitrary text never raises anything but ConfigError."""
    _outcome(text)


@FAST
@given(_hcl_body(2))
def test_hcl_like_documents_give_config_or_config_error(text: str) -> None:
    """HCL-shaped documents over SPIRE's keys never raise anything but ConfigError."""
    _outcome(text)


def _near_valid() -> st.SearchStrategy[str]:
    """A config with a domain, a listener and a source, each drawn from good and bad values."""
    value = STRINGS.map(_hcl_string)
    domains = st.lists(STRINGS, min_size=0, max_size=3).map(
        lambda ds: "domains = [" + ", ".join(_hcl_string(d) for d in ds) + "]\n"
    )
    listener = st.sampled_from(
        [
            'insecure_addr = ":8080"\n',
            'listen_socket_path = "/run/odp.sock"\n',
            'acme { tos_accepted = true email = "e@a.test" }\n',
            'serving_cert_file { cert_file_path = "/c" key_file_path = "/k" }\n',
            "acme {}\n",
            "",
        ]
    )
    block = st.sampled_from(
        ["server_api", "workload_api", "file", "registration_api", "health_checks"]
    )
    field = st.sampled_from(KEYS)
    source = st.lists(
        st.tuples(block, st.lists(st.tuples(field, value), max_size=4)), min_size=1, max_size=2
    ).map(
        lambda blocks: "".join(
            f"{name} {{\n" + "".join(f"  {k} = {v}\n" for k, v in fields) + "}\n"
            for name, fields in blocks
        )
    )
    extra = st.lists(st.tuples(field, value), max_size=3).map(
        lambda items: "".join(f"{k} = {v}\n" for k, v in items)
    )
    return st.tuples(domains, listener, source, extra).map("".join)


@FAST
@given(_near_valid())
def test_near_valid_documents_give_config_or_config_error(text: str) -> None:
    """Configs close to valid (exercising every rule) never raise anything but ConfigError."""
    _outcome(text)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | STRINGS,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS), children, max_size=4)
    ),
    max_leaves=12,
)


@FAST
@given(st.dictionaries(st.sampled_from(KEYS), JSON_VALUES, max_size=6))
def test_json_documents_give_config_or_config_error(doc: dict[str, object]) -> None:
    """JSON documents (NaN and infinities included) never raise anything but ConfigError."""
    _outcome(json.dumps(doc))


@FAST
@given(st.text(max_size=40))
def test_parse_duration_total(text: str) -> None:
    """parse_duration returns an int or raises DurationError, for any text."""
    try:
        assert isinstance(parse_duration(text), int)
    except DurationError as exc:
        assert str(exc).startswith("time: ")


@FAST
@given(st.text(max_size=40))
def test_to_domain_key_total(name: str) -> None:
    """to_domain_key returns the name itself or raises DomainError, for any text."""
    try:
        assert to_domain_key(name) == name
    except DomainError as exc:
        assert str(exc).startswith("domain ")


@FAST
@given(st.text(max_size=60), st.dictionaries(st.text(max_size=5), st.text(max_size=5)))
def test_expand_env_total(text: str, env: dict[str, str]) -> None:
    """expand_env never fails, and leaves text without "$" unchanged."""
    out = expand_env(text, env)
    if "$" not in text:
        assert out == text
