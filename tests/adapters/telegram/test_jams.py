"""A community jam as a Telegram group meets it (issue #16): the real python-telegram-bot
client against the fake Telegram, the core on SQLite, the fake ACE-Step server making the
takes. Three members start a jam, add tags and lines (one as a reply to the jam message),
render it and vote on the takes under their 🗳 buttons; a jam in a forum topic stays there;
what the core refuses is said. test_jam_rounds.py goes on: the winner and a second round."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.telegram.jam_messages import GROUP_INTERVAL
from bot.domain import JobState
from bot.jams import texts as jam_words
from tests.adapters.telegram.conftest import GROUP_ID, WAIT, Rig
from tests.adapters.telegram.test_edits import ace_bot
from tests.fakes.acestep import FakeAceStep
from tests.fakes.telegram import FakeChat, FakeTelegram, FakeUser, RecordedMessage
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import POLL_SCALE, wait_for_job

FORUM_ID = -100900


@pytest.fixture
async def ace(
    tmp_path: Path, tg: FakeTelegram, ws: FakeWaveSpeed
) -> AsyncIterator[tuple[Rig, FakeAceStep]]:
    # Short songs, made side by side: a jam's takes are three songs at once.
    async with ace_bot(
        tmp_path, tg, ws, blocked_words=["forbidden"], acestep_max_concurrency=3
    ) as running:
        rig = running[0]
        for chat in (GROUP_ID, FORUM_ID):
            await rig.core.service.admin.update_chat_rules(
                "telegram", str(chat), default_duration=10
            )
        yield running


def carol(rig: Rig) -> FakeUser:
    return rig.tg.user(44, "Carol", "carol")


async def answer(rig: Rig, text: str, user: FakeUser, chat: FakeChat | None = None) -> str:
    """What the bot answers ``user`` saying ``text`` (its first reply's text)."""
    asked = await rig.say(text, user, chat)
    return (await rig.reply_to(asked, chat)).text or ""


def vote_button(track: RecordedMessage) -> str:
    (button,) = [b for b in track.buttons if b.text.startswith("🗳")]
    assert button.callback_data is not None
    return button.callback_data


async def takes_of(rig: Rig, jam_message: RecordedMessage, count: int) -> list[RecordedMessage]:
    """The tracks answering the jam message with a 🗳 button, in take order, once ``count``."""

    def found() -> list[RecordedMessage] | None:
        tracks = [
            m
            for m in rig.tg.chat_log(jam_message.chat, include_deleted=False)
            if m.audio is not None and m.reply_to_message_id == jam_message.message_id
        ]
        return tracks if len(tracks) >= count else None

    tracks = await rig.tg.wait_until(found, timeout=WAIT, what=f"{count} jam takes")
    return sorted(tracks, key=lambda m: int(vote_button(m).rsplit(":", 1)[1]))


async def vote(rig: Rig, user: FakeUser, track: RecordedMessage) -> str:
    query = await rig.tg.press_button(rig.group, user, track, vote_button(track))
    return (await rig.tg.wait_for_callback_answer(query, timeout=WAIT)).text or ""


async def shows(
    rig: Rig, message: RecordedMessage, *needles: str, gone: tuple[str, ...] = ()
) -> None:
    """Wait until the (edited) jam message shows every needle, and none of ``gone``."""

    def showing() -> bool:
        text = message.text or ""
        return all(n in text for n in needles) and not any(g in text for g in gone)

    await rig.tg.wait_until(showing, timeout=WAIT, what=f"the jam message showing {needles}")


@dataclass
class Voted:
    """A jam of three whose first round's takes are in and voted on (bob and carol: take 2,
    alice: take 3)."""

    jam: RecordedMessage  # the jam message
    jam_id: int
    takes: list[RecordedMessage]  # take 1, 2, 3


async def write_render_and_vote(rig: Rig) -> Voted:
    """Alice starts a jam; Bob and Carol add tags and lines (Bob once by replying to the jam
    message), Alice adds and removes one, a burst comes and goes; Alice renders it; the
    three vote, Bob pressing twice and Carol changing her mind."""
    alice, bob, cat = rig.alice, rig.bob, carol(rig)
    started = await rig.say("/jam start sea shanties 3", alice)
    jam = await rig.reply_to(started)
    assert "Jam #" in (jam.text or "") and "“sea shanties”" in (jam.text or "")
    assert "Round 1" in (jam.text or "") and "Host: Alice" in (jam.text or "")
    jam_id = int(re.search(r"Jam #(\d+)", jam.text or "")[1])  # type: ignore[index]

    said = await answer(rig, "/jam tag <b>accordion</b>, stomping", bob)
    assert said.startswith("✍️ Tag #1 added by Bob") and "Room left" in said
    assert "Line #2 added by Carol" in await answer(rig, "/jam line [Verse] we sail at dawn", cat)
    # A plain reply to the jam message is a line too.
    replied = await rig.say("through the night we row", bob, reply_to=jam)
    assert "Line #3 added by Bob" in ((await rig.reply_to(replied)).text or "")
    assert "Line #4" in await answer(rig, "/jam line oops, wrong song", alice)
    assert "removed" in await answer(rig, "/jam remove 4", alice)

    # User text is shown as typed (escaped), each piece with its number and author.
    await shows(rig, jam, "#1 <b>accordion</b>, stomping — Bob", "#2 [Verse] we sail at dawn")
    await shows(
        rig, jam, "#3 through the night we row — Bob", "Contributors: Bob, Carol", gone=("oops",)
    )
    # A burst of lines from everyone: the message follows within the chat's edit limits.
    burst = [(f"/jam line shanty line {n}", (alice, bob, cat)[n % 3]) for n in range(5, 11)]
    await asyncio.gather(*(rig.say(text, user) for text, user in burst))
    await shows(rig, jam, *(f"shanty line {n} — " for n in range(5, 11)))
    interval = GROUP_INTERVAL * POLL_SCALE
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(jam.edits)]
    assert min(gaps) > interval / 2, gaps

    rendering = await answer(rig, "/jam render", alice)
    assert "making 3 take(s)" in rendering
    takes = await takes_of(rig, jam, 3)
    assert [vote_button(t) for t in takes] == [f"jv:{jam_id}:1:{n}" for n in (1, 2, 3)]
    assert [t.buttons[0].text for t in takes] == [f"🗳 Vote for take {n}" for n in (1, 2, 3)]

    assert await vote(rig, bob, takes[1]) == jam_words.voted(2, True)
    assert await vote(rig, bob, takes[1]) == jam_words.voted(2, False)  # counted once
    assert await vote(rig, cat, takes[0]) == jam_words.voted(1, True)
    assert await vote(rig, cat, takes[1]) == jam_words.voted(2, True)  # changed
    assert await vote(rig, alice, takes[2]) == jam_words.voted(3, True)
    return Voted(jam, jam_id, takes)


