"""What the bot writes, rendered for ``parse_mode=HTML``.

Every piece of user text goes through :func:`esc`; the core's sentences go through
:func:`rich`, which also turns their `backticks` into code. Wording shared with other
platforms comes from :mod:`bot.messages`.
"""

from __future__ import annotations

import dataclasses
import html
import math
import re
from datetime import datetime

from adapters.telegram import edit_texts
from bot import messages
from bot.clock import utcnow
from bot.controls import BPM_MAX, BPM_MIN, as_tags
from bot.domain import DEFAULT_DURATION, ChatRules, Job, Limits, Task
from bot.library import HistoryPage
from bot.quotas import QuotaPolicy, QuotaStatus
from bot.service import QueueEntry

CAPTION_LIMIT = 1024  # visible characters, after entity parsing
ANSWER_LIMIT = 200  # answerCallbackQuery text
LIST_TAGS_LIMIT = 100  # tags of one song in a list: cut, so a list stays under 4096
LIST_LIMIT = 20
LYRICS_LINE_LIMIT = 120
_TICKS = re.compile(r"`([^`\n]+)`")
_SECTION = re.compile(r"^\s*[\[(][^\])]*[\])]\s*$")  # "[Verse]", "(Chorus)"

EXAMPLE = (
    "/song lo-fi, chill, rainy piano | 30\n"
    "[Verse]\n"
    "Rain on the window, tea going cold\n"
    "[Chorus]\n"
    "Stay a little longer"
)


def esc(text: str) -> str:
    return html.escape(text, quote=False)


def rich(sentence: str) -> str:
    """A core sentence (plain text, `literal` in backticks) as HTML."""
    return _TICKS.sub(r"<code>\1</code>", esc(sentence))


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def problem(sentence: str) -> str:
    """A friendly one-liner about something that didn't work."""
    return f"⚠️ {rich(sentence)}"


def plain_answer(sentence: str) -> str:
    """A callback answer: plain text (no parse mode there), at most 200 characters."""
    return clip(sentence.replace("`", ""), ANSWER_LIMIT)


def summary(job: Job) -> str:
    """The second line of a status message: what is being made, and its number (for
    ``/cancel 12``; ``/queue`` lists the same numbers)."""
    seed = f" · seed {job.request.seed}" if job.request.seed >= 0 else ""
    tags = esc(clip(what_is_made(job), 200))
    return f"<i>{tags}</i> · {job.request.duration} s{seed} · #{job.id}"


def what_is_made(job: Job) -> str:
    """The tags, or the sentence a song is described by until its model has written them."""
    return job.request.tags or f"“{job.request.describe}”"


def status(icon: str, line: str, job: Job) -> str:
    """A status card: the line, what is made, what an edit is made from, whose take it is."""
    extra = [part for part in (edit_texts.lineage_line(job), take_line(job)) if part]
    return "\n".join([f"{icon} {rich(line)}", summary(job), *extra])


def take_line(job: Job) -> str | None:
    """Whose take a re-roll pressed by another member is: "🎲 Bob's take of Alice's song"."""
    owner = job.destination.context.get("take_of")
    if not isinstance(owner, str):
        return None
    name = requester_name(job) or "Someone"
    return f"🎲 {esc(name)}'s take of {esc(owner)}'s song"


def requester_name(job: Job) -> str | None:
    name = job.destination.context.get("requester_name")
    return name if isinstance(name, str) and name else None


def about(seconds: float) -> str:
    """A time left said as roughly as it is known: "a few seconds", "35 s", "1 min 40 s"."""
    if seconds < 10:
        return "a few seconds"
    step = 5 if seconds < 60 else 10 if seconds < 600 else 60
    return messages.humanize_seconds(math.ceil(seconds / step) * step)


def estimate(eta: datetime | None, now: datetime | None = None) -> str:
    """When the song should be ready; never a moment that has passed."""
    if eta is None:
        return ""
    left = (eta - (now or utcnow())).total_seconds()
    return f"Ready in about {about(left)}." if left >= 1 else "Ready any moment now."


def queued_line(position: int, eta: datetime | None, now: datetime | None = None) -> str:
    return " ".join(part for part in (messages.queued_line(position), estimate(eta, now)) if part)


def running_line(progress: float | None, eta: datetime | None, now: datetime | None = None) -> str:
    """ "Making your song — 40%. Ready in about 15 s." with what the engine told us."""
    done = f" — {max(0, min(100, round(progress * 100)))}%." if progress is not None else "…"
    return " ".join(part for part in (f"Making your song{done}", estimate(eta, now)) if part)


def failure_text(job: Job, sentence: str, *, mention: bool, in_group: bool) -> str:
    """A failed song's notice: who it is for (a mention notifies them), why, what's next."""
    name = requester_name(job) or "You"
    who = ""
    if mention and job.destination.user_id.isdigit():  # a person (a chat's id is negative)
        who = f'<a href="tg://user?id={job.destination.user_id}">{esc(name)}</a>: '
    text = f"⚠️ {who}{rich(sentence)}"
    if job.error_code == "nsfw" and in_group:
        text += " An admin of this chat can allow such songs with <code>/admin nsfw on</code>."
    return f"{text}\n{summary(job)}"


