"""What the bot shows in Discord: status and track embeds, and the texts of the info commands.

Everything here is pure (no I/O). User text (tags, lyrics) is markdown-escaped and clipped to
Discord's limits; it only ever appears in embeds or in messages sent with
``AllowedMentions.none()``, so it never pings anyone. Wording shared with Telegram comes from
:mod:`bot.messages`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

import discord

from adapters.discord.drafts import LINE_EXAMPLE
from adapters.discord.lineage import edit_help, lineage_line, result_seconds
from bot import messages
from bot.audio import TrackTags, tags_for
from bot.controls import BPM_MAX, BPM_MIN, as_tags
from bot.domain import DEFAULT_DURATION, UNLIMITED, ChatRules, Job, Limits, Task
from bot.library import HistoryPage
from bot.quotas import QuotaPolicy, QuotaStatus
from bot.service import QueueEntry

# Discord's limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits)
CONTENT_MAX = 2000
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELD_MAX = 1024
FOOTER_MAX = 2048
# Ours: enough to recognise a request without flooding the channel.
TAGS_SHOWN = 600
LYRICS_SHOWN = 700
LIST_TAGS_SHOWN = 80

WAVEFORM_NAME = "waveform.png"
# Destination context of a take someone made of another member's song: whose it was.
TAKE_OF = "take_of"
# Destination context of a song posted again with /show: who asked to see it (a name).
SHOWN_BY = "shown_by"


class Phase(enum.IntEnum):
    """How far a job got, as its status message shows it. Never goes backwards."""

    QUEUED = 0
    RUNNING = 1
    FINISHING = 2
    FINAL = 3  # delivered, failed or cancelled


_COLOURS = {
    "queued": discord.Colour.blurple(),
    "running": discord.Colour.gold(),
    "finishing": discord.Colour.gold(),
    "done": discord.Colour.green(),
    "failed": discord.Colour.red(),
    "cancelled": discord.Colour.light_grey(),
}
_ICONS = {
    "queued": "⏳",
    "running": "🎛️",
    "finishing": "📦",
    "done": "✅",
    "failed": "⚠️",
    "cancelled": "✖️",
}


@dataclass(frozen=True)
class Status:
    """One state of a status message; equal states need no edit."""

    phase: Phase
    kind: str  # queued | running | finishing | done | failed | cancelled
    line: str  # the sentence, from bot.messages or the core's event message
    eta: datetime | None = None  # when the track is expected (queued or running)

    @property
    def cancellable(self) -> bool:
        return self.phase <= Phase.RUNNING


def queued(position: int, eta: datetime | None = None) -> Status:
    return Status(Phase.QUEUED, "queued", messages.queued_line(position), eta=eta)


def running(progress: float | None, eta: datetime | None) -> Status:
    # The ETA is shown as a Discord timestamp, which counts down by itself between edits.
    return Status(Phase.RUNNING, "running", messages.running_line(progress, None), eta=eta)


def finishing() -> Status:
    return Status(Phase.FINISHING, "finishing", messages.FINISHING_LINE)


def failed(sentence: str) -> Status:
    return Status(Phase.FINAL, "failed", sentence)


def cancelled(sentence: str) -> Status:
    return Status(Phase.FINAL, "cancelled", sentence)


# ---------------------------------------------------------------- helpers


def clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rstrip()
    if cut.endswith("\\"):  # never leave a dangling markdown escape before the ellipsis
        cut = cut[:-1]
    return cut + "…"


def safe(text: str, limit: int) -> str:
    """User text for an embed or message: markdown-escaped, then clipped."""
    return clip(discord.utils.escape_markdown(text, as_needed=False), limit)


def mention(user_id: str) -> str:
    return f"<@{user_id}>"


def seed_of(job: Job) -> int | None:
    seed = job.seed_used if job.seed_used is not None else job.request.seed
    return seed if seed is not None and seed >= 0 else None


def track_tags(job: Job, guild_name: str | None) -> TrackTags:
    return tags_for(job.request.tags, seed_of(job), job.request.duration, guild_name)


def take_line(job: Job) -> str | None:
    """A take of someone else's song says whose: "🎲 @Bob's take of @Alice's song #1" (🔁 for
    a same-seed take); Telegram says it the same way."""
    take = job.destination.context.get(TAKE_OF)
    if not isinstance(take, dict):
        return None
    icon = "🔁" if take.get("same_seed") else "🎲"
    return (
        f"{icon} {mention(job.destination.user_id)}'s take of "
        f"{mention(str(take.get('user_id')))}'s song #{take.get('job_id')}"
    )


def _song_fields(embed: discord.Embed, job: Job, duration: str) -> None:
    seed = seed_of(job)
    embed.add_field(name="Duration", value=duration)
    embed.add_field(name="Seed", value=str(seed) if seed is not None else "random")
    embed.add_field(name="Requested by", value=mention(job.destination.user_id))
    if job.request.controls.given:
        embed.add_field(name="Controls", value=as_tags(job.request.controls), inline=False)


# ---------------------------------------------------------------- status and track


def status_embed(job: Job, status: Status, *, eta_shown: bool = True) -> discord.Embed:
    """The card that follows a job until its track (or failure) is posted.

    ``eta_shown``: the ETA as a Discord timestamp, which counts down by itself between
    edits; False once it is so close that it could run out before the next edit."""
    # The core's sentences are ours (their `backticks` render as code); only user text is
    # escaped.
    lines = [f"{_ICONS[status.kind]} **{clip(status.line, 500)}**"]
    if status.eta is not None and status.phase <= Phase.RUNNING:
        when = discord.utils.format_dt(status.eta, "R") if eta_shown else "any moment now"
        lines.append(f"Ready {when}")
    lines.append("")
    lines.extend(line for line in (take_line(job), lineage_line(job)) if line)
    lines.append(safe(job.request.tags, TAGS_SHOWN))
    embed = discord.Embed(
        title=f"🎵 {safe(track_tags(job, None).title, TITLE_MAX - 2)}",
        description=clip("\n".join(lines), DESCRIPTION_MAX),
        colour=_COLOURS[status.kind],
    )
    _song_fields(embed, job, messages.humanize_seconds(result_seconds(job)))
    embed.set_footer(text=f"Job #{job.id}")
    return embed


@dataclass(frozen=True)
class TrackCard:
    """What the track message says about the file it carries."""

    title: str
    duration: float  # seconds in the file
    full_duration: float
    is_preview: bool
    limit_bytes: int
    with_image: bool
    model: str | None = None  # an edit's own model, where it is not the song model (#15)


def track_embed(job: Job, card: TrackCard) -> discord.Embed:
    title = f"🎵 {safe(card.title, TITLE_MAX - 2)}"
    lines = [line for line in (take_line(job), lineage_line(job)) if line]
    if job.request.describe:
        # A song from one sentence: the sentence, then the tags its model wrote for it.
        lines.append(f"✍️ “{safe(job.request.describe, TAGS_SHOWN)}”")
    lines.append(safe(job.request.tags, TAGS_SHOWN))
    if card.is_preview:
        lines.append("")
        lines.append(
            f"⚠️ **{messages.preview_line(card.duration, card.full_duration)}** "
            f"(this server takes files up to {_megabytes(card.limit_bytes)})"
        )
    embed = discord.Embed(
        title=title,
        description=clip("\n".join(lines), DESCRIPTION_MAX),
        colour=_COLOURS["done"],
    )
    shown = messages.humanize_seconds(card.full_duration)
    if card.is_preview:
        shown = f"{messages.humanize_seconds(card.duration)} preview of {shown}"
    _song_fields(embed, job, shown)
    if card.model:
        embed.add_field(name="Model", value=safe(card.model, FIELD_MAX), inline=False)
    if job.request.lyrics:
        embed.add_field(name="Lyrics", value=safe(job.request.lyrics, LYRICS_SHOWN), inline=False)
    if card.with_image:
        embed.set_image(url=f"attachment://{WAVEFORM_NAME}")
    embed.set_footer(text=f"Job #{job.id} · 🎲 New take · 🔁 Same seed")
    return embed


NSFW_HINT = "A server manager can allow such songs here with `/admin nsfw allow:True`."


def failure_content(job: Job, sentence: str) -> str:
    """A failure, as a message that notifies its requester."""
    text = f"⚠️ {mention(job.destination.user_id)} {sentence}"
    if job.error_code == "nsfw" and job.destination.scope_id:
        text += f" {NSFW_HINT}"
    return clip(text, CONTENT_MAX)


def failure_embed(job: Job) -> discord.Embed:
    """Which song failed: its title and tags."""
    embed = discord.Embed(
        title=f"🎵 {safe(track_tags(job, None).title, TITLE_MAX - 2)}",
        description="\n".join(
            line for line in (lineage_line(job), safe(job.request.tags, TAGS_SHOWN)) if line
        ),
        colour=_COLOURS["failed"],
    )
    _song_fields(embed, job, messages.humanize_seconds(result_seconds(job)))
    embed.set_footer(text=f"Job #{job.id}")
    return embed


def fallback_content(job: Job) -> str:
    """The track message's text: it mentions (and notifies) its requester; posted again
    with /show, it names who showed it and notifies nobody."""
    shown_by = job.destination.context.get(SHOWN_BY)
    if shown_by:
        # A name, not a mention: the post may notify the song's owner, who needn't hear
        # of it again (and the one who asked is looking at it).
        return f"🔁 Song #{job.id} again, shown by {safe(str(shown_by), 100)}."
    return f"{mention(job.destination.user_id)} your song is ready."


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


# ---------------------------------------------------------------- info commands


def cancelled_for_owner(job: Job) -> str:
    """What an admin reads after stopping someone else's song."""
    return (
        f"Cancelled #{job.id}; {mention(job.destination.user_id)} got the quota back, and "
        "its status message says an admin stopped it."
    )


