"""Object storage shared by the replicas: ACME coordination (acme/) and publication (publish/).

One small async interface (:class:`~spire_oidc.storage.base.ObjectStore`) with conditional
writes, and its backends: a directory (``file://``, safe on NFS) and the cloud stores through
``obstore`` (``s3://``, ``az://``, ``gs://``; imported only when such a URL is configured).
"""