def lyrics_line(lyrics: str) -> str | None:
    """The first sung line of the lyrics (section markers skipped), or None: instrumental."""
    for line in lyrics.splitlines():
        if line.strip() and not _SECTION.match(line):
            return clip(" ".join(line.split()), LYRICS_LINE_LIMIT)
    return None


def song_format(limits: Limits) -> str:
    return (
        "<b>/song</b> <i>tags</i> | <i>duration</i> | <i>seed</i>\n"
        f"Style tags first; the duration ({limits.min_duration}–{limits.max_duration} s) and "
        "the seed are optional. Put lyrics on the lines below, or send /song as a reply to a "
        "message holding them. No lyrics makes an instrumental.\n\n"
        f"For example:\n<pre>{esc(EXAMPLE)}</pre>"
    )


def song_fields_help(limits: Limits) -> str:
    """Every named ``/song`` field, with one example each."""
    takes = (
        f"<code>takes=2</code> — up to {limits.max_takes} versions at once"
        if limits.max_takes > 1
        else ""
    )
    lines = [
        "After the tags, in any order:",
        takes,
        f"<code>bpm=120</code> — tempo, {BPM_MIN}–{BPM_MAX} beats per minute",
        "<code>key=F# minor</code> — key and scale",
        "<code>time=3</code> — beats per bar: 2, 3, 4 or 6",
        "<code>lang=pt</code> — language of the vocals (en, es, pt, fr, de, ja, …)",
        "e.g. <code>/song bossa nova, guitar | 90 | bpm=120 | key=F# minor | lang=pt</code>",
    ]
    return "\n".join(line for line in lines if line)


def describe_format(describes: bool = True) -> str:
    """``describes``: the engine has a language model now (else the help says so)."""
    available = (
        "The music model writes the style, lyrics, tempo and length for you; the track shows "
        "what it wrote. The <code>/song</code> fields after a <code>|</code> work here too."
        if describes
        else "It needs a music engine with a language model, and this bot's has none right "
        "now: give <code>/song</code> style tags instead."
    )
    return (
        "<b>/describe</b> <i>the song in one sentence</i>\n"
        f"{available}\n"
        "e.g. <code>/describe a sad song about rain in Lisbon</code>"
    )


def help_text(limits: Limits, describes: bool = True, edits: frozenset[Task] = frozenset()) -> str:
    """``edits``: what the engine can do to a track now (/extend, /remix, /repaint)."""
    building = edit_texts.help_section(edits)
    return (
        "🎵 <b>AceJam</b> makes songs with the ACE-Step music model.\n\n"
        f"{song_format(limits)}\n\n"
        f"{song_fields_help(limits)}\n\n"
        "Durations may be seconds (<code>90</code>) or minutes (<code>1:30</code>). The seed "
        "makes a song repeatable: the same tags, lyrics and seed give the same song; leave it "
        "out for a new one each time.\n\n"
        f"{describe_format(describes)}\n\n"
        "Reply <code>/song</code> to one of my tracks to change it: what you give replaces "
        "its part (e.g. <code>/song jazz, brushed drums</code> for new tags), the rest — "
        "tags, lyrics, duration, seed — stays.\n\n"
        + (f"{building}\n\n" if building else "")
        + "/show — post a song again, e.g. <code>/show 12</code>\n"
        "/history — all your songs with their numbers, e.g. <code>/history 2</code> for the "
        "second page\n"
        "/queue — your songs in the works\n"
        "/cancel — stop your latest song (<code>/cancel 12</code> for song #12, or reply "
        "/cancel to its message); ✖ Cancel under a song does the same\n"
        "/quota — how much music you have left today\n"
        "/limits — this chat's limits\n"
        "/jam — a song the chat writes together and votes on (<code>/jam</code> tells how)\n"
        "/help — this message\n\n"
        "Under each song: 🎲 New take (same request, new seed), 🔁 Same seed (the very same "
        "song again)."
    )


def start_text(
    limits: Limits,
    first_name: str | None,
    describes: bool = True,
    edits: frozenset[Task] = frozenset(),
) -> str:
    hello = f"Hi {esc(first_name)}! " if first_name else "Hi! "
    help_ = help_text(limits, describes, edits)
    return f"👋 {hello}Tell me a style and I'll make you a song.\n\n{help_}"


