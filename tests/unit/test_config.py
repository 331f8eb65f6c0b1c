"""Config parsing: hcl v1 decoding semantics, SPIRE's rules and order, our additions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spire_oidc.config.gocompat import (
    DurationError,
    GoAddrError,
    GoURLError,
    parse_duration,
    parse_go_int,
    parse_url,
    resolve_tcp_addr,
)
from spire_oidc.config.model import (
    AcmeConfig,
    Config,
    FileConfig,
    HealthChecksConfig,
    ServerAPIConfig,
    ServingCertFileConfig,
    WorkloadAPIConfig,
    effective_config,
    expand_env,
    load_config,
    parse_config,
)
from spire_oidc.config.schema import all_keys
from spire_oidc.config.validate import JWT_ISSUER_WARNING, SPIRE_JWT_ISSUER_WARNING
from spire_oidc.errors import ConfigError

# What decode errors append after SPIRE's text, from the model's metadata.
INT_HINT = " (expected a whole number, e.g. bind_port = 8008)"
LIST_HINT = ' (expected a list of strings, e.g. domains = ["oidc.example.org"])'

# A minimal valid config (insecure listener, file source) that tests extend.
BASE = 'domains = ["a.test"]\ninsecure_addr = ":8080"\nfile { path = "/b.spiffe" }\n'


def parse(extra: str = "", base: str = BASE) -> Config:
    return parse_config(base + extra, path="t.conf")


def parse_error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, path="t.conf")
    return info.value


# --------------------------------------------------------------------------------------------
# hcl v1 decoding semantics (grpc-and-config.md §3.4)


def test_keys_match_case_insensitively() -> None:
    """Keys match the schema case-insensitively, in blocks too, like hcl's EqualFold."""
    cfg = parse('LOG_LEVEL = "DEBUG"\nHealth_Checks { BIND_PORT = 9000 }\n')
    assert cfg.log_level == "debug"
    assert cfg.health_checks == HealthChecksConfig(bind_port=9000)
    assert cfg.warnings == ()


def test_repeated_scalar_last_wins() -> None:
    """A repeated scalar keeps its last value, across spellings of the key."""
    assert parse('log_level = "error"\nLog_Level = "debug"\n').log_level == "debug"


def test_repeated_list_is_concatenated_then_deduplicated() -> None:
    """Repeated ``domains`` lists concatenate (hcl) and duplicates go, first kept (SPIRE)."""
    cfg = parse('domains = ["b.test", "a.test"]\ndomains = ["c.test"]\n')
    assert cfg.domains == ("a.test", "b.test", "c.test")


def test_repeated_block_is_merged_later_wins() -> None:
    """Repeated blocks merge field by field; ``block {}`` and ``block = {}`` mix."""
    cfg = parse('file { poll_interval = "1s" }\nfile = { path = "/other" }\n')
    assert cfg.source == FileConfig("/other", 1.0)


def test_json_object_and_array_blocks() -> None:
    """JSON input: a block may be an object or an array of objects (merged in order)."""
    text = json.dumps(
        {
            "domains": ["a.test"],
            "listen_socket_path": "/run/oidc.sock",
            "workload_api": [
                {"socket_path": "/s", "trust_domain": "td.test"},
                {"poll_interval": "2s"},
            ],
            "health_checks": {"bind_port": "8008"},
        }
    )
    cfg = parse_config(text)
    assert cfg.source == WorkloadAPIConfig("/s", "td.test", 2.0)
    assert cfg.health_checks == HealthChecksConfig(bind_port=8008)


def test_json_duplicate_keys_follow_hcl() -> None:
    """Duplicate JSON keys behave like repeated HCL items (lists concatenate)."""
    text = (
        '{"domains": ["a.test"], "domains": ["b.test"], "insecure_addr": ":1",'
        ' "file": {"path": "/x"}}'
    )
    assert parse_config(text).domains == ("a.test", "b.test")


def test_json_empty_array_block_is_an_error() -> None:
    """An empty JSON array is not an object, as in hcl's JSON flattening."""
    err = parse_error('{"domains": ["a.test"], "file": []}')
    assert str(err) == (
        "unable to decode configuration: root.file: not an object type for struct (*ast.ListType)"
        " (expected a block, e.g. file { … })"
    )


def test_heredoc_keeps_trailing_newline() -> None:
    """A heredoc value ends with a newline, as hcl decodes it."""
    cfg = parse_config('domains = ["a.test"]\nlog_path = <<EOT\n/l\nEOT\n' + BASE)
    assert cfg.log_path == "/l\n"


def test_comments_trailing_commas_and_two_items_per_line() -> None:
    """``#``, ``//`` and ``/* */`` comments, trailing commas and two items on a line parse."""
    text = (
        "# hash comment\n// slash comment\n/* block\ncomment */\n"
        'domains = ["a.test", /* inline */ "b.test",]\n'
        'insecure_addr = ":1" log_level = "warn"\n'
        'file { path = "/x" poll_interval = "3s" }\n'
    )
    cfg = parse_config(text)
    assert (cfg.domains, cfg.log_level, cfg.source) == (
        ("a.test", "b.test"),
        "warn",
        FileConfig("/x", 3.0),
    )


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        (r'"c:\\logs\\\"x\".log"', 'c:\\logs\\"x".log'),
        (r'"c:\\dir\\"', "c:\\dir\\"),
        (r'"a\nb\tc"', "a\nb\tc"),
        (r'"\u00e9\x41\101\U0001F62C"', "éAA😬"),
        (r'"${VAR}"', "${VAR}"),
    ],
)
def test_string_escapes_decode_like_hcl(literal: str, value: str) -> None:
    """String escapes decode like hcl v1, including the cases pyhcl alone gets wrong."""
    assert parse(f"log_path = {literal}\n").log_path == value


def test_illegal_escape_is_a_syntax_error() -> None:
    """An unknown escape (a Windows path with single backslashes) fails like hcl: last one wins."""
    err = parse_error('domains = ["a.test"]\nlog_path = "c:\\some\\path"\n')
    assert str(err) == "unable to decode configuration: At 2:21: illegal char escape"


