"""A community jam on Discord (#16), through the real discord.py client against the fake
Discord, with the real core (SQLite) and FakeWaveSpeed making the takes.

Alice hosts, Bob and Carol join: /jam start makes a thread named after the theme, tags and
lines come in from the thread and from the channel it was started in (one through the
form for several lines), one is taken back; the jam message shows who wrote what. Then the
takes arrive in the thread, each with 🗳, members vote (one presses twice, one changes
their mind), the host closes the round and the winner is announced crediting everyone, and
/jam next opens round two. Bad input gets a private sentence.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.jams import texts
from bot.jams.model import Jam
from tests.adapters.discord.conftest import (
    APP_ID,
    CHANNEL,
    FAST,
    GUILD,
    LOOSE_LIMITS,
    OTHER_CHANNEL,
    TOKEN,
    Running,
    World,
    jam,
    wait_for,
)
from tests.fakes.discord import FakeDiscord, FakeInteraction, Perm, RecordedMessage
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import WAVESPEED_KEY, wavespeed_settings

ALICE = 1_190_000_000_000_000_211  # the host
BOB = 1_190_000_000_000_000_212
CAROL = 1_190_000_000_000_000_213
THEME = "rainy city lo-fi"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """The Jam Club, where the bot may start threads; "lobby" is a channel with no jam."""
    async with (
        FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as ws,
        FakeDiscord(application_id=APP_ID, token=TOKEN, rate_limits=LOOSE_LIMITS) as dc,
    ):
        dc.add_user(ALICE, "alice", global_name="Alice")
        dc.add_user(BOB, "bob", global_name="Bob")
        dc.add_user(CAROL, "carol", global_name="Carol")
        dc.add_guild(
            GUILD,
            "Jam Club",
            channels=[(CHANNEL, "general"), (OTHER_CHANNEL, "lobby")],
            members=[ALICE, BOB, CAROL],
            bot_permissions=Perm.BOT_DEFAULT | Perm.CREATE_PUBLIC_THREADS,
        )
        settings = wavespeed_settings(
            tmp_path,
            ws.base_url,
            discord_token=TOKEN,
            discord_api_base_url=dc.api_base,
            discord_guild_ids=str(GUILD),
            blocked_words=["forbidden"],
        )
        yield World(dc, ws, settings, tmp_path)


async def jam_cmd(
    dc: FakeDiscord, channel: int, user: int, sub: str, options: dict[str, Any] | None = None
) -> FakeInteraction:
    return await dc.invoke_slash(GUILD, channel, user, f"jam {sub}", options)


async def private_answer(inter: FakeInteraction) -> str:
    """What the member alone was told."""
    message = await inter.wait_for_original(lambda m: not m.loading)
    assert message.ephemeral
    return message.content


async def start_jam(run: Running, **options: Any) -> tuple[int, Jam]:
    """Alice starts the jam in #general; its thread's id and the jam."""
    dc = run.dc
    inter = await jam_cmd(dc, CHANNEL, ALICE, "start", {"theme": THEME, **options})
    said = await private_answer(inter)
    (thread,) = dc.threads_of(CHANNEL)
    thread_id = int(thread["id"])
    assert said.startswith("🎶 Jam #") and f"<#{thread_id}>" in said
    found = await run.core.service.jams.jam_at("discord", str(thread_id))
    assert found is not None
    return thread_id, found


def jam_message(dc: FakeDiscord, thread_id: int) -> RecordedMessage:
    (message,) = [
        m
        for m in dc.channel_messages(thread_id)
        if m.embeds and str(m.embeds[0].get("title", "")).startswith("🎶 Jam:")
    ]
    return message


def shown(dc: FakeDiscord, thread_id: int) -> str:
    """The jam message's embed as one text: title, description, fields ("" while none)."""
    found = [
        m
        for m in dc.channel_messages(thread_id)
        if m.embeds and str(m.embeds[0].get("title", "")).startswith("🎶 Jam:")
    ]
    if len(found) != 1:
        return ""
    embed = found[0].embeds[0]
    parts = [embed.get("title", ""), embed.get("description", "")]
    parts += [f"{f['name']}\n{f['value']}" for f in embed.get("fields", [])]
    return "\n".join(parts)


async def wait_until_shown(
    dc: FakeDiscord, thread_id: int, *texts_: str, absent: tuple[str, ...] = ()
) -> None:
    """Until the jam message shows every one of ``texts_`` and none of ``absent``."""

    def check() -> bool:
        whole = shown(dc, thread_id)
        return all(t in whole for t in texts_) and not any(t in whole for t in absent)

    try:
        await wait_for(check, timeout=5)
    except TimeoutError:
        raise AssertionError(f"the jam message shows:\n{shown(dc, thread_id)}") from None


