"""The poll planner: few polls, little lag, never faster than the backend allows."""

from __future__ import annotations

import math
import random

import pytest

from bot.polling import PollPlanner, catch_up


def _simulate(planner: PollPlanner, runtime: float) -> tuple[int, float, float]:
    """Polls made, lag after completion, and the shortest gap between polls."""
    elapsed, polls, gaps = 0.0, 0, []
    while True:
        delay = planner.next_delay(60, elapsed)
        gaps.append(delay)
        elapsed += delay
        polls += 1
        if elapsed >= runtime:
            return polls, elapsed - runtime, min(gaps)


def test_with_history_jobs_of_8_to_14_s_need_few_polls_and_little_lag() -> None:
    rng = random.Random(7)
    planner = PollPlanner(min_interval=2.0)
    for _ in range(30):
        planner.observe(60, rng.uniform(8, 14))
    results = [_simulate(planner, rng.uniform(8, 14)) for _ in range(500)]
    mean_polls = sum(p for p, _, _ in results) / len(results)
    lags = sorted(lag for _, lag, _ in results)
    assert mean_polls <= 4
    assert lags[int(len(lags) * 0.95)] <= 2.0
    assert min(gap for _, _, gap in results) >= 2.0


@pytest.mark.parametrize("elapsed", [0.0, 1.0, 5.0, 50.0, 500.0, 5000.0])
def test_never_polls_faster_than_the_minimum_or_slower_than_the_cap(elapsed: float) -> None:
    planner = PollPlanner(min_interval=2.0)
    assert 2.0 <= planner.next_delay(60, elapsed) <= 30.0


def test_an_estimate_from_the_backend_moves_the_first_poll() -> None:
    planner = PollPlanner(min_interval=1.0)
    assert planner.next_delay(60, 0.0, hint=20.0) == pytest.approx(14.0)


def test_after_an_outage_every_waiting_poll_comes_soon_but_never_too_soon() -> None:
    now = 100.0
    # (next poll, last poll): backed off to 30 s; just polled; due anyway; never polled.
    waiting = [(130.0, 70.0), (125.0, 99.5), (101.0, 90.0), (160.0, 99.9), (128.0, -math.inf)]
    times = catch_up(waiting, now, min_interval=2.0, window=2.0)
    assert len(times) == len(waiting)
    for (due, last), new in zip(waiting, times, strict=True):
        assert new <= due  # never later than planned
        assert new >= last + 2.0  # never two polls of a job closer than allowed
        assert new <= now + 4.0
    assert len(set(times)) == len(times)  # spread out, not all at one instant
    assert catch_up([], now, min_interval=2.0, window=2.0) == []