@pytest.mark.parametrize(
    ("text", "port"),
    [
        ('health_checks { bind_port = "8888" }', 8888),  # helm writes a string
        ("health_checks { bind_port = 8888 }", 8888),
        ('health_checks { bind_port = "0x1F91" }', 8081),
        ('health_checks { bind_port = "0o17" }', 15),
        ('health_checks { bind_port = "017" }', 15),
        ('health_checks { bind_port = "1_000" }', 1000),
        ('health_checks { bind_port = "+42" }', 42),
        ("health_checks { bind_port = 0 }", 8008),
        ('health_checks { bind_port = "-5" }', 8008),
        ("health_checks {}", 8008),
    ],
)
def test_int_field_accepts_numbers_and_numeric_strings(text: str, port: int) -> None:
    """Int fields take numbers or strconv.ParseInt(s, 0, 64) strings; <= 0 means 8008."""
    cfg = parse(text + "\n")
    assert cfg.health_checks is not None and cfg.health_checks.bind_port == port


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"abc"', 'strconv.ParseInt: parsing "abc": invalid syntax'),
        ('""', 'strconv.ParseInt: parsing "": invalid syntax'),
        ('"8.5"', 'strconv.ParseInt: parsing "8.5": invalid syntax'),
        ('"1__0"', 'strconv.ParseInt: parsing "1__0": invalid syntax'),
        (
            '"99999999999999999999"',
            'strconv.ParseInt: parsing "99999999999999999999": value out of range',
        ),
    ],
)
def test_int_field_rejects_non_numeric_strings(value: str, message: str) -> None:
    """A non-numeric string in an int field fails with Go's strconv text (no position)."""
    err = parse_error(BASE + f"health_checks {{ bind_port = {value} }}\n")
    assert str(err) == "unable to decode configuration: " + message + INT_HINT
    assert err.key == "health_checks.bind_port"
    assert (err.line, err.column) == (4, 29)


def test_int_field_rejects_floats_and_bools() -> None:
    """Floats and booleans are not ints: hcl's unknown-type error, positioned."""
    err = parse_error(BASE + "health_checks { bind_port = 1.5 }\n")
    assert str(err) == (
        "unable to decode configuration: At 4:29: root.health_checks.bind_port: "
        "unknown type *ast.LiteralType" + INT_HINT
    )


def test_string_field_takes_a_number_as_text() -> None:
    """A number in a string field becomes its text (so a unit-less duration then fails)."""
    assert parse("log_path = 12\n").log_path == "12"
    err = parse_error(BASE + "file { poll_interval = 5 }\n")
    assert str(err) == (
        'invalid poll_interval in the file configuration section: time: missing unit in duration "5"'
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('set_key_use = "true"', "At 4:15: root.set_key_use: unknown type *ast.LiteralType"),
        ("set_key_use = 1", "At 4:15: root.set_key_use: unknown type *ast.LiteralType"),
        ('log_requests = ["x"]', "At 4:16: root.log_requests: unknown type *ast.ListType"),
        (
            "allow_insecure_scheme { }",
            "At 4:1: root.allow_insecure_scheme: unknown type *ast.ObjectList",
        ),
    ],
)
def test_bool_field_accepts_only_booleans(line: str, message: str) -> None:
    """Bool fields take only true/false; anything else is hcl's positioned type error."""
    err = parse_error(BASE + line + "\n")
    assert str(err) == "unable to decode configuration: " + message + " (expected true or false)"
    assert err.path == "t.conf"


def test_nested_bool_error_names_the_dotted_key() -> None:
    """Errors inside blocks name the Go path (root.acme.tos_accepted) and the dotted key."""
    err = parse_error('domains = ["a.test"]\nacme {\n  tos_accepted = "true"\n}\n')
    assert str(err) == (
        "unable to decode configuration: At 3:18: root.acme.tos_accepted: "
        "unknown type *ast.LiteralType (expected true or false)"
    )
    assert (err.key, err.line, err.column) == ("acme.tos_accepted", 3, 18)


def test_list_field_rejects_a_scalar() -> None:
    """``domains = "d.test"`` is hcl's unknown-slice-type error."""
    err = parse_error('domains = "d.test"\n')
    assert str(err) == (
        "unable to decode configuration: At 1:11: unknown slice type: *ast.LiteralType" + LIST_HINT
    )
    assert err.key == "domains"


def test_list_elements_must_be_strings_or_numbers() -> None:
    """List elements decode as strings: numbers become text, booleans and lists fail."""
    text = 'domains = [1, "b.test"]\ninsecure_addr = ":1"\nfile { path = "/x" }\n'
    assert parse_config(text).domains == ("1", "b.test")
    err = parse_error('domains = ["a.test", { a = 1 }]\n')
    assert str(err) == (
        "unable to decode configuration: At 1:22: root.domains[1]: unknown type for string "
        "*ast.ObjectType" + LIST_HINT
    )


def test_block_field_rejects_a_scalar() -> None:
    """``file = "x"`` is hcl's not-an-object error, at the value."""
    err = parse_error('domains = ["a.test"]\ninsecure_addr = ":1"\nfile = "x"\n')
    assert str(err) == (
        "unable to decode configuration: At 3:8: root.file: not an object type for struct "
        "(*ast.LiteralType) (expected a block, e.g. file { … })"
    )
    assert err.key == "file"


def test_hcl_block_given_a_list_is_an_error() -> None:
    """In HCL (not JSON) a list of objects is not a block, as in hcl v1."""
    err = parse_error(BASE + 'acme = [{ email = "x" }]\n')
    assert "root.acme: not an object type for struct (*ast.ListType)" in str(err)


