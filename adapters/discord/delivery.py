"""`DiscordDelivery`: the core's `Delivery` port for Discord.

Each job has one *status card* (an embed, :mod:`adapters.discord.cards`) that follows it from
the queue until its *track message* (the MP3, mentioning the requester) or its failure (a new
message that mentions the requester, with 🔁 Try again where that may help) is posted
(:mod:`adapters.discord.posting`); then the card is deleted, so a song leaves one message. The
track is fitted to the channel's upload limit by the core's :class:`~bot.delivery.DeliveryPipeline`;
this adapter only says what the limit is and posts it. Two ways to talk to a message exist: the
interaction's webhook token, while it lives, and the bot token.

Tokens are kept in memory only. After a restart nothing is in memory: everything needed comes
from the job's destination (``chat_id`` = channel, ``scope_id`` = guild) and its context
(``status_message_id``, ``guild_name``, ``filesize_limit`` hint, ``interaction_id``,
``CAN_POST``).

``on_event`` only schedules card edits, so it returns at once and never raises. Commands never
wait behind them: their answers go through their own interaction's callback and webhook, other
routes (and rate-limit buckets) than the cards' edits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Protocol

import discord

from adapters.discord import embeds
from adapters.discord.cards import NO_PINGS, LiveToken, StatusMessage, status_of
from adapters.discord.embeds import Status
from adapters.discord.posting import (
    CAN_POST,
    MAX_REQUEST_BYTES,
    PLATFORM,
    TrackPost,
    announce_failure,
    guild_id_of,
)
from adapters.discord.views import status_view
from bot import messages
from bot.delivery import DeliveryPipeline
from bot.domain import Job, Task
from bot.errors import DeliveryRefused
from bot.jams.model import JamTakeRef
from bot.ports import DeliveryReceipt, EventKind, JobEvent, TrackFile

logger = logging.getLogger(__name__)

UNKNOWN_CHANNEL = 10003  # Discord's error code: the channel (or thread) was deleted
FINISHED_REMEMBERED = 1000  # job ids whose final state we showed (late or relayed echoes)

__all__ = ["CAN_POST", "PLATFORM", "DiscordDelivery", "StatusMessage"]


class JamTakes(Protocol):
    """Which jobs are a jam's takes (#16), and telling the jam one was posted."""

    async def take_of(self, job_id: int) -> JamTakeRef | None: ...

    def take_posted(self, ref: JamTakeRef) -> None: ...


