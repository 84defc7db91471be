"""/admin: a guild's own AceJam rules, for members who may manage the guild.

Discord hides the group from members without Manage Server (``default_permissions``), but a
server owner can override that per role, member or channel, so every call is checked again
when it runs: discord.py calls the cog's ``interaction_check`` before each subcommand, and
the /admin cancel choices check too. The rules themselves are the core's (`bot.admin`); this
module only turns options into those calls, scoped to the guild the command came from, and
answers privately.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from adapters.discord import admin_text, embeds
from adapters.discord.admin_calls import answer, scope_of
from adapters.discord.admin_switches import Switches
from adapters.discord.delivery import PLATFORM
from adapters.discord.songs import requester_of
from bot import admin_grammar as grammar
from bot.admin_grammar import BadValue
from bot.domain import ChatRules
from bot.service import GenerationService, Refused, Requester

logger = logging.getLogger(__name__)

NOT_AN_ADMIN = "Only members who can manage this server (Manage Server) can use /admin."
CHOICES_MAX = 25  # Discord's limit for autocomplete answers

QuotaValue = app_commands.Range[str, 1, 20]
Length = app_commands.Range[int, 0, 3600]


class NotAllowed(app_commands.CheckFailure):
    """A refused /admin call; its message is for the member who tried."""


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class AdminCommands(
    Switches,
    commands.GroupCog,
    group_name="admin",
    group_description="Manage AceJam in this server (Manage Server)",
):
    channels = app_commands.Group(name="channels", description="Channels where /song may be used")
    words = app_commands.Group(name="words", description="Words refused in requests here")

    def __init__(self, service: GenerationService) -> None:
        self._service = service
        self._admin = service.admin

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        if interaction.guild_id is None:
            raise NotAllowed("The admin commands work inside a server.")
        # Resolved by Discord for this member in this channel: roles, overwrites, owner.
        if not interaction.permissions.manage_guild:
            logger.info(
                "user %s was refused /admin in %s", interaction.user.id, interaction.guild_id
            )
            raise NotAllowed(NOT_AN_ADMIN)
        return True

    # ------------------------------------------------------------ settings and quotas
    @app_commands.command(name="settings", description="Show this server's AceJam settings")
    async def settings(self, interaction: discord.Interaction[Any]) -> None:
        async def show() -> str:
            return self._settings_text(interaction, await self._rules(interaction))

        await answer(interaction, show)

    @app_commands.command(name="quota", description="Everyone's daily music here: show or set it")
    @app_commands.describe(value="Seconds a day (600, 10m, 1h), unlimited, or default; empty: show")
    async def quota(
        self, interaction: discord.Interaction[Any], value: QuotaValue | None = None
    ) -> None:
        async def run() -> str:
            default = self._service.policy.seconds_per_day
            if value is None:
                rules = await self._rules(interaction)
                return "Daily quota per member: " + admin_text.quota_phrase(
                    rules.quota_seconds_per_day, default
                )
            seconds = grammar.parse_quota(value)
            await self._update(interaction, quota_seconds_per_day=seconds)
            return "✅ Daily quota per member: " + admin_text.quota_phrase(seconds, default)

        await answer(interaction, run)

    @app_commands.command(
        name="role-quota", description="A role's daily music here: show or set it"
    )
    @app_commands.describe(
        role="Members with this role get its quota (the best of their roles wins)",
        value="Seconds a day (600, 10m, 1h), unlimited, or default; empty: show",
    )
    async def role_quota(
        self,
        interaction: discord.Interaction[Any],
        role: discord.Role,
        value: QuotaValue | None = None,
    ) -> None:
        async def run() -> str:
            default = self._service.policy.seconds_per_day
            key = str(role.id)
            if value is None:
                current = (await self._rules(interaction)).role_quotas.get(key)
                if current is None:
                    return f"{admin_text.role_mention(key)}: none (the server's quota applies)"
                return f"{admin_text.role_mention(key)}: " + admin_text.quota_phrase(
                    current, default
                )
            if role.is_default():
                raise BadValue("For everyone, use `/admin quota`.")
            seconds = grammar.parse_quota(value)
            await self._saving(
                self._admin.set_role_quota(PLATFORM, scope_of(interaction), key, seconds)
            )
            if seconds is None:
                return f"✅ {admin_text.role_mention(key)} has no quota of its own any more."
            return f"✅ {admin_text.role_mention(key)}: " + admin_text.quota_phrase(
                seconds, default
            )

        await answer(interaction, run)

    @app_commands.command(name="user-quota", description="One member's quota here: show or set it")
    @app_commands.describe(
        user="The member",
        value="Seconds a day (600, 10m, 1h), unlimited, or default; empty: show",
    )
    async def user_quota(
        self,
        interaction: discord.Interaction[Any],
        user: discord.Member | discord.User,
        value: QuotaValue | None = None,
    ) -> None:
        async def run() -> str:
            scope = scope_of(interaction)
            prefix = ""
            if value is not None:
                seconds = grammar.parse_quota(value)
                await self._admin.set_user_quota(PLATFORM, str(user.id), scope, seconds)
                prefix = "✅ Saved.\n"
            return prefix + await self._standing(interaction, user)

        await answer(interaction, run)

    @app_commands.command(name="limits", description="Song lengths and songs at once: show or set")
    @app_commands.describe(
        max_duration="Longest song in seconds; 0: the bot's limit",
        default_duration="Length when none is asked, in seconds; 0: the bot's default",
        max_active_jobs="Songs in the works at once in this server; 0: the bot's default",
    )
    async def limits(
        self,
        interaction: discord.Interaction[Any],
        max_duration: Length | None = None,
        default_duration: Length | None = None,
        max_active_jobs: app_commands.Range[int, 0, 1000] | None = None,
    ) -> None:
        async def run() -> str:
            rules = await self._rules(interaction)
            changes: dict[str, Any] = {}
            if max_duration is not None:
                changes["max_duration"] = self._length(max_duration)
            if default_duration is not None:
                changes["default_duration"] = self._length(default_duration)
            if max_active_jobs is not None:
                changes["max_active_jobs"] = grammar.parse_jobs(max_active_jobs)
            if not changes:
                return self._settings_text(interaction, rules)
            return "✅ Saved.\n" + self._settings_text(
                interaction, await self._update(interaction, **changes)
            )

        await answer(interaction, run)

    @app_commands.command(name="budget", description="This server's monthly spending cap: show/set")
    @app_commands.describe(value="US dollars a month (like 5 or 12.50), or none; empty: show")
    async def budget(
        self,
        interaction: discord.Interaction[Any],
        value: app_commands.Range[str, 1, 20] | None = None,
    ) -> None:
        async def run() -> str:
            if value is None:
                usd = (await self._rules(interaction)).monthly_budget_usd
            else:
                usd = grammar.parse_budget(value)
                await self._update(interaction, monthly_budget_usd=usd)
            shown = "none" if usd is None else f"${usd:,.2f} a month"
            return ("Monthly budget: " if value is None else "✅ Monthly budget: ") + shown

        await answer(interaction, run)

    # ------------------------------------------------------------ people
    @app_commands.command(name="block", description="Stop a member from making songs here")
    @app_commands.describe(user="The member", reason="Why (other admins see it)")
    async def block(
        self,
        interaction: discord.Interaction[Any],
        user: discord.Member | discord.User,
        reason: app_commands.Range[str, 1, 200] | None = None,
    ) -> None:
        async def run() -> str:
            if user.id == interaction.user.id:
                raise BadValue("You can't block yourself.")
            await self._admin.set_blocked(
                PLATFORM, str(user.id), scope_of(interaction), True, reason
            )
            return f"✅ {embeds.mention(str(user.id))} can't make songs in this server any more."

        await answer(interaction, run)

    @app_commands.command(name="unblock", description="Let a blocked member make songs here again")
    @app_commands.describe(user="The member")
    async def unblock(
        self, interaction: discord.Interaction[Any], user: discord.Member | discord.User
    ) -> None:
        async def run() -> str:
            scope = scope_of(interaction)
            await self._admin.set_blocked(PLATFORM, str(user.id), scope, False)
            who = embeds.mention(str(user.id))
            if (await self._admin.standing(PLATFORM, str(user.id), scope)).blocked:
                # Only an override for every server is left: the operator's, from the CLI.
                return f"{who} is still blocked by the bot's operator (in every server)."
            return f"✅ {who} can make songs here again."

        await answer(interaction, run)

    # ------------------------------------------------------------ where, and what
    @channels.command(name="add", description="Allow /song in a channel (then only listed ones)")
    @app_commands.describe(channel="A text or voice channel")
    async def channels_add(
        self, interaction: discord.Interaction[Any], channel: app_commands.AppCommandChannel
    ) -> None:
        async def run() -> str:
            if channel.type not in admin_text.SONG_CHANNEL_TYPES:
                raise BadValue("Pick a text or voice channel.")
            rules = await self._edit_list(interaction, "allowed_channels", add=[str(channel.id)])
            return "✅ " + admin_text.channels_text(rules)

        await answer(interaction, run)

    @channels.command(name="remove", description="Take a channel off the /song list")
    @app_commands.describe(channel="A listed channel")
    async def channels_remove(
        self, interaction: discord.Interaction[Any], channel: app_commands.AppCommandChannel
    ) -> None:
        async def run() -> str:
            if str(channel.id) not in (await self._rules(interaction)).allowed_channels:
                raise BadValue(f"{admin_text.channel_mention(str(channel.id))} isn't listed.")
            rules = await self._edit_list(interaction, "allowed_channels", remove=[str(channel.id)])
            return "✅ " + admin_text.channels_text(rules)

        await answer(interaction, run)

    @channels.command(name="clear", description="Allow /song in every channel again")
    async def channels_clear(self, interaction: discord.Interaction[Any]) -> None:
        async def run() -> str:
            return "✅ " + admin_text.channels_text(
                await self._update(interaction, allowed_channels=())
            )

        await answer(interaction, run)

    @words.command(name="add", description="Refuse requests using these words here")
    @app_commands.describe(words="Words or phrases, separated by commas")
    async def words_add(
        self, interaction: discord.Interaction[Any], words: app_commands.Range[str, 1, 1000]
    ) -> None:
        async def run() -> str:
            added = grammar.parse_words(words, at_least_one=True)
            rules = await self._edit_list(interaction, "blocked_words", add=added)
            return "✅ " + admin_text.words_text(rules.blocked_words)

        await answer(interaction, run)

    @words.command(name="remove", description="Allow these words again")
    @app_commands.describe(words="Words or phrases, separated by commas")
    async def words_remove(
        self, interaction: discord.Interaction[Any], words: app_commands.Range[str, 1, 1000]
    ) -> None:
        async def run() -> str:
            removed = grammar.parse_words(words, at_least_one=True)
            rules = await self._edit_list(interaction, "blocked_words", remove=removed)
            return "✅ " + admin_text.words_text(rules.blocked_words)

        await answer(interaction, run)

    @words.command(name="list", description="Show the words refused here")
    async def words_list(self, interaction: discord.Interaction[Any]) -> None:
        async def run() -> str:
            return admin_text.words_text((await self._rules(interaction)).blocked_words)

        await answer(interaction, run)

    # ------------------------------------------------------------ jobs
    @app_commands.command(name="queue", description="Every song in the works in this server")
    async def queue(self, interaction: discord.Interaction[Any]) -> None:
        async def run() -> str:
            entries = await self._admin.queue(PLATFORM, scope_of(interaction))
            return admin_text.guild_queue_text(entries)

        await answer(interaction, run)

    @app_commands.command(name="cancel", description="Stop anyone's song in this server")
    @app_commands.describe(job="The song's #number (see /admin queue)")
    async def cancel(
        self, interaction: discord.Interaction[Any], job: app_commands.Range[int, 1]
    ) -> None:
        async def run() -> str:
            found = await self._admin.job(job)
            if (
                found is None
                or found.destination.platform != PLATFORM
                or found.destination.scope_id != scope_of(interaction)
            ):
                raise BadValue(f"There's no song #{job} from this server.")
            admin = requester_of(interaction)  # an admin of this guild, for this guild's songs
            outcome = await self._service.cancel(job, admin)
            if isinstance(outcome, Refused):
                raise BadValue(outcome.message)
            if outcome.job.destination.user_id != admin.user_id:
                return embeds.cancelled_for_owner(outcome.job)
            return f"#{job}: {outcome.message}"

        await answer(interaction, run)

    @cancel.autocomplete("job")
    async def cancel_choices(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[int]]:
        # Checks don't run for autocomplete: the choices show other people's requests.
        if interaction.guild_id is None or not interaction.permissions.manage_guild:
            return []
        entries = await self._admin.queue(PLATFORM, scope_of(interaction))
        typed = current.strip().lstrip("#")
        return [
            app_commands.Choice(name=admin_text.job_choice(e), value=e.job.id)
            for e in entries
            if typed in str(e.job.id)
        ][:CHOICES_MAX]

    @app_commands.command(name="usage", description="Per member: songs, seconds and cost here")
    @app_commands.describe(days="How many days back (default 30)")
    async def usage(
        self, interaction: discord.Interaction[Any], days: app_commands.Range[int, 1, 365] = 30
    ) -> None:
        async def run() -> str:
            rows = await self._admin.usage(
                days=days, platform=PLATFORM, scope_id=scope_of(interaction)
            )
            return admin_text.usage_text(rows, days)

        await answer(interaction, run)

    # ------------------------------------------------------------ helpers
    async def _rules(self, interaction: discord.Interaction[Any]) -> ChatRules:
        return await self._admin.chat_rules(PLATFORM, scope_of(interaction))

    async def _update(self, interaction: discord.Interaction[Any], **changes: Any) -> ChatRules:
        rules = await self._saving(
            self._admin.update_chat_rules(PLATFORM, scope_of(interaction), **changes)
        )
        logger.info(
            "guild %s: %s set %s", interaction.guild_id, interaction.user.id, sorted(changes)
        )
        return rules

    async def _edit_list(
        self,
        interaction: discord.Interaction[Any],
        name: str,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> ChatRules:
        """One atomic edit of a list setting (two admins at once can't undo each other)."""
        rules = await self._saving(
            self._admin.edit_list(PLATFORM, scope_of(interaction), name, add=add, remove=remove)
        )
        logger.info("guild %s: %s edited %s", interaction.guild_id, interaction.user.id, name)
        return rules

    @staticmethod
    async def _saving(change: Awaitable[ChatRules]) -> ChatRules:
        """The core refuses a setting that can't work with a ValueError worded for admins."""
        try:
            return await change
        except ValueError as refusal:
            raise BadValue(str(refusal)) from None

    def _length(self, seconds: int) -> int | None:
        # The option is a number, so 0 (not `default`) brings back the bot's own.
        return grammar.parse_length(seconds, self._service.limits, reset="0")

    def _settings_text(self, interaction: discord.Interaction[Any], rules: ChatRules) -> str:
        name = interaction.guild.name if interaction.guild is not None else "this server"
        return admin_text.settings_text(
            name or "this server", rules, self._service.policy, self._service.limits
        )

    async def _standing(
        self, interaction: discord.Interaction[Any], user: discord.Member | discord.User
    ) -> str:
        scope = scope_of(interaction)
        roles = (
            frozenset(str(r.id) for r in user.roles if not r.is_default())
            if isinstance(user, discord.Member)
            else frozenset()
        )
        member = Requester(PLATFORM, str(user.id), roles=roles)
        standing = await self._admin.standing(PLATFORM, str(user.id), scope)
        status = await self._service.quota(member, scope)
        return admin_text.standing_text(str(user.id), standing, status, self._service.policy)