def test_type_errors_follow_go_field_order() -> None:
    """hcl decodes fields in struct order: log_level's error wins over an earlier-line bool."""
    err = parse_error('set_key_use = "x"\nlog_level = true\n')
    assert "root.log_level: unknown type for string" in str(err)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("log_level = debug\n", "At 1:13: Unknown token: 1:13 IDENT debug"),
        ('log_level: "debug"\n', "At 1:10: illegal char"),
        ("domains = [a.test]\n", "At 1:12: unexpected token while parsing list: IDENT"),
    ],
)
def test_hcl_v1_rejections_pyhcl_would_accept(text: str, fragment: str) -> None:
    """Unquoted values and ``:`` assignments are refused like hcl v1 (pyhcl accepts them)."""
    err = parse_error(text)
    assert str(err) == "unable to decode configuration: " + fragment


@pytest.mark.parametrize("text", ["", "  \n\t\n", "# only a comment\n", "{}"])
def test_empty_documents_have_no_domains(text: str) -> None:
    """An empty document decodes to nothing: SPIRE's first rule fails, and we say it is empty."""
    err = parse_error(text)
    assert str(err) == ("at least one domain must be configured (the configuration file is empty)")
    assert err.key == "domains"


# --------------------------------------------------------------------------------------------
# Syntax errors: file, line and column


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        (
            'domains = ["a.test"]\nacme {\n  email = "x"\n',
            4,
            2,
            "object expected closing RBRACE got: EOF",
        ),
        (
            'domains = ["a.test"]\n}\n',
            2,
            1,
            "expected: IDENT | STRING | ASSIGN | LBRACE got: RBRACE",
        ),
        ('domains = ["a.test]\nlog_level = "x"\n', 1, 20, "literal not terminated"),
        (
            'log_level = "x"\n  log_level "debug"\n',
            3,
            1,
            "key 'log_level \"debug\"' expected start of object ('{') or assignment ('=')",
        ),
        ('x = "abc', 1, 9, "literal not terminated"),
        ("\n\n   @\n", 3, 4, "illegal char"),
        ('{\n  "domains": ["a.test"],,\n}', 2, 25, "Expecting property name"),
    ],
)
def test_syntax_errors_carry_line_and_column(
    text: str, line: int, column: int, fragment: str
) -> None:
    """Malformed files fail with hcl v1's message, line and column."""
    err = parse_error(text)
    assert str(err).startswith(f"unable to decode configuration: At {line}:{column}: ")
    assert fragment in str(err)
    assert (err.path, err.line, err.column) == ("t.conf", line, column)
    assert err.describe().startswith(f"t.conf:{line}:{column}: unable to decode configuration")


def test_key_without_value_is_hcls_message() -> None:
    """A bare key at the end of the file is hcl's error, at its end-of-file position."""
    err = parse_error("BAD")
    assert str(err) == (
        "unable to decode configuration: At 1:5: key 'BAD' expected start of object ('{') "
        "or assignment ('=')"
    )


def test_invalid_utf8_is_a_positioned_decode_error(tmp_path: Path) -> None:
    """A file that is not UTF-8 fails like hcl's scanner, with the position."""
    path = tmp_path / "bad.conf"
    path.write_bytes(b'domains = ["a.test"]\nlog_path = "\xff"\n')
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert str(info.value) == "unable to decode configuration: At 2:13: illegal UTF-8 encoding"


# --------------------------------------------------------------------------------------------
# Durations (Go time.ParseDuration)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("10s", 10_000_000_000),
        ("1h30m", 5_400_000_000_000),
        ("1.5s", 1_500_000_000),
        ("100ms", 100_000_000),
        ("2µs", 2000),
        ("2μs", 2000),
        ("2us", 2000),
        ("3ns", 3),
        ("-5s", -5_000_000_000),
        ("+5s", 5_000_000_000),
        ("0", 0),
        ("-0", 0),
        (".5m", 30_000_000_000),
        ("1.s", 1_000_000_000),
        ("1h1m1s1ms", 3_661_001_000_000),
        ("9223372036854775807ns", 9223372036854775807),
        ("-9223372036854775808ns", -9223372036854775808),
    ],
)
def test_parse_duration(text: str, ns: int) -> None:
    """parse_duration matches Go's time.ParseDuration."""
    assert parse_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5", 'time: missing unit in duration "5"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("huh", 'time: invalid duration "huh"'),
        ("", 'time: invalid duration ""'),
        ("-", 'time: invalid duration "-"'),
        (".s", 'time: invalid duration ".s"'),
        ("1s ", 'time: unknown unit "s " in duration "1s "'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ("5é", 'time: unknown unit "\\xc3\\xa9" in duration "5\\xc3\\xa9"'),
    ],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    """Invalid durations fail with Go's exact text."""
    with pytest.raises(DurationError) as info:
        parse_duration(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("raw", "seconds"), [("0s", 10.0), ("-1m", 10.0), ("1h", 3600.0), ("250ms", 0.25)]
)
def test_zero_or_negative_durations_become_the_default(raw: str, seconds: float) -> None:
    """A poll_interval of zero or less silently becomes the default (SPIRE)."""
    text = f'domains = ["a.test"]\ninsecure_addr = ":1"\nserver_api {{ address = "unix:/s" poll_interval = "{raw}" }}\n'
    assert parse_config(text).source == ServerAPIConfig("unix:/s", seconds)


def test_file_sync_interval_error_wording() -> None:
    """serving_cert_file's duration error names its section."""
    err = parse_error(
        'domains = ["a.test"]\nserving_cert_file { cert_file_path = "c" key_file_path = "k"'
        ' file_sync_interval = "1d" }\nfile { path = "/x" }\n'
    )
    assert str(err) == (
        "invalid file_sync_interval in the serving_cert_file configuration section: "
        'time: unknown unit "d" in duration "1d"'
    )
    assert err.key == "serving_cert_file.file_sync_interval"


# --------------------------------------------------------------------------------------------
# serving_cert_file.addr (Go net.ResolveTCPAddr)


