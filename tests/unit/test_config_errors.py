"""What an operator reads when a config is wrong: SPIRE's text first, then what is allowed.

Each error names the file, the position when known, and the key (``describe()``, as the CLI
prints it); ``validate`` rejects what start-up would reject for reasons the config alone decides.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from spire_oidc.config.load import load_config, parse_config
from spire_oidc.config.schema import all_keys, hint_for
from spire_oidc.config.validate import JWT_ISSUER_WARNING, SPIRE_JWT_ISSUER_WARNING
from spire_oidc.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SOURCE = 'domains = ["a.test"]\nfile { path = "/b.spiffe" }\n'


def describe(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, path="t.conf")
    return info.value.describe()


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        (
            "8080",
            "t.conf:3:17, key insecure_addr: listen tcp: address 8080: missing port in address",
        ),
        (":99999", "t.conf:3:17, key insecure_addr: listen tcp: address 99999: invalid port"),
        (
            "localhost:abc",
            "t.conf:3:17, key insecure_addr: listen tcp: lookup tcp/abc: unknown port",
        ),
        (
            "::1:80",
            "t.conf:3:17, key insecure_addr: listen tcp: address ::1:80: too many colons in address",
        ),
    ],
)
def test_insecure_addr_is_checked_when_loaded(addr: str, expected: str) -> None:
    """A listen address net.Listen would refuse fails validate, with Go's text, file and key."""
    assert describe(SOURCE + f'insecure_addr = "{addr}"\n') == expected


@pytest.mark.parametrize("addr", [":8080", "127.0.0.1:0", "[::1]:8080", "localhost:http", ":0"])
def test_insecure_addr_forms_go_accepts(addr: str) -> None:
    """host:port with an empty, IP or named host and a numeric or service port loads."""
    assert parse_config(SOURCE + f'insecure_addr = "{addr}"\n').insecure_addr == addr


def test_listen_socket_path_must_fit_in_sun_path() -> None:
    """A socket path longer than sun_path fails at load with Go's bind text and the limit."""
    path = "/tmp/" + "s" * 103  # 108 bytes: one too many
    assert describe(SOURCE + f'listen_socket_path = "{path}"\n') == (
        f"t.conf:3:22, key listen_socket_path: listen unix {path}: bind: invalid argument "
        "(a unix socket path is at most 107 bytes; this one is 108)"
    )
    ok = "/tmp/" + "s" * 102
    assert parse_config(SOURCE + f'listen_socket_path = "{ok}"\n').listen_socket_path == ok


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            'insecure_addr = ":8008"\nhealth_checks {}\n',
            "t.conf:4:1, key health_checks.bind_port: listen tcp :8008: bind: address already "
            "in use (insecure_addr and health_checks.bind_port both listen on port 8008)",
        ),
        (
            'insecure_addr = "127.0.0.1:9000"\nhealth_checks { bind_port = 9000 '
            'bind_host = "localhost" }\n',
            "t.conf:4:29, key health_checks.bind_port: listen tcp localhost:9000: bind: address "
            "already in use (insecure_addr and health_checks.bind_port both listen on port 9000)",
        ),
    ],
)
def test_two_listeners_on_one_port_fail_validate(extra: str, expected: str) -> None:
    """The main and health listeners on one port can never both bind: validate says so."""
    assert describe(SOURCE + extra) == expected


