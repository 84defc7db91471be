"""`DiscordDelivery`: the core's `Delivery` port for Discord.

Each job has one *status card* (an embed) that follows it from the queue until its *track
message* (the MP3, mentioning the requester) or its failure (a new message that mentions the
requester, with 🔁 Try again where that may help) is posted; then the card is deleted, so a
song leaves one message. Two ways to talk to a message exist:

* the interaction's webhook token, while it lives (Discord: 15 minutes; we stop a minute
  early, by our own clock, so no request is ever made with an expired token) and until
  Discord first refuses it (401/50027 or 404/10015: a token can die before our clock says
  so). Requests through a token go one at a time, so a dead token costs one refused request,
  not one per waiting edit (Discord counts refusals towards an IP ban); and
* the bot token: ``PATCH``/``DELETE /channels/{id}/messages/{id}`` edit and remove the card,
  and a channel message carries the track.

The track goes through the bot token whenever the bot may post in the channel (``CAN_POST``,
judged when the job was asked for), even while the token lives: only a channel post carries a
``nonce`` (discord.py adds ``enforce_nonce``), so a post repeated after a crash returns the
message already made. A follow-up, which has no nonce, is used only where the bot can't post.

Tokens are kept in memory only. After a restart nothing is in memory: everything needed comes
from the job's destination (``chat_id`` = channel, ``scope_id`` = guild) and its context
(``status_message_id``, ``guild_name``, ``filesize_limit`` hint, ``interaction_id``,
``CAN_POST``).

Status edits are coalesced: at most one in flight per message, at most one per
``edit_interval``, always showing the newest state (Discord allows about 5 edits per 5 s per
channel), and a new phase only once it has stood ``settle`` seconds. ``on_event`` only
schedules them, so it returns at once and never raises. Commands never wait behind them:
their answers go through their own interaction's callback and webhook, other routes (and
rate-limit buckets) than the cards' edits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import tempfile
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import discord

from adapters.discord import embeds
from adapters.discord.embeds import Phase, Status, TrackCard
from adapters.discord.views import failure_view, status_view, track_view
from bot import messages
from bot.audio import PreparedTrack, prepare_for_upload
from bot.clock import utcnow
from bot.domain import Job
from bot.ports import DeliveryReceipt, EventKind, JobEvent

logger = logging.getLogger(__name__)

PLATFORM = "discord"
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # Discord's limit for an unboosted server
UPLOAD_ATTEMPTS = 3  # a 413 despite the limit we read: shrink and try again
NO_PINGS = discord.AllowedMentions.none()
FINISHED_REMEMBERED = 1000  # job ids whose final state we showed (late or relayed echoes)
CAN_POST = "bot_can_post"  # context: the bot may post the track in the channel itself
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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.interaction_ttl = interaction_ttl
        self.edit_interval = edit_interval
        self.settle = settle  # a state must stand this long before the card shows it
        # An ETA closer than this reads "any moment now": it never visibly runs out, even
        # when an edit must wait its turn (edit_interval) first.
        self.reword_before = max(reword_before, edit_interval + settle + 1.0)
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
                self.spawn(self._announce_failure(event.job, sentence, status), "discord-failed")
            elif status is not None:
                status.show(_status_of(event))
        except Exception:
            logger.exception("job %s: could not show %s", event.job.id, event.kind)

    async def deliver(self, job: Job, audio: Path) -> DeliveryReceipt:
        status = self._status_for(job)
        token = status.live_token() if status is not None else None
        if token is not None and not job.destination.context.get(CAN_POST):
            limit = token.interaction.filesize_limit  # the track goes as a follow-up
        else:
            limit = self._known_limit(job)
        with tempfile.TemporaryDirectory(prefix=f"discord-{job.id}-", dir=audio.parent) as tmp:
            for attempt in range(1, UPLOAD_ATTEMPTS + 1):
                prepared = await asyncio.to_thread(
                    prepare_for_upload,
                    audio,
                    limit_bytes=limit,
                    tags=embeds.track_tags(job, job.destination.context.get("guild_name")),
                    workdir=Path(tmp),
                )
                try:
                    message = await self._post_track(job, prepared, limit, status)
                    break
                except discord.HTTPException as exc:
                    if exc.status != 413 or attempt == UPLOAD_ATTEMPTS:
                        raise
                    # The limit we were told was too generous: aim well below what failed.
                    limit = prepared.size * 3 // 4
                    logger.warning("job %s: upload refused as too large; trying %d", job.id, limit)
        if status is not None:
            await status.retire(keep=message.id)  # the track is the song's one message
        logger.info("job %s posted to discord message %s", job.id, message.id)
        return DeliveryReceipt(str(message.id))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _announce_failure(
        self, job: Job, sentence: str, status: StatusMessage | None
    ) -> None:
        """The failure as a new message mentioning the requester (with 🔁 Try again where
        another attempt may work); the status card then goes. Where no new message can be
        posted (the bot may not post and the token is gone), the card says it instead."""
        content = embeds.failure_content(job, sentence)
        embed = embeds.failure_embed(job)
        view = (
            failure_view(job.id)
            if messages.worth_trying_again(job.error_code)
            else discord.ui.View()
        )
        pings = requester_only(job)
        message: discord.Message | None = None
        try:
            if job.destination.context.get(CAN_POST):
                with contextlib.suppress(discord.Forbidden):  # then the follow-up below
                    message = await self.channel(int(job.destination.chat_id), _guild_id(job)).send(
                        content=content,
                        embed=embed,
                        view=view,
                        allowed_mentions=pings,
                        nonce=f"acejam-{job.id}-failed",  # a relayed or repeated event: once
                    )
            token = status.live_token() if status is not None else None
            if message is None and token is not None:
                message = await token.call(
                    self.clock,
                    lambda: token.interaction.followup.send(
                        content, embed=embed, view=view, allowed_mentions=pings, wait=True
                    ),
                )
        except discord.HTTPException as exc:
            logger.warning(
                "job %s: could not post its failure: %s %s", job.id, exc.status, exc.code
            )
        if message is None:
            if status is not None:
                status.show(embeds.failed(sentence))
            return
        logger.info("job %s: failure posted as message %s", job.id, message.id)
        if status is not None:
            await status.retire(keep=message.id)

    # ------------------------------------------------------------ internals
    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def channel(self, channel_id: int, guild_id: int | None) -> discord.PartialMessageable:
        return self._client.get_partial_messageable(channel_id, guild_id=guild_id)

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
            guild_id=_guild_id(job),
            message_id=int(message_id),
            token=None,
        )
        return self._bind(rebuilt, job)

    def _known_limit(self, job: Job) -> int:
        """The upload limit without a live interaction: the guild's (discord.py's table by
        boost tier) and the last one an interaction told us, whichever is smaller."""
        known = []
        guild_id = _guild_id(job)
        guild = self._client.get_guild(guild_id) if guild_id is not None else None
        if guild is not None:
            known.append(guild.filesize_limit)
        hint = job.destination.context.get("filesize_limit")
        if isinstance(hint, int) and hint > 0:
            known.append(hint)
        return min(known) if known else DEFAULT_UPLOAD_LIMIT

    async def _post_track(
        self, job: Job, prepared: PreparedTrack, limit: int, status: StatusMessage | None
    ) -> discord.Message:
        picture_size = prepared.waveform_png.stat().st_size
        with_image = prepared.size + picture_size <= limit
        title = embeds.track_tags(job, None).title
        card = TrackCard(
            title=f"{title} (preview)" if prepared.is_preview else title,
            duration=prepared.duration,
            full_duration=prepared.full_duration,
            is_preview=prepared.is_preview,
            limit_bytes=limit,
            with_image=with_image,
        )

        def files() -> list[discord.File]:
            # New ones for each request: discord.py closes a request's files when it ends.
            found = [discord.File(prepared.path, filename=track_filename(card.title, job.id))]
            if with_image:
                found.append(discord.File(prepared.waveform_png, filename=embeds.WAVEFORM_NAME))
            return found

        embed = embeds.track_embed(job, card)

        async def follow_up(token: LiveToken) -> discord.Message | None:
            return await token.call(
                self.clock,
                lambda: token.interaction.followup.send(
                    embeds.fallback_content(job),
                    embed=embed,
                    files=files(),
                    view=track_view(job.id),
                    allowed_mentions=requester_only(job),
                    wait=True,
                ),
            )

        token = status.live_token() if status is not None else None  # checked just before use
        if token is not None and not job.destination.context.get(CAN_POST):
            sent = await follow_up(token)
            if sent is not None:
                return sent
            # The token died on the way: a post of the bot's own is the one way left.
        try:
            return await self._post_to_channel(job, embed, files())
        except discord.Forbidden as exc:
            # Permissions changed since the job was asked for: the follow-up needs none.
            token = status.live_token() if status is not None else None
            if token is None:
                raise
            logger.warning(
                "job %s: may not post in the channel (%s %s); using the interaction",
                job.id,
                exc.status,
                exc.code,
            )
            sent = await follow_up(token)
            if sent is None:
                raise
            return sent

    async def _post_to_channel(
        self,
        job: Job,
        embed: discord.Embed,
        files: list[discord.File],
    ) -> discord.Message:
        """The track as an ordinary bot message that mentions (and pings) only the requester;
        not a reply: the status card it would reply to goes once the track is there. The
        nonce makes a retried post after a crash return the message already sent instead of
        a second one (for a few minutes: Discord's window)."""
        guild_id = _guild_id(job)
        channel_id = int(job.destination.chat_id)
        return await self.channel(channel_id, guild_id).send(
            content=embeds.fallback_content(job),
            embed=embed,
            files=files,
            view=track_view(job.id),
            allowed_mentions=requester_only(job),
            nonce=f"acejam-{job.id}",
        )


def _status_of(event: JobEvent) -> Status:
    if event.kind == EventKind.QUEUED:
        return embeds.queued(event.position or 0, event.eta)
    if event.kind in (EventKind.STARTED, EventKind.PROGRESS):
        return embeds.running(event.progress, event.eta)
    if event.kind == EventKind.SUCCEEDED:
        return embeds.finishing()
    if event.kind == EventKind.CANCELLED:
        return embeds.cancelled(event.message or "Cancelled.")
    return embeds.failed(event.message or messages.failure_message(event.job.error_code))


def requester_only(job: Job) -> discord.AllowedMentions:
    """A message about a song notifies the one who asked for it, and nobody else."""
    return discord.AllowedMentions(
        everyone=False,
        roles=False,
        users=[discord.Object(int(job.destination.user_id))],
        replied_user=False,
    )


def _guild_id(job: Job) -> int | None:
    scope = job.destination.scope_id
    return int(scope) if scope and scope.isdigit() else None


def track_filename(title: str, job_id: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.casefold()).strip("-")[:60].strip("-")
    return f"{slug or 'acejam'}-{job_id}.mp3"