@pytest.mark.parametrize(
    ("addr", "host", "port"),
    [
        (":443", "", 443),
        (":https", "", 443),
        (":http", "", 80),
        ("127.0.0.1:9090", "127.0.0.1", 9090),
        ("[::1]:443", "::1", 443),
        ("[::]:8443", "::", 8443),
        ("0.0.0.0:1", "0.0.0.0", 1),
        ("localhost:8443", "127.0.0.1", 8443),
        ("127.0.0.1:", "127.0.0.1", 0),
        ("[::ffff:1.2.3.4]:1", "1.2.3.4", 1),
    ],
)
def test_resolve_tcp_addr(addr: str, host: str, port: int) -> None:
    """Addresses resolve like Go: service names, IP literals, localhost via /etc/hosts."""
    assert resolve_tcp_addr(addr) == (host, port)


@pytest.mark.parametrize(
    ("addr", "message"),
    [
        ("127.0.0.1", "address 127.0.0.1: missing port in address"),
        ("", "address : missing port in address"),
        ("::1:443", "address ::1:443: too many colons in address"),
        ("[::1]", "address [::1]: missing port in address"),
        ("[::1:443", "address [::1:443: missing ']' in address"),
        ("[::1]x:443", "address [::1]x:443: missing port in address"),
        ("a]:1", "address a]:1: unexpected ']' in address"),
        (":70000", "address 70000: invalid port"),
        (":-1", "address -1: invalid port"),
        (":nosuchservice", "lookup tcp/nosuchservice: unknown port"),
        ("127.0.0.1.1:9090", "lookup 127.0.0.1.1: no such host"),
        ("127.1:80", "lookup 127.1: no such host"),
        ("no-such-host.invalid:80", "lookup no-such-host.invalid: no such host"),
    ],
)
def test_resolve_tcp_addr_errors(addr: str, message: str) -> None:
    """Bad addresses fail with Go's net error texts."""
    with pytest.raises(GoAddrError) as info:
        resolve_tcp_addr(addr)
    assert str(info.value) == message


def test_serving_cert_file_fills_host_and_port() -> None:
    """serving_cert_file keeps addr as written and the resolved host and port."""
    cfg = parse_config(
        'domains = ["a.test"]\nserving_cert_file {\n cert_file_path = "c"\n key_file_path = "k"\n'
        ' addr = "localhost:https"\n}\nfile { path = "/x" }\n'
    )
    assert cfg.serving_cert_file == ServingCertFileConfig(
        "c", "k", addr="localhost:https", host="127.0.0.1", port=443
    )


def test_invalid_addr_error_is_positioned() -> None:
    """The addr error names the key and its line."""
    err = parse_error(
        'domains = ["a.test"]\nserving_cert_file {\n cert_file_path = "c"\n key_file_path = "k"\n'
        ' addr = "127.0.0.1"\n}\nfile { path = "/x" }\n'
    )
    assert str(err) == (
        "invalid addr in the serving_cert_file configuration section: "
        "address 127.0.0.1: missing port in address"
    )
    assert (err.key, err.line, err.column) == ("serving_cert_file.addr", 5, 9)


# --------------------------------------------------------------------------------------------
# Legacy keys (DESIGN decisions 4 and 10)


@pytest.mark.parametrize("value", ['"a.test"', '["a.test", "b.test", "a.test"]'])
def test_legacy_domain_used_when_domains_absent(value: str) -> None:
    """``domain`` (string or list) stands in for a missing ``domains``, with a warning."""
    cfg = parse_config(f'domain = {value}\ninsecure_addr = ":1"\nfile {{ path = "/x" }}\n')
    assert cfg.domains[0] == "a.test"
    assert len(cfg.domains) == len(set(cfg.domains))
    assert len(cfg.warnings) == 1 and cfg.warnings[0].startswith("domain is deprecated")


def test_legacy_domain_used_when_domains_empty() -> None:
    """An empty ``domains`` list also lets ``domain`` stand in."""
    cfg = parse(
        'domain = "b.test"', base='domains = []\ninsecure_addr = ":1"\nfile { path = "/x" }\n'
    )
    assert cfg.domains == ("b.test",)


def test_legacy_domain_ignored_when_domains_set() -> None:
    """With ``domains`` set, ``domain`` is ignored as SPIRE ignores it, with a warning."""
    cfg = parse('domain = "other.test"\n')
    assert cfg.domains == ("a.test",)
    assert cfg.warnings == (
        "the removed domain key is ignored because domains is set (SPIRE removed domain in v1.2.0)",
    )


def test_legacy_domain_of_wrong_type_is_ignored() -> None:
    """A ``domain`` that is not a string or list is ignored (warned), so SPIRE's rule applies."""
    err = parse_error('domain = true\ninsecure_addr = ":1"\nfile { path = "/x" }\n')
    assert str(err) == "at least one domain must be configured"


def test_legacy_registration_api_is_the_server_api() -> None:
    """``registration_api { socket_path }`` alone becomes the Server API on that socket."""
    cfg = parse_config(
        'domains = ["a.test"]\ninsecure_addr = ":1"\n'
        'registration_api {\n socket_path = "/run/reg.sock"\n poll_interval = "5s"\n}\n'
    )
    assert cfg.source == ServerAPIConfig("unix:/run/reg.sock", 5.0, legacy_registration_api=True)
    assert cfg.warnings == (
        "registration_api is deprecated (removed in SPIRE v1.1.0, which ignores it): used as "
        'server_api { address = "unix:/run/reg.sock" }; rename it',
    )
    assert effective_config(cfg)["server_api"] == {
        "address": "unix:/run/reg.sock",
        "poll_interval": 5,
    }


def test_legacy_registration_api_ignored_beside_another_source() -> None:
    """With a modern source configured, registration_api is ignored (even if malformed)."""
    cfg = parse('registration_api = "nonsense"\n')
    assert cfg.source == FileConfig("/b.spiffe")
    assert cfg.warnings == (
        "the removed registration_api section is ignored because another source section is "
        "configured",
    )


