"""docs/configuration.md documents exactly the keys the configuration parser knows.

Convention (stated at the top of the document): a key table is a Markdown table whose header's
first cell is ``key``; each of its rows names one key, as a single backticked dotted name
(``acme.eab.key_id``), in the first cell, and says in its ``from`` column whether SPIRE knows the
key (``SPIRE``) or only this provider does (``ours``). The removed keys are documented under
``## Legacy keys`` and the Windows-only ones under ``## Windows-only keys``; every other key in
one of the other sections.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from spire_oidc.config.hcl import Kind
from spire_oidc.config.model import LEGACY_KEYS
from spire_oidc.config.schema import SCHEMA, all_keys
from spire_oidc.config.spec import KeySpec, Origin

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
LEGACY_SECTION = "Legacy keys"
WINDOWS_SECTION = "Windows-only keys"

# The keys of SPIRE's Config struct (v1.15, spire-behavior.md §2.2-2.3), the removed ones included.
SPIRE_KEYS = frozenset(
    {
        "log_format",
        "log_level",
        "log_path",
        "log_requests",
        "domains",
        "set_key_use",
        "allow_insecure_scheme",
        "insecure_addr",
        "listen_socket_path",
        "acme",
        "acme.directory_url",
        "acme.email",
        "acme.tos_accepted",
        "acme.cache_dir",
        "serving_cert_file",
        "serving_cert_file.cert_file_path",
        "serving_cert_file.key_file_path",
        "serving_cert_file.addr",
        "serving_cert_file.file_sync_interval",
        "server_api",
        "server_api.address",
        "server_api.poll_interval",
        "server_api.experimental",
        "server_api.experimental.named_pipe_name",
        "workload_api",
        "workload_api.socket_path",
        "workload_api.trust_domain",
        "workload_api.poll_interval",
        "workload_api.experimental",
        "workload_api.experimental.named_pipe_name",
        "file",
        "file.path",
        "file.poll_interval",
        "health_checks",
        "health_checks.bind_port",
        "health_checks.ready_path",
        "health_checks.live_path",
        "experimental",
        "experimental.listen_named_pipe_name",
        "jwt_issuer",
        "jwks_uri",
        "server_path_prefix",
        "domain",
        "registration_api",
        "registration_api.socket_path",
        "registration_api.poll_interval",
    }
)

_KEY_CELL = re.compile(r"`([a-z_]+(?:\.[a-z_]+)*)`")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


@dataclass(frozen=True)
class DocumentedKey:
    key: str
    origin: str  # the "from" column
    section: str  # the enclosing "## " heading, without backticks
    line: int


def schema_keys() -> dict[str, KeySpec]:
    """Every key the config model declares, dotted, with the sub-keys of the legacy blocks."""
    keys = all_keys()
    # Legacy keys are decoded only when used; registration_api's own block is separate.
    assert keys["registration_api"].kind is Kind.RAW
    return keys


def legacy_keys() -> set[str]:
    raw = {name for name, _ in LEGACY_KEYS}
    return {k for k in schema_keys() if k.split(".")[0] in raw}


def windows_keys() -> set[str]:
    return {k for k in schema_keys() if "experimental" in k.split(".")}


def _cells(line: str) -> list[str]:
    return [c.strip() for c in _CELL_SPLIT.split(line.strip().strip("|"))]


def documented_keys(text: str) -> list[DocumentedKey]:
    """The rows of every key table in ``text``; malformed rows fail the test that reads them."""
    out: list[DocumentedKey] = []
    section = ""
    lines = text.splitlines()
    in_code = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("## "):
            section = line[3:].strip().replace("`", "")
        elif not in_code and line.startswith("|") and _cells(line)[0] == "key":
            header = _cells(line)
            assert "from" in header, f"line {i + 1}: a key table needs a 'from' column"
            origin_col = header.index("from")
            i += 2  # skip the |---| row
            while i < len(lines) and lines[i].startswith("|"):
                cells = _cells(lines[i])
                m = _KEY_CELL.fullmatch(cells[0])
                assert m, f"line {i + 1}: first cell must be one `dotted.key`, got {cells[0]!r}"
                out.append(DocumentedKey(m.group(1), cells[origin_col], section, i + 1))
                i += 1
            continue
        i += 1
    return out


@pytest.fixture(scope="module")
def documented() -> list[DocumentedKey]:
    return documented_keys(DOC.read_text(encoding="utf-8"))


def test_every_schema_key_is_documented_and_nothing_else(
    documented: list[DocumentedKey],
) -> None:
    """The key tables name every key of the config schema, nested ones included, and no other."""
    known = set(schema_keys())
    listed = {d.key for d in documented}
    assert sorted(known - listed) == [], "keys the parser knows but the docs do not list"
    assert sorted(listed - known) == [], "keys the docs list but the parser does not know"


def test_each_key_is_documented_once(documented: list[DocumentedKey]) -> None:
    """No key has two rows (two rows could contradict each other)."""
    seen: dict[str, int] = {}
    for d in documented:
        assert d.key not in seen, f"{d.key} documented on lines {seen[d.key]} and {d.line}"
        seen[d.key] = d.line


def test_legacy_and_windows_keys_are_in_their_sections(documented: list[DocumentedKey]) -> None:
    """Removed keys sit under Legacy keys, Windows-only keys under theirs, the rest elsewhere."""
    legacy, windows = legacy_keys(), windows_keys()
    assert {"domain", "registration_api", "registration_api.socket_path"} <= legacy
    assert {"experimental.listen_named_pipe_name", "server_api.experimental"} <= windows
    for d in documented:
        if d.key in legacy:
            expected = LEGACY_SECTION
        elif d.key in windows:
            expected = WINDOWS_SECTION
        else:
            assert d.section not in (LEGACY_SECTION, WINDOWS_SECTION), (
                f"{d.key} (line {d.line}) is neither legacy nor Windows-only"
            )
            continue
        assert d.section == expected, f"{d.key} (line {d.line}) belongs under ## {expected}"


def test_from_column_marks_spire_and_our_keys(documented: list[DocumentedKey]) -> None:
    """The from column says SPIRE exactly for SPIRE's keys and ours for every other key."""
    assert set(schema_keys()) >= SPIRE_KEYS, "the schema lost a SPIRE key"
    for d in documented:
        expected = "SPIRE" if d.key in SPIRE_KEYS else "ours"
        assert d.origin == expected, f"{d.key} (line {d.line}): from is {d.origin!r}"


