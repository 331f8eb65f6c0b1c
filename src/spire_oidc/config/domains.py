"""Names: SPIRE's domain policy (which Host may ask for the discovery document), trust domains.

Reproduces ``domain_policy.go`` (spire-behavior.md §3.4): a name is turned into its key with the
IDNA *lookup* profile of golang.org/x/net/idna (UTS #46 mapping, STD3 ASCII rules, hyphen,
joiner and bidi checks, no DNS length check); a name that does not map onto itself is refused
(``must already be punycode encoded``), and an allowed name must then be one of the configured
keys, compared exactly (no wildcards, no subdomains).

Go's error texts are kept, including ``idna: disallowed rune U+002F`` (the first disallowed code
point, in input order, as Go reports it) and ``idna: invalid label "x"`` for label-level
failures. The mapping data comes from the ``idna`` package (a newer Unicode version than Go's
tables: code points assigned after Unicode 15 may be judged differently, which only changes which
error a never-valid name gets).

Speed: :meth:`DomainAllowlist.check` is a set lookup for every allowed host. Every configured key
maps onto itself, so a host is allowed exactly when it is one of the keys; the IDNA work is only
done to word the refusal of a host that is not.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

from idna import core as _idna_core

from spire_oidc._compat import IDNA_DEVIATION, IDNA_IGNORED, IDNA_MAPPED, IDNA_VALID, uts46_lookup
from spire_oidc.errors import ConfigValueError

__all__ = [
    "MAX_NAME_LENGTH",
    "DomainAllowlist",
    "DomainError",
    "go_quote",
    "to_domain_key",
    "trust_domain_error",
]

_ACE_PREFIX = "xn--"
_STD3_ASCII_OK = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")
_ZWNJ = "\u200c"
_ZWJ = "\u200d"


class DomainError(ConfigValueError):
    """A domain name refused by SPIRE's policy; ``str()`` is SPIRE's message."""


def go_quote(s: str) -> str:
    """Quote ``s`` like Go's ``strconv.Quote`` (``%q``).

    ``"`` and ``\\`` are escaped; ``\\a \\b \\f \\n \\r \\t \\v`` use their short forms; other
    non-printable characters become ``\\xNN`` (below U+0080), ``\\uNNNN`` or ``\\UNNNNNNNN``;
    printable Unicode is kept. Lone surrogates (undecodable bytes) become ``\\xNN`` like Go's
    invalid UTF-8 bytes.
    """
    out = ['"']
    for ch in s:
        cp = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == " " or (ch.isprintable() and cp != 0x7F):
            out.append(ch)
        elif ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif 0xDC80 <= cp <= 0xDCFF:
            out.append(f"\\x{cp - 0xDC00:02x}")
        elif cp < 0x80:
            out.append(f"\\x{cp:02x}")
        elif cp < 0x10000:
            out.append(f"\\u{cp:04x}")
        else:
            out.append(f"\\U{cp:08x}")
    out.append('"')
    return "".join(out)


_SHORT_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


class _IdnaError(Exception):
    """An x/net/idna error; ``str()`` is Go's text."""


def _disallowed(ch: str) -> _IdnaError:
    cp = ord(ch)
    if 0xD800 <= cp <= 0xDFFF:
        cp = 0xFFFD  # Go sees invalid UTF-8 as utf8.RuneError
    return _IdnaError(f"idna: disallowed rune U+{cp:04X}")


def _invalid_label(label: str) -> _IdnaError:
    return _IdnaError(f"idna: invalid label {go_quote(label)}")


def _status(ch: str) -> tuple[int, str | None]:
    return uts46_lookup(ord(ch))


def _first_disallowed(domain: str) -> _IdnaError | None:
    """The first code point the lookup profile (UTS #46 + STD3 rules) refuses, in input order."""
    for ch in domain:
        if ch.isascii():
            if ch not in _STD3_ASCII_OK and not ("A" <= ch <= "Z"):
                return _disallowed(ch)
            continue
        status, replacement = _status(ch)
        if status in (IDNA_VALID, IDNA_DEVIATION):
            continue
        if status == IDNA_IGNORED:
            continue
        if (
            status == IDNA_MAPPED
            and replacement is not None
            and all(c in _STD3_ASCII_OK or not c.isascii() for c in replacement)
        ):
            continue
        return _disallowed(ch)
    return None


