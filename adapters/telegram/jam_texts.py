"""What a jam looks like in a Telegram chat: the jam message, the usage and ``/jam stats``.

The sentences about what happened (started, added, the winner, ...) are the core's
(:mod:`bot.jams.texts`), the same on every platform; this module only lays a jam out in
Telegram's HTML, every piece of user text escaped (a theme or a line may hold ``<b>``).
"""

from __future__ import annotations

import math
from datetime import datetime

from adapters.telegram.texts import clip, esc, rich
from bot.clock import utcnow
from bot.jams import texts as jam_words
from bot.jams.model import Contribution, Jam, JamState, JamStats, JamTake, Round

MESSAGE_LIMIT = 4096  # a message's visible characters
CONTRIBUTION_LIMIT = 300  # one contribution's text as the message shows it (the board has all)
_ROOM = 3800  # what the listed words may take, leaving room for the head and the foot

USAGE = (
    "🎶 <b>Jams</b>: the chat writes a song together and votes on its takes.\n"
    "<code>/jam start &lt;theme&gt; [takes] [minutes] [vote minutes]</code> opens one here\n"
    "<code>/jam tag &lt;style words&gt;</code> · <code>/jam line &lt;lyric line&gt;</code> "
    "(or reply to the jam message with a line)\n"
    "<code>/jam remove &lt;n&gt;</code> takes back contribution n\n"
    "<code>/jam render</code> · <code>/jam close</code> · <code>/jam next</code> "
    "(the host or an admin)\n"
    "<code>/jam stats</code> · <code>/jam board</code> (<code>/jam board revoke</code>)"
)
HOW_TO_ADD = (
    "Add with <code>/jam tag …</code> and <code>/jam line …</code>, or reply to this "
    "message with a line; <code>/jam remove &lt;n&gt;</code> takes one back."
)


def usage(unknown: str | None = None) -> str:
    if unknown is None:
        return USAGE
    return f"⚠️ I don't know <code>/jam {esc(clip(unknown, 32))}</code>.\n\n{USAGE}"


def who(name: str | None, user_id: str) -> str:
    return esc(name or f"user {user_id}")


def jam_message(jam: Jam, now: datetime | None = None) -> str:
    """The jam message: posted at ``/jam start`` and edited as the jam goes."""
    now = now or utcnow()
    current = jam.current if jam.rounds else None
    head = [f"🎶 <b>Jam #{jam.id}: “{esc(jam.theme)}”</b>"]
    if current is not None:
        head.append(_round_line(jam, current, now))
    head.append(f"Host: {who(jam.host_name, jam.host_id)}")
    if jam.contributors:
        names = ", ".join(who(name, user_id) for user_id, name in jam.contributors)
        head.append(f"Contributors: {names}")
    words = _words(jam, jam.round)
    foot: list[str] = []
    if current is not None and current.takes:
        foot.append(_takes_line(current))
    if current is not None and current.state == JamState.COLLECTING:
        foot.append(HOW_TO_ADD)
    text = "\n".join(head) + "\n\n" + words
    if foot:
        text += "\n\n" + "\n".join(foot)
    return text


def deadline(jam: Jam) -> datetime | None:
    """When what the jam is doing now ends by itself (collecting, voting), if it does."""
    if not jam.rounds:
        return None
    if jam.state == JamState.COLLECTING:
        return jam.current.collect_ends_at
    if jam.state == JamState.VOTING:
        return jam.current.vote_ends_at
    return None


def _round_line(jam: Jam, current: Round, now: datetime) -> str:
    parts = [f"Round {current.number}", jam_words.state_word(jam.state)]
    ends = deadline(jam)
    if ends is not None:
        parts.append(f"⏳ {time_left(ends, now)}")
    parts.append(f"{jam.takes} take{'s' if jam.takes != 1 else ''}")
    return " · ".join(parts)


def time_left(ends: datetime, now: datetime) -> str:
    """In whole minutes, rounded up: the message is not edited every second."""
    seconds = (ends - now).total_seconds()
    if seconds <= 0:
        return "time is up"
    if seconds < 60:
        return "under a minute left"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"{minutes} min left"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min left" if minutes else f"{hours} h left"


def _words(jam: Jam, round: int) -> str:
    """The round's tags and lyrics, each with its number and author, newest kept when the
    message would run out of room."""
    tags = [_contribution(c) for c in jam.tags_of(round)]
    lines = [_contribution(c) for c in jam.lines_of(round)]
    if not tags and not lines:
        return "<i>No tags or lines yet: the theme alone makes the song.</i>"
    hidden = 0
    while len("\n".join(tags + lines)) > _ROOM and (lines or tags):
        (lines if lines else tags).pop(0)  # the earliest first: the newest are what changed
        hidden += 1
    sections = []
    if tags:
        sections.append("<b>Tags</b>\n" + "\n".join(tags))
    if lines:
        sections.append("<b>Lyrics</b>\n" + "\n".join(lines))
    if hidden:
        sections.append(f"<i>… and {hidden} earlier, on /jam board.</i>")
    return "\n\n".join(sections)


def _contribution(c: Contribution) -> str:
    text = clip(c.text.strip(), CONTRIBUTION_LIMIT)
    body = "\n    ".join(esc(line) for line in text.splitlines() if line.strip())
    return f"<code>#{c.number}</code> {body} — <i>{who(c.author_name, c.author_id)}</i>"


def _takes_line(current: Round) -> str:
    """The takes so far; votes only once the round is closed (so far only the total)."""
    shown = []
    for take in current.takes:
        mark = _take_mark(take)
        if current.state == JamState.CLOSED and take.made:
            mark += f" {take.votes} vote{'s' if take.votes != 1 else ''}"
        label = f"take {take.take} {mark}"
        shown.append(f"🏆 {label}" if take.take == current.winner_take else label)
    line = "Takes: " + " · ".join(shown)
    if current.votes_cast and current.state != JamState.CLOSED:
        line += f" — {current.votes_cast} vote{'s' if current.votes_cast != 1 else ''} cast"
    return line


def _take_mark(take: JamTake) -> str:
    if take.posted:
        return "✅"
    if take.made:
        return "📨"
    if take.ended:
        return "✖"
    return "⏳"


def stats_text(stats: JamStats, title: str | None) -> str:
    where = esc(title) if title else "this chat"
    if not stats.jams:
        return f"🎶 No jams in {where} yet: /jam start &lt;theme&gt; opens one."
    head = f"🎶 <b>Jams in {where}</b>: {stats.jams}"
    rows = [
        f"{n}. {who(row.name, row.user_id)} — {row.wins} win{'s' if row.wins != 1 else ''}, "
        f"{row.contributions} contribution{'s' if row.contributions != 1 else ''}"
        for n, row in enumerate(stats.rows[:20], start=1)
    ]
    return "\n".join([head, *rows])


def sentence(text: str) -> str:
    """A core sentence as HTML (escaped; `literal` as code)."""
    return rich(text)
