"""Ready-time estimates: they grow with the length asked for, follow the upstream's progress,
are re-made when they lapse, and are absent rather than invented."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.estimates import (
    expected_runtime,
    queued_ready_at,
    ready_at,
    slow_runtime,
    typical_runtime,
)

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
# Like WaveSpeed's fake (and roughly the real service): 2 s to start, then 0.1 s per second.
LEARNED = [(d, 2 + d / 10) for d in (10, 20, 30, 60, 90, 120)]


def test_a_long_song_is_expected_to_take_longer_than_a_short_one() -> None:
    short, long = expected_runtime(LEARNED, 20), expected_runtime(LEARNED, 240)
    assert short == pytest.approx(4.0) and long == pytest.approx(26.0)


def test_one_length_of_history_still_scales_with_the_length_asked() -> None:
    same_length = [(30, 5.0), (30, 5.4), (30, 4.6)]
    assert expected_runtime(same_length, 30) == pytest.approx(5.0)
    assert expected_runtime(same_length, 240) == pytest.approx(40.0)


def test_without_history_only_the_backends_own_hint_counts() -> None:
    assert expected_runtime([], 60) is None and typical_runtime([]) is None
    assert expected_runtime([(30, 5.0)], 60, hint=12.0) == 12.0


def test_noise_never_makes_a_longer_song_quicker() -> None:
    noisy = [(10, 9.0), (20, 8.0), (30, 7.0)]
    assert expected_runtime(noisy, 240) == pytest.approx(expected_runtime(noisy, 10) or 0)


def test_the_estimate_is_counted_from_submit_and_re_made_when_it_lapses() -> None:
    expected, slow = 10.0, 14.0

    def at(seconds: float) -> datetime | None:
        return ready_at(
            now=T0 + timedelta(seconds=seconds), submitted_at=T0, expected=expected, slow=slow
        )

    assert at(3) == T0 + timedelta(seconds=10)
    # Past the usual time: the slow end of what was seen, not a lapsed number.
    assert at(11) == T0 + timedelta(seconds=14)
    # Past that too: nothing honest left to promise.
    assert at(15) is None


def test_the_upstreams_own_progress_beats_the_model() -> None:
    now = T0 + timedelta(seconds=20)
    eta = ready_at(submitted_at=T0, now=now, expected=10.0, slow=12.0, progress=0.5)
    assert eta == now + timedelta(seconds=20)
    # A fraction too small to extrapolate from falls back to the model.
    early = ready_at(
        submitted_at=T0, now=T0 + timedelta(seconds=1), expected=10.0, slow=None, progress=0.01
    )
    assert early == T0 + timedelta(seconds=10)


def test_the_slow_estimate_covers_the_worst_miss_seen() -> None:
    learned = [*LEARNED, (60, 14.0)]  # one 60 s song took 6 s longer than its peers
    assert (slow_runtime(learned, 60) or 0) >= 14.0 > (expected_runtime(learned, 60) or 0)


def test_a_queued_songs_wait_grows_with_its_place_and_the_backends_width() -> None:
    def wait(position: int, concurrency: int) -> float:
        eta = queued_ready_at(
            now=T0, position=position, concurrency=concurrency, typical=8.0, own=5.0
        )
        assert eta is not None
        return (eta - T0).total_seconds()

    assert wait(1, 1) == 13.0 and wait(3, 1) == 29.0 and wait(3, 2) == 21.0
    assert queued_ready_at(now=T0, position=2, concurrency=1, typical=None, own=5.0) is None
