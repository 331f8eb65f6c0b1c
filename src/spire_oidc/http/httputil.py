"""Small pure HTTP helpers: conditional requests and byte ranges (RFC 9110 §13, §14).

They reproduce Go's ``http.ServeContent`` as SPIRE's ``/keys`` uses it, plus a strong ``ETag``.
"""

from __future__ import annotations

from datetime import UTC
from email.utils import parsedate_to_datetime

from multidict import CIMultiDict

from spire_oidc.http.adapter import Response

__all__ = ["RangeError", "Response", "parse_http_date", "parse_single_range", "text_response"]


def text_response(status: int, message: str, extra: CIMultiDict[str] | None = None) -> Response:
    """Go's ``http.Error``: text/plain body with a newline, ``nosniff``."""
    headers: CIMultiDict[str] = CIMultiDict(extra or {})
    headers["Content-Type"] = "text/plain; charset=utf-8"
    headers["X-Content-Type-Options"] = "nosniff"
    return Response(status=status, body=(message + "\n").encode(), headers=headers)


def parse_http_date(value: str) -> float | None:
    """Seconds since the epoch of an HTTP-date (IMF-fixdate, RFC 850, asctime), or None."""
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if dt.tzinfo is None:  # asctime dates carry no zone; HTTP dates are always GMT
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _etags(value: str) -> list[tuple[bool, str]]:
    """Parse an entity-tag list into (weak, opaque-tag) pairs; ``*`` is returned as (False, "*")."""
    out: list[tuple[bool, str]] = []
    for raw in value.split(","):
        tag = raw.strip()
        if not tag:
            continue
        if tag == "*":
            out.append((False, "*"))
            continue
        weak = tag.startswith("W/")
        if weak:
            tag = tag[2:]
        if len(tag) >= 2 and tag[0] == '"' and tag[-1] == '"':
            out.append((weak, tag))
    return out


def etag_matches_weak(header: str, etag: str) -> bool:
    """If-None-Match semantics: weak comparison, ``*`` matches."""
    return any(tag == "*" or tag == etag for _, tag in _etags(header))


def etag_matches_strong(header: str, etag: str) -> bool:
    """If-Match semantics: strong comparison, ``*`` matches."""
    return any(tag == "*" or (not weak and tag == etag) for weak, tag in _etags(header))


class RangeError(Exception):
    """An unsatisfiable (``no_overlap``) or malformed Range header."""

    def __init__(self, message: str, *, no_overlap: bool) -> None:
        super().__init__(message)
        self.no_overlap = no_overlap


def parse_single_range(header: str, size: int) -> tuple[int, int] | None:
    """Parse ``Range`` for a body of ``size`` bytes, as Go's ``parseRange`` does.

    Returns ``(start, end_inclusive)``; ``None`` to serve the whole body (multiple ranges are not
    supported and are ignored, as RFC 9110 §14.2 allows). Raises :class:`RangeError`.
    """
    if not header.startswith("bytes="):
        raise RangeError("invalid range", no_overlap=False)
    specs = [s.strip() for s in header[len("bytes=") :].split(",") if s.strip()]
    if not specs:
        raise RangeError("invalid range", no_overlap=False)
    parsed: list[tuple[int, int]] = []
    no_overlap = False
    for spec in specs:
        start_s, sep, end_s = spec.partition("-")
        if not sep:
            raise RangeError("invalid range", no_overlap=False)
        start_s, end_s = start_s.strip(), end_s.strip()
        if not start_s:
            if not end_s.isdigit():
                raise RangeError("invalid range", no_overlap=False)
            n = int(end_s)
            if n == 0:
                no_overlap = True
                continue
            n = min(n, size)
            parsed.append((size - n, size - 1))
            continue
        if not start_s.isdigit():
            raise RangeError("invalid range", no_overlap=False)
        start = int(start_s)
        if start >= size:
            no_overlap = True
            continue
        if not end_s:
            end = size - 1
        else:
            if not end_s.isdigit():
                raise RangeError("invalid range", no_overlap=False)
            end = int(end_s)
            if start > end:
                raise RangeError("invalid range", no_overlap=False)
            end = min(end, size - 1)
        parsed.append((start, end))
    if not parsed:
        if no_overlap:
            raise RangeError("invalid range: failed to overlap", no_overlap=True)
        return None
    if len(parsed) > 1:
        return None
    return parsed[0]
