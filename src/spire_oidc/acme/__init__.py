"""Embedded ACME: certificates for the TLS listener, obtained and renewed in the background.

``clienthello``  pure: the SNI and ALPN list of a peeked TLS ClientHello
``listener``     the accept loop that peeks each ClientHello and picks the certificate
``selector``     which context a ClientHello gets (serving, challenge, or none)
``certs``        pure-ish: keys, CSRs, cache entries (Go autocert format), SSLContexts from PEM
``tlsalpn``      the tls-alpn-01 challenge type and certificate (RFC 8737)
``http01``       the plain-HTTP listener's handler for http-01
``cache``        Go autocert's ``DirCache`` layout (and an in-memory cache)
``worker``       the single daemon thread the synchronous ``acme`` client runs in
``session``      one ACME account session (certbot's ``acme`` library), called in the worker
``trust``        which CAs the ACME client trusts (environment, ``ca_bundle_path``)
``order``        one certificate order, paced from the event loop
``manager``      the per-name loop: load from cache, order, install, renew, back off
``service``      the composition used by the daemon: bind, serve, start, stop
``shared``       ``acme.storage`` (replicas): the layout, the cache and challenge answers on it
``lock``         the replicas' order lock (conditional writes, takeover after an observed lease)
``replicas``     the per-name loop with shared storage: one replica orders, all install
"""
