"""One ACME account session on certbot's ``acme`` client. Every method blocks: call it only
from the ACME worker thread (:mod:`spire_oidc.acme.worker`).

Foreign errors (``requests``, ``acme.errors``, ``acme.messages.Error``, ``josepy``) become
:class:`AcmeError`, which carries the CA's problem document, whether a retry soon may help, and
the CA's ``Retry-After`` (read from the failing response by a ``requests`` response hook: the
``acme`` library drops the headers when it raises).

The library's own polling sleeps a fixed second (acme.md §2.3); this module only exposes single
requests (``poll_authorization``, ``poll_order``), and the caller paces them.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import requests
from acme import client, errors, messages
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.errors import DeserializationError
from josepy.jwa import ES256, ES384, ES512, RS256, JWASignature
from josepy.jwk import JWK, JWKEC, JWKRSA

from spire_oidc import __version__
from spire_oidc.acme.certs import PrivateKey
from spire_oidc.errors import ProviderError

T = TypeVar("T")

USER_AGENT = f"spire-oidc/{__version__} (SPIRE OIDC Discovery Provider) acme-python"
NETWORK_TIMEOUT = 30
# Problem types (RFC 8555 §6.7) after which an immediate retry can succeed.
_TRANSIENT_PROBLEMS = {"badNonce", "serverInternal", "rateLimited"}


class AcmeError(ProviderError):
    """An ACME request failed.

    ``problem`` is the CA's problem document (RFC 8555 §6.7), ``transient`` whether a retry soon
    may help, ``retry_after`` the seconds the CA's ``Retry-After`` asked for.
    """

    def __init__(
        self,
        message: str,
        problem: dict[str, object] | None = None,
        transient: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.problem = problem
        self.transient = transient
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message

    def describe(self) -> str:
        """The message; with how long the CA asked to wait, when it did."""
        text = super().describe()
        if self.retry_after is not None:
            text += f" (the CA asks to retry after {self.retry_after:.0f}s)"
        return text


def problem_document(err: messages.Error) -> dict[str, object]:
    """The problem document as the CA sent it (type, detail, identifier, subproblems)."""
    doc: dict[str, object] = {"type": err.typ}
    if err.title:
        doc["title"] = err.title
    if err.detail:
        doc["detail"] = err.detail
    if err.identifier is not None:
        doc["identifier"] = err.identifier.value
    if err.subproblems:
        doc["subproblems"] = [problem_document(sub) for sub in err.subproblems]
    return doc


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def jwk_for(key: PrivateKey) -> tuple[JWK, JWASignature]:
    """The account key as a JWK with its JWS algorithm (ES256 for P-256, RS256 for RSA)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algs = {256: ES256, 384: ES384, 521: ES512}
        return JWKEC(key=key), algs.get(key.curve.key_size, ES256)
    if isinstance(key, rsa.RSAPrivateKey):
        return JWKRSA(key=key), RS256
    raise AcmeError(f"unsupported account key type {type(key).__name__}")


@dataclass
class Eab:
    """External account binding credentials (the HMAC key is base64url, as CAs hand it out)."""

    key_id: str
    hmac_key: str = field(repr=False)


