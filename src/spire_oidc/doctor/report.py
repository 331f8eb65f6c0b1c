"""Render findings for people (grouped by party) or machines (``--json``), and the exit status.

Exit status (Nagios plugin convention, so ``doctor`` can run as a monitoring probe):
0 every finding passes, 1 the worst is a warning, 2 at least one failure,
3 doctor could not run (bad flags, unreadable ``--ca`` or ``--token`` file).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from urllib.parse import urlsplit

from spire_oidc.doctor.fetch import Fetched
from spire_oidc.doctor.findings import ALL, Finding, key_alg, worst
from spire_oidc.doctor.observe import Observation
from spire_oidc.doctor.parties import SEVERITY, Party
from spire_oidc.doctor.triage import SKIPPED_NOTE, discovery_url_trap, http_note, unreachable

EXIT_USAGE = 3
_CHECK_WIDTH = 32


def exit_code(findings: Sequence[Finding]) -> int:
    return SEVERITY[worst(findings)]


def _counts(findings: Sequence[Finding]) -> dict[str, int]:
    return {s: sum(1 for f in findings if f.status == s) for s in ("pass", "warn", "fail")}


def _fetch_line(name: str, fetched: Fetched | None) -> str:
    if fetched is None:
        return f"  {name:<10} not fetched"
    status = str(fetched.status) if fetched.status is not None else "---"
    plain = urlsplit(fetched.url).scheme.lower() == "http"
    # "http" only for a plain-HTTP URL: an https fetch whose handshake failed has no TLS version.
    tls = fetched.tls_version or ("http" if plain else "---")
    if fetched.tls_verified is False:
        tls += " (unverified)"
    ms = f"{fetched.seconds * 1000:.0f} ms"
    tail = f"  {fetched.error}" if fetched.error else ""
    return f"  {name:<10} {status}  {ms:>7}  {tls:<8} {fetched.url}{tail}"


def _keys_line(obs: Observation) -> str:
    if obs.keys is None:
        return "  keys       none"
    listing = ", ".join(
        f"{k.get('kid', '?')} {k.get('kty', '?')} {key_alg(k)}"
        + (f" use={k['use']}" if "use" in k else "")
        for k in obs.keys
    )
    return f"  keys       {len(obs.keys)}: {listing}" if obs.keys else "  keys       0"


def _token_state(obs: Observation, findings: Sequence[Finding]) -> str:
    if obs.token_text is None:
        return "not given (--token FILE checks one)"
    if not any(f.check.startswith("token.") for f in findings):
        return "not checked (no key set to check it against)"
    if not obs.audience:
        return "checked; audience not checked (no -audience given)"
    return f"checked, audience {obs.audience!r}"


def render_text(obs: Observation, parties: Sequence[Party], findings: Sequence[Finding]) -> str:
    lines = [f"doctor {obs.issuer}"]
    note = http_note(obs, findings)
    if note is not None:
        lines.append(note)
    lines.append(_fetch_line("discovery", obs.discovery))
    if obs.doc is not None:
        lines.append(_fetch_line("jwks", obs.jwks))
        lines.append(_keys_line(obs))
    lines.append(f"  token      {_token_state(obs, findings)}")
    titles = {ALL: "every relying party"} | {p.name: p.title for p in parties}
    for name, title in titles.items():
        mine = [f for f in findings if f.party == name]
        if not mine:
            continue
        lines.append("")
        lines.append(f"{name}: {title}")
        for f in mine:
            lines.append(f"  {f.status.upper():<4}  {f.check:<{_CHECK_WIDTH}}{f.reason}")
            if f.fix and f.status != "pass":
                lines.append(f"  {'':<4}  {'':<{_CHECK_WIDTH}}fix: {f.fix}")
    if discovery_url_trap(obs) is not None or unreachable(obs):
        lines.append("")
        lines.append(SKIPPED_NOTE)
    c = _counts(findings)
    lines.append("")
    lines.append(
        f"summary: {c['pass']} pass, {c['warn']} warn, {c['fail']} fail; "
        f"exit {exit_code(findings)} ({worst(findings)})"
    )
    return "\n".join(lines) + "\n"


def _fetch_json(fetched: Fetched | None) -> dict[str, object] | None:
    if fetched is None:
        return None
    return {
        "url": fetched.url,
        "status": fetched.status,
        "seconds": round(fetched.seconds, 4),
        "content_type": fetched.content_type,
        "error": fetched.error,
        "tls": None
        if fetched.tls_verified is None
        else {
            "version": fetched.tls_version,
            "verified": fetched.tls_verified,
            "error": fetched.tls_error,
        },
    }


def render_json(obs: Observation, parties: Sequence[Party], findings: Sequence[Finding]) -> str:
    out = {
        "issuer": obs.issuer,
        "profiles": [p.name for p in parties],
        "exit_code": exit_code(findings),
        "worst": worst(findings),
        "counts": _counts(findings),
        "discovery": _fetch_json(obs.discovery),
        "jwks": _fetch_json(obs.jwks),
        "keys": [
            {"kid": k.get("kid"), "kty": k.get("kty"), "alg": key_alg(k), "use": k.get("use")}
            for k in obs.keys or []
        ],
        "token_checked": obs.token_text is not None,
        "findings": [
            {
                "party": f.party,
                "check": f.check,
                "status": f.status,
                "reason": f.reason,
                "fix": f.fix,
            }
            for f in findings
        ],
    }
    return json.dumps(out, indent=2) + "\n"