async def test_three_members_write_a_jam_render_it_and_vote_on_its_takes(
    ace: tuple[Rig, FakeAceStep],
) -> None:
    await write_render_and_vote(ace[0])


async def test_a_jam_in_a_forum_topic_stays_in_its_topic(ace: tuple[Rig, FakeAceStep]) -> None:
    rig, _ = ace
    forum = rig.tg.group_chat(FORUM_ID, "Studio", forum=True)
    topic = rig.tg.forum_topic(forum, "Jam night", rig.alice)

    async def in_topic(text: str, user: FakeUser) -> RecordedMessage:
        sent = await rig.tg.send_message(forum, user, text, thread=topic)
        return await rig.reply_to(int(sent["message_id"]), forum)

    jam = await in_topic("/jam start harbour lights 1", rig.alice)
    assert jam.thread_id == topic and "harbour lights" in (jam.text or "")
    # General is another place: no jam there.
    general = await rig.tg.send_message(forum, rig.bob, "/jam line hello")
    answer_ = await rig.reply_to(int(general["message_id"]), forum)
    assert answer_.thread_id is None and jam_words.NO_JAM in (answer_.text or "")

    added = await in_topic("/jam line lanterns on the water", rig.bob)
    assert added.thread_id == topic and "Line #1" in (added.text or "")
    rendered = await in_topic("/jam render", rig.alice)
    assert rendered.thread_id == topic
    (take,) = await takes_of(rig, jam, 1)
    assert take.thread_id == topic
    query = await rig.tg.press_button(forum, rig.bob, take, vote_button(take))
    voted = await rig.tg.wait_for_callback_answer(query, timeout=WAIT)
    assert voted.text == jam_words.voted(1, True)
    assert all(m.thread_id == topic for m in rig.tg.chat_log(forum) if m is not answer_)