def test_listeners_on_distinct_hosts_or_any_port_load() -> None:
    """Same port on two different IPs, or port 0 twice, is not a clash."""
    parse_config(
        SOURCE + 'insecure_addr = "127.0.0.1:9000"\n'
        'health_checks { bind_port = 9000 bind_host = "127.0.0.2" }\n'
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'domains = "localhost"\n',
            "t.conf:1:11, key domains: unable to decode configuration: At 1:11: unknown slice "
            'type: *ast.LiteralType (expected a list of strings, e.g. domains = ["oidc.example.org"])',
        ),
        (
            SOURCE + 'set_key_use = "true"\n',
            "t.conf:3:15, key set_key_use: unable to decode configuration: At 3:15: "
            "root.set_key_use: unknown type *ast.LiteralType (expected true or false)",
        ),
        (
            SOURCE + 'insecure_addr = ":80"\nlog_level = "verbose"\n',
            't.conf:4:13, key log_level: not a valid logrus Level: "verbose" '
            "(one of: debug, info, warn, error, panic, fatal, trace, warning)",
        ),
        (
            SOURCE + "max_connections = true\n",
            "t.conf:3:19, key max_connections: unable to decode configuration: At 3:19: "
            "root.max_connections: unknown type *ast.LiteralType "
            "(expected a whole number, e.g. max_connections = 10000)",
        ),
        (
            SOURCE + "acme = 1\n",
            "t.conf:3:8, key acme: unable to decode configuration: At 3:8: root.acme: not an "
            "object type for struct (*ast.LiteralType) (expected a block, e.g. acme { … })",
        ),
    ],
)
def test_type_errors_say_what_was_expected(text: str, expected: str) -> None:
    """SPIRE's decoder text stays first; the model's hint for the key follows in parentheses."""
    assert describe(text) == expected


def test_every_key_has_a_hint() -> None:
    """Each key the model declares (legacy raw keys aside) yields a non-empty hint."""
    for name, spec in all_keys().items():
        if spec.kind.value != "raw":
            assert hint_for(name), name
    assert hint_for("DOMAINS") == hint_for("domains")  # keys match case-insensitively


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ('insecure_addr = ":80"\nmax_connections = 0\n', "max_connections"),
        ('insecure_addr = ":80"\ntrusted_proxies = ["proxy"]\n', "trusted_proxies"),
        ('insecure_addr = ":80"\nstate_max_age = "1d"\n', "state_max_age"),
    ],
)
def test_errors_of_our_keys_name_the_key(extra: str, key: str) -> None:
    """Errors whose text happens to contain the key's name still carry ", key X"."""
    assert f"t.conf:4:{len(key) + 4}, key {key}: " in describe(SOURCE + extra)


def test_legacy_domain_error_names_the_domain_key() -> None:
    """An invalid domain given through the removed domain key names that key."""
    text = 'domain = "Bad.Test"\ninsecure_addr = ":80"\nfile { path = "/x" }\n'
    assert describe(text) == (
        't.conf:1:10, key domain: domain "Bad.Test" must already be punycode encoded'
    )


@pytest.mark.parametrize("content", ["", "\n\n", "# nothing yet\n", "{}"])
def test_empty_file_says_it_is_empty(tmp_path: Path, content: str) -> None:
    """An empty file keeps SPIRE's first failing check and adds that the file is empty."""
    conf = tmp_path / "empty.conf"
    conf.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_config(str(conf))
    assert info.value.describe() == (
        f"{conf}, key domains: at least one domain must be configured "
        "(the configuration file is empty)"
    )


def test_jwt_issuer_warning_keeps_spire_text_then_ours() -> None:
    """The warning starts with SPIRE's (dated) text and follows it with a current sentence."""
    cfg = parse_config(SOURCE + 'insecure_addr = ":80"\njwt_issuer = "https://i.test"\n')
    assert cfg.warnings == (JWT_ISSUER_WARNING,)
    assert JWT_ISSUER_WARNING.startswith(SPIRE_JWT_ISSUER_WARNING + " ")
    ours = JWT_ISSUER_WARNING.removeprefix(SPIRE_JWT_ISSUER_WARNING)
    assert "jwks_url" not in ours and "1.13.0" not in ours and "/keys" in ours


@pytest.mark.parametrize(
    "example",
    sorted(p.name for p in (REPO / "conf").iterdir() if p.suffix in (".conf", ".json")),
)
def test_example_configs_load_without_warnings(example: str) -> None:
    """Every example in conf/ loads and raises no warning (the jwt_issuer one included)."""
    assert load_config(str(REPO / "conf" / example)).warnings == ()
