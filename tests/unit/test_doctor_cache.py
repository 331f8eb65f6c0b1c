"""doctor's caching checks: the AWS no-cache hazard (jwks.cacheable) and cache.propagation."""

from __future__ import annotations

import io
import json
import time

import pytest

from spire_oidc.doctor.cache_checks import caching, duration, rotation_window
from spire_oidc.doctor.checks import run_checks
from spire_oidc.doctor.command import run
from spire_oidc.doctor.fetch import Fetched
from spire_oidc.doctor.findings import Finding
from spire_oidc.doctor.observe import Observation
from spire_oidc.doctor.parties import BY_NAME, PARTIES

H = 3600
SPIRE_KEYS = {
    "cache-control": "no-cache, no-store, must-revalidate",
    "pragma": "no-cache",
    "expires": "0",
}
BASE = "https://oidc.example.org"
DOC = {"issuer": BASE, "jwks_uri": BASE + "/keys", "response_types_supported": ["id_token"]}
KEYS = [{"kty": "RSA", "kid": "k1", "alg": "RS256", "n": "AQAB", "e": "AQAB"}]


def _fetched(url: str, headers: dict[str, str]) -> Fetched:
    return Fetched(
        url=url,
        status=200,
        headers={"content-type": "application/json", **headers},
        body=b"{}",
        seconds=0.01,
        tls_version="TLSv1.3",
        tls_verified=True,
    )


def _obs(discovery: dict[str, str], jwks: dict[str, str]) -> Observation:
    return Observation(
        issuer=BASE,
        ca_file="",
        discovery=_fetched(BASE + "/.well-known/openid-configuration", discovery),
        doc=dict(DOC),
        doc_error="",
        jwks=_fetched(BASE + "/keys", jwks),
        keys=[dict(k) for k in KEYS],
        jwks_error="",
        public_trust_error="",
        tls12_error="",
        appended_discovery=None,
        addresses=("93.184.215.14",),
        token_text=None,
        audience="",
        now=time.time(),
    )


def _find(findings: list[Finding], party: str, check: str) -> Finding:
    return next(f for f in findings if (f.party, f.check) == (party, check))


def test_rotation_window_follows_spire_thresholds() -> None:
    """The window is min(ttl/2, 30 d) - min(ttl/6, 7 d): 8 h for SPIRE's default 24 h ca_ttl."""
    assert rotation_window(24 * H) == 8 * H
    assert rotation_window(6 * H) == 2 * H
    assert rotation_window(90 * 24 * H) == (30 - 7) * 24 * H  # both caps apply
    assert rotation_window(48 * 24 * H) == (24 - 7) * 24 * H  # only the activation cap


@pytest.mark.parametrize(
    ("headers", "lifetime", "uncacheable"),
    [
        (SPIRE_KEYS, 0, True),
        ({"cache-control": "public, max-age=300"}, 300, False),
        ({"cache-control": "max-age=0"}, 0, True),
        ({"cache-control": "max-age=0, s-maxage=600"}, 600, True),
        ({"cache-control": "public, s-maxage=600, max-age=60"}, 600, False),
        ({"cache-control": "no-cache"}, 0, True),
        ({"pragma": "no-cache", "expires": "0"}, 0, True),
        ({"pragma": "no-cache", "cache-control": "max-age=120"}, 120, False),
        (
            {"expires": "Thu, 03 Dec 2026 11:00:00 GMT", "date": "Thu, 03 Dec 2026 10:50:00 GMT"},
            600,
            False,
        ),
        ({}, 0, False),
    ],
)
def test_caching_reads_the_headers(
    headers: dict[str, str], lifetime: int, uncacheable: bool
) -> None:
    """no-cache, no-store, max-age=0, or Pragma/Expires: 0 without max-age mean uncacheable; s-maxage counts for shared caches."""
    c = caching(_fetched(BASE + "/keys", headers))
    assert c.lifetime == lifetime
    assert bool(c.uncacheable) == uncacheable


def test_spire_headers_warn_aws_with_the_report_and_the_fix() -> None:
    """SPIRE's no-cache JWKS warns the aws profile, citing GitLab MR 138405, with cache_control as the fix."""
    findings = run_checks(_obs({}, SPIRE_KEYS), [BY_NAME["aws"]])
    f = _find(findings, "aws", "jwks.cacheable")
    assert f.status == "warn"
    assert "Couldn't retrieve verification key" in f.reason and "138405" in f.reason
    assert "no-cache, no-store, must-revalidate" in f.reason
    assert 'cache_control { keys = "public, max-age=300" }' in f.fix and "CDN" in f.fix