def problem(sentence: str) -> str:
    return clip(f"⚠️ {sentence}", CONTENT_MAX)


def quota_text(status: QuotaStatus) -> str:
    return clip("\n".join(messages.quota_lines(status)), CONTENT_MAX)


def queue_text(entries: list[QueueEntry]) -> str:
    if not entries:
        return messages.NO_QUEUE
    return bounded(
        [escaped_line(messages.queue_line(e.job, e.position), e.job) for e in entries],
        header="**Your songs in the works**",
    )


def history_text(page: HistoryPage) -> str:
    """/history: one page of the member's finished songs, newest first, with their ids."""
    if not page.jobs:
        return messages.NO_HISTORY
    lines = []
    for job in page.jobs:
        line = f"#{job.id} {safe(job.request.tags, LIST_TAGS_SHOWN)}"
        seed = seed_of(job)
        line += f" — {round(result_seconds(job))} s" + (
            f", seed {seed}" if seed is not None else ""
        )
        lineage = lineage_line(job)
        if lineage:
            line += f" — {lineage}"
        link = message_link(job)
        if link:
            line += f" — [listen]({link})"
        lines.append(line)
    header = "**Your songs**"
    if page.pages > 1:
        header += f" — page {page.page} of {page.pages} ({page.total} songs)"
    hint = f"`/show {page.jobs[0].id}` posts song #{page.jobs[0].id} here again."
    return bounded([*lines, hint], header=header)