async def test_members_add_tags_and_lines_from_the_thread_and_its_channel(world: World) -> None:
    async with jam(world, tuning=FAST) as run:
        dc = run.dc
        thread_id, started = await start_jam(run, minutes=60)
        (thread,) = dc.threads_of(CHANNEL)
        assert thread["name"] == f"🎶 {THEME}" and thread["type"] == 11  # public
        (note,) = dc.channel_messages(CHANNEL, include_ephemeral=False)  # "started a thread"
        assert (note.type, note.content) == (18, f"🎶 {THEME}")
        assert started.chat_id == str(thread_id) and started.origin_id == str(CHANNEL)
        message = await dc.wait_for_message(thread_id, lambda m: m.embeds)
        assert message.embeds[0]["title"] == f"🎶 Jam: {THEME}"
        assert "Round 1" in message.embeds[0]["description"]
        assert not message.pings.anyone

        # Bob in the thread, Carol from #general: both reach the jam.
        bob_tag = await jam_cmd(dc, thread_id, BOB, "tag", {"tags": "dreamy synths"})
        assert (await private_answer(bob_tag)).startswith("✅ Tag #1 added by Bob")
        carol_tag = await jam_cmd(dc, CHANNEL, CAROL, "tag", {"tags": "@everyone *vinyl*"})
        assert "Tag #2" in await private_answer(carol_tag)
        alice_line = await jam_cmd(
            dc, thread_id, ALICE, "line", {"text": "[Verse] Neon in the puddles"}
        )
        assert "Line #3" in await private_answer(alice_line)
        # Carol writes a chorus of several lines in the form.
        form = await jam_cmd(dc, thread_id, CAROL, "line")
        modal = await form.wait_for_modal()
        assert modal["components"][0]["components"][0]["style"] == 2  # a paragraph
        sent = await dc.submit_modal(
            form, values={"lines": "[Chorus]\nStay up with me\n\nTill the streetlights hum"}
        )
        assert "Line #4" in await private_answer(sent)
        bob_line = await jam_cmd(dc, thread_id, BOB, "line", {"text": "Umbrellas like balloons"})
        assert "Line #5" in await private_answer(bob_line)
        taken_back = await jam_cmd(dc, thread_id, BOB, "remove", {"number": 5})
        assert await private_answer(taken_back) == f"✅ {texts.removed(5)}"

        await wait_until_shown(
            dc,
            thread_id,
            "`#1` dreamy synths — *Bob*",
            # Markdown and mentions are shown as typed, never as a ping or bold.
            "`#2` @\u200beveryone \\*vinyl\\* — *Carol*",
            "`#3` \\[Verse\\] Neon in the puddles — *Alice*",
            "`#4` \\[Chorus\\]\nStay up with me\nTill the streetlights hum — *Carol*",
            "Bob, Carol, Alice",
            absent=("Umbrellas",),
        )
        message = jam_message(dc, thread_id)
        assert message.edits and all(e.via == "channel" for e in message.edits)
        assert not message.pings.anyone
        # Only the jam message is in the thread: every answer was private.
        assert [m.id for m in dc.channel_messages(thread_id, include_ephemeral=False)] == [
            message.id
        ]
        jam_now = await run.core.service.jams.get(started.id)
        assert jam_now is not None and jam_now.context["message_id"] == str(message.id)


async def test_bad_input_gets_a_private_sentence(world: World) -> None:
    async with jam(world, tuning=FAST) as run:
        dc = run.dc
        nowhere = await jam_cmd(dc, OTHER_CHANNEL, BOB, "tag", {"tags": "lo-fi"})
        assert await private_answer(nowhere) == f"⚠️ {texts.NO_JAM}"
        thread_id, _ = await start_jam(run, minutes=60)
        again = await jam_cmd(dc, CHANNEL, BOB, "start", {"theme": "another"})
        assert "There's already a jam here" in await private_answer(again)
        not_host = await jam_cmd(dc, thread_id, BOB, "render")
        assert await private_answer(not_host) == f"⚠️ {texts.HOST_ONLY}"
        blocked = await jam_cmd(dc, thread_id, CAROL, "line", {"text": "a FORBIDDEN word"})
        assert await private_answer(blocked) == f"⚠️ {texts.BLOCKED_WORD}"
        await private_answer(await jam_cmd(dc, thread_id, BOB, "line", {"text": "la la la"}))
        too_long = await jam_cmd(dc, thread_id, CAROL, "line", {"text": "x" * 4090})
        said = await private_answer(too_long)
        assert said.startswith("⚠️ That doesn't fit") and "are left" in said
        someone_elses = await jam_cmd(dc, thread_id, CAROL, "remove", {"number": 1})
        assert await private_answer(someone_elses) == f"⚠️ {texts.REMOVE_WHO}"
        # Nothing of it reached the thread but the jam message.
        assert len(dc.channel_messages(thread_id, include_ephemeral=False)) == 1