def _remap(domain: str) -> str:
    """UTS #46 mapping (nontransitional) then NFC; call only when nothing is disallowed."""
    if domain.isascii():
        return domain.lower()
    out: list[str] = []
    for ch in domain:
        status, replacement = _status(ch)
        if status == IDNA_MAPPED and replacement is not None:
            out.append(replacement)
        elif status != IDNA_IGNORED:
            out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def _label_valid_from_punycode(label: str) -> None:
    """x/net/idna ``validateFromPunycode``: the decoded label must be NFC and all valid."""
    if unicodedata.normalize("NFC", label) != label:
        raise _invalid_label(label)
    for ch in label:
        if ch.isascii():
            if ch not in _STD3_ASCII_OK or ch == ".":
                raise _invalid_label(label)
            continue
        status, _ = _status(ch)
        if status not in (IDNA_VALID, IDNA_DEVIATION):
            raise _invalid_label(label)


def _validate_label(label: str) -> None:
    """x/net/idna ``validateLabel``: hyphen rules (on UTF-8 bytes), leading mark, joiners."""
    if not label:
        return
    raw = label.encode("utf-8", errors="surrogatepass")
    if len(raw) > 4 and raw[2:4] == b"--":
        raise _invalid_label(label)
    if label[0] == "-" or label[-1] == "-":
        raise _invalid_label(label)
    if unicodedata.category(label[0]).startswith("M"):
        raise _invalid_label(label)
    if _ZWJ in label or _ZWNJ in label:
        for pos, ch in enumerate(label):
            if ch in (_ZWJ, _ZWNJ) and not _idna_core.valid_contextj(label, pos):
                raise _invalid_label(label)


def _decode_punycode(encoded: str) -> str:
    if not encoded:
        return ""
    if encoded.rfind("-") == 0:
        raise _invalid_label(encoded)
    try:
        return encoded.encode("ascii").decode("punycode")
    except (UnicodeError, ValueError, IndexError, OverflowError) as exc:
        raise _invalid_label(encoded) from exc


def _is_rtl(label: str) -> bool:
    return any(unicodedata.bidirectional(ch) in ("R", "AL", "AN") for ch in label)


def _lookup_to_ascii(domain: str) -> str:
    """golang.org/x/net/idna ``Lookup.ToASCII``: map, validate labels, punycode-encode."""
    err: _IdnaError | None = _first_disallowed(domain)
    mapped = _remap(domain) if err is None else domain
    parts = mapped.split(".")
    # Go's label iterator skips a final empty label (a trailing dot).
    last = len(parts) - 1 if len(parts) > 1 and parts[-1] == "" else len(parts)
    unicode_labels = list(parts)
    for i in range(last):
        label = parts[i]
        if not label:
            continue
        if label.startswith(_ACE_PREFIX):
            try:
                decoded = _decode_punycode(label[len(_ACE_PREFIX) :])
            except _IdnaError as exc:
                err = err or exc
                continue
            unicode_labels[i] = decoded
            if err is None:
                try:
                    _label_valid_from_punycode(decoded)
                    _validate_label(decoded)
                except _IdnaError as exc:
                    err = exc
        elif err is None:
            try:
                _validate_label(label)
            except _IdnaError as exc:
                err = exc
    if err is None and any(_is_rtl(label) for label in unicode_labels):
        for label in unicode_labels[:last]:
            try:
                _idna_core.check_bidi(label, check_ltr=True)
            except (_idna_core.IDNABidiError, ValueError):
                err = _invalid_label(mapped)
                break
    if err is not None:
        raise err
    out: list[str] = []
    for label in unicode_labels:
        if label.isascii():
            out.append(label)
        else:
            out.append(_ACE_PREFIX + label.encode("punycode").decode("ascii"))
    return ".".join(out)


def _key_or_error(domain: str) -> tuple[str, str]:
    """(key, "") on success, ("", message) on refusal."""
    try:
        ascii_form = _lookup_to_ascii(domain)
    except _IdnaError as exc:
        return "", f"domain {go_quote(domain)} is not a valid domain name: {exc}"
    except (UnicodeError, ValueError, IndexError, OverflowError) as exc:
        return "", f"domain {go_quote(domain)} is not a valid domain name: idna: {exc}"
    if ascii_form != domain:
        return "", f"domain {go_quote(domain)} must already be punycode encoded"
    return domain, ""