def message_link(job: Job, message_id: str | int | None = None) -> str | None:
    """A jump link to the job's track message (built here: a webhook message's own
    ``jump_url`` doesn't know its guild)."""
    message_id = message_id or job.delivered_message_id
    if not message_id:
        return None
    where = job.destination.scope_id or "@me"
    return f"https://discord.com/channels/{where}/{job.destination.chat_id}/{message_id}"


def escaped_line(line: str, job: Job) -> str:
    """A line from `bot.messages` that quotes the job's tags, with the tags made safe."""
    # queue_line embeds the raw tags; show a clipped, escaped copy instead.
    return line.replace(job.request.tags, safe(job.request.tags, LIST_TAGS_SHOWN), 1)


def bounded(lines: list[str], *, header: str) -> str:
    """``header`` and as many ``lines`` as fit one message; the rest are counted, not cut."""
    out = [header]
    used = len(header)
    for i, line in enumerate(lines):
        more = f"…and {len(lines) - i} more"
        if used + 1 + len(line) + 1 + len(more) > CONTENT_MAX:
            out.append(more)
            break
        out.append(line)
        used += 1 + len(line)
    return "\n".join(out)


def limits_text(place: str | None, rules: ChatRules, policy: QuotaPolicy, limits: Limits) -> str:
    """/limits, for any member: what anyone may make here (``policy``: the one a member
    without a role or override of their own gets)."""
    longest = min(rules.max_duration or limits.max_duration, limits.max_duration)
    usual = min(rules.default_duration or DEFAULT_DURATION, longest)
    daily = (
        "unlimited"
        if policy.seconds_per_day == UNLIMITED
        else f"{messages.humanize_seconds(policy.seconds_per_day)} a day"
    )
    at_once = f"{policy.max_active_jobs} per member"
    if policy.max_active_jobs_per_scope is not None:
        at_once += f", {policy.max_active_jobs_per_scope} in all here"
    channels = ", ".join(f"<#{c}>" for c in rules.allowed_channels)
    lines = [
        f"**What anyone can make {f'in {safe(place, 100)}' if place else 'here'}**",
        f"Music per member: {daily} (a rolling 24 hours; some roles may get more). "
        "`/quota` shows what you have left.",
        f"Song length: {messages.humanize_seconds(limits.min_duration)} to "
        f"{messages.humanize_seconds(longest)}; {messages.humanize_seconds(usual)} "
        "when you don't say.",
        f"Songs in the works at once: {at_once}.",
        f"Channels for /song: {channels or 'any'}.",
        "🎲 New take / 🔁 Same seed under someone else's song: "
        + ("anyone may press them." if rules.others_may_press else "only its owner."),
    ]
    return clip("\n".join(lines), CONTENT_MAX)


