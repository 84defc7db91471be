"""When to poll a running job: from what recent jobs took, not a fixed beat.

The first poll lands just before the fastest typical completion; then polls come every
``min_interval`` until the slow tail, and back off after it. Against jobs of 8-14 s that
is ~3 polls a job with at most ``min_interval`` of lag, where a 1 s poller needs ~13.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from statistics import quantiles

HISTORY = 50


class PollPlanner:
    def __init__(
        self,
        *,
        min_interval: float,
        max_backoff: float = 30.0,
        default_runtime: float | None = None,
        safety_net: bool | Callable[[], bool] = False,
    ) -> None:
        self._min_interval = min_interval
        # With webhooks, polls only catch lost deliveries: start well after the slow end.
        # A callable is asked at each plan: webhooks count only while they can be verified.
        self._safety_net: Callable[[], bool] = (
            safety_net if callable(safety_net) else lambda: safety_net
        )
        self._max_backoff = max_backoff
        self._default_runtime = default_runtime
        self._samples: deque[tuple[int, float]] = deque(maxlen=HISTORY)

    def observe(self, duration: int, runtime: float) -> None:
        """Record how long a finished job took upstream (submit → completion)."""
        if runtime > 0:
            self._samples.append((duration, runtime))

    def expected_range(self, duration: int, hint: float | None = None) -> tuple[float, float]:
        """(early, late) run time estimates for a job of ``duration`` seconds of audio."""
        similar = [r for d, r in self._samples if 0.5 * duration <= d <= 2 * duration]
        runtimes = similar if len(similar) >= 5 else [r for _, r in self._samples]
        if len(runtimes) >= 5:
            cuts = quantiles(runtimes, n=10, method="inclusive")
            return cuts[0], cuts[-1]
        guess = hint or self._default_runtime
        if guess is None:
            return self._min_interval, self._min_interval * 8
        return guess * 0.7, guess * 1.5

    @property
    def samples(self) -> tuple[tuple[int, float], ...]:
        """The recent (duration, upstream seconds) the plan is made from; estimates use them too."""
        return tuple(self._samples)

    def next_delay(self, duration: int, elapsed: float, hint: float | None = None) -> float:
        """Seconds from now until the next poll, ``elapsed`` seconds after submit."""
        early, late = self.expected_range(duration, hint)
        if self._safety_net():
            first = max(2 * late, 10 * self._min_interval)
            if elapsed < first:
                return first - elapsed
            return self._max_backoff
        if elapsed + self._min_interval < early:
            # Nothing to see before the fast end of the range: sleep until just after it.
            return max(self._min_interval, early - elapsed)
        if elapsed < late:
            return self._min_interval
        # In the tail: back off gently, bounded, never faster than allowed.
        return min(self._max_backoff, max(self._min_interval, (elapsed - late) * 0.5))


def catch_up(
    waiting: Sequence[tuple[float, float]], now: float, *, min_interval: float, window: float
) -> list[float]:
    """New poll times for jobs that backed off while the upstream was down, now that it
    answers again. ``waiting`` holds each job's (next poll, last poll) times. The polls are
    spread over the next ``window`` seconds, so a service just back isn't hit all at once;
    none comes sooner than ``min_interval`` after that job's last poll, nor later than it
    was already planned."""
    if not waiting:
        return []
    step = window / len(waiting)
    return [
        min(due, max(last + min_interval, now + index * step))
        for index, (due, last) in enumerate(waiting)
    ]
