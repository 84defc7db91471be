"""The jam message as Telegram shows it: the rendering of the core's values, parsed by the
fake's port of Telegram's HTML parser (what members would read), and its countdown."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from telegram.constants import ParseMode
from telegram.ext import Defaults

from adapters.telegram import jam_texts
from adapters.telegram.jam_messages import JamMessages
from bot.clock import utcnow
from bot.domain import JobId, JobState
from bot.jams.model import Contribution, Jam, JamState, JamTake, Part, Round
from tests.adapters.telegram.conftest import WAIT
from tests.fakes.telegram import FakeTelegram, parse_html
from tests.harness import POLL_SCALE

NOW = datetime(2026, 12, 5, 13, 0, tzinfo=UTC)


def contribution(
    number: int, part: Part, text: str, who: str, removed: bool = False
) -> Contribution:
    return Contribution(number, 1, part, text, who.lower(), who, removed, NOW)


def jam(
    *contributions: Contribution,
    state: JamState = JamState.COLLECTING,
    takes: tuple[JamTake, ...] = (),
    winner: int | None = None,
) -> Jam:
    current = Round(
        1, state, NOW + timedelta(minutes=9, seconds=5), None, winner, None, False, takes
    )
    return Jam(
        id=7,
        platform="telegram",
        chat_id="-100123",
        origin_id="-100123",
        scope_id="-100123",
        host_id="alice",
        host_name="Alice",
        theme="sea <shanties>",
        takes=3,
        collect_minutes=10,
        vote_minutes=10,
        state=state,
        round=1,
        token="t",
        context={},
        created_at=NOW,
        contributions=contributions,
        rounds=(current,),
    )


def shown(text: str) -> str:
    return parse_html(text)[0]


def test_the_jam_message_credits_each_piece_and_escapes_what_people_typed() -> None:
    text = shown(
        jam_texts.jam_message(
            jam(
                contribution(1, Part.TAG, "<b>accordion</b>", "Bob"),
                contribution(2, Part.LINE, "[Verse]\nwe sail & row", "Carol"),
                contribution(3, Part.LINE, "gone", "Alice", removed=True),
            ),
            NOW,
        )
    )
    assert text.startswith("🎶 Jam #7: “sea <shanties>”")
    assert "Round 1 · collecting words · ⏳ 10 min left · 3 takes" in text
    assert "Contributors: Bob, Carol" in text
    assert "#1 <b>accordion</b> — Bob" in text
    assert "#2 [Verse]\n    we sail & row — Carol" in text
    assert "gone" not in text


def test_a_long_jam_keeps_to_one_message_showing_the_newest() -> None:
    lines = [contribution(n, Part.LINE, f"line {n} " + "la " * 90, "Bob") for n in range(1, 40)]
    text = shown(jam_texts.jam_message(jam(*lines), NOW))
    assert len(text) <= jam_texts.MESSAGE_LIMIT
    assert "#39 line 39" in text and "#1 line 1 " not in text
    assert "earlier, on /jam board" in text


def test_votes_show_once_the_round_is_closed() -> None:
    takes = tuple(
        JamTake(1, n, JobId(n), JobState.DELIVERED, n, None, None, 30.0, votes)
        for n, votes in ((1, 1), (2, 2))
    )
    voting = shown(jam_texts.jam_message(jam(state=JamState.VOTING, takes=takes), NOW))
    assert "take 1 ✅ · take 2 ✅" in voting and "vote" not in voting.split("Takes:")[1]
    closed = shown(jam_texts.jam_message(jam(state=JamState.CLOSED, takes=takes, winner=2), NOW))
    assert "take 1 ✅ 1 vote · 🏆 take 2 ✅ 2 votes" in closed


def test_time_left_in_whole_minutes() -> None:
    assert jam_texts.time_left(NOW + timedelta(seconds=30), NOW) == "under a minute left"
    assert jam_texts.time_left(NOW + timedelta(seconds=61), NOW) == "2 min left"
    assert jam_texts.time_left(NOW + timedelta(minutes=120), NOW) == "2 h left"
    assert jam_texts.time_left(NOW - timedelta(seconds=1), NOW) == "time is up"


async def test_the_jam_message_counts_down_by_itself(tg: FakeTelegram) -> None:
    """With nothing else changing, the message is edited as the minute it shows runs out."""
    group = tg.group_chat(-100123, "Jam room")
    started = jam()
    current = replace(started.current, collect_ends_at=utcnow() + timedelta(seconds=61))
    shown = replace(started, rounds=(current,))

    async def find(jam_id: int) -> Jam | None:
        return shown

    # The adapter's bot sends HTML by default.
    app = tg.application_builder().defaults(Defaults(parse_mode=ParseMode.HTML)).build()
    async with app:
        bot = app.bot
        posted = await bot.send_message(group.id, jam_texts.jam_message(shown))
        assert "⏳ 2 min left" in (posted.text or "")
        messages = JamMessages(bot, find, time_scale=POLL_SCALE)
        messages.posted(shown.id, posted.message_id, jam_texts.jam_message(shown))
        messages.update(shown)  # the edit it makes now changes nothing: none is sent
        message = tg.message(group, posted.message_id)
        await tg.wait_until(
            lambda: "⏳ under a minute left" in (message.text or ""),
            timeout=WAIT,
            what="the countdown",
        )
        assert len(message.edits) == 1
        await messages.close()