def help_text(
    limits: Limits, *, describes: bool = False, edits: frozenset[Task] = frozenset()
) -> str:
    """/help; ``describes``: whether the backend has a language model to make a song from one
    sentence right now (the option is there either way, and says so when it hasn't);
    ``edits``: the edit commands it offers (#15)."""
    shortest = messages.humanize_seconds(limits.min_duration)
    longest = messages.humanize_seconds(limits.max_duration)
    described = (
        "(its language model writes the tags, lyrics and the rest)"
        if describes
        else "(not here now: this bot's engine has no language model)"
    )
    takes = (
        f"`takes:` versions at once, 1 to {limits.max_takes}, e.g. `2` (each counts on your "
        "quota) · "
        if limits.max_takes > 1
        else ""
    )
    return clip(
        "\n".join(
            [
                "**AceJam makes songs with the ACE-Step model.**",
                "`/song tags:` style tags, e.g. `lo-fi, chill, rainy piano` — add `duration:` "
                f"(`90` or `1:30`; {shortest} to {longest}), `seed:` (a take's seed plays it "
                "again; empty or `-1` for a random one) and `lyrics:`.",
                f"More `/song` options: {takes}`bpm:` the tempo, {BPM_MIN} to {BPM_MAX}, "
                "e.g. `120` · `key:` e.g. `F# minor` · "
                "`time_signature:` beats per bar, e.g. `3/4` · `language:` of the vocals, "
                "e.g. `pt` · `describe:` the song in one sentence, e.g. "
                f"`a sad song about rain in Lisbon` {described}.",
                "`/compose` opens a form for multi-line lyrics "
                "(`[Verse]`, `[Chorus]` on their own lines), whose last line takes those "
                f"options, e.g. `{LINE_EXAMPLE}`; if something in it is off, "
                "✏️ Fix and resubmit brings it back as you typed it.",
                "Under each song: 🎲 New take (a new seed) · 🔁 Same seed (the same take "
                "again) · ✏️ Edit (the form, filled in with that song: change anything and "
                "make it again). ✖ Cancel, or `/cancel`, stops a song in the works and gives "
                "its quota back.",
                *edit_help(edits),
                "`/queue` your songs in the works · `/quota` what you have left · "
                "`/history` all your songs with their numbers, a page at a time · "
                "`/show 12` posts song #12 here again · `/limits` what anyone can make here.",
                "`/jam start theme:` a jam: the channel writes a song together in a "
                "thread (`/jam tag`, `/jam line`), votes on its takes with 🗳, and `/jam next` "
                "goes on from the winner.",
                "Server managers: `/admin` sets quotas, channels, blocked words and more.",
            ]
        ),
        CONTENT_MAX,
    )
