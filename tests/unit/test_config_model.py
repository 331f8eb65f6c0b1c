"""The configuration model is the one place a key is declared.

A dataclass field made with :func:`spire_oidc.config.spec.key` is, with no other code: decoded
with its HCL kind, read into the dataclass (default applied when absent), shown in the
effective configuration (redacted when secret) and described by a hint.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from spire_oidc.config.checks import Checks
from spire_oidc.config.effective import effective_values
from spire_oidc.config.hcl import Field, Kind, decode, parse_document
from spire_oidc.config.model import Config
from spire_oidc.config.schema import SCHEMA, all_keys, schema_for
from spire_oidc.config.spec import Origin, key
from spire_oidc.errors import ConfigError


@dataclass(frozen=True)
class Toy:
    name: str = key("x", kind=Kind.STRING, origin=Origin.OURS, doc="a name", example="n")
    count: int = key(3, kind=Kind.INT, origin=Origin.OURS, doc="a count", example="7")
    tags: tuple[str, ...] = key((), kind=Kind.STRING_LIST, origin=Origin.OURS, doc="tags")
    on: bool = key(False, kind=Kind.BOOL, origin=Origin.OURS, doc="a switch")
    token: str = key("", kind=Kind.STRING, origin=Origin.OURS, doc="t", secret=True)
    derived: int = 0  # no key: not in the file, not shown


def _read(text: str) -> Toy:
    root, is_json = parse_document(text, None)
    section, _ = decode(text, root, schema_for(Toy), path=None, is_json=is_json)
    return Checks(text, "", is_json, section, []).build(Toy, section)


def test_a_declared_key_is_decoded_defaulted_and_shown() -> None:
    """One field declaration gives the schema, the decoding, the default and the effective view."""
    assert schema_for(Toy) == (
        Field("name", Kind.STRING),
        Field("count", Kind.INT),
        Field("tags", Kind.STRING_LIST),
        Field("on", Kind.BOOL),
        Field("token", Kind.STRING),
    )
    toy = _read('name = "y"\ntags = ["a", "b"]\non = true\ntoken = "s3"\n')
    assert toy == Toy(name="y", count=3, tags=("a", "b"), on=True, token="s3")
    assert effective_values(toy) == {
        "name": "y",
        "count": 3,
        "tags": ["a", "b"],
        "on": True,
        "token": "<redacted>",
    }
    assert "s3" not in repr(toy)  # secret keys stay out of repr too


def test_a_declared_key_is_type_checked_by_its_kind() -> None:
    """The kind in the declaration is what the decoder enforces."""
    with pytest.raises(ConfigError, match=r"root\.on: unknown type \*ast\.LiteralType"):
        _read('on = "yes"\n')
    with pytest.raises(ConfigError, match="unknown slice type"):
        _read('tags = "a"\n')


def test_the_real_model_yields_the_decoder_schema() -> None:
    """SCHEMA is derived from Config: its first fields and every key's kind come from there."""
    assert SCHEMA[0] == Field("log_format", Kind.STRING)
    keys = all_keys()
    assert keys["acme.eab.hmac_key"].secret
    assert keys["health_checks.bind_port"].kind is Kind.INT
    assert keys["server_api.address"].origin is Origin.SPIRE
    assert keys["max_connections"].origin is Origin.OURS
    assert {f.name for f in SCHEMA} >= {"server_api", "workload_api", "file", "domain"}
    assert "warnings" not in keys and "path" not in keys  # derived fields are not keys
    assert Config.__dataclass_fields__["source"].metadata["hcl"].alternatives
