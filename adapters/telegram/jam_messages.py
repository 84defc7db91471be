"""A jam in the chat: its message, kept up to date, and what is announced about it.

**The jam message** is posted at ``/jam start`` and edited as the jam changes. People may add
lines faster than a chat takes edits (a group takes 20 messages a minute, edits included),
so :class:`JamMessages` coalesces: each jam's message is edited at most once an interval,
with the jam as it stands when the edit goes out; a burst of ten lines is one or two edits.
Its id lives in the jam's context (``message_id``), so the edits go on after a restart.

**Announcements** (rendering, voting open, the winner, a render that made nothing, the next
round) are new messages in the jam's place, replying to the jam message. The same event may
reach us twice: as the answer to a command handled here and as the core's news of it.
:class:`JamAnnouncer` says each once (per jam, round, render attempt and kind).

:class:`TelegramJamListener` is the core's :class:`~bot.jams.ports.JamListener`: every piece
of news refreshes the jam message, and all but ``changed`` are announced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from telegram import Bot, Message
from telegram.error import BadRequest, Forbidden, TelegramError

from adapters.telegram import jam_texts
from adapters.telegram.delivery import PLATFORM
from adapters.telegram.flood import Priority, sending
from adapters.telegram.places import place_of, send
from bot.clock import utcnow
from bot.jams.model import Jam, JamNews, JamNewsKind

logger = logging.getLogger(__name__)

GROUP_INTERVAL = 4.0  # seconds between edits of one jam message in a group (20 a minute)
PRIVATE_INTERVAL = 2.0
TICK_SLACK = 0.5  # seconds past a minute boundary, so the new minute shows
REMEMBERED = 1000  # announcements made, and jam message ids, kept in memory


def jam_message_id(jam: Jam) -> int | None:
    value = jam.context.get("message_id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class _Pending:
    chat_id: int
    dirty: bool = True  # changed since the last edit began


class JamMessages:
    """bot: where edits go. find: the jam as it stands (``service.jams.get``): an edit
    shows the newest state, whatever order the news came in. time_scale: multiplies the
    intervals (tests run faster)."""

    def __init__(
        self,
        bot: Bot,
        find: Callable[[int], Awaitable[Jam | None]],
        *,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bot = bot
        self._find = find
        self._group_interval = GROUP_INTERVAL * time_scale
        self._private_interval = PRIVATE_INTERVAL * time_scale
        self._clock = clock
        self._pending: dict[int, _Pending] = {}
        self._pacers: dict[int, asyncio.Task[None]] = {}
        self._posted: OrderedDict[int, int] = OrderedDict()  # jam -> message, before its context
        self._edited: OrderedDict[int, float] = OrderedDict()  # jam -> its last edit (monotonic)
        self._shown: OrderedDict[int, str] = OrderedDict()  # jam -> the text its message shows
        self._ticks: dict[int, asyncio.TimerHandle] = {}  # jam -> its countdown's next edit
        self._closed = False

    def posted(self, jam_id: int, message_id: int, text: str) -> None:
        """The jam message was just sent showing ``text`` (its id reaches the jam's context
        a moment later)."""
        self._posted[jam_id] = message_id
        self._shown[jam_id] = text
        self._stamp(jam_id)
        while len(self._posted) > REMEMBERED:
            self._posted.popitem(last=False)

    def message_id(self, jam: Jam) -> int | None:
        return jam_message_id(jam) or self._posted.get(jam.id)

    def update(self, jam: Jam) -> None:
        """The jam changed: its message should show it (or anything newer) soon."""
        if self._closed or jam.platform != PLATFORM:
            return
        pending = self._pending.setdefault(jam.id, _Pending(place_of(jam.chat_id)[0]))
        pending.dirty = True
        if jam.id not in self._pacers:
            self._pacers[jam.id] = asyncio.create_task(
                self._pace(jam.id), name=f"telegram-jam-{jam.id}"
            )

    async def close(self, grace: float = 2.0) -> None:
        """Let the edits due go out for up to ``grace`` seconds, then stop."""
        self._closed = True
        for tick in self._ticks.values():
            tick.cancel()
        self._ticks.clear()
        tasks = list(self._pacers.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def _pace(self, jam_id: int) -> None:
        try:
            while (pending := self._pending.get(jam_id)) is not None and pending.dirty:
                interval = self._group_interval if pending.chat_id < 0 else self._private_interval
                wait = self._edited.get(jam_id, float("-inf")) + interval - self._clock()
                if wait > 0 and not self._closed:
                    # Pacing, not waiting for something: what changes meanwhile is shown
                    # by this one edit.
                    await asyncio.sleep(wait)
                pending.dirty = False
                jam = await self._find(jam_id)
                if jam is not None:
                    await self._edit(jam)
                    self._countdown(jam)
                # Spaced from when the edit was done: a send held up by the flood gate is
                # not followed by another one at once.
                self._stamp(jam_id)
            self._pending.pop(jam_id, None)
        finally:
            if self._pacers.get(jam_id) is asyncio.current_task():
                del self._pacers[jam_id]

    def _countdown(self, jam: Jam) -> None:
        """Edit again when the time left it shows would change (whole minutes: about one
        edit a minute while a jam collects or votes; none when nothing else changed)."""
        old = self._ticks.pop(jam.id, None)
        if old is not None:
            old.cancel()
        ends = jam_texts.deadline(jam)
        if ends is None or self._closed:
            return
        left = (ends - utcnow()).total_seconds()
        if left <= 0:
            return
        # time_left rounds up to whole minutes: the text changes as a minute boundary passes.
        wait = left - 60 * (math.ceil(left / 60) - 1) if left > 60 else left
        loop = asyncio.get_running_loop()
        self._ticks[jam.id] = loop.call_later(wait + TICK_SLACK, self.update, jam)

    def _stamp(self, jam_id: int) -> None:
        self._edited[jam_id] = self._clock()
        self._edited.move_to_end(jam_id)
        while len(self._edited) > REMEMBERED:
            self._edited.popitem(last=False)

    async def _edit(self, jam: Jam) -> None:
        message_id = self.message_id(jam)
        if message_id is None:  # still being posted; the poster shows the jam as it is then
            return
        chat_id, _ = place_of(jam.chat_id)
        text = jam_texts.jam_message(jam)
        if self._shown.get(jam.id) == text:  # a change the message doesn't show (a vote)
            return
        try:
            with sending(Priority.DELIVERY):
                await self._bot.edit_message_text(text, chat_id=chat_id, message_id=message_id)
            self._shown[jam.id] = text
            self._shown.move_to_end(jam.id)
            while len(self._shown) > REMEMBERED:
                self._shown.popitem(last=False)
        except BadRequest as error:
            if "message is not modified" not in error.message.lower():
                logger.warning("jam %s: message edit refused: %s", jam.id, error.message)
        except Forbidden as error:
            logger.warning("jam %s: can't post in its chat any more: %s", jam.id, error.message)
        except TelegramError as error:  # the next change edits it again
            logger.warning("jam %s: message edit failed: %s", jam.id, error)


class JamAnnouncer:
    """Posts what happened to a jam in its place, each event once."""

    def __init__(self, messages: JamMessages) -> None:
        self._messages = messages
        self._said: OrderedDict[tuple[int, int, int, str], None] = OrderedDict()

    def first(self, jam: Jam, kind: JamNewsKind) -> bool:
        """True the first time this event of ``jam`` is announced (then remembered)."""
        attempt = jam.current.attempt if jam.rounds else 0
        key = (jam.id, jam.round, attempt, str(kind))
        if key in self._said:
            return False
        self._said[key] = None
        while len(self._said) > REMEMBERED:
            self._said.popitem(last=False)
        return True

    async def announce(
        self,
        bot: Bot,
        jam: Jam,
        kind: JamNewsKind,
        sentence: str,
        *,
        reply_to: int | None = None,
    ) -> Message | None:
        """``sentence`` in the jam's place, replying to ``reply_to`` (a command) or else to
        the jam message; None when it was said already."""
        if not self.first(jam, kind):
            return None
        chat_id, thread_id = place_of(jam.chat_id)
        target = reply_to or self._messages.message_id(jam)
        return await send(bot, chat_id, jam_texts.sentence(sentence), target, thread_id)


class TelegramJamListener:
    """The core's news of Telegram's jams: the message refreshed, the news announced."""

    platform = PLATFORM

    def __init__(self, bot: Bot, messages: JamMessages, announcer: JamAnnouncer) -> None:
        self._bot = bot
        self._messages = messages
        self._announcer = announcer

    async def on_jam(self, news: JamNews) -> None:
        self._messages.update(news.jam)
        if news.kind == JamNewsKind.CHANGED or not news.message:
            return
        # Removed from the chat: nothing to tell there.
        with contextlib.suppress(Forbidden), sending(Priority.DELIVERY):
            await self._announcer.announce(self._bot, news.jam, news.kind, news.message)
