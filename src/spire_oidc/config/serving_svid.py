"""The ``serving_svid`` block (ours): a TLS listener serving the provider's own X.509-SVID.

Its socket defaults to ``workload_api.socket_path`` and then to ``SPIFFE_ENDPOINT_SOCKET`` (the
SPIFFE standard variable, ``unix:///path`` or ``unix:/path``), resolved when the file is loaded
so that ``validate -json`` shows the socket that will be used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from spire_oidc.config.gonet import GoAddrError, resolve_tcp_addr
from spire_oidc.config.model import DEFAULT_SERVING_ADDR, ServingSvidConfig

if TYPE_CHECKING:
    from spire_oidc.config.checks import Checks

BLOCK = "serving_svid"
ENDPOINT_VARIABLE = "SPIFFE_ENDPOINT_SOCKET"


def endpoint_socket(value: str) -> str:
    """The path of a ``SPIFFE_ENDPOINT_SOCKET`` value (``unix:///p``, ``unix:/p`` or a path)."""
    for prefix in ("unix://", "unix:"):
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


def read_serving_svid(
    checks: Checks, environ: Mapping[str, str] | None = None
) -> ServingSvidConfig | None:
    """The block's config, or None when it is absent; errors name the block's key."""
    section = checks.root.block(BLOCK)
    if section is None:
        return None
    addr = section.text("addr") or DEFAULT_SERVING_ADDR
    try:
        host, port = resolve_tcp_addr(addr)
    except GoAddrError as exc:
        raise checks.error(
            f"invalid addr in the serving_svid configuration section: {exc}", section, "addr"
        ) from None
    socket_path = section.text("socket_path")
    if not socket_path:
        workload = checks.root.block("workload_api")
        if workload is not None:
            socket_path = workload.text("socket_path")
    if not socket_path:
        env = os.environ if environ is None else environ
        socket_path = endpoint_socket(env.get(ENDPOINT_VARIABLE, ""))
    if not socket_path:
        raise checks.error(
            "socket_path must be configured in the serving_svid configuration section (or set "
            f"workload_api.socket_path, or {ENDPOINT_VARIABLE})",
            section,
            "socket_path",
        )
    spiffe_id = section.text("spiffe_id")
    if spiffe_id and (not spiffe_id.startswith("spiffe://") or len(spiffe_id) <= len("spiffe://")):
        raise checks.error(
            f"spiffe_id in the serving_svid configuration section must be a SPIFFE ID "
            f"(spiffe://trust-domain/path), got {spiffe_id!r}",
            section,
            "spiffe_id",
        )
    return ServingSvidConfig(
        addr=addr, host=host, port=port, socket_path=socket_path, spiffe_id=spiffe_id
    )