class AcmeSession:
    """The directory, the account and the requests of one ACME server."""

    def __init__(
        self, directory_url: str, account_key: PrivateKey, *, verify: str | bool = True
    ) -> None:
        self.directory_url = directory_url
        self.jwk, alg = jwk_for(account_key)
        # ``verify_ssl`` is handed to requests' ``verify``, which also takes a CA bundle path.
        self._net = client.ClientNetwork(
            key=self.jwk,
            alg=alg,
            verify_ssl=verify,  # type: ignore[arg-type]
            user_agent=USER_AGENT,
            timeout=NETWORK_TIMEOUT,
        )
        self._net.session.hooks["response"].append(self._remember_retry_after)
        self._retry_after: str | None = None
        self._client: client.ClientV2 | None = None
        self.account_url: str | None = None
        self.terms_of_service: str | None = None

    def _remember_retry_after(
        self, response: requests.Response, *args: object, **kwargs: object
    ) -> None:
        self._retry_after = None if response.ok else response.headers.get("Retry-After")

    def close(self) -> None:
        self._net.session.close()

    @property
    def acme(self) -> client.ClientV2:
        if self._client is None:
            raise AcmeError("not connected to the ACME directory")
        return self._client

    # -- requests (each translates its failures) ---------------------------------------------
    def _run(self, what: str, fn: Callable[[], T]) -> T:
        self._retry_after = None
        try:
            return fn()
        except messages.Error as exc:
            code = exc.code or ""
            raise AcmeError(
                f"{what}: {exc.typ}: {exc.detail or exc.title or ''}".rstrip(": "),
                problem=problem_document(exc),
                transient=code in _TRANSIENT_PROBLEMS,
                retry_after=parse_retry_after(self._retry_after, time.time()),
            ) from exc
        except requests.RequestException as exc:
            raise AcmeError(f"{what}: {exc}", transient=True) from exc
        except errors.ClientError as exc:
            transient = _is_server_error(exc)
            raise AcmeError(
                f"{what}: {_client_error_text(exc)}",
                transient=transient,
                retry_after=parse_retry_after(self._retry_after, time.time()),
            ) from exc
        except (errors.Error, DeserializationError, ValueError, KeyError) as exc:
            raise AcmeError(f"{what}: {type(exc).__name__}: {exc}") from exc

    def connect(self) -> messages.Directory:
        """Fetch the directory."""
        directory = self._run(
            f"fetch the ACME directory {self.directory_url}",
            lambda: client.ClientV2.get_directory(self.directory_url, self._net),
        )
        self._client = client.ClientV2(directory, self._net)
        meta = getattr(directory, "meta", None)
        self.terms_of_service = getattr(meta, "terms_of_service", None) if meta else None
        return directory

    def external_account_required(self) -> bool:
        return bool(self.acme.external_account_required())

    def register(self, email: str, eab: Eab | None) -> str:
        """Create the account, or find the existing one for this key; returns its URL."""
        acme = self.acme

        def build() -> messages.NewRegistration:
            binding = None
            if eab is not None:
                binding = messages.ExternalAccountBinding.from_data(
                    account_public_key=self.jwk.public_key(),
                    kid=eab.key_id,
                    hmac_key=eab.hmac_key,
                    directory=acme.directory,
                )
            return messages.NewRegistration.from_data(
                email=email or None,
                terms_of_service_agreed=True,
                external_account_binding=binding,
            )

        registration = self._run("build the account registration", build)

        def send() -> str:
            try:
                regr = acme.new_account(registration)
            except errors.ConflictError as exc:  # this key already has an account
                self._net.account = messages.RegistrationResource(
                    uri=exc.location, body=messages.Registration()
                )
                return str(exc.location)
            return str(regr.uri)

        self.account_url = self._run("register the ACME account", send)
        return self.account_url

    def new_order(self, csr_pem: bytes) -> messages.OrderResource:
        return self._run("create the order", lambda: self.acme.new_order(csr_pem))

    def answer(self, challb: messages.ChallengeBody, response: object) -> None:
        self._run(
            f"answer the {challb.chall.typ} challenge",
            lambda: self.acme.answer_challenge(challb, response),  # type: ignore[arg-type]
        )

    def poll_authorization(
        self, authzr: messages.AuthorizationResource
    ) -> tuple[messages.AuthorizationResource, float | None]:
        """One poll of an authorization; with the CA's Retry-After, if any."""
        updated, response = self._run("poll the authorization", lambda: self.acme.poll(authzr))
        return updated, parse_retry_after(response.headers.get("Retry-After"), time.time())

    def finalize(self, orderr: messages.OrderResource) -> messages.Order:
        """Send the CSR; the order as the CA returned it (``processing`` or ``valid``)."""
        return self._run("finalize the order", lambda: self.acme.begin_finalization(orderr).body)

    def poll_order(self, orderr: messages.OrderResource) -> tuple[messages.Order, float | None]:
        """One POST-as-GET of the order; with the CA's Retry-After, if any."""

        def fetch() -> tuple[messages.Order, float | None]:
            response = self._net.post(
                orderr.uri, None, new_nonce_url=self.acme.directory["newNonce"]
            )
            retry = parse_retry_after(response.headers.get("Retry-After"), time.time())
            return messages.Order.from_json(response.json()), retry

        return self._run("poll the order", fetch)

    def download(self, certificate_url: str) -> bytes:
        """The certificate chain (PEM), leaf first."""

        def fetch() -> bytes:
            response = self._net.post(
                certificate_url, None, new_nonce_url=self.acme.directory["newNonce"]
            )
            return bytes(response.content)

        return self._run("download the certificate", fetch)

    def deactivate(self, authzr: messages.AuthorizationResource) -> None:
        """Give up an authorization (best effort, after a failed order)."""
        self._run(
            "deactivate the authorization", lambda: self.acme.deactivate_authorization(authzr)
        )


def _is_server_error(exc: errors.ClientError) -> bool:
    response = exc.args[0] if exc.args else None
    if isinstance(response, tuple) and response:
        response = response[0]
    return isinstance(response, requests.Response) and response.status_code >= 500


def _client_error_text(exc: errors.ClientError) -> str:
    response = exc.args[0] if exc.args else None
    if isinstance(response, tuple) and response:
        response = response[0]
    if isinstance(response, requests.Response):
        return f"HTTP {response.status_code} from {response.url}"
    return str(exc) or type(exc).__name__
