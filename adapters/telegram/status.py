"""Status cards ("queued — position 2", "making your song — 40%"), edited only when it helps.

The worker may report progress many times a second; a chat takes about one message a second
(20 a minute in a group) and editing counts, and people's answers need that budget more. So a
:class:`StatusBoard` keeps, per job, how to render what its card should say, and one pacer task
per chat edits the cards that are behind:

* the text is rendered when the edit goes out, so it is never older than the send;
* a card shows each text for at least ``interval`` seconds (no edit overwrites "Queued"
  before anyone could read it), and a chat gets at most one progress edit per ``interval``;
* progress edits ask the :class:`~adapters.telegram.flood.FloodGate` for spare room only
  (:attr:`Priority.PROGRESS`, leaving a send free for each card still to become a track); when
  there is none they are skipped and tried again later with whatever is newest;
* an estimate ("ready in about 40 s") is rendered again before it runs out;
* an edit to the text already shown is never sent; final texts (cancelled) go first.

When the track is posted the card is deleted (:meth:`StatusBoard.retire`): one song leaves one
message. A job's card id may arrive after its first events (the worker is fast, the "queued"
reply is not): :meth:`StatusBoard.show` keeps the renderer until :meth:`attach` names the card.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from telegram import Bot, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, TelegramError

from adapters.telegram.flood import FloodDeferred, Priority, sending
from bot.clock import utcnow

logger = logging.getLogger(__name__)

GROUP_INTERVAL = 4.0  # seconds between progress edits in a group (its limit is 20 a minute)
PRIVATE_INTERVAL = 2.0  # in a private chat (about one message a second)
MAX_EDIT_FAILURES = 3
FORGET_AFTER = 3600.0  # drop a finished entry whose message never became known
RETIRED_REMEMBERED = 1000  # jobs whose card went: one attached late goes at once

Render = Callable[[], str]


@dataclass
class _Entry:
    job_id: int
    chat_id: int
    message_id: int | None
    created: float
    render: Render | None = None  # what the card should say, built when asked
    markup: InlineKeyboardMarkup | None = None
    shown: str | None = None  # the text on screen, as we sent it
    shown_at: float = 0.0  # when it went on screen
    final: bool = False
    frozen: bool = False  # the track is on its way: no more progress edits
    eta: datetime | None = None  # an estimate the text shows, to be refreshed before it passes
    refresh_at: float | None = None  # monotonic: render again then
    not_before: float = 0.0  # the flood gate had no room until then
    dirty: bool = False  # something new to say (an event, or an estimate running out)
    version: int = 0  # counts show() calls: one during an edit keeps the entry dirty
    failures: int = 0

    @property
    def active(self) -> bool:
        """A card that will still become a track or a failure notice."""
        return not self.final


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
        self._chores: set[asyncio.Task[None]] = set()  # card deletions in flight
        self._retired: OrderedDict[int, None] = OrderedDict()
        self._expiring: set[asyncio.Task[None]] = set()  # personal answers to tidy away
        self._closed = False

    def attach(self, job_id: int, chat_id: int, message_id: int, shown: str) -> None:
        """The job's card was just sent showing ``shown``."""
        if job_id in self._retired:  # the song was done before its card was even sent
            self._spawn_delete(job_id, chat_id, message_id)
            return
        entry = self._entry(job_id, chat_id, message_id)
        entry.message_id = message_id
        entry.shown, entry.shown_at = shown, self._clock()
        self._kick(entry)

    def show(
        self,
        job_id: int,
        chat_id: int,
        render: Render,
        markup: InlineKeyboardMarkup | None,
        *,
        final: bool = False,
        message_id: int | None = None,
        eta: datetime | None = None,
    ) -> None:
        """The job's card should now read ``render()`` (HTML) with ``markup`` under it.

        message_id: the card, if known from the job's stored context.
        final: no later text replaces this one (a late progress event is ignored).
        eta: the moment an estimate in the text runs out; it is rendered again before.
        """
        entry = self._entry(job_id, chat_id, message_id)
        if entry.final or (entry.frozen and not final):
            return
        if entry.message_id is None:
            entry.message_id = message_id
        entry.render, entry.markup, entry.final, entry.eta = render, markup, final, eta
        entry.refresh_at = self._next_refresh(entry)
        entry.dirty = True
        entry.version += 1
        self._kick(entry)

    def freeze(self, job_id: int) -> None:
        """The song is made and its track is on the way: editing the card now would only
        cost a send that is deleted a moment later."""
        entry = self._entries.get(job_id)
        if entry is not None:
            entry.frozen = True

    def retire(self, job_id: int, chat_id: int, message_id: int | None) -> None:
        """The card's job now has a message of its own (its track, a failure notice):
        delete the card, in the background (deleting is not flood-limited). A card that
        can't be deleted (older than 48 hours) is left as it is."""
        entry = self._entries.pop(job_id, None)
        self._retired[job_id] = None
        while len(self._retired) > RETIRED_REMEMBERED:
            self._retired.popitem(last=False)
        if message_id is None and entry is not None:
            message_id = entry.message_id
        if message_id is not None:
            self._spawn_delete(job_id, chat_id, message_id)

    def _spawn_delete(self, job_id: int, chat_id: int, message_id: int) -> None:
        if self._closed:
            return
        task = asyncio.create_task(self._delete(job_id, chat_id, message_id))
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    def delete_later(self, chat_id: int, message_id: int, delay: float) -> None:
        """Delete a message after ``delay`` seconds (a personal answer in a group). Those
        still waiting when the bot stops stay in the chat."""
        if self._closed:
            return
        task = asyncio.create_task(self._delete_after(chat_id, message_id, delay))
        self._expiring.add(task)
        task.add_done_callback(self._expiring.discard)

    async def _delete_after(self, chat_id: int, message_id: int, delay: float) -> None:
        await asyncio.sleep(delay)
        await self._delete(0, chat_id, message_id)

    def active_cards(self, chat_id: int) -> int:
        """Cards in the chat that will still turn into a track or a failure notice."""
        return sum(1 for e in self._entries.values() if e.chat_id == chat_id and e.active)

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self, grace: float = 2.0) -> None:
        """Let pending edits and deletions go out for up to ``grace`` seconds, then stop."""
        self._closed = True
        for expiring in self._expiring:
            expiring.cancel()
        for wakeup in self._wakeups.values():
            wakeup.set()  # pacers with only progress left stop now
        tasks = [*self._pacers.values(), *self._chores]
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
        # Entries whose card never became known (the "queued" reply failed).
        cutoff = self._clock() - FORGET_AFTER
        for job_id, entry in list(self._entries.items()):
            if entry.message_id is None and entry.created < cutoff:
                del self._entries[job_id]

    def _interval(self, chat_id: int) -> float:
        return self._group_interval if chat_id < 0 else self._private_interval

    def _next_refresh(self, entry: _Entry) -> float | None:
        """When an estimate in the text should be said again: halfway to it while it is far,
        then as it runs out (the text then says "any moment now")."""
        if entry.eta is None:
            return None
        left = (entry.eta - utcnow()).total_seconds()
        if left <= 0:
            return None
        step = left / 2 if left > 4 * self._interval(entry.chat_id) else left
        return self._clock() + step

    def _kick(self, entry: _Entry) -> None:
        if self._closed:  # the bot is shutting down; the worker may still report progress
            return
        if entry.message_id is None or entry.render is None:
            return
        chat_id = entry.chat_id
        self._wakeups.setdefault(chat_id, asyncio.Event()).set()
        if chat_id not in self._pacers:
            self._pacers[chat_id] = asyncio.create_task(
                self._pace(chat_id), name=f"telegram-status-{chat_id}"
            )

    def _due(self, entry: _Entry, now: float) -> float | None:
        """When the entry's card should be edited next (None: nothing to do)."""
        if entry.message_id is None or entry.render is None or (entry.frozen and not entry.final):
            return None
        if entry.refresh_at is not None and entry.refresh_at <= now:
            entry.refresh_at = self._next_refresh(entry)
            entry.dirty = True
        if entry.final:
            return now if not entry.failures else entry.shown_at + self._interval(entry.chat_id)
        interval = self._interval(entry.chat_id)
        # A card shows each text for at least an interval; the chat gets one edit per interval.
        return max(
            entry.shown_at + interval,
            self._last_edit.get(entry.chat_id, float("-inf")) + interval,
            entry.not_before,
        )

    def _next(self, chat_id: int, now: float) -> tuple[_Entry | None, float | None]:
        """The entry to edit now, or None and how long until one may be due."""
        best: tuple[float, bool, int, _Entry] | None = None
        wake: float | None = None
        for entry in self._entries.values():
            if entry.chat_id != chat_id:
                continue
            due = self._due(entry, now)
            if due is None:
                # Nothing to show for it (a frozen card: its track is on the way), so its
                # refresh can't wake us: a refresh time already past would never move on,
                # and waiting 0 s for it spun the event loop (starving the track's decode).
                continue
            if entry.refresh_at is not None:
                wake = entry.refresh_at if wake is None else min(wake, entry.refresh_at)
            if not self._behind(entry):
                continue
            # Final texts first; otherwise the card edited longest ago (fair between jobs).
            key = (0.0 if entry.final else due, not entry.final, entry.job_id, entry)
            if best is None or key[:3] < best[:3]:
                best = key
        if best is None:
            return None, None if wake is None else max(0.0, wake - now)
        due, entry = best[0], best[3]
        if due <= now:
            return entry, None
        until = due - now if wake is None else min(due, wake) - now
        return None, max(0.0, until)

    @staticmethod
    def _behind(entry: _Entry) -> bool:
        if not entry.dirty or entry.render is None:
            return False
        if entry.render() == entry.shown:
            entry.dirty = False
            return False
        return True

    async def _pace(self, chat_id: int) -> None:
        wakeup = self._wakeups.setdefault(chat_id, asyncio.Event())
        try:
            while True:
                wakeup.clear()
                now = self._clock()
                entry, wait = self._next(chat_id, now)
                if entry is None:
                    if wait is None or self._closed:
                        return
                    # A final text or a newer progress line may arrive meanwhile.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wakeup.wait(), wait)
                    continue
                if self._closed and not entry.final:
                    return
                await self._edit(entry)
        finally:
            if self._pacers.get(chat_id) is asyncio.current_task():
                del self._pacers[chat_id]
                self._wakeups.pop(chat_id, None)

    async def _edit(self, entry: _Entry) -> None:
        assert entry.render is not None and entry.message_id is not None
        text, markup = entry.render(), entry.markup  # as of now, not as of the event
        version = entry.version
        chat_id = entry.chat_id
        priority = Priority.DELIVERY if entry.final else Priority.PROGRESS
        try:
            # Progress leaves one send free for each card still to become a track.
            with sending(priority, keep_free=self.active_cards(chat_id)):
                await self._bot.edit_message_text(
                    text, chat_id=chat_id, message_id=entry.message_id, reply_markup=markup
                )
        except FloodDeferred as deferred:  # no room to spare: try later, with newer text
            entry.not_before = self._clock() + deferred.wait
            return
        except BadRequest as error:
            reason = error.message.lower()
            if "message is not modified" not in reason:
                # Gone ("message to edit not found") or refused: nothing to gain by retrying.
                logger.warning("job %s: status edit refused: %s", entry.job_id, error.message)
            self._shown(entry, text, version)
        except Forbidden as error:
            logger.warning("job %s: can't post in chat any more: %s", entry.job_id, error.message)
            self._shown(entry, text, version)
        except TelegramError as error:  # network trouble, timeouts: try again after a pause
            entry.failures += 1
            entry.shown_at = self._clock()
            logger.warning("job %s: status edit failed: %s", entry.job_id, error)
            if entry.failures >= MAX_EDIT_FAILURES:
                self._shown(entry, text, version)
        else:
            self._shown(entry, text, version)
            entry.failures = 0
        self._last_edit[chat_id] = self._clock()

    def _shown(self, entry: _Entry, text: str, version: int) -> None:
        entry.shown, entry.shown_at = text, self._clock()
        if entry.version != version:  # newer text arrived while the edit was on its way
            return  # (a final text among it: the card must still be edited to it)
        entry.dirty = False
        if entry.final and self._entries.get(entry.job_id) is entry:
            del self._entries[entry.job_id]  # nothing more will change

    async def _delete(self, job_id: int, chat_id: int, message_id: int) -> None:
        try:
            await self._bot.delete_message(chat_id, message_id)
        except TelegramError as error:  # too old to delete, or already gone: leave it
            logger.info("job %s: status card %s not deleted: %s", job_id, message_id, error)
