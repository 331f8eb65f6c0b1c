"""`oidc-discovery-provider doctor` (the installed command) against the running provider."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.interop.conftest import StartProvider
from tests.interop.harness import EXE, ProviderProcess, SigningKey, free_port, mint
from tests.keyfactory import ec_key

pytestmark = pytest.mark.integration

Findings = dict[tuple[str, str], dict[str, str]]


def doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, "doctor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def doctor_json(provider: ProviderProcess, *args: str, issuer: str = "") -> tuple[int, Findings]:
    r = doctor(issuer or provider.issuer, "--ca", str(provider.tls.ca_file), "--json", *args)
    assert r.returncode in (0, 1, 2), r.stderr
    report = json.loads(r.stdout)
    assert report["exit_code"] == r.returncode
    return r.returncode, {(f["party"], f["check"]): f for f in report["findings"]}


def status(findings: Findings, party: str, check: str) -> str:
    return findings[(party, check)]["status"]


@pytest.fixture(scope="module")
def default_provider(
    start_provider: StartProvider, rsa_signer: SigningKey, ec_signer: SigningKey
) -> ProviderProcess:
    return start_provider([rsa_signer, ec_signer])


def test_default_deployment(default_provider: ProviderProcess) -> None:
    """SPIRE's default document over a private CA: generic checks pass; Entra/Istio fail on the chain, strict clients on authorization_endpoint."""
    code, f = doctor_json(default_provider)
    assert code == 2
    for check in ("discovery.fetch", "jwks.fetch", "tls.discovery", "tls.jwks", "keys.kid"):
        assert status(f, "all", check) == "pass", check
    assert status(f, "entra", "tls.public") == "fail"
    assert status(f, "istio", "tls.public") == "fail"
    assert status(f, "aws", "tls.public") == "warn"
    assert status(f, "vault", "tls.public") == "pass"
    assert status(f, "strict", "metadata.authorization_endpoint") == "fail"
    assert status(f, "strict", "metadata.subject_types") == "pass"
    assert status(f, "entra", "keys.alg") == "warn"  # the RSA key is fine, the EC one is not
    assert status(f, "entra", "keys.use") == "warn"
    assert status(f, "aws", "issuer.match") == "pass"
    assert status(f, "libraries", "keys.alg_listed") == "pass"
    assert status(f, "aws", "keys.count") == "pass"


def test_profiles_that_accept_a_private_ca_pass(default_provider: ProviderProcess) -> None:
    """Vault, Kubernetes, the JWT libraries and Curity with --ca and an RSA+EC bundle: only the EC alg warnings remain."""
    code, f = doctor_json(
        default_provider,
        "--profile",
        "curity,libraries",
        "--profile",
        "vault",
        "-profile=kubernetes",
    )
    parties = {p for p, _ in f}
    assert parties == {"all", "curity", "libraries", "vault", "kubernetes"}
    assert code == 1
    warned = sorted(k for k, v in f.items() if v["status"] != "pass")
    assert warned == [("kubernetes", "keys.alg"), ("vault", "keys.alg")]


def test_human_output_names_party_reason_and_fix(default_provider: ProviderProcess) -> None:
    """The default output groups findings by party, each failure with its fix, and ends with the summary."""
    r = doctor(
        default_provider.issuer, "-ca", str(default_provider.tls.ca_file), "-profile", "entra"
    )
    assert r.returncode == 2, r.stderr
    out = r.stdout
    assert out.startswith(f"doctor {default_provider.issuer}\n")
    assert "entra: Microsoft Entra ID workload identity federation" in out
    assert "FAIL  tls.public" in out
    assert "fix: a federated credential has no CA setting" in out
    assert out.rstrip().splitlines()[-1].endswith("exit 2 (fail)")


def test_token_checks(
    default_provider: ProviderProcess, rsa_signer: SigningKey, tmp_path: Path
) -> None:
    """A valid RS256 JWT-SVID passes every token check; a stranger's kid, a wrong audience and an expired token each fail their check."""
    issuer = default_provider.issuer
    good = tmp_path / "good.jwt"
    good.write_text(mint(rsa_signer, issuer=issuer, audience="vault") + "\n")
    _, f = doctor_json(default_provider, "--token", str(good), "--audience", "vault")
    for check in ("token.kid", "token.signature", "token.iss", "token.aud", "token.exp"):
        assert status(f, "all", check) == "pass", (check, f[("all", check)])
    assert ("entra", "token.alg") not in f

    stranger = tmp_path / "stranger.jwt"
    stranger.write_text(mint(SigningKey("nobody", ec_key(), "ES256"), issuer=issuer))
    _, f = doctor_json(default_provider, "--token", str(stranger), "--profile", "entra")
    assert status(f, "all", "token.kid") == "fail"
    assert status(f, "entra", "token.alg") == "fail"

    forged = tmp_path / "forged.jwt"
    forged.write_text(mint(SigningKey("ec-1", ec_key(ec.SECP256R1()), "ES256"), issuer=issuer))
    _, f = doctor_json(default_provider, "--token", str(forged), "--profile", "vault")
    assert status(f, "all", "token.signature") == "fail"

    old = tmp_path / "old.jwt"
    old.write_text(mint(rsa_signer, issuer=issuer, now=time.time() - 3600, lifetime=60))
    _, f = doctor_json(default_provider, "--token", str(old), "--audience", "other")
    assert status(f, "all", "token.exp") == "fail"
    assert status(f, "all", "token.aud") == "fail"


