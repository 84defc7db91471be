"""Status messages ("queued — position 2", "making your song — 40%"), edited at a measured pace.

The worker may report progress many times a second; a chat takes about one message a second
(20 a minute in a group) and editing counts. So a :class:`StatusBoard` keeps only the latest
text each job's status message should show, and one pacer task per chat edits the messages
that are behind, at most once per ``interval`` per chat. An edit to the text already shown is
never sent. Final texts (done, failed, cancelled) skip the pause but still pass the bot's
:class:`~adapters.telegram.flood.FloodGate`.

A job's status message id may arrive after its first events (the worker is fast, the reply
with "queued" is not): :meth:`StatusBoard.show` keeps the text until :meth:`attach` names the
message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from telegram import Bot, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, TelegramError

logger = logging.getLogger(__name__)

GROUP_INTERVAL = 4.0  # seconds between status edits in a group (its limit is 20 a minute)
PRIVATE_INTERVAL = 2.0  # in a private chat (about one message a second)
MAX_EDIT_FAILURES = 3
FORGET_AFTER = 3600.0  # drop a finished entry whose message never became known


@dataclass
class _Entry:
    job_id: int
    chat_id: int
    message_id: int | None
    created: float
    shown: str | None = None  # the text on screen, as we sent it
    wanted: str | None = None  # the text it should show
    markup: InlineKeyboardMarkup | None = None
    final: bool = False
    failures: int = 0
    last_edit: float = 0.0

    @property
    def behind(self) -> bool:
        return self.message_id is not None and self.wanted is not None and self.wanted != self.shown


class StatusBoard:
    """bot: where edits go. time_scale: multiplies the intervals (tests run faster)."""

    def __init__(
        self,
        bot: Bot,
        *,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bot = bot
        self._group_interval = GROUP_INTERVAL * time_scale
        self._private_interval = PRIVATE_INTERVAL * time_scale
        self._clock = clock
        self._entries: dict[int, _Entry] = {}
        self._pacers: dict[int, asyncio.Task[None]] = {}
        self._wakeups: dict[int, asyncio.Event] = {}
        self._last_edit: dict[int, float] = {}
        self._closed = False

    def attach(self, job_id: int, chat_id: int, message_id: int, shown: str) -> None:
        """The job's status message was just sent showing ``shown``."""
        entry = self._entry(job_id, chat_id, message_id)
        entry.message_id = message_id
        entry.shown = shown
        if entry.wanted is None:
            entry.wanted = shown
        self._kick(entry)

    def show(
        self,
        job_id: int,
        chat_id: int,
        text: str,
        markup: InlineKeyboardMarkup | None,
        *,
        final: bool = False,
        message_id: int | None = None,
    ) -> None:
        """The job's status message should now read ``text`` (HTML) with ``markup`` under it.

        message_id: the status message, if known from the job's stored context.
        final: no later text replaces this one (a late progress event is ignored).
        """
        entry = self._entry(job_id, chat_id, message_id)
        if entry.final and not final:
            return
        if entry.message_id is None:
            entry.message_id = message_id
        entry.wanted, entry.markup, entry.final = text, markup, final
        self._kick(entry)

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self, grace: float = 2.0) -> None:
        """Let pending edits go out for up to ``grace`` seconds, then stop."""
        self._closed = True
        tasks = list(self._pacers.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._pacers.clear()

    # ------------------------------------------------------------ internals
    def _entry(self, job_id: int, chat_id: int, message_id: int | None) -> _Entry:
        entry = self._entries.get(job_id)
        if entry is None:
            self._forget_stale()
            entry = _Entry(job_id, chat_id, message_id, created=self._clock())
            self._entries[job_id] = entry
        return entry

    def _forget_stale(self) -> None:
        # Final texts for messages that never became known (the "queued" reply failed).
        cutoff = self._clock() - FORGET_AFTER
        for job_id, entry in list(self._entries.items()):
            if entry.final and entry.message_id is None and entry.created < cutoff:
                del self._entries[job_id]

    def _kick(self, entry: _Entry) -> None:
        if self._closed:  # the bot is shutting down; the worker may still report progress
            return
        if not entry.behind:
            if entry.final and entry.message_id is not None:
                self._entries.pop(entry.job_id, None)  # done: nothing more will change
            return
        chat_id = entry.chat_id
        self._wakeups.setdefault(chat_id, asyncio.Event()).set()
        if chat_id not in self._pacers:
            self._pacers[chat_id] = asyncio.create_task(
                self._pace(chat_id), name=f"telegram-status-{chat_id}"
            )

    def _next(self, chat_id: int) -> _Entry | None:
        due = [e for e in self._entries.values() if e.chat_id == chat_id and e.behind]
        if not due:
            return None
        # Final texts first; otherwise the message edited longest ago (fair between jobs).
        return min(due, key=lambda e: (not e.final, e.last_edit, e.job_id))

    async def _pace(self, chat_id: int) -> None:
        wakeup = self._wakeups.setdefault(chat_id, asyncio.Event())
        interval = self._group_interval if chat_id < 0 else self._private_interval
        try:
            while True:
                wakeup.clear()
                entry = self._next(chat_id)
                if entry is None:
                    return
                if not entry.final or entry.failures:  # a failed final edit waits too
                    wait = self._last_edit.get(chat_id, float("-inf")) + interval - self._clock()
                    if wait > 0:
                        # A final text or a newer progress line may arrive meanwhile.
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(wakeup.wait(), wait)
                        continue
                await self._edit(entry)
                self._last_edit[chat_id] = self._clock()
        finally:
            if self._pacers.get(chat_id) is asyncio.current_task():
                del self._pacers[chat_id]
                self._wakeups.pop(chat_id, None)

    async def _edit(self, entry: _Entry) -> None:
        text, markup = entry.wanted, entry.markup
        assert text is not None and entry.message_id is not None
        entry.last_edit = self._clock()
        try:
            await self._bot.edit_message_text(
                text, chat_id=entry.chat_id, message_id=entry.message_id, reply_markup=markup
            )
        except BadRequest as error:
            reason = error.message.lower()
            if "message is not modified" not in reason:
                # Gone ("message to edit not found") or refused: nothing to gain by retrying.
                logger.warning("job %s: status edit refused: %s", entry.job_id, error.message)
            entry.shown = text
        except Forbidden as error:
            logger.warning("job %s: can't post in chat any more: %s", entry.job_id, error.message)
            entry.shown = text
        except TelegramError as error:  # network trouble, timeouts: try again after a pause
            entry.failures += 1
            logger.warning("job %s: status edit failed: %s", entry.job_id, error)
            if entry.failures >= MAX_EDIT_FAILURES:
                entry.shown = text
        else:
            entry.shown = text
            entry.failures = 0
        if entry.final and not entry.behind:
            self._entries.pop(entry.job_id, None)