def test_legacy_registration_api_requires_socket_path() -> None:
    """A used registration_api without socket_path fails with the old SPIRE wording."""
    err = parse_error('domains = ["a.test"]\ninsecure_addr = ":1"\nregistration_api {}\n')
    assert (
        str(err) == "socket_path must be configured in the registration_api configuration section"
    )


def test_legacy_registration_api_poll_interval_wording() -> None:
    """A used registration_api's bad poll_interval names its own section."""
    err = parse_error(
        'domains = ["a.test"]\ninsecure_addr = ":1"\n'
        'registration_api { socket_path = "/s" poll_interval = "x" }\n'
    )
    assert str(err) == (
        'invalid poll_interval in the registration_api configuration section: time: invalid duration "x"'
    )


def test_legacy_registration_api_unknown_keys_are_warned() -> None:
    """Unknown keys inside a used registration_api are warned about like any other block."""
    cfg = parse_config(
        'domains = ["a.test"]\ninsecure_addr = ":1"\nregistration_api { socket_path = "/s" adress = 1 }\n'
    )
    assert cfg.warnings[0] == 'unknown key "registration_api.adress" (line 3) is ignored'


# --------------------------------------------------------------------------------------------
# Unknown keys


def test_unknown_keys_are_warned_with_did_you_mean() -> None:
    """Unknown keys (top level and nested) are accepted, each warned by dotted name."""
    cfg = parse(
        'foo = 1\nbar { baz = 2 }\nlog_levle = "debug"\n'
        'health_checks { bind_address = "127.0.0.1" ready_pth = "/r" }\nfile { pth = "/y" }\n'
    )
    assert cfg.warnings == (
        'unknown key "foo" (line 4) is ignored',
        'unknown key "bar" (line 5) is ignored',
        'unknown key "log_levle" (line 6) is ignored; did you mean "log_level"?',
        'unknown key "health_checks.bind_address" (line 7) is ignored',
        'unknown key "health_checks.ready_pth" (line 7) is ignored; did you mean '
        '"health_checks.ready_path"?',
        'unknown key "file.pth" (line 8) is ignored; did you mean "file.path"?',
    )


def test_unknown_keys_in_json_have_no_line() -> None:
    """JSON input has no positions, so the warning has no line."""
    cfg = parse_config(
        '{"domains": ["a.test"], "insecure_addr": ":1", "file": {"path": "/x"}, "domainz": 1}'
    )
    assert cfg.warnings == ('unknown key "domainz" is ignored; did you mean "domains"?',)


def test_windows_only_keys_are_known_but_warned() -> None:
    """experimental.listen_named_pipe_name is SPIRE's (no unknown-key warning), ignored here."""
    cfg = parse('experimental { listen_named_pipe_name = "p" }\n')
    assert cfg.warnings == (
        "experimental.listen_named_pipe_name is only used on Windows and is ignored here",
    )


# --------------------------------------------------------------------------------------------
# SPIRE's rules and their order (spire-behavior.md §2.4)


def test_domain_check_comes_before_acme() -> None:
    """Step 2 (domains) fails before step 3 (acme)."""
    assert str(parse_error("acme {}\n")) == "at least one domain must be configured"


def test_acme_checks_in_order() -> None:
    """acme: the insecure_addr clash, then tos_accepted, then email."""
    head = 'domains = ["a.test"]\nfile { path = "/x" }\n'
    assert str(parse_error(head + 'insecure_addr = ":1"\nacme {}\n')) == (
        "insecure_addr and the acme section are mutually exclusive"
    )
    assert str(parse_error(head + "acme {}\n")) == (
        "tos_accepted must be set to true in the acme configuration section"
    )
    err = parse_error(head + "acme { tos_accepted = true }\n")
    assert str(err) == "email must be configured in the acme configuration section"
    assert err.key == "acme.email"


def test_acme_defaults_and_cache_dir() -> None:
    """Omitted cache_dir is ./.acme-cache; an explicit "" disables the cache (SPIRE)."""
    head = 'domains = ["a.test"]\nfile { path = "/x" }\n'
    cfg = parse_config(head + 'acme { tos_accepted = true email = "e@a.test" }\n')
    assert cfg.acme == AcmeConfig(email="e@a.test", tos_accepted=True)
    cfg = parse_config(head + 'acme { tos_accepted = true email = "e" cache_dir = "" }\n')
    assert cfg.acme is not None and cfg.acme.cache_dir == ""


def test_trust_domain_error_beats_source_mutual_exclusion() -> None:
    """Two sources where workload_api lacks trust_domain report the trust_domain error."""
    err = parse_error(BASE + 'workload_api { socket_path = "/s" }\n')
    assert str(err) == "trust_domain must be configured in the workload_api configuration section"


def test_listener_checks_precede_server_api_address() -> None:
    """validateOS checks listeners before the server_api address."""
    err = parse_error('domains = ["a.test"]\nserver_api {}\n')
    assert str(err).startswith(
        "either acme, serving_cert_file, insecure_addr or listen_socket_path"
    )


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("unix:relative.sock", True),
        ("unix:///abs.sock", True),
        ("unix-abstract:x", False),
        ("dns:///h", False),
    ],
)
def test_server_api_address_must_be_unix(address: str, ok: bool) -> None:
    """Only the unix name system is accepted for server_api.address."""
    text = f'domains = ["a.test"]\ninsecure_addr = ":1"\nserver_api {{ address = "{address}" }}\n'
    if ok:
        assert parse_config(text).source == ServerAPIConfig(address)
    else:
        assert "address must use the unix name system" in str(parse_error(text))


