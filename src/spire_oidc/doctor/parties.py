"""Pure data: what each relying party requires of a discovery document and its JWKS.

Every rule cites where it comes from (the sections of ``relying-parties.md`` in the project's
reference material, which in turn name the vendor documentation, source code or issue thread).
A rule marked *unverified* there is a warning here, never a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["pass", "warn", "fail"]
SEVERITY: dict[Status, int] = {"pass": 0, "warn": 1, "fail": 2}

# How the relying party compares the discovery document's issuer with the one it was given.
IssuerCompare = Literal["exact", "none"]
# What the relying party needs of the TLS certificate chain:
#   public     only publicly trusted chains (no CA can be configured)        -> fail otherwise
#   fallback   a private chain works with a workaround (thumbprint, upload)  -> warn otherwise
#   private    a CA bundle can be configured at the relying party           -> pass, with a note
TLSNeed = Literal["public", "fallback", "private"]


@dataclass(frozen=True)
class Party:
    """One relying party (a ``--profile`` name) and the facts the checks consult."""

    name: str
    title: str
    issuer_compare: IssuerCompare
    https_required: bool
    tls: TLSNeed
    tls_fix: str  # what to do when the chain is not publicly trusted
    accepted_algs: frozenset[str]  # algorithms accepted without configuring the party
    alg_fix: str  # how to make a key's algorithm acceptable
    alg_unsupported: Status = "warn"  # severity when a key's alg is outside accepted_algs
    use_absent: Status = "pass"  # severity when keys carry no "use"
    use_fix: str = "set_key_use = true (provider config)"
    max_keys: int | None = None
    max_seconds: float | None = None  # the party's fetch timeout, where known
    follows_redirects: bool = True
    appends_discovery_path: bool = False  # "{issuer}/.well-known/..." without trimming "/"
    needs_public_address: bool = False
    private_address_fix: str = ""
    strict_metadata: bool = False  # non-empty authorization_endpoint and subject types
    needs_response_types: bool = False
    checks_alg_list: bool = False  # token alg must be in id_token_signing_alg_values_supported
    jwk_members: frozenset[str] | None = None  # the only JWK members it accepts
    max_subject_bytes: int | None = None
    single_audience: bool = False
    max_issuer_length: int | None = None
    wants_cacheable_jwks: bool = False  # reported to fail on an uncacheable JWKS (AWS STS)
    source: str = ""


_RSA = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_RSA_EC = _RSA | frozenset({"ES256", "ES384"})
_ALL = _RSA_EC | frozenset({"ES512", "EdDSA"})
_GCP_MEMBERS = frozenset({"kty", "alg", "use", "kid", "n", "e", "x", "y", "crv"})
_SPIRE_RSA = 'SPIRE server: jwt_key_type = "rsa-2048"'

PARTIES: tuple[Party, ...] = (
    Party(
        name="aws",
        title="AWS IAM OIDC identity provider / STS AssumeRoleWithWebIdentity",
        issuer_compare="exact",
        https_required=True,
        tls="fallback",
        tls_fix=(
            "use a publicly trusted certificate (acme), or give the IAM OIDC provider the "
            "thumbprint of the top CA certificate of the chain"
        ),
        accepted_algs=_RSA_EC,
        alg_fix=f"STS accepts RSA and ECDSA (P-256/P-384) keys: {_SPIRE_RSA} or ec-p256",
        max_keys=100,
        max_seconds=5.0,
        needs_public_address=True,
        private_address_fix="STS fetches the documents from the internet: publish them there",
        needs_response_types=True,
        wants_cacheable_jwks=True,
        source="relying-parties.md §2; users-and-alternatives.md §5; GitLab MR 138405",
    ),
    Party(
        name="entra",
        title="Microsoft Entra ID workload identity federation",
        issuer_compare="exact",
        https_required=True,
        tls="public",
        tls_fix="a federated credential has no CA setting: use a publicly trusted certificate",
        accepted_algs=frozenset({"RS256"}),
        alg_fix=f"Entra supports RS256 only: {_SPIRE_RSA}",
        alg_unsupported="fail",
        use_absent="warn",
        needs_public_address=True,
        private_address_fix="Entra fetches the documents from the internet: publish them there",
        single_audience=True,
        max_issuer_length=600,
        source="relying-parties.md §3",
    ),
    Party(
        name="gcp",
        title="Google Cloud workload identity federation (OIDC provider)",
        issuer_compare="exact",
        https_required=True,
        tls="fallback",
        tls_fix=(
            "use a publicly trusted certificate (acme), or upload the JWKS to the pool provider "
            "(gcloud ... --jwk-json-path) and re-upload it on every rotation"
        ),
        accepted_algs=_RSA_EC,
        alg_fix=f"GCP supports RSA and EC keys: {_SPIRE_RSA} or ec-p256",
        needs_public_address=True,
        private_address_fix="GCP fetches the documents from the internet, or upload the JWKS",
        jwk_members=_GCP_MEMBERS,
        max_subject_bytes=127,
        source="relying-parties.md §4",
    ),
    Party(
        name="vault",
        title="HashiCorp Vault / OpenBao JWT auth (oidc_discovery_url)",
        issuer_compare="exact",
        https_required=False,
        tls="private",
        tls_fix="put the CA chain in the auth method's oidc_discovery_ca_pem",
        accepted_algs=frozenset({"RS256"}),
        alg_fix='Vault: jwt_supported_algs = ["RS256", "ES256"] (its default is RS256)',
        source="relying-parties.md §5",
    ),
    Party(
        name="kubernetes",
        title="Kubernetes API server JWT authenticator (go-oidc)",
        issuer_compare="exact",
        https_required=True,
        tls="private",
        tls_fix="put the CA chain in jwt[].issuer.certificateAuthority",
        accepted_algs=frozenset({"RS256"}),
        alg_fix=(
            "--oidc-signing-algs defaults to RS256: use a structured AuthenticationConfiguration "
            f"(accepts ES256) or {_SPIRE_RSA}"
        ),
        source="relying-parties.md §8, §10",
    ),
    Party(
        name="infisical",
        title="Infisical OIDC machine-identity auth",
        issuer_compare="none",
        https_required=False,
        tls="private",
        tls_fix="put the CA chain in the identity's CA certificate field",
        accepted_algs=_ALL - frozenset({"EdDSA"}),
        alg_fix=f"jsonwebtoken verifies RS*, PS* and ES*: {_SPIRE_RSA} or ec-p256",
        follows_redirects=False,
        appends_discovery_path=True,
        needs_public_address=True,
        private_address_fix=(
            "Infisical refuses private and loopback addresses unless the instance allows "
            "internal IP connections"
        ),
        source="relying-parties.md §6",
    ),
    Party(
        name="keycloak",
        title="Keycloak SPIFFE identity provider",
        issuer_compare="none",
        https_required=False,
        tls="private",
        tls_fix="add the CA to Keycloak's truststore",
        accepted_algs=_RSA_EC,
        alg_fix=f"{_SPIRE_RSA} or ec-p256",
        use_absent="warn",
        source="relying-parties.md §0; users-and-alternatives.md §1.3, §5",
    ),
    Party(
        name="curity",
        title="Curity Identity Server (JWT-SVID client assertions)",
        issuer_compare="none",
        https_required=False,
        tls="private",
        tls_fix="add the CA to the trust store of the client's JWKS URI",
        accepted_algs=_RSA_EC,
        alg_fix=f"{_SPIRE_RSA} or ec-p256",
        source="relying-parties.md §7",
    ),
    Party(
        name="istio",
        title="Istio RequestAuthentication (istiod fetches the JWKS)",
        issuer_compare="exact",
        https_required=False,
        tls="public",
        tls_fix=(
            "istiod trusts only system roots: use a publicly trusted certificate (acme) or "
            "inline the JWKS in jwtRules[].jwks"
        ),
        accepted_algs=_RSA_EC,
        alg_fix=f"{_SPIRE_RSA} or ec-p256",
        max_seconds=5.0,
        source="relying-parties.md §9",
    ),
    Party(
        name="libraries",
        title="JWT libraries (jose, PyJWT, jwks-rsa, openid-client, go-oidc)",
        issuer_compare="exact",
        https_required=True,
        tls="private",
        tls_fix="give the client the CA (NODE_EXTRA_CA_CERTS, ssl_context, SSL_CERT_FILE)",
        accepted_algs=_RSA_EC,
        alg_fix=(
            "go-oidc accepts RS256 only unless configured (SupportedSigningAlgs); "
            "others accept what the application allows"
        ),
        max_seconds=5.0,
        checks_alg_list=True,
        source="relying-parties.md §1, §10",
    ),
    Party(
        name="strict",
        title="Spec-strict OIDC clients (OIDC Discovery 1.0 §3: libiddawc, Nimbus/Trino)",
        issuer_compare="exact",
        https_required=True,
        tls="private",
        tls_fix="give the client the CA",
        accepted_algs=_ALL,
        alg_fix="",
        strict_metadata=True,
        needs_response_types=True,
        checks_alg_list=True,
        source="relying-parties.md §1, §10; users-and-alternatives.md §4.1",
    ),
)

BY_NAME: dict[str, Party] = {p.name: p for p in PARTIES}
