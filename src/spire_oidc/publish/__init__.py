"""Publication of the two documents to object storage on every key change (issue 14).

``render`` (what is published, pure), ``rule`` (the no-rollback rule and its record, pure),
``publisher`` (the task that writes, verifies and retries). Fed by the key store, reporting
through :class:`spire_oidc.core.publication.PublishStatus`; never imports aiohttp or gRPC.
"""
