"""How long to wait before trying a step again: one rule for every step of a job.

Each step keeps its own count of failures (a failed poll never spends a download's tries)
and its own budget (`TRIES`); one `RetryPolicy` turns a count into a pause. Polls, and
transfers that break off or time out, are retried until the job's deadline instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_delay

from bot.errors import StoreUnavailable

T = TypeVar("T")

# Connection lost, server restarting, "database is locked" (the stores raise these as
# StoreUnavailable), or the disk: worth waiting out.
DB_ERRORS: tuple[type[Exception], ...] = (StoreUnavailable, OSError)


class Step(StrEnum):
    """A step of a job that gives up after a number of failures in a row."""

    SUBMIT = "submit"  # refused before the upstream took it
    DEAD_LINK = "dead_link"  # output link found expired (401/403/404/410), after a fresh poll
    DELIVERY = "delivery"


TRIES: Mapping[Step, int] = MappingProxyType({Step.SUBMIT: 5, Step.DEAD_LINK: 4, Step.DELIVERY: 5})


def backoff(failures: int, *, base: float, cap: float) -> float:
    """Seconds to wait after ``failures`` failures in a row: ``base`` after the first,
    doubling after each further one, never more than ``cap``."""
    if failures <= 0:
        return 0.0
    # The exponent is bounded so that a long outage can't overflow the float.
    return min(cap, base * 2 ** min(failures - 1, 32))


@dataclass(frozen=True)
class RetryPolicy:
    """The back-off between tries, and when a step has spent its budget."""

    base: float
    cap: float

    def delay(self, failures: int) -> float:
        return backoff(failures, base=self.base, cap=self.cap)

    def gives_up(self, step: Step, failures: int) -> bool:
        return failures >= TRIES[step]


# The database away while the worker loops: real seconds, whatever the time scale.
STORE_OUTAGE = RetryPolicy(base=1.0, cap=30.0)
# A write recording something that already happened outside (a submit, a post).
DURABLE_WRITE = RetryPolicy(base=0.2, cap=5.0)


def outage(exc: Exception) -> str:
    """What went away, for the log: the driver's error behind a StoreUnavailable."""
    return exc.kind if isinstance(exc, StoreUnavailable) else type(exc).__name__


def _durable_wait(state: RetryCallState) -> float:
    return DURABLE_WRITE.delay(state.attempt_number)


async def durably(
    operation: Callable[..., Awaitable[T]], *args: Any, within: float, **kwargs: Any
) -> T:
    """Record something that already happened outside (a submit, a post): retry through a
    database hiccup rather than forget it, for up to ``within`` seconds (a lease)."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(DB_ERRORS),
        wait=_durable_wait,
        stop=stop_after_delay(within),
        reraise=True,
    ):
        with attempt:
            return await operation(*args, **kwargs)
    raise AssertionError("unreachable")  # AsyncRetrying either returns or raises
