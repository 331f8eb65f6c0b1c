"""The one size limit on key material from upstream, shared by every reader and writer.

A bundle is refused as a whole (the last good keys stay in service, the refusal is logged) when
its document is larger than :attr:`KeyLimits.max_bundle_bytes` or it carries more than
:attr:`KeyLimits.max_keys` JWT signing keys. The same numbers bound:

* the ``file`` source (bytes read, keys parsed);
* the ``workload_api`` and ``server_api`` sources (our trust domain's bundle, and the gRPC channel's
  ``grpc.max_receive_message_length``: the bundle plus a protobuf envelope allowance);
* the state file (``state_dir``): the writer never writes a file the reader would refuse.

4 MiB is gRPC's default receive size, so no bundle SPIRE can deliver over its APIs today is
refused; 1,000 keys is far above any real rotation (SPIRE keeps two or three JWT authorities).
Parsing such a bundle takes tens to hundreds of milliseconds, so sources parse bundles larger than
:attr:`KeyLimits.inline_parse_bytes` in a worker thread, never on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KeyLimits:
    """Bounds on one bundle (document bytes and JWT signing keys)."""

    max_bundle_bytes: int = 4 * 1024 * 1024
    max_keys: int = 1000
    # Room for the protobuf framing around the bundle bytes (field tags, map keys, trust domain).
    grpc_envelope_bytes: int = 64 * 1024
    # Bundles up to this size are parsed inline (a thread hop costs more than the parse).
    inline_parse_bytes: int = 64 * 1024

    @property
    def max_grpc_message_bytes(self) -> int:
        """The gRPC channels' ``grpc.max_receive_message_length``."""
        return self.max_bundle_bytes + self.grpc_envelope_bytes

    def grpc_options(self) -> list[tuple[str, int]]:
        """Channel options enforcing the receive limit (the send side carries only requests)."""
        return [("grpc.max_receive_message_length", self.max_grpc_message_bytes)]

    def check_bundle_size(self, size: int) -> str | None:
        """None when a bundle of ``size`` bytes is allowed; otherwise why it is refused."""
        if size > self.max_bundle_bytes:
            return f"bundle is {size} bytes, larger than the limit of {self.max_bundle_bytes}"
        return None


LIMITS = KeyLimits()
