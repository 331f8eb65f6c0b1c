"""Pure checks of how the two documents may be cached (docs/deployment.md, "Behind a CDN").

``jwks.cacheable`` (parties with ``Party.wants_cacheable_jwks``, i.e. AWS): a JWKS served
uncacheable has been reported to make STS fail intermittently. ``cache.propagation`` (every
party): how long a cache may keep serving the old documents must stay well inside the time SPIRE
publishes a new JWT key before it signs with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from spire_oidc.doctor.fetch import Fetched
from spire_oidc.doctor.findings import ALL, Finding
from spire_oidc.doctor.observe import Observation
from spire_oidc.doctor.parties import Party, Status

# SPIRE server, pkg/server/ca/manager (manager.go PrepareJWTKey, slot.go): a JWT key is valid for
# ca_ttl (notAfter = now + caTTL; default 24 h). When the current key passes
# notAfter - min(lifetime / 2, 30 days) the next key is prepared, i.e. added to the bundle that
# the provider serves; when it passes notAfter - min(lifetime / 6, 7 days) the next key is
# activated and signs. Between the two, relying parties can fetch the new key before any token
# needs it: 12 h - 4 h = 8 h with the default ca_ttl.
DEFAULT_CA_TTL = 24 * 3600.0
_PREPARE_DIVISOR, _PREPARE_CAP = 2, 30 * 24 * 3600.0
_ACTIVATE_DIVISOR, _ACTIVATE_CAP = 6, 7 * 24 * 3600.0
# The total caching may use at most this share of the window before doctor warns.
WARN_SHARE = 4

AWS_REPORT = (
    "AWS STS has been reported to fail intermittently with \"Couldn't retrieve verification "
    'key" on parallel AssumeRoleWithWebIdentity calls against such a JWKS (GitLab MR 138405)'
)
CACHEABLE_FIX = (
    'cache_control { keys = "public, max-age=300" } (provider config), or serve the JWKS '
    "through a CDN that caches it (docs/deployment.md#behind-a-cdn)"
)


def rotation_window(ca_ttl: float) -> float:
    """Seconds between SPIRE adding the next JWT key to the bundle and signing with it."""
    prepare = min(ca_ttl / _PREPARE_DIVISOR, _PREPARE_CAP)
    activate = min(ca_ttl / _ACTIVATE_DIVISOR, _ACTIVATE_CAP)
    return prepare - activate


def duration(seconds: float) -> str:
    """``45 s``, ``5 min``, ``1 h 7 min``, ``24 h``, ``2 d 3 h``: what an operator reads at a
    glance (hours up to two days, so SPIRE's default ca_ttl reads ``24 h``)."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min" + (f" {s % 60} s" if s % 60 else "")
    if s < 2 * 86400:
        return f"{s // 3600} h" + (f" {s % 3600 // 60} min" if s % 3600 // 60 else "")
    return f"{s // 86400} d" + (f" {s % 86400 // 3600} h" if s % 86400 // 3600 else "")


def directives(value: str) -> dict[str, str | None]:
    """A Cache-Control value as {lower-case name: argument or None} (RFC 9111 §5.2)."""
    out: dict[str, str | None] = {}
    for part in value.split(","):
        name, eq, arg = part.strip().partition("=")
        name = name.strip().lower()
        if name and name not in out:
            out[name] = arg.strip().strip('"') if eq else None
    return out


def _seconds(arg: str | None) -> int:
    """delta-seconds; an invalid value counts as 0 (RFC 9111 §1.2.2: treat it as stale)."""
    return int(arg) if arg is not None and arg.isdigit() else 0


@dataclass(frozen=True)
class Caching:
    """What one response tells caches: how long they may keep it, and how old it already is."""

    cache_control: str  # "" when absent
    lifetime: int  # seconds a shared cache may serve it without asking the origin
    basis: str  # where lifetime comes from, e.g. "max-age=300"
    age: int  # the Age header (seconds a cache has held it), 0 when absent
    explicit: bool  # Cache-Control or Expires says something about freshness
    uncacheable: str  # why caches must not keep it ("" when they may)


def caching(fetched: Fetched) -> Caching:
    """Read Cache-Control, Pragma, Expires and Age of one response."""
    h = fetched.headers
    cc = h.get("cache-control", "")
    d = directives(cc)
    pragma = "no-cache" in directives(h.get("pragma", ""))
    age = _seconds(h.get("age", "").strip())
    shown = f"Cache-Control: {cc}" if cc else "no Cache-Control"
    if "no-store" in d or "no-cache" in d:
        return Caching(cc, 0, shown, age, True, shown)
    if "max-age" in d or "s-maxage" in d:
        max_age = _seconds(d.get("max-age")) if "max-age" in d else None
        shared = _seconds(d.get("s-maxage")) if "s-maxage" in d else None
        lifetime = max(x for x in (max_age, shared) if x is not None)
        basis = ", ".join(
            f"{name}={value}"
            for name, value in (("max-age", max_age), ("s-maxage", shared))
            if value is not None
        )
        uncacheable = shown if max_age == 0 else ""
        return Caching(cc, lifetime, basis, age, True, uncacheable)
    expires = h.get("expires")
    if expires is not None:
        lifetime = _expires_lifetime(expires, h.get("date", ""))
        basis = f"Expires: {expires}"
        uncacheable = basis if lifetime == 0 else ""
        if pragma and not uncacheable:
            uncacheable = "Pragma: no-cache"
        return Caching(cc, lifetime, basis, age, True, uncacheable)
    return Caching(cc, 0, shown, age, False, "Pragma: no-cache" if pragma else "")


def _expires_lifetime(expires: str, date: str) -> int:
    """Expires - Date in seconds; an invalid Expires (such as "0") means already expired."""
    try:
        end = parsedate_to_datetime(expires)
        start = parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError):
        return 0
    return max(0, int((end - start).total_seconds()))


def cacheable_findings(obs: Observation, parties: Sequence[Party]) -> Iterator[Finding]:
    """``jwks.cacheable`` for each party that needs a cacheable JWKS."""
    if obs.jwks is None or obs.keys is None:
        return
    c = caching(obs.jwks)
    for p in parties:
        if not p.wants_cacheable_jwks:
            continue
        if c.uncacheable:
            yield Finding(
                p.name,
                "jwks.cacheable",
                "warn",
                f"the JWKS is served uncacheable ({c.uncacheable}); {AWS_REPORT}",
                CACHEABLE_FIX,
            )
        else:
            yield Finding(p.name, "jwks.cacheable", "pass", f"the JWKS is cacheable ({c.basis})")


def _describe(name: str, c: Caching) -> str:
    text = f"{name} {duration(c.lifetime)} ({c.basis})"
    return text + (f" + Age {duration(c.age)}" if c.age else "")


def propagation_finding(obs: Observation, ca_ttl: float) -> Finding | None:
    """``cache.propagation``: total caching of both documents against SPIRE's window."""
    if obs.jwks is None or obs.keys is None or obs.doc is None:
        return None
    doc, keys = caching(obs.discovery), caching(obs.jwks)
    total = doc.lifetime + doc.age + keys.lifetime + keys.age
    window = rotation_window(ca_ttl)
    margin = window - total
    reason = (
        f"{_describe('discovery', doc)}; {_describe('JWKS', keys)}; total {duration(total)} of "
        f"the {duration(window)} prepare-to-activate window (ca_ttl {duration(ca_ttl)}): "
        + (f"margin {duration(margin)}" if margin >= 0 else f"{duration(-margin)} over")
    )
    status: Status = "pass"
    if total > window:
        status = "fail"
    elif total * WARN_SHARE > window:
        status = "warn"
    blind = [n for n, c in (("discovery", doc), ("JWKS", keys)) if c.age and not c.explicit]
    if blind:
        status = "fail" if status == "fail" else "warn"
        reason += (
            f"; a cache holds the {' and '.join(blind)} (Age) without any Cache-Control from "
            "the origin, so its own default TTL applies (CloudFront's is 24 h)"
        )
    fix = ""
    if status != "pass":
        fix = (
            f"keep the total under a quarter of the window ({duration(window / WARN_SHARE)}): "
            "lower the max-age in cache_control (provider config) or the CDN's TTLs; with a "
            "non-default SPIRE ca_ttl, pass doctor -ca-ttl"
        )
    return Finding(ALL, "cache.propagation", status, reason, fix)
