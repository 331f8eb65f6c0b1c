"""docs/deployment.md "Behind a CDN": every config it shows loads with our keys, every JSON
policy parses, every doctor command uses flags doctor knows, and the anchor other pages link to
exists."""

from __future__ import annotations

import json
import re
import shlex
import textwrap

import pytest

from spire_oidc.config.load import parse_config
from spire_oidc.config.model import Config
from spire_oidc.doctor.command import parse_args
from tests.paths import REPO

DOC = REPO / "docs" / "deployment.md"
HEADING = "## Behind a CDN"
# A fragment that only shows a block (no domains, no source) is loaded on top of this.
BASE = """
domains = ["oidc.example.org"]
insecure_addr = ":8080"
file {
  path = "/var/lib/spire-oidc/bundle.json"
}
"""
_FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.M | re.S)


def _section() -> str:
    text = DOC.read_text()
    start = text.index(f"\n{HEADING}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _blocks(lang: str) -> list[str]:
    return [textwrap.dedent(m.group(3)) for m in _FENCE.finditer(_section()) if m.group(2) == lang]


def test_heading_gives_the_linked_anchor() -> None:
    """The section heading is exactly "## Behind a CDN" (anchor #behind-a-cdn, linked from other pages)."""
    assert f"\n{HEADING}\n" in DOC.read_text()
    linked = [p.name for p in (REPO / "docs").glob("*.md") if "#behind-a-cdn" in p.read_text()]
    assert "configuration.md" in linked and "relying-parties.md" in linked


def _load(block: str) -> Config:
    return parse_config(block if "domains" in block else BASE + block)


def test_every_config_shown_loads() -> None:
    """Each HCL example in the section parses and validates with this provider's keys."""
    blocks = _blocks("hcl")
    assert len(blocks) >= 3
    configs = [_load(b) for b in blocks]
    published = [c for c in configs if c.publish is not None]
    assert {c.publish.url.split("://")[0] for c in published if c.publish} == {"s3", "az"}
    for c in published:
        assert c.cache_control is not None and c.cache_control.keys == "public, max-age=300"
        # publish-only: no listener of its own
        assert not (c.insecure_addr or c.serving_cert_file or c.acme or c.listen_socket_path)


def test_every_policy_shown_is_json() -> None:
    """The IAM and bucket policies in the section are valid JSON naming the prefix's objects."""
    blocks = _blocks("json")
    assert len(blocks) == 2
    for block in blocks:
        policy = json.loads(block)
        assert policy["Version"] == "2012-10-17"
    actions = {json.dumps(s["Action"]) for b in blocks for s in json.loads(b)["Statement"]}
    assert '["s3:PutObject", "s3:GetObject"]' in actions


@pytest.mark.parametrize("line", [ln for b in _blocks("sh") for ln in b.splitlines()])
def test_doctor_commands_use_known_flags(line: str) -> None:
    """Every doctor command in the section parses with doctor's own flag parser."""
    if "oidc-discovery-provider doctor" not in line:
        return
    args = shlex.split(line.split("oidc-discovery-provider doctor", 1)[1])
    _values, _profiles, positional = parse_args(args)
    assert positional == ["https://oidc.example.org"]
