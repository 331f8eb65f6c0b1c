"""Key sources: long-running tasks that publish key-set snapshots into the store.

Importing this package sets gRPC's C-core log defaults (GRPC_VERBOSITY, GRPC_TRACE; never over a
user's own value) before any source module imports ``grpc``: see ``logs.grpc_env_defaults``.
"""

from spire_oidc.logs import grpc_env_defaults

grpc_env_defaults()
