"""The one retry policy: the pause after each failure, each step's budget, and the durable
write that waits out a database hiccup (bot/retry.py)."""

from __future__ import annotations

import pytest
from tenacity import wait_exponential

from bot.errors import StoreUnavailable
from bot.retry import DURABLE_WRITE, STORE_OUTAGE, RetryPolicy, Step, durably


@pytest.mark.parametrize(
    ("step", "failures", "gives_up"),
    [
        (Step.SUBMIT, 4, False),
        (Step.SUBMIT, 5, True),
        (Step.DEAD_LINK, 3, False),
        (Step.DEAD_LINK, 4, True),
        (Step.DELIVERY, 4, False),
        (Step.DELIVERY, 5, True),
    ],
)
def test_each_step_gives_up_after_its_own_count(step: Step, failures: int, gives_up: bool) -> None:
    assert RetryPolicy(base=2.0, cap=30.0).gives_up(step, failures) is gives_up


@pytest.mark.parametrize("failures", range(1, 12))
def test_the_durable_write_waits_as_tenacitys_exponential_did(failures: int) -> None:
    """The pause it had before it went through the one policy: 0.2 s doubling up to 5 s."""

    class State:
        attempt_number = failures

    assert DURABLE_WRITE.delay(failures) == wait_exponential(multiplier=0.2, max=5)(State())  # type: ignore[arg-type]


def test_a_database_outage_pauses_in_real_seconds_up_to_half_a_minute() -> None:
    assert [STORE_OUTAGE.delay(n) for n in (1, 2, 5, 6, 50)] == [1.0, 2.0, 16.0, 30.0, 30.0]


async def test_a_durable_write_is_tried_again_through_a_hiccup_then_returns() -> None:
    calls: list[int] = []

    async def write(value: int) -> int:
        calls.append(value)
        if len(calls) == 1:
            raise StoreUnavailable("locked")
        return value * 2

    assert await durably(write, 21, within=5.0) == 42
    assert calls == [21, 21]


async def test_a_durable_write_gives_up_after_its_time_and_raises_the_last_error() -> None:
    async def write() -> None:
        raise StoreUnavailable("gone")

    with pytest.raises(StoreUnavailable):
        await durably(write, within=0.0)
