"""Posting on Discord: a finished track (:class:`TrackPost`, the platform's part of the core's
delivery pipeline) and a failed song's notice (:func:`announce_failure`).

The track goes through the bot token whenever the bot may post in the channel (``CAN_POST``,
judged when the job was asked for), even while the interaction's token lives: only a channel
post carries a ``nonce`` (discord.py adds ``enforce_nonce``), so a post repeated after a crash
returns the message already made. A follow-up, which has no nonce, is used only where the bot
can't post.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import discord

from adapters.discord import embeds
from adapters.discord.cards import LiveToken, StatusMessage
from adapters.discord.embeds import TrackCard
from adapters.discord.jam_cards import take_content, take_failed
from adapters.discord.jam_votes import vote_view
from adapters.discord.lineage import edit_model
from adapters.discord.takes import take_filename, takes_embed, takes_view
from adapters.discord.views import failure_view, track_view
from bot import messages
from bot.audio import PreparedTrack, TrackTags
from bot.delivery import FittedTake, UploadLimits
from bot.domain import Job, Task
from bot.jams.model import JamTakeRef
from bot.ports import DeliveryReceipt

if TYPE_CHECKING:
    from adapters.discord.delivery import DiscordDelivery

logger = logging.getLogger(__name__)

PLATFORM = "discord"
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # Discord's limit for an unboosted server
UPLOAD_ATTEMPTS = 3  # a 413 despite the limit we read: shrink and try again
# Create Message: "The maximum request size when sending a message is 25 MiB" (Discord's
# docs), whatever each file's limit; a server that takes bigger files takes one at least.
# The message's JSON and the multipart framing count too: a little is left for them.
MAX_REQUEST_BYTES = 25 * 1024 * 1024
REQUEST_OVERHEAD = 256 * 1024
CAN_POST = "bot_can_post"  # context: the bot may post the track in the channel itself
NO_PINGS = discord.AllowedMentions.none()


class TrackPost:
    """One job's track, posted to its channel: the :class:`~bot.delivery.TrackPoster` the
    core's pipeline calls. ``status`` is the job's card as the delivery began (its live
    token, if any, may carry the track), kept to the end so the card it retires is that one."""

    platform = PLATFORM

    def __init__(self, owner: DiscordDelivery, status: StatusMessage | None) -> None:
        self._owner = owner
        self._status = status

    def _token(self) -> LiveToken | None:
        return self._status.live_token() if self._status is not None else None

    def upload_limits(self, job: Job) -> UploadLimits:
        token = self._token()
        if token is not None and not job.destination.context.get(CAN_POST):
            limit = token.interaction.filesize_limit  # the track goes as a follow-up
        else:
            limit = self._known_limit(job)
        per_message = max(limit, self._owner.request_limit) - REQUEST_OVERHEAD
        return UploadLimits(limit, attempts=UPLOAD_ATTEMPTS, per_message=per_message)

    def track_tags(self, job: Job) -> TrackTags:
        return embeds.track_tags(job, job.destination.context.get("guild_name"))

    def too_large(self, error: Exception) -> bool:
        return isinstance(error, discord.HTTPException) and error.status == 413

    async def post_track(self, job: Job, track: PreparedTrack, limit: int) -> DeliveryReceipt:
        jam_take = await self._owner.jam_take(job)
        message = await self._post_track(job, track, limit, jam_take)
        if jam_take is not None and self._owner.jams is not None:
            self._owner.jams.take_posted(jam_take)
        return DeliveryReceipt(str(message.id))

    async def post_takes(
        self, job: Job, takes: Sequence[FittedTake], limit: int
    ) -> DeliveryReceipt:
        """Several takes as one message: a file per take named with its take and seed, the
        card listing every seed, ▶ Keep per take above 🎲 / 🔁."""

        def files() -> list[discord.File]:
            return [
                discord.File(fitted.track.path, filename=take_filename(fitted.take, fitted.seed))
                for fitted in takes
            ]

        numbers = [fitted.take for fitted in takes]
        view = takes_view(job.id, numbers, job.kept_take, extend=self._extends())
        message = await self._send(job, takes_embed(job, takes, limit), files, view)
        return DeliveryReceipt(str(message.id))

    async def posted(self, job: Job, receipt: DeliveryReceipt) -> None:
        if self._status is not None:
            # The track is the song's one message.
            await self._status.retire(keep=int(receipt.message_id))
        logger.info("job %s posted to discord message %s", job.id, receipt.message_id)

    def _extends(self) -> bool:
        """➕ only where the backend extends now (it may have changed since the job was
        asked for)."""
        return Task.EXTEND in self._owner.edits_offered()

    def _known_limit(self, job: Job) -> int:
        """The upload limit without a live interaction: the guild's (discord.py's table by
        boost tier) and the last one an interaction told us, whichever is smaller."""
        known = []
        guild_id = guild_id_of(job)
        guild = self._owner.client.get_guild(guild_id) if guild_id is not None else None
        if guild is not None:
            known.append(guild.filesize_limit)
        hint = job.destination.context.get("filesize_limit")
        if isinstance(hint, int) and hint > 0:
            known.append(hint)
        return min(known) if known else DEFAULT_UPLOAD_LIMIT

    async def _post_track(
        self, job: Job, prepared: PreparedTrack, limit: int, jam_take: JamTakeRef | None = None
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
            model=edit_model(job, self._owner.edit_models()),
        )

        def files() -> list[discord.File]:
            # New ones for each request: discord.py closes a request's files when it ends.
            found = [discord.File(prepared.path, filename=track_filename(card.title, job.id))]
            if with_image:
                found.append(discord.File(prepared.waveform_png, filename=embeds.WAVEFORM_NAME))
            return found

        if jam_take is not None:
            # The jam's take: members vote on it; it names nobody (every member made it).
            view = vote_view(jam_take)
            content = take_content(jam_take)
            return await self._send(job, embeds.track_embed(job, card), files, view, content)
        view = track_view(job.id, extend=self._extends())
        return await self._send(job, embeds.track_embed(job, card), files, view)

    async def _send(
        self,
        job: Job,
        embed: discord.Embed,
        files: Callable[[], list[discord.File]],
        view: discord.ui.View,
        jam_content: str | None = None,
    ) -> discord.Message:
        """The song's message: through the bot token where the bot may post, else (or when
        the bot may no longer post) as the interaction's follow-up while its token lives.
        ``jam_content``: a jam's take, whose text pings nobody."""
        content = jam_content if jam_content is not None else embeds.fallback_content(job)
        pings = NO_PINGS if jam_content is not None else requester_only(job)

        async def follow_up(token: LiveToken) -> discord.Message | None:
            return await token.call(
                self._owner.clock,
                lambda: token.interaction.followup.send(
                    content,
                    embed=embed,
                    files=files(),
                    view=view,
                    allowed_mentions=pings,
                    wait=True,
                ),
            )

        token = self._token()  # checked just before use
        if token is not None and not job.destination.context.get(CAN_POST):
            sent = await follow_up(token)
            if sent is not None:
                return sent
            # The token died on the way: a post of the bot's own is the one way left.
        try:
            return await self._post_to_channel(job, embed, files(), view, content, pings)
        except discord.Forbidden as exc:
            # Permissions changed since the job was asked for: the follow-up needs none.
            token = self._token()
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
        view: discord.ui.View,
        content: str,
        pings: discord.AllowedMentions,
    ) -> discord.Message:
        """The track as an ordinary bot message that mentions (and pings) only the requester;
        not a reply: the status card it would reply to goes once the track is there. The
        nonce makes a retried post after a crash return the message already sent instead of
        a second one (for a few minutes: Discord's window)."""
        guild_id = guild_id_of(job)
        channel_id = int(job.destination.chat_id)
        return await self._owner.channel(channel_id, guild_id).send(
            content=content,
            embed=embed,
            files=files,
            view=view,
            allowed_mentions=pings,
            nonce=f"acejam-{job.id}",
        )


