"""When a song will be ready, from what recent songs of the same backend really took.

Users read these numbers, so they must be honest: an estimate grows with the length asked
for, follows the upstream's own progress where it reports one (ACE-Step does), is re-made
once it runs out, and is absent rather than invented when there is nothing to go on.

Upstream run time is modelled as ``fixed + per_second × duration`` (start-up, then work in
proportion to the audio), fitted by least squares to the recent (duration, seconds) samples
the poll planner already keeps. With samples of one length only, the fixed part can't be told
apart, so the ratio is used (a longer song takes proportionally longer, which errs long).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from statistics import median

MIN_SAMPLES = 3
MIN_PROGRESS = 0.05  # below this an upstream's fraction says too little to extrapolate from


def expected_runtime(
    samples: Sequence[tuple[int, float]], duration: int, hint: float | None = None
) -> float | None:
    """Seconds from submit to completion for ``duration`` seconds of audio, or None."""
    if len(samples) >= MIN_SAMPLES:
        return _model(samples)(duration)
    return hint


def slow_runtime(samples: Sequence[tuple[int, float]], duration: int) -> float | None:
    """A pessimistic run time (the model plus the worst miss seen), for an overrun song."""
    if len(samples) < MIN_SAMPLES:
        return None
    model = _model(samples)  # fitted once, not once per sample
    misses = [runtime - model(d) for d, runtime in samples]
    return model(duration) + max(0.0, *misses)


def ready_at(
    *,
    submitted_at: datetime,
    now: datetime,
    expected: float | None,
    slow: float | None,
    progress: float | None = None,
) -> datetime | None:
    """When the song should be ready; None when that can't honestly be said any more."""
    elapsed = max(0.0, (now - submitted_at).total_seconds())
    if progress is not None and MIN_PROGRESS <= progress < 1 and elapsed > 0:
        # The upstream's own fraction beats any model: extrapolate its pace.
        return now + timedelta(seconds=elapsed * (1 - progress) / progress)
    for runtime in (expected, slow):
        if runtime is not None and runtime > elapsed:
            return submitted_at + timedelta(seconds=runtime)
    return None  # past every estimate: "any moment now" beats a number that already lapsed


def typical_runtime(
    samples: Sequence[tuple[int, float]], hint: float | None = None
) -> float | None:
    """What one song ahead in line typically takes, whatever its length."""
    if len(samples) >= MIN_SAMPLES:
        return median(runtime for _, runtime in samples)
    return hint


def queued_ready_at(
    *,
    now: datetime,
    position: int,
    concurrency: int,
    typical: float | None,
    own: float | None,
) -> datetime | None:
    """When a waiting song should be ready: the rounds ahead of it, then its own run."""
    if typical is None or own is None:
        return None
    rounds_ahead = math.ceil(max(0, position) / max(1, concurrency))
    return now + timedelta(seconds=rounds_ahead * typical + own)


def _model(samples: Sequence[tuple[int, float]]) -> Callable[[int], float]:
    """Run time as a function of duration: the straight-line fit, or the median ratio when
    every sample has one length."""
    fitted = _fit(samples)
    if fitted is not None:
        fixed, per_second = fitted
        return lambda duration: fixed + per_second * duration
    ratio = median(runtime / max(1, d) for d, runtime in samples)
    return lambda duration: ratio * duration


def _fit(samples: Sequence[tuple[int, float]]) -> tuple[float, float] | None:
    xs = [float(d) for d, _ in samples]
    ys = [runtime for _, runtime in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread < 1e-9:
        return None  # one length only
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    slope = max(0.0, slope)  # noise must not make longer songs quicker
    fixed = max(0.0, mean_y - slope * mean_x)
    return fixed, slope
