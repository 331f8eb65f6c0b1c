"""What `doctor` prints first: one failure for an unreachable issuer, the TLS column after a failed
handshake, the plain-HTTP note, and the Infisical discovery-URL trap (real servers on loopback)."""

from __future__ import annotations

import asyncio
import io
import socket

import pytest

from spire_oidc import cli
from tests.interop.test_doctor_broken import BadServer, bad, rsa_jwk, run_doctor

pytestmark = pytest.mark.integration
__all__ = ["bad"]  # the fixture, imported for this module's tests


async def doctor_text(issuer: str, *args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(cli.main, ["doctor", issuer, "--timeout", "5", *args], out, err)
    return code, out.getvalue() + err.getvalue()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: connections are refused


def serve_spire(bad: BadServer) -> None:
    bad.json("/.well-known/openid-configuration", bad.doc())
    bad.json("/keys", {"keys": [rsa_jwk("r1")]})


async def test_unreachable_issuer_is_one_failure() -> None:
    """An issuer nothing answers gives one discovery.fetch failure and no per-party sections."""
    issuer = f"https://127.0.0.1:{closed_port()}"
    code, text = await doctor_text(issuer)
    assert code == 2
    assert text.count("FAIL") == 1 and "PASS" not in text
    assert "aws:" not in text and "issuer.https" not in text
    assert "fix the failure above and run doctor again" in text
    assert text.rstrip().endswith("summary: 0 pass, 0 warn, 1 fail; exit 2 (fail)")
    code, findings, _ = await run_doctor(issuer)
    assert list(findings) == [("all", "discovery.fetch")]


async def test_tls_column_after_a_failed_handshake_is_not_http(bad: BadServer) -> None:
    """https:// to a plain-HTTP port fails the handshake; the fetch line's TLS column says --- instead of http."""
    serve_spire(bad)
    issuer = bad.base.replace("http://", "https://")
    code, text = await doctor_text(issuer)
    assert code == 2
    line = next(x for x in text.splitlines() if x.startswith("  discovery"))
    assert " http " not in line
    assert line.split()[4] == "---", line  # name, status, time, "ms", TLS column


async def test_plain_http_issuer_leads_with_one_note(bad: BadServer) -> None:
    """A plain-HTTP loopback issuer (the demo's shape) leads with one line: HTTP-only by design, and which checks fail for it."""
    serve_spire(bad)
    _, text = await doctor_text(bad.base)
    lines = text.splitlines()
    assert lines[0] == f"doctor {bad.base}"
    note = lines[1]
    assert note.startswith(f"note: {bad.base} is plain HTTP: the demo is HTTP-only by design")
    assert "issuer.https" in note and "aws" in note and "entra" in note
    assert sum(1 for x in lines if x.startswith("note:")) == 1
    _, text = await doctor_text(bad.base.replace("http://", "https://"))
    assert "note:" not in text  # https issuers get no such line


@pytest.mark.parametrize("spelling", ["openid_configuration", "openid-configuration"])
async def test_discovery_url_given_as_issuer_explains_the_fix(
    bad: BadServer, spelling: str
) -> None:
    """The Infisical trap: a discovery document URL given as the issuer fails once, naming the issuer URL to configure."""
    serve_spire(bad)
    given = f"{bad.base}/.well-known/{spelling}"
    code, findings, _ = await run_doctor(given)
    assert code == 2
    assert list(findings) == [("all", "issuer.discovery_url")]
    trap = findings[("all", "issuer.discovery_url")]
    assert trap["status"] == "fail"
    assert f"{given}/.well-known/openid-configuration" in trap["reason"]
    assert "answers HTTP 404" in trap["reason"]
    assert (
        f"configure the issuer URL instead: {bad.base} (e.g. https://oidc.example.org)"
        in (trap["fix"])
    )
    guide = "the underscore spelling of Infisical's SPIRE guide"
    assert (guide in trap["reason"]) == (spelling == "openid_configuration")
    code, text = await doctor_text(given)
    assert "FAIL  issuer.discovery_url" in text and "aws:" not in text
