"""Range and conditional-request helpers (Go http.ServeContent semantics)."""

from __future__ import annotations

import pytest

from spire_oidc.http.httputil import (
    RangeError,
    etag_matches_strong,
    etag_matches_weak,
    parse_http_date,
    parse_single_range,
)


@pytest.mark.parametrize(
    ("header", "span"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 253)),
        ("bytes=-4", (250, 253)),
        ("bytes=-1000", (0, 253)),
        ("bytes=250-1000", (250, 253)),
        ("bytes=0-1,5-6", None),  # multipart is not supported: whole body
        ("bytes=300-400,0-1", (0, 1)),
    ],
)
def test_ranges(header: str, span: tuple[int, int] | None) -> None:
    """Single ranges are honoured, multiple ranges ignored, overlong ends clamped."""
    assert parse_single_range(header, 254) == span


@pytest.mark.parametrize(
    ("header", "no_overlap", "msg"),
    [
        ("bytes=300-400", True, "invalid range: failed to overlap"),
        ("bytes=254-", True, "invalid range: failed to overlap"),
        ("bytes=9-5", False, "invalid range"),
        ("items=0-1", False, "invalid range"),
        ("bytes=a-b", False, "invalid range"),
        ("bytes=", False, "invalid range"),
    ],
)
def test_bad_ranges(header: str, no_overlap: bool, msg: str) -> None:
    """Unsatisfiable and malformed ranges raise with Go's messages."""
    with pytest.raises(RangeError) as err:
        parse_single_range(header, 254)
    assert err.value.no_overlap is no_overlap and str(err.value) == msg


def test_etag_comparisons() -> None:
    """If-None-Match compares weakly, If-Match strongly; * matches both."""
    assert etag_matches_weak('W/"abc", "x"', '"abc"')
    assert etag_matches_weak("*", '"abc"')
    assert not etag_matches_weak('"abd"', '"abc"')
    assert etag_matches_strong('"abc"', '"abc"')
    assert not etag_matches_strong('W/"abc"', '"abc"')
    assert etag_matches_strong("*", '"abc"')


def test_http_dates() -> None:
    """IMF-fixdate, RFC 850 and asctime dates parse; garbage is None."""
    assert parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777
    assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == 784111777
    assert parse_http_date("Sun Nov  6 08:49:37 1994") == 784111777
    assert parse_http_date("garbage") is None
