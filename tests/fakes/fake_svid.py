"""A fake SPIRE agent that also issues X.509-SVIDs (``FetchX509SVID``), from a test CA.

:class:`SvidCA` is a small SPIFFE CA (a root, optionally an intermediate) that issues leaf SVIDs
with a SPIFFE ID URI SAN and optional DNS SANs, as SPIRE's X.509 CA does.
:class:`FakeAgent` is :class:`~tests.fakes.fake_workload_api.FakeWorkloadAPI` (JWT bundles) plus
``FetchX509SVID`` on the same socket, with the agent's wire behaviour: the security header is
required, the current SVIDs are sent when a stream opens, every rotation is pushed on every
open stream. Drive it from its own event loop::

    ca = SvidCA()
    agent = FakeAgent(tmp / "agent.sock")
    await agent.start()
    agent.set_svids([ca.issue("spiffe://example.org/oidc", dns=["oidc.test"])])
    agent.rotate(ca.issue(...))          # pushed to every open FetchX509SVID stream
"""

from __future__ import annotations

import asyncio
import datetime
import os
import time
from collections.abc import Sequence

import grpc
import grpc.aio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from spire_oidc._compat import workload_pb2
from tests.fakes.fake_workload_api import FakeWorkloadAPI
from tests.fakes.sink import wait_until

X509_METHOD = "FetchX509SVID"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class SvidCA:
    """A SPIFFE X.509 CA for tests: ``root_pem`` is the trust bundle a relying party uses."""

    def __init__(self, trust_domain: str = "example.org", *, intermediate: bool = True) -> None:
        self.trust_domain = trust_domain
        now = datetime.datetime.now(datetime.UTC)
        self._root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = self._ca_cert(_name("test root"), self._root_key, self._root_key, None, now)
        self._issuer_key = self._root_key
        self._issuer = self.root
        self.intermediates: list[x509.Certificate] = []
        if intermediate:
            key = ec.generate_private_key(ec.SECP256R1())
            cert = self._ca_cert(_name("test intermediate"), key, self._root_key, self.root, now)
            self.intermediates = [cert]
            self._issuer_key, self._issuer = key, cert

    def _ca_cert(
        self,
        subject: x509.Name,
        key: ec.EllipticCurvePrivateKey,
        signer: ec.EllipticCurvePrivateKey,
        issuer: x509.Certificate | None,
        now: datetime.datetime,
    ) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.subject if issuer is not None else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.UniformResourceIdentifier(f"spiffe://{self.trust_domain}")]
                ),
                critical=False,
            )
            .sign(signer, hashes.SHA256())
        )

    @property
    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)

    def write_bundle(self, path: str | os.PathLike[str]) -> str:
        """Write the trust bundle (the root) as PEM; returns the path."""
        with open(path, "wb") as f:
            f.write(self.root_pem)
        return os.fspath(path)

    def issue(
        self,
        spiffe_id: str,
        *,
        dns: Sequence[str] = (),
        valid_for: float = 3600.0,
        not_before: float | None = None,
    ) -> workload_pb2.X509SVID:
        """A leaf SVID (ECDSA P-256) as the agent sends it: DER chain and PKCS#8 DER key."""
        key = ec.generate_private_key(ec.SECP256R1())
        start = time.time() - 60 if not_before is None else not_before
        sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(spiffe_id)]
        sans += [x509.DNSName(d) for d in dns]
        leaf = (
            x509.CertificateBuilder()
            .subject_name(_name(dns[0] if dns else "svid"))
            .issuer_name(self._issuer.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(datetime.datetime.fromtimestamp(start, datetime.UTC))
            .not_valid_after(datetime.datetime.fromtimestamp(start + 60 + valid_for, datetime.UTC))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=True,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [x509.ExtendedKeyUsageOID.SERVER_AUTH, x509.ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(self._issuer_key, hashes.SHA256())
        )
        der = serialization.Encoding.DER
        chain = leaf.public_bytes(der) + b"".join(c.public_bytes(der) for c in self.intermediates)
        return workload_pb2.X509SVID(
            spiffe_id=spiffe_id,
            x509_svid=chain,
            x509_svid_key=key.private_bytes(
                der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            bundle=self.root.public_bytes(der),
        )


def serial_of(svid: workload_pb2.X509SVID) -> int:
    """The leaf serial number of an SVID message (what a TLS client should be served)."""
    der = svid.x509_svid
    # The leaf is the first DER SEQUENCE of the chain: its length is in the header.
    first = der[1]
    if first < 0x80:
        end = 2 + first
    else:
        n = first & 0x7F
        end = 2 + n + int.from_bytes(der[2 : 2 + n], "big")
    return x509.load_der_x509_certificate(der[:end]).serial_number


class FakeAgent(FakeWorkloadAPI):
    """The fake Workload API (JWT bundles) plus ``FetchX509SVID`` on the same socket."""

    def __init__(self, socket_path: str | os.PathLike[str]) -> None:
        super().__init__(socket_path)
        self._svids: workload_pb2.X509SVIDResponse | None = None
        self._svid_streams: set[asyncio.Queue[object]] = set()
        self.x509_calls = 0

    def _methods(self) -> dict[str, grpc.RpcMethodHandler]:
        return {
            **super()._methods(),
            X509_METHOD: grpc.unary_stream_rpc_method_handler(
                self._fetch_x509_svid,
                request_deserializer=workload_pb2.X509SVIDRequest.FromString,
                response_serializer=lambda m: m.SerializeToString(),
            ),
        }

    def set_svids(self, svids: Sequence[workload_pb2.X509SVID] | None, *, push: bool = True) -> int:
        """Serve these SVIDs (None: none yet; new streams wait); pushed to open streams."""
        self._svids = None if svids is None else workload_pb2.X509SVIDResponse(svids=list(svids))
        if push and self._svids is not None:
            for queue in list(self._svid_streams):
                queue.put_nowait(self._svids)
            return len(self._svid_streams)
        return 0

    def rotate(self, svid: workload_pb2.X509SVID) -> int:
        """Replace the served SVID (one) and push it; returns the number of open streams."""
        return self.set_svids([svid])

    @property
    def open_svid_streams(self) -> int:
        return len(self._svid_streams)

    async def wait_for_svid_streams(self, n: int = 1, *, within: float = 5.0) -> None:
        await wait_until(
            lambda: self.open_svid_streams >= n, within=within, what=f"{n} SVID stream(s)"
        )

    async def _fetch_x509_svid(
        self,
        request: workload_pb2.X509SVIDRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> None:
        self.x509_calls += 1
        await self._admit(context)
        queue: asyncio.Queue[object] = asyncio.Queue()
        if self._svids is not None:
            queue.put_nowait(self._svids)
        self._svid_streams.add(queue)
        try:
            while True:
                await context.write(await queue.get())
        finally:
            self._svid_streams.discard(queue)
