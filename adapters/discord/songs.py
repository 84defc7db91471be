"""Turning an interaction into a job: /song, the /compose form, and the 🎲 🔁 ✏️ ✖ buttons.

The first answer to an interaction is always immediate (Discord's 3 s rule): a refusal that
needs no I/O (bad input) is sent at once as an ephemeral message; everything else is deferred
first. Refusals after that (quota, blocked, someone else's button) are ephemeral too.

A button press counts once: the same person pressing the same button again within a few
seconds is told so and changes nothing (:class:`bot.presses.PressGuard`); a button that made
a new take is shown used (green) on its message.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from adapters.discord import embeds
from adapters.discord.delivery import CAN_POST, PLATFORM, DiscordDelivery, StatusMessage
from adapters.discord.drafts import Draft, draft_of
from adapters.discord.modals import EDIT_TITLE, ComposeModal, FixView
from adapters.discord.replies import reply_privately
from adapters.discord.views import custom_id, used_view
from bot import messages
from bot.domain import Destination, Invalid, JobId, Task
from bot.edits import EditAsk
from bot.presses import PressGuard
from bot.service import Accepted, Done, GenerationService, Refused, Requester

logger = logging.getLogger(__name__)

# Refusals of what was asked (not of who asked): fixing the form can get it through.
FIXABLE = frozenset({"invalid", "blocked_word", "quota"})


def requester_of(interaction: discord.Interaction[Any]) -> Requester:
    user = interaction.user
    if isinstance(user, discord.Member):
        return Requester(
            PLATFORM,
            str(user.id),
            user.display_name,
            # Resolved by Discord for this channel (roles, overwrites, administrator), and
            # true in this guild only: the core lets it reach this guild's songs alone.
            is_admin=interaction.permissions.manage_guild,
            admin_scope=scope_of(interaction),
            roles=frozenset(str(role.id) for role in user.roles if not role.is_default()),
        )
    # A one-to-one chat with the bot (a DM; a group DM is not): own audio is on there by
    # default (#15).
    private = interaction.guild_id is None and isinstance(interaction.channel, discord.DMChannel)
    return Requester(PLATFORM, str(user.id), user.display_name, private_chat=private)


def destination_of(interaction: discord.Interaction[Any], message_id: int | None) -> Destination:
    """Where the job's news goes, and what a restarted bot needs to find it again."""
    channel = interaction.channel
    nsfw = bool(getattr(channel, "is_nsfw", lambda: False)())
    context: dict[str, Any] = {
        "interaction_id": str(interaction.id),
        "filesize_limit": interaction.filesize_limit,  # a hint once the interaction is gone
        "guild_name": interaction.guild.name if interaction.guild else None,
        "nsfw_channel": nsfw,
        CAN_POST: bot_can_post(interaction),
    }
    if message_id is not None:
        context["status_message_id"] = str(message_id)
    return Destination(
        platform=PLATFORM,
        chat_id=str(interaction.channel_id),
        user_id=str(interaction.user.id),
        context=context,
        scope_id=scope_of(interaction),
    )


def bot_can_post(interaction: discord.Interaction[Any]) -> bool:
    """Whether the bot may post the track in this channel with its own token: a post that
    carries a nonce, unlike an interaction follow-up. Decided from what Discord resolved for
    the interaction (overwrites included), so no request is made to find out."""
    if interaction.guild_id is None:
        # DMs carry no Send Messages bit. A guild-installed command runs outside guilds only
        # in the bot's own DM with the user, where it can write; a user-installed app's DMs
        # and group DMs between others are closed to it.
        return isinstance(interaction.channel, discord.DMChannel) and (
            not interaction.is_user_integration()
        )
    if not interaction.is_guild_integration():
        return False  # used as a user-installed app: the bot may not be in this guild
    perms = interaction.app_permissions
    in_thread = isinstance(interaction.channel, discord.Thread)
    may_send = perms.send_messages_in_threads if in_thread else perms.send_messages
    # Without Embed Links Discord drops the track card silently; a reply needs the history.
    return (
        may_send
        and perms.view_channel
        and perms.attach_files
        and perms.embed_links
        and perms.read_message_history
    )


