"""The jam's messages in its thread (#16): the jam message, posted at start and edited in place
as people add and remove, and the announcements (rendering, voting open, the winner, a render
that failed, the next round). Also the core's :class:`bot.jams.ports.JamListener` for Discord.

Edits are coalesced per jam: the first change is shown at once, and changes within
``edit_interval`` of an edit wait for it to pass and become one edit of the jam as it is
then (Discord allows about five edits per five seconds in a channel). The jam message's id is
kept in the jam's context (``message_id``), so a restarted bot edits the same message; when
it is gone (deleted by a moderator) a new one is posted.

Announcements that the adapter already made while answering a command (``/jam render``,
``/jam close``, ``/jam next``) are not made again when the core's news of the same step
arrives.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import discord

from adapters.discord.jam_cards import announcement, jam_embed
from bot.jams.model import Jam, JamNews, JamNewsKind

logger = logging.getLogger(__name__)

PLATFORM = "discord"
MESSAGE_ID = "message_id"  # the jam's context: its jam message
NO_PINGS = discord.AllowedMentions.none()
ANNOUNCED_REMEMBERED = 500  # (jam, round, kind) already said


class JamReads(Protocol):
    """The part of the core's JamService the jam message needs."""

    async def get(self, jam_id: int) -> Jam | None: ...

    async def set_context(self, jam_id: int, **patch: Any) -> Jam | None: ...


def place_of(client: discord.Client, jam: Jam) -> discord.PartialMessageable:
    guild_id = int(jam.scope_id) if jam.scope_id.isdigit() else None
    return client.get_partial_messageable(int(jam.chat_id), guild_id=guild_id)


class JamPoster:
    """Posts and edits jams' messages; registered with the core as Discord's JamListener."""

    platform = PLATFORM

    def __init__(
        self,
        client: discord.Client,
        jams: JamReads,
        *,
        edit_interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._jams = jams
        self._interval = edit_interval
        self._clock = clock
        self._dirty: set[int] = set()
        self._running: dict[int, asyncio.Task[None]] = {}
        self._last_edit: dict[int, float] = {}
        self._announced: OrderedDict[tuple[int, int, str], None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._posting: set[int] = set()  # jams whose message is being posted

    # ------------------------------------------------------------ the JamListener port
    async def on_jam(self, news: JamNews) -> None:
        jam = news.jam
        if jam.platform != PLATFORM or self._closed:
            return  # closed: the core keeps its listeners; a stopped bot says nothing
        self.refresh(jam.id)
        if news.kind == JamNewsKind.CHANGED or not news.message:
            return
        if not self.first_time(jam, news.kind):
            return
        self.spawn(self._announce_logged(jam, news.message), "discord-jam-news")

    # ------------------------------------------------------------ used by the commands
    async def post(self, jam: Jam) -> int | None:
        """The jam message, in the jam's place; its id kept in the jam's context."""
        self._posting.add(jam.id)
        try:
            message = await place_of(self._client, jam).send(
                embed=jam_embed(jam), allowed_mentions=NO_PINGS
            )
            await self._jams.set_context(jam.id, **{MESSAGE_ID: str(message.id)})
        except discord.HTTPException as exc:
            logger.warning(
                "jam %s: could not post its message: %s %s", jam.id, exc.status, exc.code
            )
            return None
        finally:
            self._posting.discard(jam.id)
        self._last_edit[jam.id] = self._clock()
        if jam.id in self._dirty:  # changed while it was on its way: shown by the next edit
            self.refresh(jam.id)
        return message.id

    async def announce(self, jam: Jam, text: str) -> discord.Message:
        """A sentence about the jam, in its place, for everyone; names in it notify nobody."""
        return await place_of(self._client, jam).send(announcement(text), allowed_mentions=NO_PINGS)

    def first_time(self, jam: Jam, kind: JamNewsKind) -> bool:
        """Whether this step of this jam is told for the first time (and remember it)."""
        key = (jam.id, jam.round, str(kind))
        if key in self._announced:
            return False
        self._announced[key] = None
        while len(self._announced) > ANNOUNCED_REMEMBERED:
            self._announced.popitem(last=False)
        return True

    def refresh(self, jam_id: int) -> None:
        """Show the jam as it is now on its message, soon (coalesced with other changes)."""
        self._dirty.add(jam_id)
        if jam_id not in self._running:
            self._running[jam_id] = self.spawn(self._refresh(jam_id), "discord-jam-refresh")

    async def close(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------ internals
    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _announce_logged(self, jam: Jam, text: str) -> None:
        try:
            await self.announce(jam, text)
        except discord.HTTPException as exc:
            logger.warning("jam %s: could not announce: %s %s", jam.id, exc.status, exc.code)

    async def _refresh(self, jam_id: int) -> None:
        try:
            while jam_id in self._dirty:
                wait = self._last_edit.get(jam_id, float("-inf")) + self._interval - self._clock()
                if wait > 0:
                    await asyncio.sleep(wait)  # Discord's pace for edits, not a guess
                self._dirty.discard(jam_id)
                try:
                    await self._edit(jam_id)
                except Exception:
                    logger.exception("jam %s: could not show its changes", jam_id)
                self._last_edit[jam_id] = self._clock()
        finally:
            self._running.pop(jam_id, None)

    async def _edit(self, jam_id: int) -> None:
        jam = await self._jams.get(jam_id)
        if jam is None:
            return
        message_id = jam.context.get(MESSAGE_ID)
        if message_id is None:
            if jam.id in self._posting:
                self._dirty.add(jam.id)  # the start is posting it: shown after that
            elif jam.state.is_open:
                # A start cut short (a restart between the thread and the message).
                await self.post(jam)
            return
        message = place_of(self._client, jam).get_partial_message(int(message_id))
        try:
            await message.edit(embed=jam_embed(jam), allowed_mentions=NO_PINGS)
        except discord.NotFound:
            logger.info("jam %s: its message %s is gone; posting it again", jam.id, message_id)
            await self.post(jam)