class DiscordDelivery:
    """Posts progress and tracks for jobs that came from Discord."""

    platform = PLATFORM

    def __init__(
        self,
        client: discord.Client,
        *,
        interaction_ttl: float = 14 * 60.0,
        edit_interval: float = 2.0,
        settle: float = 1.0,
        reword_before: float = 5.0,
        request_limit: int = MAX_REQUEST_BYTES,
        clock: Callable[[], float] = time.monotonic,
        edits_offered: Callable[[], frozenset[Task]] = frozenset,
        edit_models: Callable[[], Mapping[Task, str]] = dict,
        jams: JamTakes | None = None,
    ) -> None:
        """``edits_offered`` and ``edit_models``: the core's, read when a track is posted
        (➕ under it where extending is offered, an edit's own model named on its card);
        ``jams``: a jam's take gets its 🗳 vote button instead of a song's buttons."""
        self.client = client
        self.jams = jams
        self.edits_offered = edits_offered
        self.edit_models = edit_models
        self.interaction_ttl = interaction_ttl
        self.edit_interval = edit_interval
        self.settle = settle  # a state must stand this long before the card shows it
        # An ETA closer than this reads "any moment now": it never visibly runs out, even
        # when an edit must wait its turn (edit_interval) first.
        self.reword_before = max(reword_before, edit_interval + settle + 1.0)
        self.request_limit = request_limit  # what one message's files may have together
        self.clock = clock
        self._by_job: dict[int, StatusMessage] = {}
        self._pending: dict[str, StatusMessage] = {}  # interaction id → before submit answers
        self._finished: OrderedDict[int, None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ used by the commands
    def open(self, interaction: discord.Interaction[Any], message_id: int | None) -> StatusMessage:
        """Start tracking the status message of an interaction about to submit a job.

        Registered *before* submitting, because the worker may report on the job before
        ``submit`` returns; ``on_event`` finds it through the job's ``interaction_id``."""
        status = StatusMessage(
            self,
            channel_id=interaction.channel_id or 0,
            guild_id=interaction.guild_id,
            message_id=message_id,
            token=LiveToken(interaction, self.clock() + self.interaction_ttl),
            interaction_id=str(interaction.id),
        )
        self._pending[str(interaction.id)] = status
        return status

    def bind(self, status: StatusMessage, job: Job, first: Status) -> StatusMessage:
        """The job exists: show ``first`` unless an event already brought news."""
        bound = self._bind(status, job)
        if bound.wanted is None:
            bound.show(first)
        return bound

    def abandon(self, status: StatusMessage) -> None:
        if status.interaction_id is not None:
            self._pending.pop(status.interaction_id, None)

    def forget(self, status: StatusMessage) -> None:
        job_id = status.job_id
        if job_id is None:
            return
        if self._by_job.get(job_id) is status:
            del self._by_job[job_id]
        self._finished[job_id] = None
        while len(self._finished) > FINISHED_REMEMBERED:
            self._finished.popitem(last=False)

    async def post_status(self, status: StatusMessage) -> int:
        """Post the status message as a follow-up (for a button press, which has no
        "thinking" message to fill) and return its id."""
        assert status.job is not None and status.token is not None and status.wanted is not None
        shown = status.wanted
        job_id = status.job.id
        embed = embeds.status_embed(status.job, shown)
        token = status.token
        message: discord.Message | None = await token.call(
            self.clock,
            lambda: token.interaction.followup.send(
                embed=embed,
                view=status_view(job_id) if shown.cancellable else discord.ui.View(),
                allowed_mentions=NO_PINGS,
                wait=True,
            ),
        )
        if message is None:  # the token is dead already: a post of the bot's own
            message = await self.channel(status.channel_id, status.guild_id).send(
                embed=embed,
                view=status_view(job_id) if shown.cancellable else discord.ui.View(),
                allowed_mentions=NO_PINGS,
            )
        status.placed(message.id, shown)
        return message.id

    # ------------------------------------------------------------ the Delivery port
    async def on_event(self, event: JobEvent) -> None:
        if event.job.id in self._finished:
            return  # its message already has its last word (e.g. a relayed copy of an event)
        try:
            status = self._status_for(event.job)
            if event.kind == EventKind.FAILED:
                # A new message that reaches the requester; an edit would notify nobody.
                self._finished[event.job.id] = None
                sentence = event.message or messages.failure_message(event.job.error_code)
                self.spawn(announce_failure(self, event.job, sentence, status), "discord-failed")
            elif status is not None:
                status.show(status_of(event))
        except Exception:
            logger.exception("job %s: could not show %s", event.job.id, event.kind)

    async def deliver(self, job: Job, tracks: Sequence[TrackFile]) -> DeliveryReceipt:
        """The core's pipeline fits the track to the limit and has :class:`TrackPost` post it."""
        post = TrackPost(self, self._status_for(job))
        try:
            return await DeliveryPipeline(post).deliver(job, tracks)
        except discord.Forbidden as exc:
            # The channel is closed to the bot, and the interaction's token (the one way
            # that needs no permission) is dead or was tried: no retry will get through.
            raise DeliveryRefused(exc.text or "Forbidden", code="chat_gone") from exc
        except discord.NotFound as exc:
            if exc.code != UNKNOWN_CHANNEL:
                raise
            raise DeliveryRefused(exc.text or "Unknown Channel", code="chat_gone") from exc

    async def jam_take(self, job: Job) -> JamTakeRef | None:
        """The jam take ``job`` is, if any (only jobs a jam queued carry ``jam_id``)."""
        if self.jams is None or "jam_id" not in job.destination.context:
            return None
        return await self.jams.take_of(job.id)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------ internals
    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def channel(self, channel_id: int, guild_id: int | None) -> discord.PartialMessageable:
        return self.client.get_partial_messageable(channel_id, guild_id=guild_id)

    def _bind(self, status: StatusMessage, job: Job) -> StatusMessage:
        existing = self._by_job.get(job.id)
        if existing is not None and existing is not status:
            return existing
        if status.interaction_id is not None:
            self._pending.pop(status.interaction_id, None)
        self._by_job[job.id] = status
        status.attach(job)
        return status

    def _status_for(self, job: Job) -> StatusMessage | None:
        """The job's status message: in memory, pending its submit, or (after a restart)
        rebuilt from the job's context — without a token, so through the bot token."""
        found = self._by_job.get(job.id)
        if found is not None:
            found.job = job  # newer facts (seed used, progress) for the next render
            return found
        context = job.destination.context
        pending = self._pending.get(str(context.get("interaction_id")))
        if pending is not None:
            return self._bind(pending, job)
        message_id = context.get("status_message_id")
        if message_id is None:
            return None
        rebuilt = StatusMessage(
            self,
            channel_id=int(job.destination.chat_id),
            guild_id=guild_id_of(job),
            message_id=int(message_id),
            token=None,
        )
        return self._bind(rebuilt, job)