async def test_the_board_link_is_posted_in_the_thread_and_the_host_revokes_it(
    world: World,
) -> None:
    async with jam(world, tuning=FAST, public_url="https://jams.example") as run:
        dc = run.dc
        thread_id, started = await start_jam(run, minutes=60)
        asked = await jam_cmd(dc, CHANNEL, BOB, "board")  # from the channel: told where
        assert (await private_answer(asked)).startswith(f"✅ Posted in <#{thread_id}>")
        link = await dc.wait_for_message(thread_id, lambda m: "jams.example" in m.content)
        assert link.content == texts.board(f"https://jams.example/jam/{started.token}")
        not_host = await jam_cmd(dc, thread_id, BOB, "board", {"revoke": True})
        assert await private_answer(not_host) == f"⚠️ {texts.HOST_ONLY}"
        revoke = await jam_cmd(dc, thread_id, ALICE, "board", {"revoke": True})
        assert await private_answer(revoke) == f"✅ {texts.BOARD_REVOKED}"
        assert await run.core.service.jams.by_token(started.token or "") is None
        await private_answer(await jam_cmd(dc, thread_id, CAROL, "tag", {"tags": "brass"}))
        stats = await jam_cmd(dc, thread_id, CAROL, "stats")
        shown_stats = await stats.wait_for_original(lambda m: not m.loading)
        assert not shown_stats.ephemeral
        assert shown_stats.content.startswith("🎶 **1 jam in Jam Club**")
        assert "Carol — 🏆 0 · ✍️ 1" in shown_stats.content


async def test_a_burst_of_contributions_is_shown_in_fewer_edits(world: World) -> None:
    # Discord's pace: a jam message is edited at most once a second here.
    async with jam(world, tuning=replace(FAST, edit_interval=1.0)) as run:
        dc = run.dc
        thread_id, _ = await start_jam(run, minutes=60)
        words = ["brass", "tape hiss", "rain", "808s", "choir"]
        for number, word in enumerate(words, start=1):
            said = await private_answer(await jam_cmd(dc, thread_id, BOB, "tag", {"tags": word}))
            assert f"Tag #{number}" in said
        await wait_until_shown(dc, thread_id, *(f"`#{n}` {w}" for n, w in enumerate(words, 1)))
        edits = jam_message(dc, thread_id).edits
        assert len(edits) < len(words)


async def test_where_the_bot_may_not_make_threads_the_jam_stays_in_the_channel(
    world: World,
) -> None:
    world.dc.set_overwrite(OTHER_CHANNEL, APP_ID, deny=Perm.CREATE_PUBLIC_THREADS)
    async with jam(world, tuning=FAST) as run:
        dc = run.dc
        inter = await jam_cmd(dc, OTHER_CHANNEL, ALICE, "start", {"theme": "sea shanties"})
        said = await private_answer(inter)
        assert said.startswith("🎶 Jam #") and "Its thread" not in said
        assert dc.threads_of(OTHER_CHANNEL) == []
        message = await dc.wait_for_message(OTHER_CHANNEL, lambda m: m.embeds)
        assert message.embeds[0]["title"] == "🎶 Jam: sea shanties"
        tagged = await jam_cmd(dc, OTHER_CHANNEL, BOB, "tag", {"tags": "accordion"})
        assert "Tag #1" in await private_answer(tagged)
        await wait_until_shown(dc, OTHER_CHANNEL, "`#1` accordion — *Bob*")


async def test_a_jam_message_that_is_gone_is_posted_again(world: World) -> None:
    async with jam(world, tuning=FAST) as run:
        dc = run.dc
        jams = run.core.service.jams
        thread_id, started = await start_jam(run, minutes=60)
        first = await dc.wait_for_message(thread_id, lambda m: m.embeds)
        first.deleted = True  # a moderator removed it
        await private_answer(await jam_cmd(dc, thread_id, BOB, "tag", {"tags": "brass"}))
        await wait_until_shown(dc, thread_id, "`#1` brass — *Bob*")
        second = jam_message(dc, thread_id)
        assert second.id != first.id
        found = await jams.get(started.id)
        assert found is not None and found.context["message_id"] == str(second.id)
        # A start cut short before its message was posted: the next change posts it.
        await jams.set_context(started.id, message_id=None)
        second.deleted = True
        await private_answer(await jam_cmd(dc, thread_id, CAROL, "tag", {"tags": "tuba"}))
        await wait_until_shown(dc, thread_id, "`#1` brass — *Bob*", "`#2` tuba — *Carol*")
        third = jam_message(dc, thread_id)
        found = await jams.get(started.id)
        assert found is not None and found.context["message_id"] == str(third.id)
