"""The provider's own TLS identity (an X.509-SVID) as a value, and the seam it travels through.

The Workload API client (``sources/serving_svid.py``) produces :class:`ServingIdentity` values;
the listener that serves TLS with them (``http/svid_tls.py``) consumes them through
:class:`IdentitySink`. Neither imports the other: gRPC stays out of the HTTP layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ServingIdentity:
    """One X.509-SVID ready to serve: the PEM chain (leaf first, then intermediates), its
    private key (never in ``repr``, so never in a log line), and the facts readiness and logs
    need."""

    spiffe_id: str
    chain_pem: bytes
    key_pem: bytes = field(repr=False)
    not_before: float
    not_after: float
    serial: int
    dns_names: tuple[str, ...] = ()

    def expired(self, now: float) -> bool:
        """Outside its validity window at ``now`` (then it must not be served)."""
        return not self.not_before <= now < self.not_after


class IdentitySink(Protocol):
    """Where the Workload API client delivers the serving identity."""

    def offer_identity(self, identity: ServingIdentity) -> bool:
        """A new SVID from the agent; True if it is now served (False: refused, e.g. expired)."""
        ...

    def identity_problem(self, reason: str | None) -> None:
        """What currently keeps a new SVID from arriving (None: nothing, the stream is fine)."""
        ...