def test_cacheable_jwks_passes_aws_and_other_parties_are_not_asked() -> None:
    """A cacheable JWKS passes jwks.cacheable; only parties that need it (AWS) get the check."""
    findings = run_checks(_obs({}, {"cache-control": "public, max-age=300"}), PARTIES)
    assert _find(findings, "aws", "jwks.cacheable").status == "pass"
    assert {f.party for f in findings if f.check == "jwks.cacheable"} == {"aws"}
    spire = run_checks(_obs({}, SPIRE_KEYS), [BY_NAME["vault"], BY_NAME["entra"]])
    assert not [f for f in spire if f.check == "jwks.cacheable"]


def test_propagation_shows_every_number() -> None:
    """cache.propagation names each max-age, the Age, the total, the window and the margin."""
    obs = _obs(
        {"cache-control": "public, max-age=3600"},
        {"cache-control": "public, max-age=300", "age": "120"},
    )
    f = _find(run_checks(obs, []), "all", "cache.propagation")
    assert f.status == "pass"
    assert f.reason == (
        "discovery 1 h (max-age=3600); JWKS 5 min (max-age=300) + Age 2 min; total 1 h 7 min "
        "of the 8 h prepare-to-activate window (ca_ttl 24 h): margin 6 h 53 min"
    )


@pytest.mark.parametrize(
    ("doc_age", "keys_age", "ca_ttl", "expected"),
    [
        (3600, 300, 24 * H, "pass"),  # 65 min of 8 h
        (3 * H, 300, 24 * H, "warn"),  # over a quarter of 8 h
        (7 * H, 2 * H, 24 * H, "fail"),  # over the whole window
        (3600, 300, 6 * H, "warn"),  # 65 min of a 2 h window
        (3600, 300, 3 * H, "fail"),  # 65 min of a 1 h window
    ],
)
def test_propagation_thresholds(doc_age: int, keys_age: int, ca_ttl: float, expected: str) -> None:
    """Warn above a quarter of the window, fail above the window; the window follows ca_ttl."""
    obs = _obs(
        {"cache-control": f"public, max-age={doc_age}"},
        {"cache-control": f"public, max-age={keys_age}"},
    )
    f = _find(run_checks(obs, [], ca_ttl=ca_ttl), "all", "cache.propagation")
    assert f.status == expected
    if expected != "pass":
        assert "-ca-ttl" in f.fix and "cache_control" in f.fix


def test_spire_defaults_pass_propagation() -> None:
    """SPIRE's uncacheable headers hold nothing: total 0, a pass."""
    f = _find(run_checks(_obs({}, SPIRE_KEYS), []), "all", "cache.propagation")
    assert f.status == "pass" and "total 0 s" in f.reason


def test_age_without_origin_freshness_warns() -> None:
    """A cache reporting Age on a document the origin gave no freshness for applies its own TTL: warn."""
    obs = _obs({"age": "30"}, {"cache-control": "public, max-age=300"})
    f = _find(run_checks(obs, []), "all", "cache.propagation")
    assert f.status == "warn" and "default TTL" in f.reason


def test_duration_text() -> None:
    """Durations read as s, min, h and d."""
    assert [duration(s) for s in (0, 45, 300, 330, 4020, 8 * H, 90000, 75 * H)] == [
        "0 s",
        "45 s",
        "5 min",
        "5 min 30 s",
        "1 h 7 min",
        "8 h",
        "25 h",
        "3 d 3 h",
    ]


@pytest.mark.parametrize("value", ["bogus", "0", "-24h", "24"])
def test_ca_ttl_flag_must_be_a_positive_duration(value: str) -> None:
    """-ca-ttl takes a Go duration > 0; anything else is a usage error (exit 3)."""
    out, err = io.StringIO(), io.StringIO()
    code = run(["https://127.0.0.1:9", "-ca-ttl", value], out, err, prog="p")
    assert code == 3 and "-ca-ttl" in err.getvalue()


def test_ca_ttl_flag_is_in_the_usage() -> None:
    """doctor -h lists -ca-ttl with its 24h default."""
    err = io.StringIO()
    assert run(["-h"], io.StringIO(), err, prog="p") == 0
    assert "-ca-ttl string" in err.getvalue() and 'default "24h"' in err.getvalue()


def test_json_output_carries_the_new_findings() -> None:
    """The findings reach -json output like any other (party, check, status, reason, fix)."""
    from spire_oidc.doctor.report import render_json

    obs = _obs({}, SPIRE_KEYS)
    findings = run_checks(obs, [BY_NAME["aws"]])
    out = json.loads(render_json(obs, [BY_NAME["aws"]], findings))
    checks = {(f["party"], f["check"]): f["status"] for f in out["findings"]}
    assert checks[("aws", "jwks.cacheable")] == "warn"
    assert checks[("all", "cache.propagation")] == "pass"
