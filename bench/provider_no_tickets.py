#!/usr/bin/env python3
"""Run the real provider CLI with TLS session tickets off (bench only: full handshakes).

wrk keeps one TLS session per thread and resumes it on every new connection when the server
issues tickets, so the new-connection scenario would measure resumed handshakes. nginx gets
``ssl_session_tickets off; ssl_session_cache off;`` for that scenario; this wrapper does the same
to the provider's server contexts (no TLS 1.3 tickets, no TLS 1.2 ticket extension) and then
runs ``oidc-discovery-provider`` unchanged.

    .venv/bin/python bench/provider_no_tickets.py -config provider.conf
"""

from __future__ import annotations

import ssl
import sys

from spire_oidc import cli
from spire_oidc.http import tls

_make_context = tls.server_context


def _server_context_without_tickets() -> ssl.SSLContext:
    ctx = _make_context()
    ctx.options |= ssl.OP_NO_TICKET
    ctx.num_tickets = 0
    return ctx


tls.server_context = _server_context_without_tickets

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:]))
