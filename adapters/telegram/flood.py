"""Client-side flood control: stay inside Telegram's limits, and spend them on people first.

PTB's ``AIORateLimiter`` throttles the global and per-group rates but not the per-chat one, and
its leaky bucket lets a group's 21st message out three seconds after a burst of 20, which a
sliding one-minute window refuses. ``FloodGate`` enforces the three documented limits instead:
about one message a second per chat (a bucket of three that refills one a second), 20 a
minute per group (a sliding window), 30 a second overall. Only requests that make a message
appear or change count.

A send counts while in flight and is stamped when its answer arrives: Telegram saw it no
later than that, so the spacing Telegram measures is never shorter than ours.

A group's 20 a minute is one budget for everything the bot says there, so sends have a
:class:`Priority`. Answers to people go first, in the order they were asked; tracks and
failure notices next; progress edits only when the chat has room to spare (they never wait:
the gate raises :class:`FloodDeferred` and the caller tries again later with newer text).
:meth:`FloodGate.turn` reserves an answer's place *before* the answer is built, so it is
built from the state at the moment it goes out and answers leave in the order they were
asked. The priority of a send travels in a context variable (:func:`sending`), because PTB's
message shortcuts (``message.reply_text``) have no way to pass ``rate_limit_args``.

A ``RetryAfter`` that still happens (another process shares the token, or limits are stricter
than documented) is waited out and the request made again, up to ``max_retries`` times, so
it never becomes a second message. ``retry_after`` is Telegram's, in real seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import enum
import itertools
import logging
import time
import warnings
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from telegram import Update
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

logger = logging.getLogger(__name__)

ChatKey = int | str
Result = bool | dict[str, Any] | list[dict[str, Any]]
C = TypeVar("C")

_COUNTED_PREFIXES = ("send", "edit", "copy", "forward")
_UNCOUNTED = frozenset({"sendchataction"})


class Priority(enum.IntEnum):
    """Who goes first when a chat's budget is short (lower first)."""

    ANSWER = 0  # a reply to something a person just did
    DELIVERY = 1  # a track, a failure notice, a final status text
    PROGRESS = 2  # a progress edit: skipped, never waited for, when the chat is busy


@dataclass(frozen=True)
class FloodRules:
    """Telegram's limits, in seconds (multiplied by the gate's ``time_scale``)."""

    chat_burst: int = 3
    chat_rate: float = 1.0  # per second: the bucket refills one send a second
    group_max: int = 20
    group_period: float = 60.0
    global_max: int = 30
    global_period: float = 1.0
    # Sends of a group's minute progress may never touch: what people's answers need.
    answer_reserve: int = 5


class FloodDeferred(Exception):
    """A progress send was not made: the chat has no room to spare. Try again after
    ``wait`` seconds (an estimate), with whatever the text should say by then."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"no room for progress; try again in {wait:.2f} s")
        self.wait = wait


@dataclass(frozen=True)
class _How:
    priority: Priority
    keep_free: int = 0  # PROGRESS: group sends to leave unspent besides the answer reserve
    ticket: _Ticket | None = None  # a place reserved by FloodGate.turn


# How the current task's sends should pass the gate (set by ``sending`` and ``turn``).
_HOW: ContextVar[_How | None] = ContextVar("acejam_telegram_send", default=None)


@contextlib.contextmanager
def sending(priority: Priority, *, keep_free: int = 0) -> Iterator[None]:
    """Sends made inside the block go through the gate with ``priority``."""
    token = _HOW.set(_How(priority, keep_free))
    try:
        yield
    finally:
        _HOW.reset(token)


class _Window:
    """At most ``limit`` sends in any ``period`` seconds; in-flight sends count."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self.finished: deque[float] = deque()
        self.in_flight = 0

    def free(self, now: float) -> int:
        while self.finished and self.finished[0] <= now - self.period:
            self.finished.popleft()
        return self.limit - len(self.finished) - self.in_flight

    def wait(self, now: float, need: int = 1) -> float:
        """0 when ``need`` sends may start now, else seconds to wait (inf: until one ends)."""
        missing = need - self.free(now)
        if missing <= 0:
            return 0.0
        if len(self.finished) >= missing:
            return self.finished[missing - 1] + self.period - now
        return float("inf")

    def start(self) -> None:
        self.in_flight += 1

    def finish(self, now: float, *, sent: bool = True) -> None:
        self.in_flight -= 1
        if sent:
            self.finished.append(now)

    @property
    def idle(self) -> bool:
        return not self.finished and not self.in_flight


