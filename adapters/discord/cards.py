"""A Discord job's *status card*: the embed that follows a job from the queue until its track
or its failure is posted, and then goes (one song leaves one message).

A card is edited through the interaction's webhook token while it lives (Discord: 15 minutes;
we stop a minute early, by our own clock, so no request is ever made with an expired token)
and until Discord first refuses it (401/50027 or 404/10015: a token can die before our clock
says so). Requests through a token go one at a time, so a dead token costs one refused request,
not one per waiting edit (Discord counts refusals towards an IP ban). Otherwise the bot token's
``PATCH``/``DELETE /channels/{id}/messages/{id}`` edit and remove it.

Edits are coalesced: at most one in flight per message, at most one per ``edit_interval``,
always showing the newest state (Discord allows about 5 edits per 5 s per channel), and a new
phase only once it has stood ``settle`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import discord

from adapters.discord import embeds
from adapters.discord.embeds import Phase, Status
from adapters.discord.views import status_view
from bot import messages
from bot.clock import utcnow
from bot.domain import Job
from bot.ports import EventKind, JobEvent

if TYPE_CHECKING:
    from adapters.discord.delivery import DiscordDelivery

logger = logging.getLogger(__name__)

NO_PINGS = discord.AllowedMentions.none()
# (HTTP status, Discord code) meaning the token itself is dead: Invalid Webhook Token (expired)
# and Unknown Webhook. Not Unknown Message (10008): that one is about the message.
DEAD_TOKEN = frozenset({(401, 50027), (404, 10015)})

T = TypeVar("T")


@dataclass
class LiveToken:
    """An interaction whose webhook token may still be used (memory only, never stored)."""

    interaction: discord.Interaction[Any]
    usable_until: float  # on the delivery's clock
    refused: bool = False  # Discord called it dead once: it is never tried again
    _turn: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def usable(self, now: float) -> bool:
        return not self.refused and now < self.usable_until

    async def call(
        self, clock: Callable[[], float], request: Callable[[], Awaitable[T]]
    ) -> T | None:
        """``request()`` through the token, or None when the token may not be used (expired
        by ``clock``, or refused by Discord now or before). One request at a time: those
        queued behind a refused one see the refusal and never go."""
        async with self._turn:
            if not self.usable(clock()):
                return None
            try:
                return await request()
            except discord.HTTPException as exc:
                if (exc.status, exc.code) not in DEAD_TOKEN:
                    raise
                self.refused = True
                logger.warning(
                    "interaction %s: Discord refused its token (%s %s); using the bot's own",
                    self.interaction.id,
                    exc.status,
                    exc.code,
                )
                return None


class StatusMessage:
    """One job's status card. ``show()`` records the newest state; a single pump task edits
    the card to it, skipping states that were superseded meanwhile. Once the track (or a
    failure) is posted, ``retire()`` removes the card: one song leaves one message.

    No edit a reader can't see: a new phase is shown once it has stood ``settle`` seconds (a
    song that starts at once never shows "Queued", one posted at once never "Finished"), and
    nothing is edited once the card is retiring. An ETA shown as a counting Discord
    timestamp is reworded ("any moment now") before it would run out."""

    def __init__(
        self,
        owner: DiscordDelivery,
        *,
        channel_id: int,
        guild_id: int | None,
        message_id: int | None,
        token: LiveToken | None,
        interaction_id: str | None = None,
    ) -> None:
        self._owner = owner
        self.channel_id = channel_id
        self.guild_id = guild_id
        self.message_id = message_id
        self.token = token
        self.interaction_id = interaction_id
        self.job: Job | None = None  # None until submit (or an early event) names the job
        self.wanted: Status | None = None
        self.shown: Rendered | None = None
        self.gone = False  # deleted by someone: stop editing
        self.retired = False  # the track or failure is posted: the card goes, no more edits
        self._pump_task: asyncio.Task[None] | None = None
        self._last_edit = float("-inf")
        self._phase_since: float | None = None  # when the wanted state's phase began
        self._news = asyncio.Event()  # a new state while the pump waits to refresh an ETA
        self._editing = asyncio.Lock()  # held during an edit; retire() waits for it

    def live_token(self) -> LiveToken | None:
        if self.token is not None and self.token.usable(self._owner.clock()):
            return self.token
        return None

    def show(self, status: Status) -> None:
        current = self.wanted
        if current is not None and (current.phase == Phase.FINAL or status.phase < current.phase):
            return  # a job's message never goes backwards, and its last word stays
        if current is None or status.phase != current.phase:
            self._phase_since = self._owner.clock()
        self.wanted = status
        self._news.set()
        self._kick()

    def placed(self, message_id: int, shown: Status) -> None:
        """The message was just posted showing ``shown``."""
        self.message_id = message_id
        self.shown = self._render(shown)
        self._last_edit = self._owner.clock()
        self._kick()

    def attach(self, job: Job) -> None:
        self.job = job
        self._kick()

    def _kick(self) -> None:
        ready = self.message_id is not None and self.job is not None
        if ready and not (self.gone or self.retired) and self._pump_task is None:
            self._pump_task = self._owner.spawn(self._pump(), f"discord-status-{self.job_id}")

    @property
    def job_id(self) -> int | None:
        return self.job.id if self.job else None

    def _render(self, status: Status) -> Rendered:
        assert self.job is not None
        eta_shown = status.eta is not None and (
            (status.eta - utcnow()).total_seconds() > self._owner.reword_before
        )
        return Rendered(
            embeds.status_embed(self.job, status, eta_shown=eta_shown), status.cancellable
        )

    def _refresh_in(self) -> float | None:
        """Seconds until the shown ETA must be reworded, or None if it needn't be."""
        status = self.wanted
        if status is None or status.eta is None:
            return None
        left = (status.eta - utcnow()).total_seconds() - self._owner.reword_before
        return left if left > 0 else None

    async def _pump(self) -> None:
        try:
            while self.wanted is not None and not (self.gone or self.retired):
                if self._render(self.wanted) == self.shown:
                    wait = self._refresh_in()
                    if wait is None:
                        return
                    self._news.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._news.wait(), wait)
                    continue
                now = self._owner.clock()
                since = self._phase_since if self._phase_since is not None else now
                delay = max(self._last_edit + self._owner.edit_interval, since + self._owner.settle)
                if delay - now > 0:
                    await asyncio.sleep(delay - now)
                async with self._editing:
                    if self.gone or self.retired:
                        return
                    rendered = self._render(self.wanted)  # the newest, as it reads now
                    await self._edit(rendered)
                    self.shown = rendered
                    self._last_edit = self._owner.clock()
        finally:
            self._pump_task = None
            wanted = self.wanted
            final = wanted is not None and wanted.phase == Phase.FINAL
            if self.gone or (final and wanted is not None and self._render(wanted) == self.shown):
                self._owner.forget(self)

    async def _edit(self, rendered: Rendered) -> None:
        assert self.job is not None and self.message_id is not None
        embed = rendered.embed
        view = status_view(self.job.id) if rendered.cancellable else None
        token = self.live_token()
        message_id = self.message_id
        try:
            if token is not None:
                edited = await token.call(
                    self._owner.clock,
                    lambda: token.interaction.followup.edit_message(
                        message_id, embed=embed, view=view, allowed_mentions=NO_PINGS
                    ),
                )
                if edited is not None:
                    return
            # No token (expired, refused, or none after a restart): the bot's own.
            message = self._owner.channel(self.channel_id, self.guild_id).get_partial_message(
                message_id
            )
            await message.edit(embed=embed, view=view, allowed_mentions=NO_PINGS)
        except discord.NotFound:
            logger.info("job %s: status message %s is gone", self.job.id, self.message_id)
            self.gone = True
        except discord.HTTPException as exc:
            # Best effort: the next state tries again; the track still gets delivered.
            logger.warning("job %s: status edit failed: %s %s", self.job.id, exc.status, exc.code)

    async def retire(self, *, keep: int | None) -> None:
        """The song's own message is posted: stop editing and delete the card, unless the
        card *is* that message (``keep``: a follow-up that filled the "thinking" message)."""
        self.retired = True
        self._news.set()
        async with self._editing:  # an edit in flight lands first, then never another
            pass
        if self._pump_task is not None:
            self._pump_task.cancel()
        self._owner.forget(self)
        message_id = self.message_id
        if message_id is None or message_id == keep or self.gone:
            return
        token = self.live_token()
        try:
            if token is not None:

                async def delete() -> bool:
                    await token.interaction.followup.delete_message(message_id)
                    return True

                if await token.call(self._owner.clock, delete):
                    return
            await (
                self._owner.channel(self.channel_id, self.guild_id)
                .get_partial_message(message_id)
                .delete()
            )
        except discord.NotFound:
            pass  # someone removed it already (or an earlier attempt did)
        except discord.HTTPException as exc:
            logger.warning(
                "job %s: could not remove status message: %s %s", self.job_id, exc.status, exc.code
            )


@dataclass(frozen=True)
class Rendered:
    """What a status card shows; equal renderings need no edit."""

    embed: discord.Embed  # compared field by field (discord.Embed.__eq__)
    cancellable: bool


def status_of(event: JobEvent) -> Status:
    if event.kind == EventKind.QUEUED:
        return embeds.queued(event.position or 0, event.eta)
    if event.kind in (EventKind.STARTED, EventKind.PROGRESS):
        return embeds.running(event.progress, event.eta)
    if event.kind == EventKind.SUCCEEDED:
        return embeds.finishing()
    if event.kind == EventKind.CANCELLED:
        return embeds.cancelled(event.message or "Cancelled.")
    return embeds.failed(event.message or messages.failure_message(event.job.error_code))
