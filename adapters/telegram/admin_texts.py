"""What ``/admin`` writes, rendered for ``parse_mode=HTML`` (user text through ``esc``)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from adapters.telegram.permissions import ADMIN_ROLE
from adapters.telegram.texts import clip, esc
from bot import messages
from bot.domain import DEFAULT_DURATION, ChatRules, Job, Limits
from bot.quotas import QuotaPolicy
from bot.service import QueueEntry

if TYPE_CHECKING:  # AdminService hands these out (the core's report rows)
    from bot.stores import UsageRow

LIST_LIMIT = 20
WORDS_SHOWN = 50

HELP = (
    "<b>Admin commands</b> (for this chat's admins)\n"
    "/admin quota &lt;seconds|unlimited|default&gt; — everyone's daily music\n"
    "/admin adminquota &lt;seconds|unlimited|default&gt; — the admins' own\n"
    "/admin userquota &lt;seconds|unlimited|default&gt; — one person's: reply to their "
    "message, or put their numeric id first\n"
    "/admin block · /admin unblock — reply to their message (or give their id)\n"
    "/admin maxduration &lt;seconds|default&gt; — the longest song\n"
    "/admin defaultduration &lt;seconds|default&gt; — the length when none is asked\n"
    "/admin maxjobs &lt;number|default&gt; — songs in the works at once in this chat\n"
    "/admin buttons on|off — may others press 🎲 / 🔁 under someone's song\n"
    "/admin nsfw on|off — post songs the music engine flags as not safe for work\n"
    "/admin own_audio on|off — may members /remix and /extend audio they send\n"
    "/admin words add|remove grim, dark · /admin words list — words refused in tags and "
    "lyrics\n"
    "/admin budget &lt;dollars|none&gt; — this chat's monthly spending limit\n"
    "/admin jam_pays host|chat — who pays for a jam's takes (chat: its budget)\n"
    "/admin queue · /admin cancel &lt;song number&gt; · /admin usage [days]"
)


def overview(title: str | None, rules: ChatRules, policy: QuotaPolicy, limits: Limits) -> str:
    """``/admin`` alone: this chat's settings, then the commands that change them."""
    quota = messages.quota_value(rules.quota_seconds_per_day, policy.seconds_per_day)
    admins = rules.role_quotas.get(ADMIN_ROLE)
    admin_quota = "same as everyone" if admins is None else messages.quota_value(admins, 0)
    longest = rules.max_duration or limits.max_duration
    default_length = min(
        rules.default_duration or min(DEFAULT_DURATION, limits.max_duration), longest
    )
    jobs = rules.max_active_jobs or policy.max_active_jobs_per_scope
    words = len(rules.blocked_words)
    budget = (
        "none"
        if rules.monthly_budget_usd is None
        else f"{dollars(rules.monthly_budget_usd)} a month"
    )
    lines = [
        f"⚙️ <b>Settings for {esc(title or 'this chat')}</b>",
        f"Daily music per person: {quota}",
        f"Admins' daily music: {admin_quota}",
        f"Longest song: {longest} s{_default_mark(rules.max_duration)} · "
        f"default length: {default_length} s",
        f"Songs in the works at once: {jobs if jobs is not None else 'no limit'}"
        + _default_mark(rules.max_active_jobs),
        f"Others may press 🎲 / 🔁: {'yes' if rules.others_may_press else 'no'}",
        "Songs flagged as not safe for work: " + ("posted" if rules.allow_nsfw else "held back"),
        "Members may edit audio they send: "
        + ("yes" if rules.own_audio else "no")
        + _default_mark(rules.own_audio),
        f"Blocked words: {words or 'none'}" + (" (/admin words list)" if words else ""),
        f"Monthly budget: {budget}",
        "Jams are paid by: " + ("the chat" if rules.jam_pays == "chat" else "their host"),
        "",
        HELP,
    ]
    return "\n".join(lines)


def _default_mark(setting: object) -> str:
    return " (the default)" if setting is None else ""


def done(sentence: str) -> str:
    """A change that was made (the sentence may hold a user's name: escaped, never code)."""
    return f"✅ {esc(sentence)}"


def refused(sentence: str) -> str:
    return f"🔒 {esc(sentence)}"


def words_text(words: tuple[str, ...]) -> str:
    if not words:
        return "📭 This chat has no blocked words of its own."
    shown = ", ".join(f"<code>{esc(word)}</code>" for word in words[:WORDS_SHOWN])
    more = f" … and {len(words) - WORDS_SHOWN} more" if len(words) > WORDS_SHOWN else ""
    return f"🚫 <b>Blocked words here</b> ({len(words)}): {shown}{more}"


def queue_text(entries: list[QueueEntry], names: dict[str, str]) -> str:
    """Every unfinished song in this chat, in serving order, with whose it is."""
    if not entries:
        return "📭 Nothing is queued or running in this chat."
    # Running songs first, then the line in the order it will be served.
    ordered = sorted(entries, key=lambda e: (e.position != 0, e.position, e.job.id))
    lines = []
    for entry in ordered[:LIST_LIMIT]:
        owner = entry.job.destination.user_id
        line = messages.queue_line(_short(entry.job), entry.position)
        lines.append(f"• {esc(line)} · {esc(names.get(owner, f'user {owner}'))}")
    if len(entries) > LIST_LIMIT:
        lines.append(f"… and {len(entries) - LIST_LIMIT} more")
    return (
        "🎶 <b>Songs in line here</b>\n"
        + "\n".join(lines)
        + "\n\nStop one with <code>/admin cancel 12</code>."
    )


def usage_text(rows: list[UsageRow], days: int, now: datetime | None = None) -> str:
    """Per person: songs asked, seconds delivered, cost, and when they last asked."""
    span = "day" if days == 1 else f"{days} days"
    if not rows:
        return f"📭 No songs were made here in the last {span}."
    now = now or datetime.now(UTC)
    lines = [f"📊 <b>The last {span} here</b>"]
    for row in rows[:LIST_LIMIT]:
        name = clip(row.display_name or f"user {row.user_id}", 64)
        songs = "1 song" if row.jobs == 1 else f"{row.jobs} songs"
        last = f" · last {_ago(row.last_job_at, now)} ago" if row.last_job_at else ""
        lines.append(
            f"• {esc(name)}: {songs}, {messages.humanize_seconds(row.seconds)}, "
            f"{dollars(row.cost_usd)}{last}"
        )
    if len(rows) > LIST_LIMIT:
        lines.append(f"… and {len(rows) - LIST_LIMIT} more")
    jobs = sum(row.jobs for row in rows)
    seconds = sum(row.seconds for row in rows)
    cost = sum(row.cost_usd for row in rows)
    lines.append(f"Total: {jobs} songs, {messages.humanize_seconds(seconds)}, {dollars(cost)}")
    return "\n".join(lines)


def dollars(amount: float) -> str:
    # Per-song costs are fractions of a cent: show them rather than "$0.00".
    return f"${amount:.2f}" if amount == 0 or amount >= 0.01 else f"${amount:.4f}"


def _ago(moment: datetime, now: datetime) -> str:
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return messages.humanize_seconds(max(0.0, (now - moment).total_seconds()))


def _short(job: Job) -> Job:
    tags = clip(job.request.tags, 100)
    return dataclasses.replace(job, request=dataclasses.replace(job.request, tags=tags))
