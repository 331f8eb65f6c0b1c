"""The source-error summary shown by the unauthenticated ``/ready?verbose`` (issue 12.10)."""

from __future__ import annotations

import pytest

from spire_oidc.http.public_errors import UNKNOWN, public_error

SECRETS = ("/var/lib/secret", "kid-secret", "spiffe://td.secret", "agent.sock", "detail-secret")


@pytest.mark.parametrize(
    ("message", "summary"),
    [
        # sources/file.py
        (
            "bundle file /var/lib/secret/b.json: open /var/lib/secret/b.json: Permission denied",
            "bundle file: cannot open (Permission denied)",
        ),
        (
            "bundle file /var/lib/secret/b.json: open /var/lib/secret/b.json: kid-secret: x",
            "bundle file: cannot open (OS error)",
        ),
        (
            "bundle file /var/lib/secret/b.json: bundle is not valid JSON: Expecting value: line 1",
            "bundle file: not valid JSON",
        ),
        (
            "bundle file /var/lib/secret/b.json: none of the 2 JWT authorities in the bundle is "
            "usable",
            "bundle file: no usable JWT key",
        ),
        # sources/server_api.py
        (
            "GetBundle on unix:/var/lib/secret/api.sock failed: UNAVAILABLE: detail-secret",
            "server API GetBundle failed: UNAVAILABLE",
        ),
        (
            "GetBundle on unix:/var/lib/secret/api.sock failed: NOT_A_CODE: detail-secret",
            UNKNOWN,
        ),
        (
            "GetBundle on unix:/var/lib/secret/api.sock: internal error: kid-secret",
            "server API: internal error",
        ),
        # sources/workload_api.py
        (
            "workload api socket /var/lib/secret/agent.sock does not exist (is the SPIRE agent "
            "running?)",
            "workload API: socket does not exist",
        ),
        (
            "workload api stream failed (UNAVAILABLE: detail-secret)",
            "workload API stream failed: UNAVAILABLE",
        ),
        (
            "workload api denied the request (PERMISSION_DENIED: detail-secret): no registration",
            "workload API: PERMISSION_DENIED",
        ),
        (
            "no bundle for trust domain spiffe://td.secret in workload api response",
            "workload API: no bundle for it",
        ),
        (
            "bundle for trust domain spiffe://td.secret from the workload api: kid-secret bad",
            "workload API: bundle unusable",
        ),
        ("something new at /var/lib/secret with kid-secret", UNKNOWN),
    ],
)
def test_summary_names_no_path_kid_or_upstream_text(message: str, summary: str) -> None:
    """Each source error maps to a fixed summary that carries none of the message's specifics."""
    out = public_error(message)
    assert out == summary
    assert not [s for s in SECRETS if s in out]


def test_no_error_is_none() -> None:
    """No error reported: null in the verbose body."""
    assert public_error(None) is None
