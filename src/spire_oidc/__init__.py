"""A SPIRE-compatible OIDC Discovery Provider."""

__version__ = "0.1.0"
