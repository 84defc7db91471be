"""What ``/admin`` writes back (admins' values are read by the core's `bot.admin_grammar`).

Pure functions, no I/O. Every text fits one message (Discord: 2000 characters): long lists
show what fits and count the rest. People, roles and channels appear as mentions, which
Discord renders as names for the reader; the admin commands send them with
``AllowedMentions.none()``, so nobody is pinged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import discord

from adapters.discord.embeds import (
    CONTENT_MAX,
    LIST_TAGS_SHOWN,
    bounded,
    clip,
    escaped_line,
    mention,
    safe,
)
from bot import messages
from bot.admin import UserStanding
from bot.admin_grammar import MAX_WORD_LENGTH
from bot.domain import DEFAULT_DURATION, ChatRules, Limits
from bot.quotas import QuotaPolicy, QuotaStatus
from bot.service import QueueEntry

if TYPE_CHECKING:  # AdminService hands these out (the core's report rows)
    from bot.stores import UsageRow

# Where /song can be typed; threads count as their own channel for the core's channel rule.
SONG_CHANNEL_TYPES = frozenset(
    {
        discord.ChannelType.text,
        discord.ChannelType.news,
        discord.ChannelType.voice,
        discord.ChannelType.stage_voice,
    }
)


# ---------------------------------------------------------------- texts


def role_mention(role_id: str) -> str:
    return f"<@&{role_id}>"


def channel_mention(channel_id: str) -> str:
    return f"<#{channel_id}>"


def quota_phrase(seconds: int | None, default: int) -> str:
    return messages.quota_value(seconds, default)


def channels_text(rules: ChatRules) -> str:
    if not rules.allowed_channels:
        return "/song works in every channel."
    listed = ", ".join(channel_mention(c) for c in rules.allowed_channels)
    return f"/song works only in {listed} (admins may use it anywhere)."


def _or_default(value: object | None, default: object, unit: str = "") -> str:
    if value is None:
        return f"{default}{unit} (the default)"
    return f"{value}{unit}"


def settings_text(guild_name: str, rules: ChatRules, policy: QuotaPolicy, limits: Limits) -> str:
    """/admin settings: this guild's rules, with the bot's own value where none is set."""
    roles = " · ".join(
        f"{role_mention(role)} {quota_phrase(seconds, policy.seconds_per_day)}"
        for role, seconds in rules.role_quotas.items()
    )
    longest = rules.max_duration or limits.max_duration
    default_length = rules.default_duration or min(DEFAULT_DURATION, longest)
    channels = ", ".join(channel_mention(c) for c in rules.allowed_channels)
    quota = quota_phrase(rules.quota_seconds_per_day, policy.seconds_per_day)
    lines = [
        f"**AceJam settings for {safe(guild_name, 100)}**",
        f"Daily quota per member: {quota}",
        f"Role quotas (the best one a member has wins): {roles or 'none'}",
        f"Song length: {default_length} s unless asked, at most {longest} s"
        + ("" if rules.max_duration else " (the bot's limit)")
        + f"; the bot allows {limits.min_duration}–{limits.max_duration} s",
        "Songs in the works at once in this server: "
        + _or_default(rules.max_active_jobs, policy.max_active_jobs_per_scope or "no limit")
        + f"; per member: {policy.max_active_jobs}",
        f"Channels for /song: {channels or 'any (admins may use any channel anyway)'}",
        "Others may press 🎲 / 🔁 under someone's song: "
        + ("yes" if rules.others_may_press else "no"),
        "Songs the music engine flags as NSFW: "
        + (
            "posted anywhere here"
            if rules.allow_nsfw
            else "held back outside age-restricted channels"
        ),
        "Members' own audio in /remix and /extend: "
        + ("allowed" if rules.own_audio else "not allowed")
        + ("" if rules.own_audio is not None else " (the default in servers)"),
        "Jams' takes are paid by: "
        + ("this server's budget" if rules.jam_pays == "chat" else "the host's quota"),
        f"Blocked words: {len(rules.blocked_words) or 'none'}"
        + (" (`/admin words list`)" if rules.blocked_words else ""),
        "Monthly budget: "
        + (f"${rules.monthly_budget_usd:,.2f}" if rules.monthly_budget_usd is not None else "none"),
    ]
    return clip("\n".join(lines), CONTENT_MAX)


def standing_text(
    user_id: str, standing: UserStanding, status: QuotaStatus, policy: QuotaPolicy
) -> str:
    """One member: their block, their own override here, and the quota that applies."""
    own = standing.quota_seconds_per_day
    lines = [
        f"{mention(user_id)}: " + ("**blocked** here" if standing.blocked else "not blocked"),
        "Their own quota here: "
        + (
            quota_phrase(own, policy.seconds_per_day)
            if own is not None
            else "none (the server's or their roles' quota applies)"
        ),
        "\n".join(messages.quota_lines(status)).replace("You have", "They have"),
    ]
    return clip("\n".join(lines), CONTENT_MAX)


def words_text(words: Sequence[str]) -> str:
    if not words:
        return "No words are blocked in this server (the bot's own list still applies)."
    shown = ", ".join(safe(w, MAX_WORD_LENGTH) for w in words)
    return clip(f"**Blocked words here ({len(words)}):** {shown}", CONTENT_MAX)


def guild_queue_text(entries: Sequence[QueueEntry]) -> str:
    """/admin queue: every unfinished song from this guild, in the order they'll be served."""
    if not entries:
        return "Nothing is queued or being made in this server."
    ordered = sorted(entries, key=lambda e: (e.position == 0, e.position, e.job.id))
    lines = [
        escaped_line(messages.queue_line(e.job, e.position), e.job)
        + f" · {mention(e.job.destination.user_id)}"
        for e in ordered
    ]
    return bounded(lines, header=f"**Songs in the works in this server: {len(entries)}**")


def usage_text(rows: Sequence[UsageRow], days: int) -> str:
    """/admin usage: per member, songs asked, seconds made and their cost."""
    period = "day" if days == 1 else f"{days} days"
    if not rows:
        return f"Nobody asked for songs in this server in the last {period}."
    header = (
        f"**Usage in this server, last {period}:** {sum(r.jobs for r in rows)} songs asked, "
        f"{messages.humanize_seconds(sum(r.seconds for r in rows))} made, "
        f"${sum(r.cost_usd for r in rows):.4f}"
    )
    return bounded([_usage_line(row) for row in rows], header=header)


def _usage_line(row: UsageRow) -> str:
    last = f", last {_when(row.last_job_at)}" if row.last_job_at else ""
    songs = "1 song" if row.jobs == 1 else f"{row.jobs} songs"
    return (
        f"{mention(row.user_id)} — {songs} asked, {messages.humanize_seconds(row.seconds)} "
        f"made, ${row.cost_usd:.4f}{last}"
    )


def _when(moment: datetime) -> str:
    if moment.tzinfo is None:  # the database hands back UTC; say so, or it reads as local
        moment = moment.replace(tzinfo=UTC)
    return discord.utils.format_dt(moment, "R")


def job_choice(entry: QueueEntry) -> str:
    """An autocomplete choice for /admin cancel (plain text: choices don't render markdown)."""
    line = messages.queue_line(entry.job, entry.position)
    return clip(
        line.replace(entry.job.request.tags, clip(entry.job.request.tags, LIST_TAGS_SHOWN)), 100
    )