class SongStarter:
    """Starts jobs for interactions; also the bot's ``ButtonHandler``."""

    def __init__(
        self, service: GenerationService, delivery: DiscordDelivery, presses: PressGuard
    ) -> None:
        self._service = service
        self._delivery = delivery
        self._presses = presses  # one per adapter: a double tap acts once

    @property
    def delivery(self) -> DiscordDelivery:
        return self._delivery

    async def request(self, interaction: discord.Interaction[Any], draft: Draft) -> None:
        """/song and the /compose form. The deferred "thinking" message becomes the status
        message, so its id is known before the job exists. A refusal of the request itself
        offers "✏️ Fix and resubmit", which reopens the form with what was typed."""
        fields = draft.fields()
        request = self._service.validate(**fields) if not isinstance(fields, Invalid) else fields
        if isinstance(request, Invalid):
            await reply_privately(
                interaction, embeds.problem(request.message), view=self._fix(interaction, draft)
            )
            return
        callback = await interaction.response.defer(thinking=True)
        message_id = callback.message_id if callback is not None else None
        status = self._delivery.open(interaction, message_id)
        try:
            outcome = await self._service.submit(
                requester_of(interaction),
                destination_of(interaction, message_id),
                request,
                idempotency_key=f"discord:{interaction.id}",
                parent_id=JobId(draft.parent_id) if draft.parent_id is not None else None,
            )
        except Exception:
            logger.exception("interaction %s: submit failed", interaction.id)
            outcome = Refused(messages.UNEXPECTED_ERROR, "error")
        await self.settle(
            interaction, status, outcome, has_placeholder=message_id is not None, draft=draft
        )

    def _fix(self, interaction: discord.Interaction[Any], draft: Draft) -> FixView | None:
        if draft.describe:
            return None  # the form has no room for a description: /song again fixes it
        return FixView(self.request, self._service.limits, draft, key=interaction.id)

    async def edit(self, interaction: discord.Interaction[Any], job_id: int) -> None:
        """✏️ Edit under a track: the compose form, filled in with that song; what it makes
        records the track as its parent. The form is the first answer (nothing can be
        deferred before a form), so the one read before it is the job's."""
        job = await self._service.get_job(job_id)
        if job is None or job.destination.platform != PLATFORM:
            await reply_privately(interaction, embeds.problem(messages.SONG_GONE))
            return
        if job.destination.user_id != str(interaction.user.id):
            # As for 🎲 and 🔁: someone else's song only where its chat lets members press.
            rules = await self._service.chat_rules(PLATFORM, job.destination.scope)
            if not rules.others_may_press:
                await reply_privately(interaction, embeds.problem(messages.SOMEONE_ELSES_SONG))
                return
        await interaction.response.send_modal(
            ComposeModal(
                self.request,
                self._service.limits,
                key=interaction.id,
                draft=draft_of(job),
                title=EDIT_TITLE,
            )
        )

    async def reroll(
        self, interaction: discord.Interaction[Any], job_id: int, *, same_seed: bool
    ) -> None:
        """🎲 / 🔁 under a track: a new job with a new status message in the channel."""
        await self._take(interaction, job_id, "same" if same_seed else "reroll", same_seed)

    async def retry(self, interaction: discord.Interaction[Any], job_id: int) -> None:
        """🔁 Try again under a failure: the same seed where one is known (a song that failed
        before its seed was known is asked again as it was, with a new one)."""
        await self._take(interaction, job_id, "retry", None)

    async def extend(self, interaction: discord.Interaction[Any], job_id: int) -> None:
        """➕ under a track: the core's extend with its defaults (#15), like a new take."""

        async def submit(destination: Destination) -> Accepted | Refused:
            return await self._service.edit(
                requester_of(interaction),
                destination,
                EditAsk(Task.EXTEND, of_job=job_id),
                idempotency_key=f"discord:{interaction.id}",
            )

        await self.press(interaction, job_id, "extend", submit)

    async def _take(
        self,
        interaction: discord.Interaction[Any],
        job_id: int,
        action: str,
        same_seed: bool | None,
    ) -> None:
        async def submit(destination: Destination) -> Accepted | Refused:
            original = await self._service.get_job(job_id)
            seed = same_seed
            if seed is None:
                seed = original is not None and embeds.seed_of(original) is not None
            if original is not None and original.destination.user_id != str(interaction.user.id):
                # Someone else's song (the chat lets members press): the new take says whose.
                destination.context[embeds.TAKE_OF] = {
                    "user_id": original.destination.user_id,
                    "job_id": job_id,
                    "same_seed": seed,
                }
            return await self._service.reroll(
                job_id,
                requester_of(interaction),
                same_seed=seed,
                destination=destination,
                idempotency_key=f"discord:{interaction.id}",
            )

        await self.press(interaction, job_id, action, submit)

    async def press(
        self,
        interaction: discord.Interaction[Any],
        job_id: int,
        action: str,
        submit: Callable[[Destination], Awaitable[Accepted | Refused]],
    ) -> None:
        """A button under a track that makes a new job (``submit``, given where its news
        goes): once per press, with a new status message in the channel, the button shown
        used once the job is made."""
        if not await self._first_press(interaction, action, job_id):
            return
        try:
            # Type 6: nothing shows until we know whether this press is allowed.
            await interaction.response.defer()
            status = self._delivery.open(interaction, None)
            try:
                outcome = await submit(destination_of(interaction, None))
            except Exception:
                logger.exception("interaction %s: %s failed", interaction.id, action)
                outcome = Refused(messages.UNEXPECTED_ERROR, "error")
            if isinstance(outcome, Accepted) and not outcome.duplicate:
                await self._show_used(interaction, custom_id(action, job_id))
            else:
                self._presses.forget(self._press_key(interaction, action, job_id))
            await self.settle(interaction, status, outcome, has_placeholder=False)
        except Exception:
            logger.exception("interaction %s: button failed", interaction.id)
            await reply_privately(interaction, embeds.problem(messages.UNEXPECTED_ERROR))

    async def cancel(self, interaction: discord.Interaction[Any], job_id: int) -> None:
        """✖ under a status message; the CANCELLED event then edits that message. Buttons
        carry no default permissions: each press is judged on the presser's own permissions
        (the song's owner, or Manage Server in its guild)."""
        if not await self._first_press(interaction, "cancel", job_id):
            return
        try:
            await interaction.response.defer()
            outcome = await self._service.cancel(job_id, requester_of(interaction))
            if isinstance(outcome, Refused):
                self._presses.forget(self._press_key(interaction, "cancel", job_id))
                await reply_privately(interaction, embeds.problem(outcome.message))
        except Exception:
            logger.exception("interaction %s: cancel button failed", interaction.id)
            await reply_privately(interaction, embeds.problem(messages.UNEXPECTED_ERROR))

    async def _first_press(
        self, interaction: discord.Interaction[Any], action: str, job_id: int
    ) -> bool:
        """True for the first press of this button by this person within a few seconds; a
        repeat (a double tap, a laggy client) is told so privately and does nothing. A press
        that was refused is forgotten: pressing again is asking again."""
        if self._presses.first(self._press_key(interaction, action, job_id)):
            return True
        logger.info("interaction %s: repeated press of %s:%s", interaction.id, action, job_id)
        await reply_privately(interaction, messages.ALREADY_PRESSED)
        return False

    @staticmethod
    def _press_key(
        interaction: discord.Interaction[Any], action: str, job_id: int
    ) -> tuple[str, int, str, int]:
        return (PLATFORM, interaction.user.id, action, job_id)

    @staticmethod
    async def _show_used(interaction: discord.Interaction[Any], pressed: str) -> None:
        """Highlight the pressed button on its message (after a type-6 answer, ``@original``
        is the message the button is on). Cosmetic: a failure is only logged."""
        if interaction.message is None:
            return
        view = used_view(interaction.message, pressed)
        if view is None:
            return
        try:
            await interaction.edit_original_response(view=view)
        except discord.HTTPException as exc:
            logger.info("interaction %s: could not mark %s used: %s", interaction.id, pressed, exc)

    async def settle(
        self,
        interaction: discord.Interaction[Any],
        status: StatusMessage,
        outcome: Accepted | Refused,
        *,
        has_placeholder: bool,
        draft: Draft | None = None,
    ) -> None:
        """What the core said about a new job, shown: a refusal privately (the public
        "thinking" message, if any, removed), an accepted job on its status card."""
        if isinstance(outcome, Refused) or outcome.duplicate:
            self._delivery.abandon(status)
            if has_placeholder:
                # The public "thinking" message can't turn private: remove it, answer privately.
                with contextlib.suppress(discord.HTTPException):
                    await interaction.delete_original_response()
            if isinstance(outcome, Refused):
                fixable = draft is not None and outcome.code in FIXABLE
                await reply_privately(
                    interaction,
                    embeds.problem(outcome.message),
                    view=self._fix(interaction, draft) if draft is not None and fixable else None,
                )
            return
        job = outcome.job
        status = self._delivery.bind(status, job, embeds.queued(outcome.position))
        if has_placeholder:
            return  # the status pump fills the "thinking" message
        message_id = await self._delivery.post_status(status)
        # A restarted bot finds the status message through the job, not through memory.
        await self._service.set_context(job.id, status_message_id=str(message_id))


def scope_of(interaction: discord.Interaction[Any]) -> str | None:
    """The guild whose rules apply (None in DMs), as the core's ``scope_id``."""
    return str(interaction.guild_id) if interaction.guild_id else None


async def cancel_text(service: GenerationService, requester: Requester, job_id: int | None) -> str:
    """/cancel: the sentence to answer with."""
    if job_id is None:
        latest = await service.latest_active(requester)
        if latest is None:
            return messages.NOTHING_TO_CANCEL
        job_id = latest.id
    outcome = await service.cancel(job_id, requester)
    if isinstance(outcome, Done):
        if outcome.job.destination.user_id != requester.user_id:
            return embeds.cancelled_for_owner(outcome.job)
        return f"#{job_id}: {outcome.message}"
    return embeds.problem(outcome.message)
