"""The jam message stays within Discord's limits whatever members write (#16): a description
of 4096 characters, fields of 1024, 6000 for the whole embed; what does not fit is counted,
and member text never turns into markdown, a masked link or a mention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.discord.embeds import help_text
from adapters.discord.jam_cards import jam_embed, stats_text, thread_name, user_text
from bot.domain import JobId, JobState, Limits, Task
from bot.jams.model import Contribution, Jam, JamState, JamTake, MemberStats, Part, Round

NOW = datetime(2026, 12, 5, 13, 0, tzinfo=UTC)


def a_jam(contributions: list[Contribution], *, state: JamState = JamState.COLLECTING) -> Jam:
    takes = tuple(
        JamTake(1, n, JobId(n), JobState.DELIVERED, n, None, None, 5.0, votes=n) for n in (1, 2)
    )
    current = Round(
        1,
        state,
        NOW + timedelta(minutes=10),
        NOW + timedelta(minutes=20),
        2 if state == JamState.CLOSED else None,
        None,
        False,
        takes if state != JamState.COLLECTING else (),
    )
    return Jam(
        id=7,
        platform="discord",
        chat_id="2",
        origin_id="1",
        scope_id="9",
        host_id="100",
        host_name="Alice",
        theme="rainy *city* lo-fi",
        takes=2,
        collect_minutes=10,
        vote_minutes=10,
        state=state,
        round=1,
        token=None,
        context={},
        created_at=NOW,
        contributions=tuple(contributions),
        rounds=(current,),
    )


def said(number: int, part: Part, text: str, author: str = "Bob") -> Contribution:
    return Contribution(number, 1, part, text, str(number), author, False, NOW)


def texts_of(embed: Any) -> tuple[str, list[tuple[str, str]]]:  # Embed.to_dict()
    fields = [(f["name"], f["value"]) for f in embed.get("fields", [])]
    return embed["description"], fields


def total(embed: Any) -> int:
    description, fields = texts_of(embed)
    footer = embed.get("footer", {}).get("text", "")
    return (
        len(embed["title"])
        + len(description)
        + len(footer)
        + sum(len(n) + len(v) for n, v in fields)
    )


# Three very long lines: each shown cut (…), so all three fit.
@pytest.mark.parametrize("count,length,cut", [(60, 400, True), (300, 60, True), (3, 4000, False)])
def test_a_full_jam_fits_discords_limits_and_says_how_much_more_there_is(
    count: int, length: int, cut: bool
) -> None:
    many = [said(n, Part.LINE, "la " * (length // 3), "M" * 80) for n in range(1, count + 1)]
    tags = [said(count + n, Part.TAG, "synth " * 60, "N" * 80) for n in range(1, 40)]
    embed = jam_embed(a_jam(many + tags)).to_dict()
    description, fields = texts_of(embed)
    assert len(description) <= 4096 and len(embed["title"]) <= 256
    assert all(len(value) <= 1024 and len(name) <= 256 for name, value in fields)
    assert total(embed) <= 6000
    assert ("more lines" in description) is cut
    assert "more tags" in dict(fields)["Tags"]


def test_member_text_is_shown_as_typed() -> None:
    jam = a_jam(
        [
            said(
                1,
                Part.LINE,
                "[click](https://evil.example) @everyone <@123456789012345678>",
                "**Bob**",
            ),
            said(2, Part.TAG, "`code` _it_ ~~gone~~ ||spoiler||"),
        ]
    )
    embed = jam_embed(jam).to_dict()
    description, fields = texts_of(embed)
    assert "\\[click\\](https://evil.example)" in description
    assert "@\u200beveryone" in description and "<@\u200b123456789012345678>" in description
    assert "*\\*\\*Bob\\*\\**" in description
    assert dict(fields)["Tags"].startswith("`#2` \\`code\\` \\_it\\_ \\~\\~gone\\~\\~ \\|\\|")
    assert embed["title"] == "🎶 Jam: rainy \\*city\\* lo-fi"
    assert user_text("@here", 100) == "@\u200bhere"


def test_a_closed_round_shows_its_counts_and_winner() -> None:
    embed = jam_embed(a_jam([said(1, Part.TAG, "dreamy")], state=JamState.CLOSED)).to_dict()
    description, fields = texts_of(embed)
    assert "🏆 take 2 won" in description and "`/jam next`" in description
    assert dict(fields)["Takes"] == "Take 1: 1 vote · Take 2: 2 votes 🏆"


def test_thread_names_and_stats_stay_within_discords_limits() -> None:
    assert thread_name("  rainy   city\nlo-fi ") == "🎶 rainy city lo-fi"
    assert len(thread_name("x" * 300)) == 100
    rows = [MemberStats(str(n), f"member {n}", n, n // 2) for n in range(40)]
    text = stats_text(rows, 12, "Jam Club")
    assert len(text) <= 2000 and text.startswith("🎶 **12 jams in Jam Club**")
    assert text.endswith("… and 25 more")
    assert stats_text([], 0, None) == "No jams yet: `/jam start <theme>` opens one."


def test_help_names_jams_and_still_fits_one_message() -> None:
    edits = frozenset({Task.EXTEND, Task.REMIX, Task.REPAINT})
    text = help_text(Limits(5, 240, max_takes=8), describes=True, edits=edits)
    assert "`/jam start theme:`" in text and "/jam line" in text
    assert len(text) <= 2000 and text.endswith("blocked words and more.")  # nothing cut