def test_trailing_slash_issuer(default_provider: ProviderProcess) -> None:
    """An issuer given with a trailing slash fails string-comparing parties and Infisical's path; go-oidc style fetch still works."""
    code, f = doctor_json(default_provider, issuer=default_provider.issuer + "/")
    assert code == 2
    assert status(f, "all", "discovery.fetch") == "pass"
    match = f[("kubernetes", "issuer.match")]
    assert match["status"] == "fail" and "trailing slash" in match["reason"]
    assert "jwt_issuer" in match["fix"]
    assert status(f, "infisical", "issuer.match") == "pass"
    assert status(f, "infisical", "discovery.path") == "fail"


def test_untrusted_chain_without_ca(default_provider: ProviderProcess) -> None:
    """Without --ca the private chain fails tls.*, yet the documents are still examined."""
    r = doctor(default_provider.issuer, "--json", "--profile", "vault")
    assert r.returncode == 2
    report = json.loads(r.stdout)
    f = {(x["party"], x["check"]): x for x in report["findings"]}
    assert f[("all", "tls.discovery")]["status"] == "fail"
    assert f[("all", "discovery.fetch")]["status"] == "pass"
    assert [k["kid"] for k in report["keys"]] == ["rsa-1", "ec-1"]
    assert report["discovery"]["tls"]["verified"] is False


def test_ssl_cert_file_is_honoured(default_provider: ProviderProcess) -> None:
    """SSL_CERT_FILE stands in for --ca, as for any OpenSSL client."""
    import os

    env = {**os.environ, "SSL_CERT_FILE": str(default_provider.tls.ca_file)}
    r = doctor(default_provider.issuer, "--json", "--profile", "vault", env=env)
    f = {(x["party"], x["check"]): x for x in json.loads(r.stdout)["findings"]}
    assert f[("all", "tls.discovery")]["status"] == "pass"


def test_path_prefix_and_wrong_path(start_provider: StartProvider, ec_signer: SigningKey) -> None:
    """Under server_path_prefix the issuer with the prefix passes; without it discovery 404s and the fix names server_path_prefix."""
    provider = start_provider(
        [ec_signer], server_path_prefix="/spire", extra_config="set_key_use = true"
    )
    code, f = doctor_json(provider, "--profile", "keycloak")
    assert code == 0, f
    assert status(f, "keycloak", "keys.use") == "pass"
    code, f = doctor_json(provider, "--profile", "keycloak", issuer=provider.origin)
    assert code == 2
    fetch = f[("all", "discovery.fetch")]
    assert fetch["status"] == "fail" and "404" in fetch["reason"]
    assert "server_path_prefix" in fetch["fix"]


def test_spec_clean_discovery_options(start_provider: StartProvider, ec_signer: SigningKey) -> None:
    """With discovery_document set, strict clients pass and the alg list is derived from the keys."""
    port = free_port()
    issuer = f"https://127.0.0.1:{port}"
    provider = start_provider(
        [ec_signer],
        port=port,
        extra_config=(
            "discovery_document {\n"
            f'  authorization_endpoint = "{issuer}/authorize"\n'
            "  signing_algs_from_keys = true\n"
            '  claims_supported = ["sub", "aud", "exp", "iat", "iss"]\n'
            "}"
        ),
    )
    status_code, body = provider.fetch("/.well-known/openid-configuration")
    doc = json.loads(body)
    assert status_code == 200
    assert doc["authorization_endpoint"] == f"{issuer}/authorize"
    assert doc["id_token_signing_alg_values_supported"] == ["ES256"]
    assert doc["claims_supported"] == ["sub", "aud", "exp", "iat", "iss"]
    code, f = doctor_json(provider, "--profile", "strict")
    assert status(f, "strict", "metadata.authorization_endpoint") == "pass"
    assert status(f, "strict", "keys.alg_listed") == "pass"
    # Only ES256 keys: the list lacks RS256, which OIDC Discovery requires; doctor says so.
    assert status(f, "strict", "metadata.alg_values") == "warn"
    assert code == 1