# Request hosts reach this on the refusal path; only short names are cached, so a flood of
# long bogus Host headers cannot grow the cache beyond a few hundred kilobytes.
_CACHEABLE_LEN = 255

# The longest request host name that gets IDNA work to word its refusal (a DNS name is at most
# 255 octets). Longer names are refused by length alone: the IDNA pass costs ~1.4 us per character
# on Unicode input, so this bounds the work one request can cause (issue 12.5).
MAX_NAME_LENGTH = 255
_cached_key_or_error = functools.lru_cache(maxsize=1024)(_key_or_error)


def to_domain_key(domain: str) -> str:
    """SPIRE's ``toDomainKey``: the name itself if it is a valid, already-ASCII domain name.

    Raises :class:`DomainError` with SPIRE's text otherwise, e.g.
    ``domain "a_b.test" is not a valid domain name: idna: disallowed rune U+005F`` or
    ``domain "LOCALHOST" must already be punycode encoded``.
    """
    key, message = (
        _cached_key_or_error(domain) if len(domain) <= _CACHEABLE_LEN else _key_or_error(domain)
    )
    if message:
        raise DomainError(message)
    return key


class DomainAllowlist:
    """The configured domains; :meth:`check` admits exactly those names."""

    __slots__ = ("_keys", "_longest")

    def __init__(self, domains: Iterable[str]) -> None:
        """Validate every configured domain (the first bad one raises :class:`DomainError`)."""
        self._keys = frozenset(to_domain_key(d) for d in domains)
        self._longest = max((len(k) for k in self._keys), default=0)

    @property
    def domains(self) -> frozenset[str]:
        """The allowed keys."""
        return self._keys

    @property
    def name_limit(self) -> int:
        """The longest name worth looking at: :data:`MAX_NAME_LENGTH` or the longest key."""
        return max(MAX_NAME_LENGTH, self._longest)

    def check(self, host: str) -> None:
        """Return if ``host`` (port stripped) is allowed, else raise :class:`DomainError`.

        A refused name longer than :attr:`name_limit` is refused by its length, before any
        IDNA work (SPIRE would word it as invalid or not allowed; it is a 400 either way).
        """
        if host in self._keys:
            return
        limit = self.name_limit
        if len(host) > limit:
            raise DomainError(f"domain name too long ({len(host)} characters, at most {limit})")
        to_domain_key(host)
        raise DomainError(f"domain {go_quote(host)} is not allowed")


# ---------------------------------------------------------------------------------------------
# SPIFFE trust domains: go-spiffe's spiffeid.TrustDomainFromString (v2.8), which SPIRE applies to
# workload_api.trust_domain at start-up. Its error texts are go-spiffe's.

_TD_CHARS = re.compile(r"[a-z0-9._-]*")
_PATH_SEGMENT_CHARS = re.compile(r"[A-Za-z0-9._-]+")
_BAD_TD_CHAR = (
    "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and "
    "underscores"
)
_BAD_SEGMENT_CHAR = (
    "path segment characters are limited to letters, numbers, dots, dashes, and underscores"
)


def trust_domain_error(value: str) -> str:
    """go-spiffe's error for ``value`` as a trust domain (``example.org`` or ``spiffe://...``).

    Returns "" when it is valid.
    """
    if value == "":
        return "trust domain is missing"
    if ":/" not in value:
        return "" if _TD_CHARS.fullmatch(value) else _BAD_TD_CHAR
    if not value.startswith("spiffe://"):
        return "scheme is missing or invalid"
    td, slash, path = value[len("spiffe://") :].partition("/")
    if not _TD_CHARS.fullmatch(td):
        return _BAD_TD_CHAR
    if not td:
        return "trust domain is missing"
    segments = path.split("/") if slash else []
    for i, segment in enumerate(segments):
        if segment == "":
            last = i == len(segments) - 1
            return (
                "path cannot have a trailing slash"
                if last
                else "path cannot contain empty segments"
            )
        if not _PATH_SEGMENT_CHARS.fullmatch(segment):
            return _BAD_SEGMENT_CHAR
        if segment in (".", ".."):
            return "path cannot contain dot segments"
    return ""
