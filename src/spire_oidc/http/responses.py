"""One response table per published key snapshot, read by both the fast path and the full handler.

A :class:`ResponseTable` holds, for one :class:`~spire_oidc.core.store.RenderedKeys` snapshot
(or for "no keys yet"), the ``/keys`` 200 (headers and body) and the discovery document of every
(scheme, host) answered so far. Discovery variants are rendered lazily by the full handler, after
its host check, into the table of the snapshot they were rendered from; the table is bounded.
:class:`ResponseTables` swaps in a new, empty table as soon as the store serves another snapshot
(publish, restore or expiry), so every old variant becomes unreachable at once: no request can
see a discovery document rendered for other keys than the ``/keys`` it would be served beside.

The fast path reads whole wire responses (status line, headers, body) from the same table; only
their ``Date`` header changes, once per clock second.

Caching headers come from a :class:`CachePolicy` (config ``cache_control``), fixed for the
handler's life: unset, each document carries SPIRE's exact headers; set, ``/keys`` carries only
``Cache-Control: <keys>`` (no ``Pragma``/``Expires``) and the discovery document gains
``Cache-Control: <discovery>``. The same headers go on HEAD and on a ``/keys`` 304 (RFC 9110
§15.4.5), and every header tuple is built once, never per request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property

from spire_oidc.core.store import KeyStore, RenderedKeys

ACAO = ("Access-Control-Allow-Origin", "*")
NO_CACHE = (
    ("Cache-Control", "no-cache, no-store, must-revalidate"),
    ("Pragma", "no-cache"),
    ("Expires", "0"),
)
# The discovery document's headers, in the order they are sent (Content-Length and Date follow).
DISCOVERY_HEADERS = (("Content-Type", "application/json"), ACAO)
# A discovery placeholder rendered before the first key set must never be kept by a cache that
# was told to keep the real document (sent only when ``cache_control.discovery`` is set).
NOT_STORED = ("Cache-Control", "no-store")
# Discovery documents kept per snapshot (only allowed hosts are ever added).
MAX_DISCOVERY_VARIANTS = 256

# Wire variants of a 200, indexed by route: GET, GET + Connection: close, HEAD, HEAD + close.
GET, GET_CLOSE, HEAD, HEAD_CLOSE = 0, 1, 2, 3

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(seconds: int) -> str:
    """An IMF-fixdate, formatted as aiohttp formats its ``Date`` header."""
    t = time.gmtime(seconds)
    return (
        f"{_WEEKDAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class CachePolicy:
    """The ``Cache-Control`` value of each document on the listener (config ``cache_control``);
    None keeps SPIRE's headers for that document. Each header tuple is built once."""

    keys: str | None = None
    discovery: str | None = None

    @cached_property
    def discovery_headers(self) -> Headers:
        """The discovery document's 200 headers (Content-Length and Date follow)."""
        if self.discovery is None:
            return DISCOVERY_HEADERS
        return (*DISCOVERY_HEADERS, ("Cache-Control", self.discovery))

    @cached_property
    def placeholder_headers(self) -> Headers:
        """The headers of a discovery document rendered before the first key set."""
        if self.discovery is None:
            return DISCOVERY_HEADERS
        return (*DISCOVERY_HEADERS, NOT_STORED)

    @cached_property
    def range_error_headers(self) -> Headers:
        """The caching headers of a ``/keys`` 416: Go drops Cache-Control from it but keeps
        Expires and Pragma; with ``keys`` set there are none of SPIRE's to keep."""
        if self.keys is None:
            return (ACAO, NO_CACHE[2], NO_CACHE[1])
        return (ACAO,)


SPIRE_CACHE = CachePolicy()


def keys_headers(current: RenderedKeys, policy: CachePolicy = SPIRE_CACHE) -> Headers:
    """The ``/keys`` 200 headers in the order they are sent (Content-Length and Date follow)."""
    if policy.keys is not None:
        return (
            ("Accept-Ranges", "bytes"),
            ACAO,
            ("Cache-Control", policy.keys),
            ("Content-Type", "application/json"),
            ("ETag", current.etag),
            ("Last-Modified", current.last_modified),
        )
    return (
        ("Accept-Ranges", "bytes"),
        ACAO,
        NO_CACHE[0],
        ("Content-Type", "application/json"),
        ("ETag", current.etag),
        NO_CACHE[2],
        ("Last-Modified", current.last_modified),
        NO_CACHE[1],
    )


def not_modified_headers(current: RenderedKeys, policy: CachePolicy = SPIRE_CACHE) -> Headers:
    """The ``/keys`` 304 headers: the 200's minus Accept-Ranges, Content-Type and Content-Length,
    so the same caching headers as the 200 (Go's ServeContent; RFC 9110 §15.4.5)."""
    return tuple(
        h for h in keys_headers(current, policy) if h[0] not in ("Accept-Ranges", "Content-Type")
    )


def _prefix(headers: Headers, body: bytes) -> bytes:
    head = "HTTP/1.1 200 OK\r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers)
    return (head + f"Content-Length: {len(body)}\r\n").encode("latin-1")