class _Bucket:
    """A token bucket (``burst`` sends, refilled at ``rate`` a second), Telegram's per-chat
    rule. A send takes its token when it ends; while in flight it holds one."""

    def __init__(self, burst: int, rate: float, now: float) -> None:
        self.burst = burst
        self.rate = rate
        self.tokens = float(burst)
        self.at = now
        self.in_flight = 0

    def _level(self, now: float) -> float:
        return min(float(self.burst), self.tokens + (now - self.at) * self.rate)

    def free(self, now: float) -> float:
        return self._level(now) - self.in_flight

    def wait(self, now: float, need: int = 1) -> float:
        missing = need - self.free(now)
        return 0.0 if missing <= 0 else missing / self.rate

    def start(self) -> None:
        self.in_flight += 1

    def finish(self, now: float, *, sent: bool = True) -> None:
        self.in_flight -= 1
        if sent:
            self.tokens, self.at = self._level(now) - 1.0, now


_Limit = _Window | _Bucket


class _Ticket:
    """A send admitted ahead of time (by :meth:`FloodGate.turn`), used by the first counted
    send to its chat; given back unspent if none comes."""

    def __init__(self, chat: ChatKey, limits: list[_Limit]) -> None:
        self.chat = chat
        self.limits = limits
        self.used = False


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
    max_retries: how often one request is retried after a ``RetryAfter``
        (``rate_limit_args`` may give another number for one call).
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
        self._chats: dict[ChatKey, _Bucket] = {}
        self._groups: dict[ChatKey, _Window] = {}
        self._global = _Window(self._rules.global_max, self._rules.global_period * time_scale)
        self._paused_until: dict[ChatKey, float] = {}
        # Each chat's queue: (priority, arrival, waits for a turn).
        self._waiting: dict[ChatKey, list[tuple[Priority, int, bool]]] = {}
        self._turns: set[ChatKey] = set()  # chats where an answer is being built
        self._order = itertools.count()
        self._changed = asyncio.Condition()

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    @contextlib.asynccontextmanager
    async def turn(self, chat_id: ChatKey) -> AsyncIterator[None]:
        """An answer's place in ``chat_id``: wait for it first, then build and send the
        answer inside the block. Its first counted send there goes out at once."""
        limits = self._limits(chat_id)
        await self._admit(chat_id, limits, Priority.ANSWER, turn=True)
        ticket = _Ticket(chat_id, limits)
        token = _HOW.set(_How(Priority.ANSWER, ticket=ticket))
        try:
            yield
        finally:
            _HOW.reset(token)
            async with self._changed:
                self._turns.discard(chat_id)
                self._changed.notify_all()
            if not ticket.used:  # nothing was sent there: the place was never spent
                await self._release(limits, sent=False)

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
        how = _HOW.get() or _How(Priority.ANSWER)
        for attempt in range(retries + 1):
            limits: list[_Limit] = []
            if counted and chat is not None:
                ticket = how.ticket
                if attempt == 0 and ticket is not None and not ticket.used and ticket.chat == chat:
                    ticket.used = True  # admitted when the turn began
                    limits = ticket.limits
                else:
                    limits = self._limits(chat)
                    if how.priority == Priority.PROGRESS:
                        await self._try_progress(chat, limits, how.keep_free)
                    else:
                        await self._admit(chat, limits, how.priority)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as error:
                if attempt == retries:
                    logger.error("%s: still flood-limited after %d retries", endpoint, retries)
                    raise
                wait = retry_after_seconds(error) + 0.1
            finally:
                if limits:
                    await self._release(limits)
            logger.warning("%s: flood-limited; retrying in %.1f s", endpoint, wait)
            if chat is not None:
                # Hold the chat's other sends too: they would only collect more 429s.
                self._paused_until[chat] = self._clock() + wait
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    # ------------------------------------------------------------ internals
    def _limits(self, chat: ChatKey) -> list[_Limit]:
        """The global window, the chat's bucket and, for a group, its minute (in that order)."""
        rules = self._rules
        if chat not in self._chats:
            self._chats[chat] = _Bucket(
                rules.chat_burst, rules.chat_rate / self._scale, self._clock()
            )
        limits: list[_Limit] = [self._global, self._chats[chat]]
        if _is_group(chat):
            if chat not in self._groups:
                self._groups[chat] = _Window(rules.group_max, rules.group_period * self._scale)
            limits.append(self._groups[chat])
        return limits

    def _pause(self, chat: ChatKey, now: float) -> float:
        return self._paused_until.get(chat, 0.0) - now

    async def _admit(
        self,
        chat: ChatKey,
        limits: list[_Limit],
        priority: Priority,
        *,
        turn: bool = False,
    ) -> None:
        """Wait until the send may start: the limits allow it and nobody in the chat's
        queue comes before it (answers before deliveries, each in arrival order).

        turn: also wait until no other answer is being built in the chat, then hold the
        chat's turn (answers leave in the order they were asked). Turns waiting for that
        hold up no one meanwhile, or the open turn's own sends would wait for them."""
        place = (priority, next(self._order), turn)
        async with self._changed:
            queue = self._waiting.setdefault(chat, [])
            queue.append(place)
            try:
                while True:
                    now = self._clock()
                    wait = max([self._pause(chat, now), *(lim.wait(now) for lim in limits)])
                    busy = chat in self._turns
                    ahead = [p for p in queue if not (p[2] and busy)]
                    first = bool(ahead) and min(ahead) == place
                    if wait <= 0 and first:
                        for limit in limits:
                            limit.start()
                        if turn:
                            self._turns.add(chat)
                        return
                    timeout = None if wait == float("inf") or wait <= 0 else wait
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), timeout)
            finally:
                queue.remove(place)
                if not queue:
                    del self._waiting[chat]
                self._changed.notify_all()  # the next in line may go now

    async def _try_progress(self, chat: ChatKey, limits: list[_Limit], keep_free: int) -> None:
        """Start a progress send only if it takes nothing people need: no one waits in the
        chat, one more send a second stays free, and the group's minute keeps room for the
        answers and tracks still to come. Else raise FloodDeferred."""
        async with self._changed:
            now = self._clock()
            glob, bucket = limits[0], limits[1]
            waits = [self._pause(chat, now), glob.wait(now), bucket.wait(now, need=2)]
            if len(limits) > 2:
                need = 1 + keep_free + self._rules.answer_reserve
                waits.append(limits[2].wait(now, need=min(need, self._rules.group_max)))
            wait = max(waits)
            if chat in self._waiting or wait > 0:
                interval = self._scale / self._rules.chat_rate  # one send's worth
                raise FloodDeferred(interval if wait == float("inf") else max(wait, interval))
            for limit in limits:
                limit.start()

    async def _release(self, limits: list[_Limit], *, sent: bool = True) -> None:
        async with self._changed:
            now = self._clock()
            for limit in limits:
                limit.finish(now, sent=sent)
            self._forget_idle(now)
            self._changed.notify_all()

    def _forget_idle(self, now: float) -> None:
        # Keep memory bounded on a bot in many chats: drop limits with nothing left in them.
        busy = self._waiting.keys() | self._turns
        if len(self._chats) > 512:
            for key, bucket in list(self._chats.items()):
                if bucket.free(now) >= bucket.burst and key not in busy:
                    del self._chats[key]
        if len(self._groups) > 512:
            for key, window in list(self._groups.items()):
                window.free(now)  # drops sends older than the window
                if window.idle and key not in busy:
                    del self._groups[key]
        for key in [key for key, until in self._paused_until.items() if until <= now]:
            del self._paused_until[key]


@contextlib.asynccontextmanager
async def answer_turn(bot: object, chat_id: ChatKey) -> AsyncIterator[None]:
    """:meth:`FloodGate.turn` of ``bot``'s gate, or nothing when it has none."""
    gate = getattr(bot, "rate_limiter", None)
    if not isinstance(gate, FloodGate):
        yield
        return
    async with gate.turn(chat_id):
        yield


def answering(
    callback: Callable[[Update, C], Awaitable[None]],
) -> Callable[[Update, C], Coroutine[Any, Any, None]]:
    """A PTB handler callback that builds its answer in its chat's turn
    (:meth:`FloodGate.turn`), when the bot has a FloodGate."""

    async def in_turn(update: Update, context: C) -> None:
        chat = update.effective_chat
        if chat is None:
            await callback(update, context)
            return
        async with answer_turn(getattr(context, "bot", None), chat.id):
            await callback(update, context)

    return in_turn


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
