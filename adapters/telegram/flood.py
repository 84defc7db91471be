"""Client-side flood control: stay inside Telegram's limits instead of bumping into them.

PTB's ``AIORateLimiter`` throttles the global and per-group rates but not the per-chat one, and
its leaky bucket lets a group's 21st message out three seconds after a burst of 20, which a
sliding one-minute window refuses. ``FloodGate`` enforces the three documented limits as
sliding windows instead: about one message a second per chat (bursts of three), 20 a minute
per group, 30 a second overall. Only requests that make a message appear or change count.

A send is timestamped when its answer arrives, and counts while in flight: Telegram saw it no
later than that, so the spacing Telegram measures is never shorter than ours.

A ``RetryAfter`` that still happens (another process shares the token, or limits are stricter
than documented) is waited out and the request made again, up to ``max_retries`` times, so
it never becomes a second message. ``retry_after`` is Telegram's, in real seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import time
import warnings
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

logger = logging.getLogger(__name__)

ChatKey = int | str
Result = bool | dict[str, Any] | list[dict[str, Any]]

_COUNTED_PREFIXES = ("send", "edit", "copy", "forward")
_UNCOUNTED = frozenset({"sendchataction"})


@dataclass(frozen=True)
class FloodRules:
    """Telegram's limits, in seconds (multiplied by the gate's ``time_scale``)."""

    chat_burst: int = 3
    chat_period: float = 3.0  # 3 per 3 s: one a second on average, short bursts allowed
    group_max: int = 20
    group_period: float = 60.0
    global_max: int = 30
    global_period: float = 1.0


class _Window:
    """At most ``limit`` sends in any ``period`` seconds; in-flight sends count."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self.finished: deque[float] = deque()
        self.in_flight = 0

    def wait(self, now: float) -> float:
        """0 when a send may start now, else seconds to wait (inf: until one finishes)."""
        while self.finished and self.finished[0] <= now - self.period:
            self.finished.popleft()
        if len(self.finished) + self.in_flight < self.limit:
            return 0.0
        if self.finished:
            return self.finished[0] + self.period - now
        return float("inf")

    @property
    def idle(self) -> bool:
        return not self.finished and not self.in_flight


def retry_after_seconds(error: RetryAfter) -> float:
    """``RetryAfter.retry_after`` as seconds, whether PTB hands out an int or a timedelta
    (it warns about the int unless ``PTB_TIMEDELTA`` is set; either is fine here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    return float(value)


class FloodGate(BaseRateLimiter[int]):
    """A PTB rate limiter (``ApplicationBuilder().rate_limiter(FloodGate(...))``).

    time_scale: multiplies every window (tests run Telegram's clock faster; 1 in production).
    max_retries: how often one request is retried after a ``RetryAfter``.
    clock: monotonic seconds.
    """

    def __init__(
        self,
        rules: FloodRules | None = None,
        *,
        time_scale: float = 1.0,
        max_retries: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rules = rules or FloodRules()
        self._scale = time_scale
        self._max_retries = max_retries
        self._clock = clock
        self._chats: dict[ChatKey, _Window] = {}
        self._groups: dict[ChatKey, _Window] = {}
        self._global = _Window(self._rules.global_max, self._rules.global_period * time_scale)
        self._paused_until: dict[ChatKey, float] = {}
        self._changed = asyncio.Condition()

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Result:
        retries = self._max_retries if rate_limit_args is None else rate_limit_args
        chat = _chat_key(data.get("chat_id"))
        counted = chat is not None and _is_counted(endpoint)
        for attempt in range(retries + 1):
            windows = self._windows(chat) if counted and chat is not None else []
            await self._admit(chat, windows)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as error:
                if attempt == retries:
                    logger.error("%s: still flood-limited after %d retries", endpoint, retries)
                    raise
                wait = retry_after_seconds(error) + 0.1
            finally:
                await self._release(windows)
            logger.warning("%s: flood-limited; retrying in %.1f s", endpoint, wait)
            if chat is not None:
                # Hold the chat's other sends too: they would only collect more 429s.
                self._paused_until[chat] = self._clock() + wait
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def _windows(self, chat: ChatKey) -> list[_Window]:
        rules = self._rules
        windows = [self._global]
        if chat not in self._chats:
            self._chats[chat] = _Window(rules.chat_burst, rules.chat_period * self._scale)
        windows.append(self._chats[chat])
        if _is_group(chat):
            if chat not in self._groups:
                self._groups[chat] = _Window(rules.group_max, rules.group_period * self._scale)
            windows.append(self._groups[chat])
        return windows

    async def _admit(self, chat: ChatKey | None, windows: list[_Window]) -> None:
        async with self._changed:
            while True:
                now = self._clock()
                paused = self._paused_until.get(chat, 0.0) - now if chat is not None else 0.0
                wait = max([paused, *(window.wait(now) for window in windows)])
                if wait <= 0:
                    for window in windows:
                        window.in_flight += 1
                    return
                timeout = None if wait == float("inf") else wait
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout)
                except TimeoutError:
                    pass

    async def _release(self, windows: list[_Window]) -> None:
        async with self._changed:
            now = self._clock()
            for window in windows:
                window.in_flight -= 1
                window.finished.append(now)
            self._forget_idle(now)
            self._changed.notify_all()

    def _forget_idle(self, now: float) -> None:
        # Keep memory bounded on a bot in many chats: drop windows with nothing left in them.
        for table in (self._chats, self._groups):
            if len(table) > 512:
                for key, window in list(table.items()):
                    window.wait(now)  # drops sends older than the window
                    if window.idle:
                        del table[key]
        for key in [key for key, until in self._paused_until.items() if until <= now]:
            del self._paused_until[key]


def _chat_key(value: object) -> ChatKey | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    text = str(value)
    try:
        return int(text)
    except ValueError:
        return text  # "@channelname"


def _is_group(chat: ChatKey) -> bool:
    # Negative ids are groups, supergroups and channels; "@name" only exists for the latter.
    return isinstance(chat, str) or chat < 0


def _is_counted(endpoint: str) -> bool:
    name = endpoint.lower()
    return name.startswith(_COUNTED_PREFIXES) and name not in _UNCOUNTED
