"""Real relying-party libraries verify JWT-SVIDs against the installed provider over TLS.

Each configuration runs one provider process; every Node library runs in one process per batch.
A token is accepted only through discovery -> jwks_uri -> key by kid; each rejection must come
from the intended check (the reason is matched), so a broken setup cannot pass as "rejected".
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.interop.conftest import StartProvider
from tests.interop.harness import (
    AUDIENCE,
    NODE_LIBRARIES,
    Case,
    ProviderProcess,
    SigningKey,
    free_port,
    mint,
    run_node,
    verify_pyjwt,
)
from tests.keyfactory import ec_key, rsa_key

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("node")]

LIBRARIES = (*NODE_LIBRARIES, "pyjwt")

# Why each library must reject each bad token (a regex on the reason it reports).
EXPECTED: dict[str, dict[str, str | None]] = {
    "bad_signature": {
        "jose": r"^ERR_JWS_SIGNATURE_VERIFICATION_FAILED$",
        "openid-client": r"^ERR_JWS_SIGNATURE_VERIFICATION_FAILED$",
        "infisical": r"^jwt_verification_failed:invalid signature$",
        "pyjwt": r"^InvalidSignatureError$",
    },
    "wrong_audience": {
        "jose": r"^ERR_JWT_CLAIM_VALIDATION_FAILED:aud$",
        "openid-client": r"^ERR_JWT_CLAIM_VALIDATION_FAILED:aud$",
        "infisical": r"^audience_not_allowed$",
        "pyjwt": r"^InvalidAudienceError$",
    },
    "expired": {
        "jose": r"^ERR_JWT_EXPIRED$",
        "openid-client": r"^ERR_JWT_EXPIRED$",
        "infisical": r"^jwt_verification_failed:jwt expired$",
        "pyjwt": r"^ExpiredSignatureError$",
    },
    "unknown_kid": {
        "jose": r"^ERR_JWKS_NO_MATCHING_KEY$",
        "openid-client": r"^ERR_JWKS_NO_MATCHING_KEY$",
        "infisical": r"^signing_key_not_found$",
        "pyjwt": r"^PyJWKClientError$",
    },
    "wrong_issuer": {
        "jose": r"^ERR_JWT_CLAIM_VALIDATION_FAILED:iss$",
        "openid-client": r"^ERR_JWT_CLAIM_VALIDATION_FAILED:iss$",
        "infisical": r"^jwt_verification_failed:jwt issuer invalid",
        "pyjwt": r"^InvalidIssuerError$",
    },
    # The relying party is configured with the issuer plus a trailing slash.
    "rp_issuer_trailing_slash": {
        "jose": r"^ERR_JWT_CLAIM_VALIDATION_FAILED:iss$",
        "openid-client": r"^discovery:OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED:",
        "infisical": r"^discovery_document_fetch_failed:.*404",
        "pyjwt": r"^InvalidIssuerError$",
    },
    # The same without a path: openid-client compares new URL(issuer).href, so "https://h/" and
    # "https://h" are equal there; the others compare strings (Infisical fetches "//.well-known").
    "rp_issuer_trailing_slash_root": {
        "jose": r"^ERR_JWT_CLAIM_VALIDATION_FAILED:iss$",
        "openid-client": None,
        "infisical": r"^discovery_document_fetch_failed:.*404",
        "pyjwt": r"^InvalidIssuerError$",
    },
}


@dataclass(frozen=True)
class Token:
    id: str
    token: str
    expect: str  # "" = accepted, else a key of EXPECTED
    rp_issuer: str  # what the relying party is configured with


def token_matrix(signers: list[SigningKey], issuer: str, label: str = "") -> list[Token]:
    """For each signing key: one valid token and one per rejection reason."""
    out: list[Token] = []
    now = time.time()
    for key in signers:
        tag = f"{label}{key.kid}"
        impostor_private = rsa_key(2048, fresh=True) if key.alg == "RS256" else ec_key()
        impostor = SigningKey(key.kid, impostor_private, key.alg)
        stranger = SigningKey(f"{key.kid}-unpublished", impostor_private, key.alg)
        out += [
            Token(f"{tag}/valid", mint(key, issuer=issuer), "", issuer),
            Token(f"{tag}/bad_signature", mint(impostor, issuer=issuer), "bad_signature", issuer),
            Token(
                f"{tag}/wrong_audience",
                mint(key, issuer=issuer, audience="someone-else"),
                "wrong_audience",
                issuer,
            ),
            Token(
                f"{tag}/expired",
                mint(key, issuer=issuer, now=now - 7200, lifetime=300),
                "expired",
                issuer,
            ),
            Token(f"{tag}/unknown_kid", mint(stranger, issuer=issuer), "unknown_kid", issuer),
            Token(
                f"{tag}/wrong_issuer",
                mint(key, issuer=issuer + "/other"),
                "wrong_issuer",
                issuer,
            ),
        ]
    return out


def verify_all(provider: ProviderProcess, tokens: list[Token]) -> dict[tuple[str, str], str]:
    """(library, token id) -> "" or the rejection reason, for every library and token."""
    cases = [
        Case(f"{lib}|{t.id}", lib, t.rp_issuer, t.token) for lib in NODE_LIBRARIES for t in tokens
    ]
    node = run_node(cases, provider.tls.ca_file)
    results = {tuple(k.split("|", 1)): v for k, v in node.items()}
    ctx = provider.tls.client_context()
    for t in tokens:
        results[("pyjwt", t.id)] = verify_pyjwt(
            t.token, issuer=t.rp_issuer, audience=AUDIENCE, ctx=ctx
        )
    return results  # type: ignore[return-value]


def assert_outcomes(results: dict[tuple[str, str], str], tokens: list[Token]) -> None:
    problems = []
    for t in tokens:
        for lib in LIBRARIES:
            reason = results[(lib, t.id)]
            pattern = EXPECTED[t.expect][lib] if t.expect else None
            if pattern is None:
                if reason:
                    problems.append(f"{lib} rejected {t.id}, which it should accept: {reason}")
            elif not reason:
                problems.append(f"{lib} accepted {t.id}")
            elif not re.search(pattern, reason):
                problems.append(f"{lib} rejected {t.id} for the wrong reason: {reason}")
    assert not problems, "\n".join(problems)


def discovery(provider: ProviderProcess) -> dict[str, object]:
    status, body = provider.fetch(
        (provider.server_path_prefix or "") + "/.well-known/openid-configuration"
    )
    assert status == 200, body
    doc: dict[str, object] = json.loads(body)
    return doc


def served_keys(provider: ProviderProcess) -> list[dict[str, str]]:
    status, body = provider.fetch(provider.keys_path())
    assert status == 200, body
    keys: list[dict[str, str]] = json.loads(body)["keys"]
    return keys


def test_default_config_rs256_and_es256(
    start_provider: StartProvider, rsa_signer: SigningKey, ec_signer: SigningKey
) -> None:
    """With SPIRE's default config, every library accepts RS256 and ES256 JWT-SVIDs and rejects each bad token for the intended reason."""
    provider = start_provider([rsa_signer, ec_signer])
    assert discovery(provider)["issuer"] == provider.issuer
    assert all("use" not in k for k in served_keys(provider))
    tokens = token_matrix([rsa_signer, ec_signer], provider.issuer)
    tokens.append(
        Token(
            "slash",
            mint(ec_signer, issuer=provider.issuer),
            "rp_issuer_trailing_slash_root",
            provider.issuer + "/",
        )
    )
    assert_outcomes(verify_all(provider, tokens), tokens)


