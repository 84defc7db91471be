"""What a jam looks like on Discord (#16): the jam message's embed, and the texts said about
a jam in its thread.

The jam message shows the theme, the round and what it waits for (Discord's own relative
timestamps, ``<t:…:R>``, count the time left down on each reader's screen, so the message
needs no edit per minute), the takes, the contributors, and the tags and lyric lines with
each one's number (what ``/jam remove`` names) and author. Everything a member typed is
escaped of markdown and mentions, and every part is cut to Discord's limits (a field 1024
characters, a description 4096, an embed 6000 together) with a note of what was left out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

import discord

from adapters.discord.embeds import clip
from bot.jams.model import Contribution, Jam, JamState, JamTakeRef, MemberStats, Round

CONTENT_MAX = 2000
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELD_MAX = 1024
FOOTER_MAX = 2048
EMBED_MAX = 6000  # all of an embed's texts together
NAME_SHOWN = 64  # a member's name beside their line
THREAD_NAME_MAX = 100  # Discord's limit for a thread's name
STATS_SHOWN = 15  # members in /jam stats
COLOUR = discord.Colour.from_rgb(0xE0, 0x6C, 0x9F)
_BRACKET = re.compile(r"(?<!\\)[\[\]]")  # a bracket not escaped yet


def user_text(text: str, limit: int) -> str:
    """What a member typed, shown as typed: no markdown (nor a masked link, ``[text](url)``),
    no mention (it would show as a ping even where nobody is notified), cut to ``limit``."""
    escaped = discord.utils.escape_markdown(text, as_needed=False)
    escaped = _BRACKET.sub(r"\\\g<0>", escaped)  # discord.py escapes a link's "[" alone
    return clip(discord.utils.escape_mentions(escaped), limit)


def when(moment: datetime) -> str:
    """A moment every reader sees in their own time zone, counting down by itself."""
    return f"<t:{int(moment.timestamp())}:R>"


def thread_name(theme: str) -> str:
    """The jam's thread is named after its theme (plain text: Discord shows names as typed)."""
    name = " ".join(theme.split()) or "jam"
    return clip(f"🎶 {name}", THREAD_NAME_MAX)


def state_line(jam: Jam) -> str:
    current = jam.current if jam.rounds else None
    head = f"Round {jam.round}"
    if jam.state == JamState.ENDED:
        return f"{head} · this jam has ended."
    if current is None:
        return head
    if current.state == JamState.COLLECTING:
        ends = current.collect_ends_at
        later = f" — the takes are made {when(ends)}" if ends is not None else ""
        return f"{head} · ✍️ collecting tags and lines{later} (or when the host says `/jam render`)"
    if current.state == JamState.RENDERING:
        made = sum(1 for take in current.takes if take.ended)
        return f"{head} · 🎛 making {jam.takes} takes ({made} done)…"
    if current.state == JamState.VOTING:
        ends = current.vote_ends_at
        until = f" until {when(ends)}" if ends is not None else ""
        return f"{head} · 🗳 voting{until}: press the button under your favourite take"
    if current.winner_take is not None:
        return f"{head} · 🏆 take {current.winner_take} won — `/jam next` starts another round"
    return f"{head} · closed"


def contribution_line(c: Contribution) -> str:
    """`#3` the text — *author*; a contribution of several lines keeps its lines."""
    author = user_text(c.author_name or f"member {c.author_id}", NAME_SHOWN)
    text = "\n".join(user_text(line, 400) for line in c.text.strip().splitlines() if line.strip())
    return f"`#{c.number}` {text} — *{author}*"


def listed(lines: Sequence[str], limit: int, *, empty: str, what: str) -> str:
    """``lines`` joined, as many as fit ``limit``, then how many more there are."""
    if not lines:
        return empty
    text = "\n".join(lines)
    if len(text) <= limit:
        return text
    reserve = len(f"… and {len(lines)} more {what}") + 1
    shown: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 > limit - reserve:
            break
        shown.append(line)
        used += len(line) + 1
    shown.append(f"… and {len(lines) - len(shown)} more {what}")
    return "\n".join(shown)


