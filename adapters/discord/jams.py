"""Community jams on Discord (#16): what each ``/jam`` subcommand and 🗳 press does.

The rules are the core's (:class:`bot.jams.service.JamService`, reached as ``service.jams``);
this module turns an interaction into one call and shows the answer:

- ``/jam start`` opens the jam where it was typed, makes a public thread named after the
  theme in that channel and moves the jam there (a jam started inside a thread stays in it;
  where the bot may not make threads it stays in the channel), then posts the jam message.
- Every other command acts on the jam of the place it was typed in: the jam's thread, or
  the channel the jam was started from (the core finds it by either).
- Answers to the one who asked are private (refusals, "line #4 added, room left ..."); what
  concerns everyone (rendering, the winner, the next round, the board link) is posted in
  the jam's thread, and the private "thinking" message then goes.

Every interaction is deferred first: each answer needs the database.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import discord

from adapters.discord import embeds
from adapters.discord.jam_cards import stats_text, thread_name
from adapters.discord.jam_messages import JamPoster
from adapters.discord.posting import CAN_POST, PLATFORM
from adapters.discord.replies import reply_privately
from adapters.discord.songs import bot_can_post, requester_of, scope_of
from bot import messages
from bot.domain import Destination
from bot.jams import texts
from bot.jams.model import Added, Jam, JamChanged, JamNewsKind, JamTakeRef, Part
from bot.jams.service import JamService
from bot.service import Refused

logger = logging.getLogger(__name__)

# A jam's thread stays open a week without messages (Discord's longest).
ARCHIVE_MINUTES: Literal[10080] = 10080
NO_PINGS = discord.AllowedMentions.none()
NOT_IN_A_SERVER = "Jams happen in a server's channels; start one there with /jam start."


class JamDesk:
    """The ``/jam`` commands and 🗳 presses; the client exposes it as ``client.jams``."""

    def __init__(self, jams: JamService, poster: JamPoster) -> None:
        self._jams = jams
        self.poster = poster

    # ------------------------------------------------------------ /jam start
    async def start(
        self,
        interaction: discord.Interaction[Any],
        theme: str,
        takes: int | None,
        minutes: int | None,
        vote_minutes: int | None,
    ) -> None:
        if interaction.guild_id is None:
            await reply_privately(interaction, embeds.problem(NOT_IN_A_SERVER))
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        context = job_context(interaction)
        where = Destination(
            platform=PLATFORM,
            chat_id=str(interaction.channel_id),
            user_id=str(interaction.user.id),
            context={"job": context},
            scope_id=scope_of(interaction),
        )
        outcome = await self._jams.start(
            requester_of(interaction),
            where,
            theme,
            takes=takes,
            minutes=minutes,
            vote_minutes=vote_minutes,
        )
        if isinstance(outcome, Refused):
            await self._private(interaction, embeds.problem(outcome.message))
            return
        jam = outcome.jam
        thread = await self._thread_for(interaction, jam)
        if thread is not None:
            moved = await self._jams.move(
                jam.id,
                str(thread.id),
                {**jam.context, "thread_id": str(thread.id), "job": thread_context(context)},
            )
            jam = moved or jam
        await self.poster.post(jam)
        where_now = f" Its thread: {thread.mention}." if thread is not None else ""
        await self._private(interaction, outcome.message + where_now)

    async def _thread_for(
        self, interaction: discord.Interaction[Any], jam: Jam
    ) -> discord.Thread | None:
        """A public thread for the jam in the channel it was started in; None where it
        stays put (started in a thread already, or the bot may not make one)."""
        channel = interaction.channel
        if not isinstance(channel, discord.TextChannel):
            return None
        try:
            return await channel.create_thread(
                name=thread_name(jam.theme),
                type=discord.ChannelType.public_thread,
                auto_archive_duration=ARCHIVE_MINUTES,
                reason=f"AceJam: jam #{jam.id}",
            )
        except discord.HTTPException as exc:
            logger.warning(
                "jam %s: no thread in channel %s (%s %s); it stays there",
                jam.id,
                channel.id,
                exc.status,
                exc.code,
            )
            return None

    # ------------------------------------------------------------ words
    async def add(self, interaction: discord.Interaction[Any], part: Part, text: str) -> None:
        """/jam tag, /jam line, and the lines form."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        jam = await self._jam_here(interaction)
        if jam is None:
            return
        outcome = await self._jams.add(requester_of(interaction), jam.id, part, text)
        if isinstance(outcome, Refused):
            await self._private(interaction, embeds.problem(outcome.message))
            return
        self._shown(outcome)
        await self._private(interaction, f"✅ {outcome.message}")

    async def remove(self, interaction: discord.Interaction[Any], number: int) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        jam = await self._jam_here(interaction)
        if jam is None:
            return
        outcome = await self._jams.remove(requester_of(interaction), jam.id, number)
        if isinstance(outcome, Refused):
            await self._private(interaction, embeds.problem(outcome.message))
            return
        self._shown(outcome)
        await self._private(interaction, f"✅ {outcome.message}")

    # ------------------------------------------------------------ the host's steps
    async def render(self, interaction: discord.Interaction[Any]) -> None:
        await self._step(interaction, "render")

    async def close(self, interaction: discord.Interaction[Any]) -> None:
        await self._step(interaction, "close")

    async def next_round(self, interaction: discord.Interaction[Any]) -> None:
        await self._step(interaction, "next")

    async def _step(self, interaction: discord.Interaction[Any], step: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        jam = await self._jam_here(interaction)
        if jam is None:
            return
        requester = requester_of(interaction)
        if step == "render":
            outcome = await self._jams.render(requester, jam.id)
            kind = JamNewsKind.RENDERING
        elif step == "close":
            outcome = await self._jams.close(requester, jam.id)
            kind = JamNewsKind.CLOSED
        else:
            outcome = await self._jams.next_round(requester, jam.id)
            kind = JamNewsKind.NEXT_ROUND
        if isinstance(outcome, Refused):
            await self._private(interaction, embeds.problem(outcome.message))
            return
        self._shown(outcome)
        if self.poster.first_time(outcome.jam, kind):
            await self._public(interaction, outcome.jam, outcome.message)
        else:
            await self._private(interaction, f"✅ {outcome.message}")

    # ------------------------------------------------------------ votes
    async def vote(
        self, interaction: discord.Interaction[Any], jam_id: int, round: int, take: int
    ) -> None:
        """🗳 under a take: one vote per member and round, changeable; the core counts it
        once however often it is pressed."""
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            outcome = await self._jams.vote(requester_of(interaction), jam_id, round, take)
            if isinstance(outcome, Refused):
                await self._private(interaction, embeds.problem(outcome.message))
                return
            if outcome.changed:
                self.poster.refresh(jam_id)  # the number of votes cast
            await self._private(interaction, f"🗳 {outcome.message}")
        except Exception:
            logger.exception("interaction %s: vote failed", interaction.id)
            await reply_privately(interaction, embeds.problem(messages.UNEXPECTED_ERROR))

    # ------------------------------------------------------------ takes (for the delivery)
    async def take_of(self, job_id: int) -> JamTakeRef | None:
        return await self._jams.take_of(job_id)

    def take_posted(self, ref: JamTakeRef) -> None:
        self.poster.refresh(ref.jam_id)  # the take shows as made on the jam message

    # ------------------------------------------------------------ the rest
    async def stats(self, interaction: discord.Interaction[Any]) -> None:
        scope = scope_of(interaction)
        if scope is None:
            await reply_privately(interaction, embeds.problem(NOT_IN_A_SERVER))
            return
        await interaction.response.defer(thinking=True)
        found = await self._jams.stats(PLATFORM, scope)
        place = interaction.guild.name if interaction.guild else None
        await interaction.followup.send(
            stats_text(found.rows, found.jams, place), allowed_mentions=NO_PINGS
        )

    async def board(self, interaction: discord.Interaction[Any], revoke: bool) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        jam = await self._jam_here(interaction)
        if jam is None:
            return
        requester = requester_of(interaction)
        if revoke:
            revoked = await self._jams.revoke_board(requester, jam.id)
            if isinstance(revoked, Refused):
                await self._private(interaction, embeds.problem(revoked.message))
            else:
                await self._private(interaction, f"✅ {revoked.message}")
            return
        url = await self._jams.board_url(requester, jam.id)
        if isinstance(url, Refused):
            await self._private(interaction, embeds.problem(url.message))
            return
        await self._public(interaction, jam, texts.board(url))

    # ------------------------------------------------------------ helpers
    async def _jam_here(self, interaction: discord.Interaction[Any]) -> Jam | None:
        """The jam of the place the command was typed in, or (answered) None."""
        jam = await self._jams.jam_at(PLATFORM, str(interaction.channel_id))
        if jam is None:
            await self._private(interaction, embeds.problem(texts.NO_JAM))
        return jam

    def _shown(self, outcome: Added | JamChanged) -> None:
        self.poster.refresh(outcome.jam.id)

    async def _public(self, interaction: discord.Interaction[Any], jam: Jam, text: str) -> None:
        """``text`` for everyone in the jam's thread; the asker's "thinking" goes (or, typed
        elsewhere, says where it was posted)."""
        try:
            posted = await self.poster.announce(jam, text)
        except discord.HTTPException as exc:
            logger.warning("jam %s: could not post: %s %s", jam.id, exc.status, exc.code)
            await self._private(interaction, text)
            return
        if str(interaction.channel_id) != jam.chat_id:
            await self._private(interaction, f"✅ Posted in <#{jam.chat_id}>: {posted.jump_url}")
            return
        try:
            await interaction.delete_original_response()
        except discord.HTTPException as exc:
            logger.info("interaction %s: thinking message stays: %s", interaction.id, exc)

    @staticmethod
    async def _private(interaction: discord.Interaction[Any], text: str) -> None:
        await reply_privately(interaction, embeds.clip(text, embeds.CONTENT_MAX))


def job_context(interaction: discord.Interaction[Any]) -> dict[str, Any]:
    """What the jam's takes (ordinary jobs) carry for their delivery, as a song's do."""
    return {
        "guild_name": interaction.guild.name if interaction.guild else None,
        "filesize_limit": interaction.filesize_limit,
        CAN_POST: bot_can_post(interaction),
        "perms": interaction.app_permissions.value,
    }


def thread_context(context: dict[str, Any]) -> dict[str, Any]:
    """The takes' context once the jam lives in a thread the bot made: it posts there with
    Send Messages in Threads (the channel's permissions otherwise hold in its threads)."""
    perms = discord.Permissions(int(context.get("perms", 0)))
    can_post = (
        perms.send_messages_in_threads
        and perms.view_channel
        and perms.attach_files
        and perms.embed_links
        and perms.read_message_history
    )
    return {**context, CAN_POST: can_post}
