"""The fake's clock (nominal Discord seconds) and the one condition every waiter waits on."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TypeVar

from tests.fakes.discord.protocol import FakeDiscordTimeout

T = TypeVar("T")


class Clock:
    """``time_scale`` maps nominal seconds to real ones; ``advance`` jumps ahead. Every change
    the fake makes calls ``notify`` so that ``wait`` re-checks its condition."""

    def __init__(self, time_scale: float, describe: Callable[[], str]) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.time_scale = time_scale
        self._describe = describe  # appended to every timeout: what the fake saw lately
        self._cond: asyncio.Condition | None = None
        self._t0 = 0.0
        self._offset = 0.0

    def start(self) -> None:
        self._t0 = asyncio.get_running_loop().time()
        self._cond = asyncio.Condition()

    def now(self) -> float:
        """Nominal seconds since the fake started (real time / time_scale + advances)."""
        return (asyncio.get_running_loop().time() - self._t0) / self.time_scale + self._offset

    def wall(self) -> float:
        return time.time() + self._offset

    async def advance(self, seconds: float) -> None:
        self._offset += seconds
        await self.notify()

    async def wait_until(self, nominal: float, timeout: float = 30.0) -> None:
        async def run() -> None:
            assert self._cond is not None
            async with self._cond:
                while self.now() < nominal:
                    real_left = (nominal - self.now()) * self.time_scale
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._cond.wait(), max(real_left, 0.001))

        try:
            await asyncio.wait_for(run(), timeout)
        except TimeoutError:
            raise FakeDiscordTimeout(
                f"the fake's clock did not reach {nominal:.3f} within {timeout} s "
                f"(now {self.now():.3f}, time_scale={self.time_scale})"
            ) from None

    async def notify(self) -> None:
        if self._cond is None:
            return
        async with self._cond:
            self._cond.notify_all()

    async def wait(
        self,
        check: Callable[[], T | None],
        timeout: float,
        what: str,
        state: Callable[[], str] | None = None,
    ) -> T:
        """``check()``'s first truthy result; on timeout say what was there instead."""
        assert self._cond is not None, "FakeDiscord is not started"

        async def run() -> T:
            assert self._cond is not None
            async with self._cond:
                while True:
                    result = check()
                    if result is not None and result is not False:
                        return result
                    await self._cond.wait()

        try:
            return await asyncio.wait_for(run(), timeout)
        except TimeoutError:
            details = state() if state else ""
            raise FakeDiscordTimeout(
                f"Timed out after {timeout} s waiting for {what}.\n{details}\n{self._describe()}"
            ) from None