def takes_text(jam: Jam, current: Round) -> str | None:
    if not current.takes:
        return None
    closed = current.state == JamState.CLOSED
    parts = []
    for take in sorted(current.takes, key=lambda t: t.take):
        if closed:
            crown = " 🏆" if take.take == current.winner_take else ""
            votes = "vote" if take.votes == 1 else "votes"
            parts.append(f"Take {take.take}: {take.votes} {votes}{crown}")
        elif take.made:
            parts.append(f"Take {take.take} ✅")
        elif take.ended:
            parts.append(f"Take {take.take} ✖")
        else:
            parts.append(f"Take {take.take} ⏳")
    cast = "" if closed else f"\n{current.votes_cast} voted so far" if current.votes_cast else ""
    return clip(" · ".join(parts) + cast, FIELD_MAX)


def jam_embed(jam: Jam) -> discord.Embed:
    """The jam message: within Discord's limits whatever was contributed."""
    current = jam.current if jam.rounds else None
    title = clip(f"🎶 Jam: {user_text(jam.theme, TITLE_MAX)}", TITLE_MAX)
    head = state_line(jam)
    lines = [contribution_line(c) for c in jam.lines_of(jam.round)]
    tags = [contribution_line(c) for c in jam.tags_of(jam.round)]
    contributors = ", ".join(
        user_text(name or f"member {uid}", NAME_SHOWN) for uid, name in jam.contributors
    )
    fields: list[tuple[str, str]] = [
        (
            "Tags",
            listed(tags, FIELD_MAX, empty="*the theme only, so far: `/jam tag` adds*", what="tags"),
        )
    ]
    if current is not None:
        takes = takes_text(jam, current)
        if takes is not None:
            fields.append(("Takes", takes))
    earlier = [
        f"Round {r.number}: take {r.winner_take} won"
        for r in jam.rounds
        if r.number < jam.round and r.winner_take is not None
    ]
    if earlier:
        fields.append(("Earlier rounds", clip("\n".join(earlier), FIELD_MAX)))
    fields.append(("Contributors", clip(contributors, FIELD_MAX) or "*nobody yet*"))
    host = user_text(jam.host_name or f"member {jam.host_id}", NAME_SHOWN)
    footer = clip(
        f"Jam #{jam.id} · hosted by {host} · /jam tag · /jam line · /jam remove <#>", FOOTER_MAX
    )
    used = len(title) + len(footer) + sum(len(n) + len(v) for n, v in fields)
    room = min(DESCRIPTION_MAX, EMBED_MAX - used) - len(head) - len("\n\n**Lyrics**\n")
    lyrics = listed(lines, room, empty="*no lines yet: `/jam line` adds*", what="lines")
    embed = discord.Embed(title=title, description=f"{head}\n\n**Lyrics**\n{lyrics}", colour=COLOUR)
    for name, value in fields:
        embed.add_field(name=name, value=value, inline=name in ("Takes", "Earlier rounds"))
    embed.set_footer(text=footer)
    return embed


def announcement(text: str) -> str:
    """A sentence of the core's about a jam, posted in its thread. It names members (user
    text): escaped, and posted with no mentions allowed."""
    return user_text(text, CONTENT_MAX)


def stats_text(rows: Sequence[MemberStats], jams: int, place: str | None) -> str:
    where = f" in {user_text(place, 100)}" if place else ""
    if jams == 0:
        return f"No jams{where} yet: `/jam start <theme>` opens one."
    count = "1 jam" if jams == 1 else f"{jams} jams"
    lines = [f"🎶 **{count}{where}** — wins · contributions"]
    for index, row in enumerate(rows[:STATS_SHOWN], start=1):
        name = user_text(row.name or f"member {row.user_id}", NAME_SHOWN)
        lines.append(f"{index}. {name} — 🏆 {row.wins} · ✍️ {row.contributions}")
    if len(rows) > STATS_SHOWN:
        lines.append(f"… and {len(rows) - STATS_SHOWN} more")
    return clip("\n".join(lines), CONTENT_MAX)


def take_content(ref: JamTakeRef) -> str:
    """The text of a jam take's track message."""
    return f"🗳 Take {ref.take} of the jam's round {ref.round}: vote with the button below."


def take_failed(take: object, sentence: str) -> str:
    """A jam take that could not be made, said in its thread (the core's sentence)."""
    which = f"Take {take}" if isinstance(take, int) else "A take"
    return clip(f"⚠️ {which} of the jam could not be made: {sentence}", CONTENT_MAX)