def test_set_key_use(
    start_provider: StartProvider, rsa_signer: SigningKey, ec_signer: SigningKey
) -> None:
    """With set_key_use every key carries use "sig" and every library still verifies by kid."""
    provider = start_provider([rsa_signer, ec_signer], extra_config="set_key_use = true")
    assert [k["use"] for k in served_keys(provider)] == ["sig", "sig"]
    tokens = token_matrix([rsa_signer, ec_signer], provider.issuer)
    assert_outcomes(verify_all(provider, tokens), tokens)


def test_server_path_prefix(
    start_provider: StartProvider, rsa_signer: SigningKey, ec_signer: SigningKey
) -> None:
    """Under server_path_prefix the issuer carries the prefix and discovery/keys move under it."""
    provider = start_provider([rsa_signer, ec_signer], server_path_prefix="/spire")
    doc = discovery(provider)
    assert doc["issuer"] == provider.origin + "/spire"
    assert doc["jwks_uri"] == provider.origin + "/spire/keys"
    tokens = token_matrix([rsa_signer, ec_signer], provider.issuer)
    assert_outcomes(verify_all(provider, tokens), tokens)


def test_jwt_issuer_with_path(
    start_provider: StartProvider, rsa_signer: SigningKey, ec_signer: SigningKey
) -> None:
    """A jwt_issuer with a path (served under the same prefix) verifies; a trailing slash at the relying party is rejected by all."""
    port = free_port()
    issuer = f"https://127.0.0.1:{port}/tenant/a"
    provider = start_provider(
        [rsa_signer, ec_signer],
        extra_config=f'jwt_issuer = "{issuer}"',
        server_path_prefix="/tenant/a",
        port=port,
    )
    doc = discovery(provider)
    assert (doc["issuer"], doc["jwks_uri"]) == (issuer, issuer + "/keys")
    tokens = token_matrix([rsa_signer, ec_signer], issuer)
    tokens.append(
        Token("slash", mint(rsa_signer, issuer=issuer), "rp_issuer_trailing_slash", issuer + "/")
    )
    assert_outcomes(verify_all(provider, tokens), tokens)


def test_key_rotation(start_provider: StartProvider) -> None:
    """The old kid verifies while it is in the bundle, the new kid once published, and the old one is rejected after removal."""
    old = SigningKey("old-ec", ec_key(ec.SECP256R1()), "ES256")
    new = SigningKey("new-rsa", rsa_key(2048, fresh=True), "RS256")
    provider = start_provider([old])
    issuer = provider.issuer

    def phase(label: str, expect: dict[SigningKey, str]) -> None:
        tokens = [
            Token(f"{label}/{k.kid}", mint(k, issuer=issuer), outcome, issuer)
            for k, outcome in expect.items()
        ]
        assert_outcomes(verify_all(provider, tokens), tokens)

    phase("before", {old: "", new: "unknown_kid"})
    provider.rotate([old, new])
    phase("overlap", {old: "", new: ""})
    provider.rotate([new])
    phase("after", {old: "unknown_kid", new: ""})