async def announce_failure(
    owner: DiscordDelivery, job: Job, sentence: str, status: StatusMessage | None
) -> None:
    """The failure as a new message mentioning the requester (with 🔁 Try again where
    another attempt may work); the status card then goes. Where no new message can be
    posted (the bot may not post and the token is gone), the card says it instead."""
    content = embeds.failure_content(job, sentence)
    embed = embeds.failure_embed(job)
    view = (
        failure_view(job.id) if messages.worth_trying_again(job.error_code) else discord.ui.View()
    )
    pings = requester_only(job)
    take = job.destination.context.get("jam_take")
    if "jam_id" in job.destination.context:
        # A jam's take is the jam's: it tells the thread and pings nobody, and 🔁 would make
        # a song of the host's own (the jam tries again with /jam render when none is made).
        content = take_failed(take, sentence)
        view, pings = discord.ui.View(), NO_PINGS
    message: discord.Message | None = None
    try:
        if job.destination.context.get(CAN_POST):
            with contextlib.suppress(discord.Forbidden):  # then the follow-up below
                message = await owner.channel(int(job.destination.chat_id), guild_id_of(job)).send(
                    content=content,
                    embed=embed,
                    view=view,
                    allowed_mentions=pings,
                    nonce=f"acejam-{job.id}-failed",  # a relayed or repeated event: once
                )
        token = status.live_token() if status is not None else None
        if message is None and token is not None:
            message = await token.call(
                owner.clock,
                lambda: token.interaction.followup.send(
                    content, embed=embed, view=view, allowed_mentions=pings, wait=True
                ),
            )
    except discord.HTTPException as exc:
        logger.warning("job %s: could not post its failure: %s %s", job.id, exc.status, exc.code)
    if message is None:
        if status is not None:
            status.show(embeds.failed(sentence))
        return
    logger.info("job %s: failure posted as message %s", job.id, message.id)
    if status is not None:
        await status.retire(keep=message.id)


def requester_only(job: Job) -> discord.AllowedMentions:
    """A message about a song notifies the one who asked for it, and nobody else."""
    return discord.AllowedMentions(
        everyone=False,
        roles=False,
        users=[discord.Object(int(job.destination.user_id))],
        replied_user=False,
    )


def guild_id_of(job: Job) -> int | None:
    scope = job.destination.scope_id
    return int(scope) if scope and scope.isdigit() else None


def track_filename(title: str, job_id: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.casefold()).strip("-")[:60].strip("-")
    return f"{slug or 'acejam'}-{job_id}.mp3"
