"""The one retry policy (spire_oidc.core.backoff) and the parameters each retry loop uses."""

from __future__ import annotations

import random

import pytest

from spire_oidc.acme import manager, order
from spire_oidc.core.backoff import Backoff, BackoffPolicy
from spire_oidc.sources.workload_api import reconnect_backoff


def test_bounds_double_from_initial_up_to_the_cap() -> None:
    """The n-th bound is initial * 2**n, never above the cap, for any attempt number."""
    policy = BackoffPolicy(0.1, 1.0)
    assert [policy.bound(n) for n in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert policy.bound(10_000) == 1.0, "a huge attempt count neither overflows nor exceeds"
    assert policy.bound(-3) == pytest.approx(0.1)


def test_full_jitter_spans_zero_to_the_bound() -> None:
    """jitter=1 draws uniformly from [0, bound]: both ends of the range are reached."""
    policy = BackoffPolicy(1.0, 1.0, jitter=1.0)
    delays = [policy.delay(0, random.Random(seed)) for seed in range(300)]
    assert all(0.0 <= d <= 1.0 for d in delays)
    assert min(delays) < 0.05 and max(delays) > 0.95


def test_partial_jitter_stays_within_its_band() -> None:
    """jitter=0.1 draws from [0.9 * bound, bound]; jitter=0 is the bound itself."""
    ten = BackoffPolicy(10.0, 100.0, jitter=0.1)
    delays = [ten.delay(1, random.Random(seed)) for seed in range(300)]
    assert all(18.0 <= d <= 20.0 for d in delays)
    assert min(delays) < 18.2 and max(delays) > 19.8
    fixed = BackoffPolicy(1.0, 30.0, jitter=0.0)
    assert [fixed.delay(n, random.Random(0)) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_retry_after_is_a_floor_and_is_clamped() -> None:
    """Retry-After raises a shorter delay to it, leaves a longer one, and is capped."""
    policy = BackoffPolicy(1.0, 300.0, jitter=0.0, max_retry_after=3600.0)
    rng = random.Random(0)
    assert policy.delay(0, rng, retry_after=120.0) == 120.0
    assert policy.delay(8, rng, retry_after=5.0) == 256.0
    assert policy.delay(0, rng, retry_after=10.0**9) == 3600.0
    assert policy.delay(0, rng, retry_after=-5.0) == 1.0, "a negative Retry-After is ignored"
    unclamped = BackoffPolicy(1.0, 2.0)
    assert unclamped.delay(0, rng, retry_after=1e6) == 1e6


def test_next_delay_counts_failures_and_reset_starts_over() -> None:
    """next_delay() moves to the next bound; reset() goes back to the initial one."""
    backoff = Backoff.of(0.1, 1.0, rng=random.Random(1))
    bounds = []
    for _ in range(8):
        bound = backoff.bound()
        assert 0.0 <= backoff.next_delay() <= bound
        bounds.append(bound)
    assert bounds == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0])
    assert backoff.attempt == 8
    backoff.reset()
    assert backoff.attempt == 0
    assert backoff.bound() == pytest.approx(0.1)


def test_injected_random_makes_delays_reproducible() -> None:
    """Two backoffs with equally seeded random sources give the same delays."""
    a = Backoff.of(0.5, 60.0, rng=random.Random(42))
    b = Backoff.of(0.5, 60.0, rng=random.Random(42))
    assert [a.next_delay() for _ in range(10)] == [b.next_delay() for _ in range(10)]


@pytest.mark.parametrize(
    ("initial", "cap", "jitter"),
    [(0.0, 1.0, 1.0), (1.0, 0.0, 1.0), (-1.0, 1.0, 1.0), (1.0, 1.0, 1.5), (1.0, 1.0, -0.1)],
)
def test_policy_refuses_nonsense(initial: float, cap: float, jitter: float) -> None:
    """A non-positive delay (a busy loop) or a jitter outside [0, 1] is refused."""
    with pytest.raises(ValueError, match="backoff"):
        BackoffPolicy(initial, cap, jitter)


def test_workload_api_reconnect_backoff_keeps_its_parameters() -> None:
    """Workload API: full jitter from 0.1 s up to poll_interval; the initial never exceeds the
    cap; a poll_interval <= 0 means SPIRE's default."""
    backoff = reconnect_backoff(1.0, rng=random.Random(1))
    assert backoff.policy == BackoffPolicy(0.1, 1.0, jitter=1.0)
    assert reconnect_backoff(0.02, rng=random.Random(1)).bound() == pytest.approx(0.02)
    assert reconnect_backoff(0.0, rng=random.Random(1)).policy.cap == 10.0
    delays = [
        reconnect_backoff(1.0, initial=1.0, rng=random.Random(s)).next_delay() for s in range(200)
    ]
    assert min(delays) < 0.1 and max(delays) > 0.9, "full jitter spans [0, bound]"


def test_acme_policies_keep_their_parameters() -> None:
    """ACME: transient 1 s-5 min and refused 1 min-1 h with 10 % jitter and a one-day
    Retry-After cap; order polling 25 ms-2 s, fixed, Retry-After up to a minute."""
    assert BackoffPolicy(1.0, 300.0, 0.1, 24 * 3600.0) == manager.TRANSIENT_BACKOFF
    assert BackoffPolicy(60.0, 3600.0, 0.1, 24 * 3600.0) == manager.REFUSED_BACKOFF
    assert BackoffPolicy(0.025, 2.0, 0.0, 60.0) == order.POLL_BACKOFF
    pause = Backoff(order.POLL_BACKOFF)
    assert [pause.next_delay() for _ in range(8)] == pytest.approx(
        [0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0]
    )