async def test_an_admin_cancels_a_jam_take_in_a_forum_topic(
    ace: tuple[Rig, FakeAceStep],
) -> None:
    rig, fake = ace
    forum = rig.tg.group_chat(FORUM_ID, "Studio", forum=True)
    topic = rig.tg.forum_topic(forum, "Jam night", rig.bob)
    rig.tg.set_admins(forum, [rig.alice.id])

    async def in_topic(text: str, user: FakeUser) -> RecordedMessage:
        sent = await rig.tg.send_message(forum, user, text, thread=topic)
        return await rig.reply_to(int(sent["message_id"]), forum)

    await in_topic("/jam start night drive 1", rig.bob)
    await in_topic("/jam line headlights on the hill", rig.bob)
    fake.faults.add_job(hang=True)  # the take stays in the making
    await in_topic("/jam render", rig.bob)

    # The chat's first job: the jam's take, its place the topic.
    take = await wait_for_job(rig.core, 1, {JobState.RUNNING})
    assert take.destination.chat_id == f"{FORUM_ID}:{topic}"

    # Alice administers the forum: her cancel reaches the take posted in its topic.
    answer = await in_topic(f"/admin cancel {take.id}", rig.alice)
    assert answer.text == f"✖ Cancelled #{take.id}; its owner got the quota back."
    assert answer.thread_id == topic
    cancelled = await wait_for_job(rig.core, take.id, {JobState.CANCELLED})
    assert cancelled.state == JobState.CANCELLED


async def test_what_a_jam_refuses_is_said(ace: tuple[Rig, FakeAceStep]) -> None:
    rig, _ = ace
    alice, bob = rig.alice, rig.bob
    assert jam_words.NO_JAM in await answer(rig, "/jam line hello", bob)
    assert "needs a theme" in await answer(rig, "/jam start", alice)
    assert "/jam start" in await answer(rig, "/jam", alice)  # the usage
    jam = await rig.reply_to(await rig.say("/jam start night drive", alice))
    assert "already a jam here" in await answer(rig, "/jam start other", bob)
    assert jam_words.HOST_ONLY in await answer(rig, "/jam render", bob)
    assert jam_words.BLOCKED_WORD in await answer(rig, "/jam tag forbidden beats", bob)
    assert "doesn't fit" in await answer(rig, "/jam tag " + "x" * 600, bob)
    assert "Tag #1" in await answer(rig, "/jam tag synthwave", alice)
    assert jam_words.REMOVE_WHO in await answer(rig, "/jam remove 1", bob)
    assert jam_words.no_contribution(9) in await answer(rig, "/jam remove 9", alice)
    assert jam_words.BOARD_OFF in await answer(rig, "/jam board", bob)  # no PUBLIC_URL
    assert "over" in await answer(rig, "/jam close", alice)  # closing before rendering ends it
    stats = await answer(rig, "/jam stats", bob)
    assert "Jams in Jam room: 1" in stats and "Alice — 0 wins, 1 contribution" in stats
    assert jam_words.NO_JAM in await answer(rig, "/jam tag more", bob)
    await shows(rig, jam, "Round 1 · over", "#1 synthwave — Alice")  # the jam as it ended


async def test_an_admin_chooses_who_pays_for_jams(ace: tuple[Rig, FakeAceStep]) -> None:
    rig, _ = ace
    rig.tg.set_admins(rig.group, [rig.alice.id])
    assert "budget" in await answer(rig, "/admin jam_pays chat", rig.alice)  # none yet
    assert "Jams are paid by: their host" in await answer(rig, "/admin", rig.alice)
    await answer(rig, "/admin budget 5", rig.alice)
    assert "monthly budget now" in await answer(rig, "/admin jam_pays chat", rig.alice)
    assert "Jams are paid by: the chat" in await answer(rig, "/admin", rig.alice)
    assert "isn't host or chat" in await answer(rig, "/admin jam_pays bob", rig.alice)
    rules = await rig.core.service.chat_rules("telegram", str(GROUP_ID))
    assert rules.jam_pays == "chat"