def test_file_path_is_not_validated() -> None:
    """An empty file path is accepted (SPIRE fails on every poll instead)."""
    assert parse_config(
        'domains = ["a.test"]\ninsecure_addr = ":1"\nfile {}\n'
    ).source == FileConfig("")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('jwks_uri = "/keys"', "the jwks_uri setting could not be parsed: %!w(<nil>)"),
        ('jwks_uri = "https://"', "the jwks_uri setting could not be parsed: %!w(<nil>)"),
        (
            'jwks_uri = "http://a b/keys"',
            'the jwks_uri setting could not be parsed: parse "http://a b/keys": '
            'invalid character " " in host name',
        ),
        ('jwt_issuer = "domain.test/x"', "the jwt_issuer url must contain a scheme"),
        ('jwt_issuer = "https:///path"', "the jwt_issuer url must contain a host"),
        ('jwt_issuer = "mailto:x@y"', "the jwt_issuer url must contain a host"),
        (
            'jwt_issuer = ":x"',
            'the jwt_issuer url could not be parsed: parse ":x": missing protocol scheme',
        ),
    ],
)
def test_url_rules(extra: str, message: str) -> None:
    """jwt_issuer and jwks_uri are checked like SPIRE (Go url.Parse, then scheme and host)."""
    err = parse_error(BASE + extra + "\n")
    assert str(err) == message


def test_jwt_issuer_warning_only_without_jwks_uri() -> None:
    """SPIRE's jwt_issuer warning is a warning string, absent when jwks_uri is set."""
    assert parse('jwt_issuer = "https://i.test"\n').warnings == (JWT_ISSUER_WARNING,)
    assert JWT_ISSUER_WARNING.startswith(SPIRE_JWT_ISSUER_WARNING + " ")
    cfg = parse('jwt_issuer = "https://i.test"\njwks_uri = "https://i.test/keys"\n')
    assert cfg.warnings == ()


@pytest.mark.parametrize(
    ("raw", "scheme", "host"),
    [
        ("https://domain.test/some/issuer/path/issuer1/", "https", "domain.test"),
        ("HTTPS://Issuer.Test", "https", "Issuer.Test"),
        ("http://u:p@h.test:8080/x?q#f", "http", "h.test:8080"),
        ("http://[::1]:80/", "http", "[::1]:80"),
        ("domain.test/x", "", ""),
        ("*", "", ""),
        ("mailto:a@b", "mailto", ""),
        ("//host.test/x", "", "host.test"),
    ],
)
def test_parse_url(raw: str, scheme: str, host: str) -> None:
    """parse_url returns Go's lower-cased scheme and host."""
    assert parse_url(raw) == (scheme, host)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            "http://domain.test:someportnumber/some/path",
            'parse "http://domain.test:someportnumber/some/path": invalid port ":someportnumber" after host',
        ),
        ("http://[::1/", "parse \"http://[::1/\": missing ']' in host"),
        ("http://[1.2.3.4]/", 'parse "http://[1.2.3.4]/": invalid IP-literal'),
        ("http://a%zz/", 'parse "http://a%zz/": invalid URL escape "%zz"'),
        ("http://a/%zz", 'parse "http://a/%zz": invalid URL escape "%zz"'),
        ("http://a/#%zz", 'parse "http://a/#%zz": invalid URL escape "%zz"'),
        ("http://a b/", 'parse "http://a b/": invalid character " " in host name'),
        ("http://a\x7f/", 'parse "http://a\\x7f/": net/url: invalid control character in URL'),
        ("1a:b", 'parse "1a:b": first path segment in URL cannot contain colon'),
        ("http://u^@h/", 'parse "http://u^@h/": net/url: invalid userinfo'),
        ("http://h:1:2/", 'parse "http://h:1:2/": invalid port ":1:2" after host'),
    ],
)
def test_parse_url_errors(raw: str, message: str) -> None:
    """parse_url fails with Go's url.Error text."""
    with pytest.raises(GoURLError) as info:
        parse_url(raw)
    assert str(info.value) == message


# --------------------------------------------------------------------------------------------
# Start-up checks, made here after SPIRE's ParseConfig checks


@pytest.mark.parametrize(
    ("level", "stored"),
    [("DEBUG", "debug"), ("Warning", "warn"), ("warn", "warn"), ("", "info"), ("trace", "trace")],
)
def test_log_level_normalised(level: str, stored: str) -> None:
    """log_level is logrus-parsed case-insensitively and stored lower-case (warning -> warn)."""
    assert parse(f'log_level = "{level}"\n').log_level == stored


def test_log_level_and_format_errors() -> None:
    """Invalid log_level / log_format fail with logrus's and SPIRE's texts, naming the key."""
    err = parse_error(BASE + 'log_level = "loud"\n')
    assert (str(err), err.key) == (
        'not a valid logrus Level: "loud" '
        "(one of: debug, info, warn, error, panic, fatal, trace, warning)",
        "log_level",
    )
    err = parse_error(BASE + 'log_format = "xml"\n')
    assert (str(err), err.key) == (
        'unknown logger format: "xml" (one of: text, json)',
        "log_format",
    )
    assert parse('log_format = "JSON"\n').log_format == "json"
    assert parse('log_format = "Text"\n').log_format == "text"


def test_start_up_checks_come_after_spire_checks() -> None:
    """A bad log_level does not hide a ParseConfig error (SPIRE only sees it at start-up)."""
    err = parse_error('log_level = "loud"\ndomains = ["a.test"]\nfile { path = "/x" }\n')
    assert str(err).startswith("either acme, serving_cert_file")


def test_domains_checked_with_idna_at_start_up() -> None:
    """Each domain must be its own IDNA lookup form; the first bad one is reported."""
    err = parse_error(BASE + 'domains = ["Other.Test", "b_c.test"]\n')
    assert str(err) == 'domain "Other.Test" must already be punycode encoded'
    assert err.key == "domains"