def limits_text(title: str | None, rules: ChatRules, policy: QuotaPolicy, limits: Limits) -> str:
    """``/limits``: what anyone may ask for here (the admins change it with /admin)."""
    quota = messages.quota_value(rules.quota_seconds_per_day, policy.seconds_per_day)
    longest = rules.max_duration or limits.max_duration
    default = min(rules.default_duration or min(DEFAULT_DURATION, limits.max_duration), longest)
    chat_jobs = rules.max_active_jobs or policy.max_active_jobs_per_scope
    at_once = f"{policy.max_active_jobs} each"
    if chat_jobs is not None:
        at_once += f", {chat_jobs} in this chat"
    lines = [
        f"📏 <b>Limits in {esc(title or 'this chat')}</b>",
        f"Daily music per person: {esc(quota)}",
        f"Song length: {limits.min_duration} s to {longest} s (without one: {default} s)",
        f"Songs in the works at once: {at_once}",
        "🎲 / 🔁 under a song: " + ("anyone here" if rules.others_may_press else "its owner"),
        "Songs flagged as not safe for work: " + ("posted" if rules.allow_nsfw else "held back"),
    ]
    return "\n".join(lines)


def tidy_note(seconds: float) -> str:
    """Under a personal answer in a group: it won't stay."""
    return f"\n<i>🧹 Removed in {messages.humanize_seconds(seconds)} to keep the chat tidy.</i>"


def quota_text(quota: QuotaStatus, now: datetime | None = None) -> str:
    return "🎚 " + "\n".join(rich(line) for line in messages.quota_lines(quota, now))


def queue_text(entries: list[QueueEntry]) -> str:
    if not entries:
        return f"📭 {rich(messages.NO_QUEUE)} Ask for one with /song."
    lines = [
        f"• {esc(messages.queue_line(_short(entry.job), entry.position))}"
        for entry in entries[:LIST_LIMIT]
    ]
    if len(entries) > LIST_LIMIT:
        lines.append(f"… and {len(entries) - LIST_LIMIT} more")
    return "🎶 <b>Your songs in the works</b>\n" + "\n".join(lines)


def history_text(page: HistoryPage) -> str:
    if not page.jobs:
        return f"📭 {rich(messages.NO_HISTORY)} Ask for one with /song."
    lines = [f"• #{job.id} {esc(_listed(job))}" for job in page.jobs]
    where = f" — page {page.page} of {page.pages}, {page.total} in all" if page.pages > 1 else ""
    newest = page.jobs[0].id
    return (
        f"🕘 <b>Your songs</b>{where}\n"
        + "\n".join(lines)
        + f"\n\n<code>/show {newest}</code> posts song #{newest} again; reply "
        "<code>/song …</code> to a track to change it."
    )


def caption(
    job: Job,
    *,
    title: str,
    seconds: float,
    full_seconds: float,
    is_preview: bool,
    made_from: str | None = None,
) -> str:
    """The track's caption: what was made, for whom, and how to make it again. Every emoji
    has a word beside it (screen readers read emoji names). ``made_from``: an edit's line
    (:func:`adapters.telegram.edit_texts.made_from`), HTML."""
    seed = job.seed_used if job.seed_used is not None else job.request.seed
    owner = job.destination.context.get("take_of")
    name = requester_name(job)
    if isinstance(owner, str):
        asked = f"🙋 {esc(name or 'Someone')}'s take of {esc(owner)}'s song"
    else:
        asked = f"🙋 Asked by {esc(name)}" if name else ""
    sung = lyrics_line(job.request.lyrics or "")
    words = f"📝 Lyrics: “{esc(sung)}”" if sung else "📝 Instrumental (no lyrics)"
    seed_text = f"🌱 Seed <code>{seed}</code>" if seed is not None and seed >= 0 else ""
    described = job.request.describe
    lines = [
        f"🎵 <b>{esc(title)}</b>",
        asked,
        made_from or "",
        f"💬 Described as: “{esc(clip(described, 200))}”" if described else "",
        "" if described and sung else words,
        f"🏷 Style: {esc(clip(job.request.tags, 500))}" if job.request.tags else "",
        # The controls asked for (or written by a model), so a variation's keep is visible.
        f"🎼 Music: {esc(as_tags(job.request.controls))}" if job.request.controls.given else "",
        " · ".join(
            part for part in (f"⏱ Length {_clock(seconds)}", seed_text, f"#{job.id}") if part
        ),
    ]
    if is_preview:
        lines.append(
            f"🔎 Preview: the first {_clock(seconds)} of {_clock(full_seconds)} — the whole "
            "song is too big to send here."
        )
    text = "\n".join(line for line in lines if line)
    if described and sung:  # what the model wrote, whole, for anyone to take further
        room = CAPTION_LIMIT - len(html.unescape(re.sub(r"<[^>]+>", "", text))) - 16
        lyrics = clip(job.request.lyrics, room)
        text += f"\n📝 Lyrics:\n<blockquote expandable>{esc(lyrics)}</blockquote>"
    return text


def _listed(job: Job) -> str:
    """A /history line: the song, and what an edit was made from."""
    lineage = messages.lineage(job)
    described = messages.describe(_short(job))
    return f"{described} · {lineage}" if lineage else described


def _short(job: Job) -> Job:
    """The job with its tags cut for a list line (the seed and state at the end must show)."""
    tags = clip(what_is_made(job), LIST_TAGS_LIMIT)
    return dataclasses.replace(job, request=dataclasses.replace(job.request, tags=tags))


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"
