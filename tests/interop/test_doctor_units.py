"""doctor's pure parts: JWS verification, timing and key-count rules, flags, exit statuses."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from spire_oidc.config.goflag import FlagError
from spire_oidc.core.keys import JWTKey, jwk_members
from spire_oidc.doctor import jws
from spire_oidc.doctor.checks import run_checks
from spire_oidc.doctor.command import parse_args
from spire_oidc.doctor.fetch import Fetched
from spire_oidc.doctor.findings import Finding, key_alg
from spire_oidc.doctor.observe import Observation
from spire_oidc.doctor.parties import BY_NAME, PARTIES
from spire_oidc.doctor.report import exit_code
from tests.keyfactory import PrivateKey, ec_key, rsa_key

CASES: list[tuple[str, PrivateKey]] = [
    ("RS256", rsa_key()),
    ("RS512", rsa_key()),
    ("PS256", rsa_key()),
    ("ES256", ec_key(ec.SECP256R1())),
    ("ES384", ec_key(ec.SECP384R1())),
    ("ES512", ec_key(ec.SECP521R1())),
    ("EdDSA", ed25519.Ed25519PrivateKey.generate()),
]


def _jwk(kid: str, key: PrivateKey) -> dict[str, str]:
    return jwk_members(JWTKey(kid, key.public_key()), set_key_use=False)


@pytest.mark.parametrize(("alg", "key"), CASES, ids=[c[0] for c in CASES])
def test_jws_verify_each_alg(alg: str, key: PrivateKey) -> None:
    """Signatures by PyJWT verify for every JWT-SVID alg; another key or a changed payload does not."""
    token = jwt.encode({"sub": "spiffe://x/y"}, key, algorithm=alg, headers={"kid": "k"})  # type: ignore[arg-type]
    decoded = jws.decode(token)
    assert decoded.header["alg"] == alg
    assert jws.verify(decoded, _jwk("k", key)) == ""
    other = ed25519.Ed25519PrivateKey.generate() if alg == "EdDSA" else None
    other_key: PrivateKey = other or (rsa_key(fresh=True) if alg[0] in "RP" else ec_key(key.curve))  # type: ignore[union-attr]
    assert jws.verify(decoded, _jwk("k", other_key)) != ""
    head, _body, sig = token.split(".")
    forged_claims = base64.urlsafe_b64encode(b'{"sub":"spiffe://x/z"}').rstrip(b"=").decode()
    tampered = jws.decode(f"{head}.{forged_claims}.{sig}")
    assert jws.verify(tampered, _jwk("k", key)) != ""


def test_jws_rejects_mismatched_key_type_and_garbage() -> None:
    """An ES256 token checked with an RSA JWK fails cleanly; malformed tokens raise TokenError."""
    token = jws.decode(jwt.encode({}, ec_key(), algorithm="ES256"))
    assert jws.verify(token, _jwk("k", rsa_key())) == "ES256 needs an EC key"
    for bad in ("a.b", "!!.e30.x", "e30.bm90IGpzb24.x", "W10.e30.x"):
        with pytest.raises(jws.TokenError):
            jws.decode(bad)


def _observation(discovery_seconds: float = 0.01, keys: int = 1) -> Observation:
    base = "https://oidc.example.org"
    doc = (
        b'{"issuer": "https://oidc.example.org", "jwks_uri": "https://oidc.example.org/keys",'
        b' "authorization_endpoint": "", "response_types_supported": ["id_token"],'
        b' "subject_types_supported": ["public"],'
        b' "id_token_signing_alg_values_supported": ["RS256", "ES256", "ES384"]}'
    )
    jwk = _jwk("k", rsa_key())
    ok = Fetched(
        url=base + "/.well-known/openid-configuration",
        status=200,
        headers={"content-type": "application/json"},
        body=doc,
        seconds=discovery_seconds,
        tls_version="TLSv1.3",
        tls_verified=True,
    )
    return Observation(
        issuer=base,
        ca_file="",
        discovery=ok,
        doc=json.loads(doc),
        doc_error="",
        jwks=replace(ok, url=base + "/keys", seconds=0.01),
        keys=[{**jwk, "kid": f"k{i}"} for i in range(keys)],
        jwks_error="",
        public_trust_error="",
        tls12_error="",
        appended_discovery=None,
        addresses=("93.184.215.14",),
        token_text=None,
        audience="",
        now=time.time(),
    )


def _status(findings: list[Finding], party: str, check: str) -> str:
    return next(f.status for f in findings if (f.party, f.check) == (party, check))


def test_a_public_rsa_deployment_passes_aws_entra_gcp_vault() -> None:
    """A publicly trusted, fast, RSA-keyed SPIRE document passes AWS, GCP, Vault; Entra only warns on a missing use."""
    obs = _observation()
    findings = run_checks(obs, [BY_NAME["aws"], BY_NAME["gcp"], BY_NAME["vault"]])
    assert exit_code(findings) == 0, [f for f in findings if f.status != "pass"]
    entra = run_checks(obs, [BY_NAME["entra"]])
    assert [(f.check, f.status) for f in entra if f.status != "pass"] == [("keys.use", "warn")]


@pytest.mark.parametrize(("seconds", "expected"), [(0.2, "pass"), (3.0, "warn"), (6.0, "fail")])
def test_response_time_against_aws_limit(seconds: float, expected: str) -> None:
    """AWS gives up after about 5 s: half of that warns, all of it fails."""
    findings = run_checks(_observation(discovery_seconds=seconds), [BY_NAME["aws"]])
    assert _status(findings, "aws", "response.time") == expected


def test_key_count_limit() -> None:
    """100 keys pass AWS, 101 fail."""
    assert _status(run_checks(_observation(keys=100), [BY_NAME["aws"]]), "aws", "keys.count") == (
        "pass"
    )
    assert _status(run_checks(_observation(keys=101), [BY_NAME["aws"]]), "aws", "keys.count") == (
        "fail"
    )


def test_private_address_warns_cloud_parties_only() -> None:
    """A host resolving to a private address warns the clouds and Infisical, not Vault."""
    obs = replace(_observation(), addresses=("10.0.0.7",))
    findings = run_checks(obs, PARTIES)
    warned = {f.party for f in findings if f.check == "address.public" and f.status == "warn"}
    assert warned == {"aws", "entra", "gcp", "infisical"}


def test_key_alg_inference() -> None:
    """Keys without alg get what jwks-rsa and jose infer from kty and crv."""
    assert key_alg({"kty": "RSA"}) == "RS256"
    assert key_alg({"kty": "EC", "crv": "P-384"}) == "ES384"
    assert key_alg({"kty": "OKP", "crv": "Ed25519"}) == "EdDSA"
    assert key_alg({"kty": "EC", "crv": "P-256", "alg": "ES256"}) == "ES256"
    assert key_alg({"kty": "oct"}) == "?"


def test_flags_interleave_and_repeat() -> None:
    """Flags may follow the issuer; -profile repeats and splits on commas; -json=false works."""
    values, profiles, positional = parse_args(
        ["--profile", "aws,entra", "https://x", "-profile=gcp", "-json=false", "--ca", "f"]
    )
    assert positional == ["https://x"]
    assert profiles == ["aws", "entra", "gcp"]
    assert values["json"] is False and values["ca"] == "f"
    with pytest.raises(FlagError):
        parse_args(["https://x", "--ca"])
    assert parse_args(["--", "-weird"])[2] == ["-weird"]


def test_exit_status_is_the_worst_finding() -> None:
    """0 when every finding passes, 1 when the worst is a warning, 2 with any failure."""
    p, w, f = (Finding("all", "c", s, "") for s in ("pass", "warn", "fail"))  # type: ignore[arg-type]
    assert [exit_code([p]), exit_code([p, w]), exit_code([w, f, p]), exit_code([])] == [0, 1, 2, 0]


def test_every_check_and_profile_is_documented() -> None:
    """docs/relying-parties.md names every check id doctor emits and every profile."""
    import re

    from tests.paths import REPO

    doctor = REPO / "src" / "spire_oidc" / "doctor"
    source = "".join(p.read_text() for p in doctor.glob("*checks.py"))
    ids = set(re.findall(r'"([a-z_]+\.[a-z_]+)"', source)) | {"tls.discovery", "tls.jwks"}
    docs = (REPO / "docs" / "relying-parties.md").read_text()
    assert len(ids) > 30
    assert sorted(i for i in ids if f"`{i}`" not in docs) == []
    assert [p.name for p in PARTIES if f"(`--profile {p.name}`)" not in docs] == []


def test_keys_alg_reason_names_the_key_then_its_alg() -> None:
    """keys.alg reads `key <kid>: alg <alg> accepted`, so a kid is never taken for an algorithm."""
    findings = run_checks(_observation(keys=2), [BY_NAME["aws"]])
    reason = next(f.reason for f in findings if f.check == "keys.alg")
    assert reason == "key k0: alg RS256 accepted; key k1: alg RS256 accepted"
    ec = replace(_observation(), keys=[_jwk("e1", ec_key())])
    reason = next(f.reason for f in run_checks(ec, [BY_NAME["entra"]]) if f.check == "keys.alg")
    assert reason == "not accepted by default: key e1: alg ES256"


def test_token_without_audience_says_the_audience_check_was_skipped() -> None:
    """With a token and no audience, token.aud warns that the audience check was skipped."""
    token = jwt.encode(
        {"iss": "https://oidc.example.org", "aud": ["vault"], "sub": "spiffe://x/y", "exp": 2e9},
        rsa_key(),  # type: ignore[arg-type]
        algorithm="RS256",
        headers={"kid": "k0"},
    )
    obs = replace(_observation(), token_text=token)
    aud = next(f for f in run_checks(obs, [BY_NAME["vault"]]) if f.check == "token.aud")
    assert aud.status == "warn"
    assert aud.reason.startswith("audience check skipped: no -audience given")
    assert "-audience" in aud.fix
    checked = run_checks(replace(obs, audience="vault"), [BY_NAME["vault"]])
    assert next(f for f in checked if f.check == "token.aud").status == "pass"


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("https://oidc.example.org/.well-known/openid_configuration", "https://oidc.example.org"),
        ("https://h:8443/.well-known/openid_configuration/", "https://h:8443"),
        ("https://h/prefix/.well-known/openid-configuration", "https://h/prefix"),
        ("https://oidc.example.org", None),
    ],
)
def test_issuer_base_of_a_discovery_document_url(given: str, base: str | None) -> None:
    """A discovery document URL (either spelling) given as the issuer maps back to the issuer."""
    from spire_oidc.doctor.triage import issuer_base

    assert issuer_base(given) == base