def test_workload_trust_domain_checked_at_start_up() -> None:
    """workload_api.trust_domain goes through go-spiffe's trust-domain rules."""
    text = 'domains = ["a.test"]\ninsecure_addr = ":1"\nworkload_api {\n socket_path = "/s"\n trust_domain = "Bad.Domain"\n}\n'
    err = parse_error(text)
    assert str(err) == (
        "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and "
        "underscores"
    )
    assert (err.key, err.line) == ("workload_api.trust_domain", 5)
    good = text.replace("Bad.Domain", "spiffe://good.domain")
    assert parse_config(good).source == WorkloadAPIConfig("/s", "spiffe://good.domain")


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            'live_path = "/ready"',
            'ready_path and live_path must be different in the health_checks configuration section: both are "/ready"',
        ),
        (
            'ready_path = "ready"',
            'ready_path must be a path starting with "/" and without spaces in the health_checks configuration section: "ready"',
        ),
        (
            'live_path = "GET /live"',
            'live_path must be a path starting with "/" and without spaces in the health_checks configuration section: "GET /live"',
        ),
        (
            "bind_port = 70000",
            "bind_port must be between 1 and 65535 in the health_checks configuration section: 70000",
        ),
    ],
)
def test_health_check_start_up_rules(block: str, message: str) -> None:
    """Paths SPIRE's mux would panic on, and ports it cannot bind, are config errors here."""
    assert str(parse_error(BASE + f"health_checks {{ {block} }}\n")) == message


@pytest.mark.parametrize(
    ("prefix", "stored", "warned"),
    [("", "", False), ("/", "/", False), ("/a/b", "/a/b", False), ("instance", "/instance", True)],
)
def test_server_path_prefix_normalised(prefix: str, stored: str, warned: bool) -> None:
    """A prefix without a leading slash becomes /prefix, with a warning."""
    cfg = parse(f'server_path_prefix = "{prefix}"\n')
    assert cfg.server_path_prefix == stored
    assert bool(cfg.warnings) == warned


# --------------------------------------------------------------------------------------------
# -expandEnv (Go os.Expand + SPIRE's "$$" mapping) and loading


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("$A", "x"),
        ("${A}", "x"),
        ("pre-${A}-post", "pre-x-post"),
        ("$UNSET", ""),
        ("$$", "$"),
        ("$$A", "$A"),
        ("$", "$"),
        ("a$", "a$"),
        ("$ a", "$ a"),
        ("${A:-default}", "weird"),
        ("${B:-default}", ""),
        ("$1x", "onex"),
        ("$*", "star"),
        ("${*}", "star"),
        ("$-", ""),
        ("${}x", "x"),
        ("${A", "A"),
        ("${{A}}", "}"),
        ("$A_B.c", "ab.c"),
        ("é$A", "éx"),
        ("# comment $A", "# comment x"),
    ],
)
def test_expand_env(text: str, expanded: str) -> None:
    """expand_env follows Go's os.Expand exactly, with SPIRE's ``$$`` -> ``$``."""
    env = {"A": "x", "A_B": "ab", "1": "one", "*": "star", "A:-default": "weird"}
    assert expand_env(text, env) == expanded


def test_load_config_expands_only_when_asked(tmp_path: Path) -> None:
    """load_config expands the raw text before parsing only with expand_env=True."""
    path = tmp_path / "c.conf"
    path.write_text('domains = ["${D}"]\ninsecure_addr = ":1"\nfile { path = "$P" }\n')
    cfg = load_config(str(path), expand_env=True, environ={"D": "d.test", "P": "/b"})
    assert (cfg.domains, cfg.source, cfg.path) == (("d.test",), FileConfig("/b"), str(path))
    with pytest.raises(ConfigError, match="disallowed rune U\\+0024"):
        load_config(str(path))


def test_load_config_uses_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an explicit environ, the process environment is used."""
    monkeypatch.setenv("ODP_TEST_DOMAIN", "env.test")
    path = tmp_path / "c.conf"
    path.write_text('domains = ["$ODP_TEST_DOMAIN"]\ninsecure_addr = ":1"\nfile { path = "/x" }\n')
    assert load_config(str(path), expand_env=True).domains == ("env.test",)


def test_missing_file(tmp_path: Path) -> None:
    """A missing file gives SPIRE's Go-style text and names the path."""
    path = str(tmp_path / "nope.conf")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert (
        str(info.value) == f"unable to load configuration: open {path}: no such file or directory"
    )
    assert info.value.path == path


def test_directory_instead_of_file(tmp_path: Path) -> None:
    """Reading a directory fails like Go's os.ReadFile (at read, not open)."""
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path))
    assert str(info.value) == f"unable to load configuration: read {tmp_path}: is a directory"


def test_validation_errors_name_file_key_and_line() -> None:
    """Rule errors carry the path, the dotted key, and the value's position."""
    err = parse_error(
        'domains = ["a.test"]\ninsecure_addr = ":1"\nserver_api {\n  address = "tcp://x"\n}\n'
    )
    assert (err.path, err.key, err.line, err.column) == ("t.conf", "server_api.address", 4, 13)
    assert err.describe() == (
        "t.conf:4:13, key server_api.address: address must use the unix name system in the "
        "server_api configuration section"
    )


def test_missing_key_errors_point_at_the_block() -> None:
    """A required key that is absent is reported at its block."""
    err = parse_error(
        'domains = ["a.test"]\ninsecure_addr = ":1"\n\nworkload_api {\n trust_domain = "t"\n}\n'
    )
    assert (err.key, err.line) == ("workload_api.socket_path", 4)


# --------------------------------------------------------------------------------------------
# effective_config


def test_effective_config_minimal() -> None:
    """Every key appears with its default; absent blocks are null; the source under its name."""
    out = effective_config(parse())
    assert out == {
        "log_format": "",
        "log_level": "info",
        "log_path": "",
        "log_requests": False,
        "domains": ["a.test"],
        "set_key_use": False,
        "allow_insecure_scheme": False,
        "insecure_addr": ":8080",
        "listen_socket_path": "",
        "acme": None,
        "serving_cert_file": None,
        "server_api": None,
        "workload_api": None,
        "file": {"path": "/b.spiffe", "poll_interval": 10},
        "health_checks": None,
        "jwt_issuer": "",
        "jwks_uri": "",
        "server_path_prefix": "",
        "state_dir": "",
        "state_max_age": 86400,
        "trusted_proxies": None,
        "max_connections": 10000,
        "discovery_document": {
            "authorization_endpoint": "",
            "omit_authorization_endpoint": False,
            "signing_algs_from_keys": False,
            "claims_supported": None,
        },
        "serving_svid": None,
    }
    assert list(out) == list(effective_config(parse('log_level = "debug"\n')))
    json.dumps(out)


