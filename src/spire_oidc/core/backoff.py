"""One retry delay policy for every loop that retries: capped exponential backoff with jitter.

The ``n``-th consecutive failure (counting from 0) has the bound ``min(cap, initial * 2**n)``;
its delay is drawn uniformly from ``[bound * (1 - jitter), bound]``: ``jitter = 1`` is "full
jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter"), ``jitter = 0`` is a fixed
schedule. A server's ``Retry-After`` is a floor (RFC 9110 §10.2.3: the client ought to wait at
least that long), clamped to ``max_retry_after`` so that a hostile or broken server cannot park
a retry loop for ever.

Who uses which parameters (each kept from the hand-written loop it replaced):

=====================  ========  =======  ======  ===============
loop                   initial   cap      jitter  Retry-After cap
=====================  ========  =======  ======  ===============
Workload API stream    0.1 s     poll     full    -
ACME manager, transient 1 s      300 s    10 %    24 h
ACME manager, refused  60 s      3600 s   10 %    24 h
ACME order polling     25 ms     2 s      none    60 s
daemon supervisor      1 s       30 s     none    -
=====================  ========  =======  ======  ===============
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# 2**62 * any sane initial delay is far above any cap; bounding the exponent avoids overflow.
_MAX_EXPONENT = 62


@dataclass(frozen=True)
class BackoffPolicy:
    """The parameters of one backoff schedule (a value: validated, immutable)."""

    initial: float
    cap: float
    jitter: float = 1.0
    max_retry_after: float | None = None

    def __post_init__(self) -> None:
        if not self.initial > 0 or not self.cap > 0:
            raise ValueError(
                f"backoff delays must be positive (initial={self.initial}, cap={self.cap})"
            )
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"backoff jitter must be within [0, 1], not {self.jitter}")

    def bound(self, attempt: int) -> float:
        """The largest delay after ``attempt`` earlier consecutive failures (0 for the first)."""
        return min(self.cap, self.initial * 2.0 ** min(max(attempt, 0), _MAX_EXPONENT))

    def delay(self, attempt: int, rng: random.Random, *, retry_after: float | None = None) -> float:
        """A delay for this attempt: jittered below the bound, never below ``retry_after``."""
        bound = self.bound(attempt)
        delay = bound if self.jitter == 0 else rng.uniform(bound * (1.0 - self.jitter), bound)
        if retry_after is not None:
            floor = max(retry_after, 0.0)
            if self.max_retry_after is not None:
                floor = min(floor, self.max_retry_after)
            delay = max(delay, floor)
        return delay


@dataclass
class Backoff:
    """A policy plus the count of consecutive failures: ``next_delay()`` after each failure,
    ``reset()`` after a success."""

    policy: BackoffPolicy
    rng: random.Random = field(default_factory=random.Random, repr=False)
    attempt: int = 0

    @classmethod
    def of(
        cls,
        initial: float,
        cap: float,
        *,
        jitter: float = 1.0,
        max_retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> Backoff:
        policy = BackoffPolicy(initial, cap, jitter, max_retry_after)
        return cls(policy, rng if rng is not None else random.Random())

    def bound(self) -> float:
        """The upper bound of the next delay (without a Retry-After)."""
        return self.policy.bound(self.attempt)

    def next_delay(self, retry_after: float | None = None) -> float:
        """The next delay; counts one more consecutive failure."""
        delay = self.policy.delay(self.attempt, self.rng, retry_after=retry_after)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """Start again from the initial delay (after a success)."""
        self.attempt = 0
