"""What ``doctor`` says before (or instead of) the per-party checks: pure functions of an
:class:`Observation` and the findings.

* The issuer cannot be reached at all: one failure, not a section of consequences per party.
* The "issuer" given is a discovery document URL (``/.well-known/openid_configuration``, the
  underscore spelling of Infisical's SPIRE guide, or the hyphenated one): relying parties append
  the well-known path again and get SPIRE's 404, so the fix is to configure the issuer itself.
* A plain-HTTP issuer (the ``demo``, or ``insecure_addr`` with ``allow_insecure_scheme``): one
  leading line saying that this is by design there and which checks fail because of it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import urlsplit

from spire_oidc.doctor.findings import ALL, Finding
from spire_oidc.doctor.observe import Observation

WELL_KNOWN_SPELLINGS = ("/.well-known/openid_configuration", "/.well-known/openid-configuration")
HTTP_CHECKS = ("issuer.https", "jwks_uri.https")
SKIPPED_NOTE = (
    "the relying-party checks need the discovery document: fix the failure above and run "
    "doctor again"
)


def unreachable(obs: Observation) -> bool:
    """No HTTP answer at all (DNS, connection, TLS handshake or timeout failed)."""
    return obs.discovery.status is None


def issuer_base(issuer: str) -> str | None:
    """The issuer an operator meant when giving a discovery document URL, else None."""
    lowered = issuer.lower()
    for spelling in WELL_KNOWN_SPELLINGS:
        at = lowered.find(spelling)
        if at != -1:
            return issuer[:at].rstrip("/") or issuer[:at]
    return None


def discovery_url_trap(obs: Observation) -> Finding | None:
    """A failure explaining the fix when the issuer given is a discovery document URL."""
    base = issuer_base(obs.issuer)
    if base is None:
        return None
    underscore = "openid_configuration" in obs.issuer.lower()
    d = obs.discovery
    answer = f"fails ({d.error})" if d.status is None else f"answers HTTP {d.status}"
    reason = (
        f"{obs.issuer} is a discovery document URL, not the issuer"
        + (" (the underscore spelling of Infisical's SPIRE guide)" if underscore else "")
        + f": relying parties append /.well-known/openid-configuration to what they are given "
        f"and request {d.url}, which {answer} "
        '(Infisical: "Failed to fetch OIDC discovery document")'
    )
    fix = (
        f"configure the issuer URL instead: {base} (e.g. https://oidc.example.org), as Infisical's "
        f"OIDC Discovery URL and as the issuer; then run doctor {base}"
    )
    return Finding(ALL, "issuer.discovery_url", "fail", reason, fix)


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def http_note(obs: Observation, findings: Sequence[Finding]) -> str | None:
    """One line leading the report of a plain-HTTP issuer, naming what fails because of it."""
    parts = urlsplit(obs.issuer)
    if parts.scheme.lower() != "http":
        return None
    hit = [f for f in findings if f.check in HTTP_CHECKS and f.status != "pass"]
    failed = sorted({f.party for f in hit if f.status == "fail"})
    warned = sorted({f.party for f in hit if f.status == "warn"} - set(failed))
    if not hit:
        return None  # nothing failed because of it (the issuer was not reached, or no party asks)
    checks = ", ".join(sorted({f.check for f in hit}))
    fails = [f for f in hit if f.status == "fail"]
    total = sum(1 for f in findings if f.status == "fail")
    consequence = f"{len(fails)} of the {total} failures below come from that ({checks}"
    consequence += f": {', '.join(failed)})" if failed else ")"
    if warned:
        consequence += f", and warnings for {', '.join(warned)}"
    who = (
        "the demo is HTTP-only by design (insecure_addr, allow_insecure_scheme)"
        if _loopback(parts.hostname or "")
        else "insecure_addr with allow_insecure_scheme serves it"
    )
    return (
        f"note: {obs.issuer} is plain HTTP: {who}; {consequence}; serve https "
        "(serving_cert_file or acme) for real relying parties"
    )