def _wire(prefix: bytes, body: bytes, date: bytes) -> list[bytes]:
    """The four wire variants of a 200 (see GET ... HEAD_CLOSE) for one ``Date`` line."""
    keep = prefix + date + b"\r\n"
    close = prefix + date + b"Connection: close\r\n\r\n"
    return [keep + body, close + body, keep, close]


class ResponseTable:
    """Every 200 response for one key snapshot (``snapshot`` None: no keys yet)."""

    __slots__ = (
        "_date",
        "_discovery",
        "_wire",
        "builds",
        "discovery_headers",
        "keys",
        "not_modified",
        "policy",
        "second",
        "snapshot",
    )

    def __init__(self, snapshot: RenderedKeys | None, policy: CachePolicy = SPIRE_CACHE) -> None:
        self.snapshot = snapshot
        self.policy = policy
        self.discovery_headers = policy.discovery_headers
        # The /keys 200 (headers, body) and 304 headers; None when /keys answers 500 (no keys)
        # or 501 (empty).
        self.keys: tuple[Headers, bytes] | None = None
        self.not_modified: Headers | None = None
        if snapshot is not None and not snapshot.empty:
            self.keys = (keys_headers(snapshot, policy), snapshot.body)
            self.not_modified = not_modified_headers(snapshot, policy)
        self._discovery: dict[tuple[str, str], bytes] = {}
        # Whole wire responses for the current second: b"" -> /keys, (scheme, host) -> discovery.
        self._wire: dict[object, list[bytes]] = {}
        self.second = -1
        self._date = b""
        self.builds = 0  # wire response sets assembled (a test bounds it)

    # -- the full handler's side ---------------------------------------------------------------
    def discovery(self, scheme: str, host: str) -> bytes | None:
        """The discovery body already rendered for an allowed (scheme, host), else None."""
        return self._discovery.get((scheme, host))

    def add_discovery(self, scheme: str, host: str, body: bytes) -> None:
        """Keep the body rendered (from this table's snapshot) for an allowed (scheme, host)."""
        if len(self._discovery) >= MAX_DISCOVERY_VARIANTS:
            oldest = next(iter(self._discovery))
            del self._discovery[oldest]
            self._wire.pop(oldest, None)
        self._discovery[(scheme, host)] = body

    # -- the fast path's side ------------------------------------------------------------------
    def wire_keys(self, variant: int, now: int) -> bytes | None:
        """The whole ``/keys`` 200 on the wire; None when the full handler must answer."""
        if now != self.second:
            self._new_second(now)
        wire = self._wire.get(b"")
        if wire is None:
            if self.keys is None:
                return None
            headers, body = self.keys
            wire = self._wire[b""] = _wire(_prefix(headers, body), body, self._date)
            self.builds += 1
        return wire[variant]

    def wire_discovery(self, scheme: str, host: bytes, variant: int, now: int) -> bytes | None:
        """The whole discovery 200 for (scheme, host); None unless the full handler already
        allowed and rendered it for this snapshot."""
        if now != self.second:
            self._new_second(now)
        key = (scheme, host)
        wire = self._wire.get(key)
        if wire is None:
            text = host.decode("ascii")
            body = self._discovery.get((scheme, text))
            if body is None:
                return None
            wire = _wire(_prefix(self.discovery_headers, body), body, self._date)
            self._wire[key] = wire
            self.builds += 1
        return wire[variant]

    def _new_second(self, now: int) -> None:
        self.second = now
        self._date = f"Date: {http_date(now)}\r\n".encode("ascii")
        self._wire.clear()


class ResponseTables:
    """The table of the snapshot the store serves now; a new snapshot gets a new, empty table."""

    __slots__ = ("_store", "_table", "built", "policy")

    def __init__(self, store: KeyStore, policy: CachePolicy = SPIRE_CACHE) -> None:
        self._store = store
        self.policy = policy
        self._table = ResponseTable(store.current, policy)
        self.built = 0  # wire response sets assembled in tables no longer current (a test reads)

    def current(self) -> ResponseTable:
        table = self._table
        snapshot = self._store.current
        if table.snapshot is not snapshot:
            table = self._swap(snapshot)
        return table

    def wire_keys(self, variant: int) -> bytes | None:
        """The fast path's ``/keys`` answer: the store read and a dict lookup (no other call
        once per second and snapshot)."""
        table = self._table
        if table.snapshot is self._store.current and table.second == int(time.time()):
            wire = table._wire.get(b"")
            if wire is not None:
                return wire[variant]
        return self.current().wire_keys(variant, int(time.time()))

    def wire_discovery(self, scheme: str, host: bytes, variant: int) -> bytes | None:
        """The fast path's discovery answer (None: the full handler answers)."""
        table = self._table
        if table.snapshot is self._store.current and table.second == int(time.time()):
            wire = table._wire.get((scheme, host))
            if wire is not None:
                return wire[variant]
        return self.current().wire_discovery(scheme, host, variant, int(time.time()))

    @property
    def builds(self) -> int:
        return self.built + self._table.builds

    def _swap(self, snapshot: RenderedKeys | None) -> ResponseTable:
        self.built += self._table.builds
        table = self._table = ResponseTable(snapshot, self.policy)
        return table
