"""The tls-alpn-01 challenge (RFC 8737), which certbot's ``acme`` 5.x no longer ships.

The challenge object is a key-authorization challenge like http-01; the response is an empty
JSON object (RFC 8555 §7.5.1). The validation certificate is self-signed, has exactly one DNS
SAN (the identifier) and a critical ``id-pe-acmeIdentifier`` extension
(1.3.6.1.5.5.7.1.31, RFC 8737 §6.1) whose value is the DER OCTET STRING of
SHA-256(key authorization). It is served only on connections that negotiate ``acme-tls/1``.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta

from acme import challenges
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from josepy.jwk import JWK

from spire_oidc.acme.certs import key_to_pem, new_key

ACME_TLS_ALPN = "acme-tls/1"
ID_PE_ACME_IDENTIFIER = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")


@challenges.ChallengeResponse.register
class TLSALPN01Response(challenges.KeyAuthorizationChallengeResponse):
    """The (empty) answer to a tls-alpn-01 challenge."""

    typ = "tls-alpn-01"


@challenges.Challenge.register
class TLSALPN01(challenges.KeyAuthorizationChallenge):
    """A tls-alpn-01 challenge as offered by the CA."""

    response_cls = TLSALPN01Response
    typ = response_cls.typ

    def validation(self, account_key: JWK, **unused_kwargs: object) -> str:
        """The key authorization that :func:`challenge_certificate` digests."""
        return self.key_authorization(account_key)


def challenge_certificate(domain: str, key_authorization: str) -> tuple[bytes, bytes]:
    """The validation certificate for ``domain``: ``(chain_pem, key_pem)``."""
    key = new_key()
    digest = hashlib.sha256(key_authorization.encode("ascii")).digest()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ACME tls-alpn-01 challenge")])
    now = datetime.fromtimestamp(time.time(), UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        # DER OCTET STRING (tag 0x04, length 32) wrapping the digest.
        .add_extension(
            x509.UnrecognizedExtension(ID_PE_ACME_IDENTIFIER, b"\x04\x20" + digest),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_to_pem(key)
