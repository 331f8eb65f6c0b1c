"""What the unauthenticated ``/ready?verbose`` may say about the source's last error (issue 12.10).

The sources report free text to the store (``KeySink.report_error``): it names the bundle file's
path, the socket path or address, trust domains, kids and whatever SPIRE put in a gRPC status.
That text belongs in the log, not on a listener anyone who can reach it may read. This module maps
it onto a fixed vocabulary: which stage failed and a short reason (an OS error text or a gRPC
status code name), never a path, an address, a trust domain, a kid or upstream detail text.
Anything it does not recognise becomes :data:`UNKNOWN`.
"""

from __future__ import annotations

import errno
import os
import re

__all__ = ["UNKNOWN", "public_error"]

UNKNOWN = "source error (details in the provider's log)"

# grpc.StatusCode names (this module must not import grpc: see test_architecture).
_GRPC_CODES = frozenset(
    {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    }
)
# The OS error texts ("No such file or directory"): only these exact strings are shown.
_STRERRORS = frozenset(os.strerror(code) for code in errno.errorcode)

# (pattern over the reported text, summary); the first match wins. Patterns follow the texts in
# sources/file.py, sources/server_api.py and sources/workload_api.py (tests pin each).
_FIXED: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.DOTALL), s)
    for p, s in (
        (r"^bundle file .*: bundle is not valid JSON", "bundle file: not valid JSON"),
        (r"^bundle file .*: bundle is not a JSON object$", "bundle file: not a JSON object"),
        (r"^bundle file .*: no authorities found$", "bundle file: no authorities found"),
        (r'^bundle file .*: bundle member "keys" is not an array$', "bundle file: bad keys"),
        (r"^bundle file .*: none of the \d+ JWT authorities", "bundle file: no usable JWT key"),
        (r"^bundle file .*: bundle file is larger than", "bundle file: too large"),
        (r"^GetBundle on .*: internal error: ", "server API: internal error"),
        (r"^workload api socket .* does not exist", "workload API: socket does not exist"),
        (r"^workload api sent a message that is not a", "workload API: malformed message"),
        (r"^workload api stream ended by the agent$", "workload API: stream ended by the agent"),
        (
            r"^workload api denied the request \(PERMISSION_DENIED",
            "workload API: PERMISSION_DENIED",
        ),
        (r"^no bundle for trust domain .* in workload api", "workload API: no bundle for it"),
        (r"^bundle for trust domain .* from the workload api: ", "workload API: bundle unusable"),
        (r"^workload api stream: internal error: ", "workload API: internal error"),
    )
)
_OPEN_FAILED = re.compile(r"^bundle file .*: open .*: (?P<reason>[^:]*)$", re.DOTALL)  # strerror
_SERVER_CODE = re.compile(r"^GetBundle on .* failed: (?P<code>[A-Z_]+): ", re.DOTALL)
_STREAM_CODE = re.compile(r"^workload api stream failed \((?P<code>[A-Z_]+): ", re.DOTALL)


def public_error(message: str | None) -> str | None:
    """The summary of a source's last error that an unauthenticated client may read."""
    if message is None:
        return None
    opened = _OPEN_FAILED.match(message)
    if opened:
        reason = opened.group("reason")
        return f"bundle file: cannot open ({reason if reason in _STRERRORS else 'OS error'})"
    for pattern, code_prefix in (
        (_SERVER_CODE, "server API GetBundle"),
        (_STREAM_CODE, "workload API stream"),
    ):
        m = pattern.match(message)
        if m and m.group("code") in _GRPC_CODES:
            return f"{code_prefix} failed: {m.group('code')}"
    for pattern, summary in _FIXED:
        if pattern.search(message):
            return summary
    return UNKNOWN