def test_effective_config_full() -> None:
    """A full config renders every block with defaults applied and durations in seconds."""
    cfg = parse_config(
        'LOG_LEVEL = "Warning"\nlog_format = "JSON"\nlog_path = "/var/log/odp.log"\n'
        "log_requests = true\nset_key_use = true\nallow_insecure_scheme = true\n"
        'domain = "legacy.test"\n'
        'serving_cert_file { cert_file_path = "/c" key_file_path = "/k" file_sync_interval = "90s" }\n'
        'workload_api { socket_path = "/s" trust_domain = "td.test" poll_interval = "1.5s" }\n'
        "health_checks {}\n"
        'jwt_issuer = "https://i.test"\njwks_uri = "https://i.test/jwks"\nserver_path_prefix = "p"\n'
    )
    assert effective_config(cfg) == {
        "log_format": "json",
        "log_level": "warn",
        "log_path": "/var/log/odp.log",
        "log_requests": True,
        "domains": ["legacy.test"],
        "set_key_use": True,
        "allow_insecure_scheme": True,
        "insecure_addr": "",
        "listen_socket_path": "",
        "acme": None,
        "serving_cert_file": {
            "cert_file_path": "/c",
            "key_file_path": "/k",
            "addr": ":443",
            "file_sync_interval": 90,
        },
        "server_api": None,
        "workload_api": {"socket_path": "/s", "trust_domain": "td.test", "poll_interval": 1.5},
        "file": None,
        "health_checks": {
            "bind_port": 8008,
            "ready_path": "/ready",
            "live_path": "/live",
            "bind_host": "",
            "metrics": False,
        },
        "jwt_issuer": "https://i.test",
        "jwks_uri": "https://i.test/jwks",
        "server_path_prefix": "/p",
        "state_dir": "",
        "state_max_age": 86400,
        "trusted_proxies": None,
        "max_connections": 10000,
        "discovery_document": {
            "authorization_endpoint": "",
            "omit_authorization_endpoint": False,
            "signing_algs_from_keys": False,
            "claims_supported": None,
        },
        "serving_svid": None,
    }


def test_effective_config_acme_block() -> None:
    """The acme block shows the default directory URL and cache dir."""
    cfg = parse_config(
        'domains = ["a.test"]\nacme { tos_accepted = true email = "e" }\nfile { path = "/x" }\n'
    )
    assert effective_config(cfg)["acme"] == {
        "directory_url": "https://acme-v02.api.letsencrypt.org/directory",
        "email": "e",
        "tos_accepted": True,
        "cache_dir": "./.acme-cache",
        # ours (docs/acme.md), with their defaults
        "addr": ":443",
        "challenges": ["tls-alpn-01"],
        "http_addr": ":80",
        "ca_bundle_path": "",
        "eab": None,
        "storage": "",
        "lock_lease": 120,
    }


def test_effective_config_redacts_secret_fields() -> None:
    """A key the model declares secret renders as "<redacted>" when set, and only such keys do."""
    assert sorted(k for k, spec in all_keys().items() if spec.secret) == ["acme.eab.hmac_key"]
    cfg = parse_config(
        'domains = ["a.test"]\nacme { tos_accepted = true email = "e"\n'
        'eab { key_id = "k" hmac_key = "c2VjcmV0" } }\nfile { path = "/x" }\n'
    )
    out = effective_config(cfg)
    acme = out["acme"]
    assert isinstance(acme, dict)
    assert acme["eab"] == {"key_id": "k", "hmac_key": "<redacted>"}
    assert acme["email"] == "e"
    assert "c2VjcmV0" not in json.dumps(out)


# --------------------------------------------------------------------------------------------
# strconv.ParseInt


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("-0", 0),
        ("10", 10),
        ("0x_1F", 31),
        ("0b101", 5),
        ("-9223372036854775808", -(2**63)),
    ],
)
def test_parse_go_int(text: str, value: int) -> None:
    """parse_go_int matches strconv.ParseInt(s, 0, 64)."""
    assert parse_go_int(text) == value


@pytest.mark.parametrize("text", ["0x", "1_", "_1", "08", "1e3", "+", " 1", "٣"])
def test_parse_go_int_syntax_errors(text: str) -> None:
    """Malformed integers are syntax errors, as in Go."""
    with pytest.raises(ValueError, match="invalid syntax"):
        parse_go_int(text)


def test_state_and_proxy_keys() -> None:
    """Our keys: state_dir, state_max_age (a Go duration) and trusted_proxies (unix, IPs, CIDRs)."""
    cfg = parse(
        'state_dir = "/var/lib/odp"\nstate_max_age = "1h30m"\n'
        'trusted_proxies = ["unix", "10.0.0.0/8", "::1"]\n'
    )
    assert cfg.state_dir == "/var/lib/odp" and cfg.state_max_age == 5400
    assert cfg.trusted_proxies == ("unix", "10.0.0.0/8", "::1")
    assert parse("").trusted_proxies is None and parse("").state_max_age == 86400
    with pytest.raises(ConfigError, match='invalid state_max_age: time: unknown unit "d"'):
        parse('state_max_age = "1d"\n')
    with pytest.raises(ConfigError, match=r"trusted_proxies entry \"proxy\.example\" is not"):
        parse('trusted_proxies = ["proxy.example"]\n')


def test_max_connections() -> None:
    """max_connections (ours): an int (numeric strings too, like hcl), at least 1, default 10000."""
    assert parse("").max_connections == 10000
    assert parse("max_connections = 50\n").max_connections == 50
    assert parse('max_connections = "64"\n').max_connections == 64
    with pytest.raises(ConfigError, match="max_connections must be at least 1"):
        parse("max_connections = 0\n")