def test_model_metadata_agrees_with_spire_key_list() -> None:
    """Each key's declared origin is SPIRE exactly for SPIRE's keys, and each has a doc line."""
    for name, spec in schema_keys().items():
        expected = Origin.SPIRE if name in SPIRE_KEYS else Origin.OURS
        assert spec.origin is expected, f"{name}: the model says {spec.origin.value}"
        assert spec.doc or "." in name or spec.kind is Kind.BLOCK, f"{name} has no doc line"


def test_decoder_schema_is_the_model() -> None:
    """The decoder's schema lists exactly the model's keys (the top level, in Go order)."""
    top = [k for k in schema_keys() if "." not in k]
    assert [f.name for f in SCHEMA] == top
    assert top[:9] == [
        "log_format",
        "log_level",
        "log_path",
        "log_requests",
        "domains",
        "set_key_use",
        "allow_insecure_scheme",
        "insecure_addr",
        "listen_socket_path",
    ]


def test_the_parser_follows_the_table_convention() -> None:
    """A row whose first cell is not one backticked key, or a table without from, is an error."""
    good = "## S\n\n| key | from |\n|---|---|\n| `a.b` | ours |\n"
    assert documented_keys(good) == [DocumentedKey("a.b", "ours", "S", 5)]
    with pytest.raises(AssertionError, match="first cell"):
        documented_keys("| key | from |\n|---|---|\n| `a { b }` | ours |\n")
    with pytest.raises(AssertionError, match="'from' column"):
        documented_keys("| key | type |\n|---|---|\n| `a` | string |\n")
    fenced = "```\n| key | from |\n|---|---|\n| `x` | ours |\n```\n"
    assert documented_keys(fenced) == []
