"""Serving: the HTTP handlers, the fast path, listeners, TLS, health and metrics."""
