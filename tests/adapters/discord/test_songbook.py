"""/history a page at a time (◀ ▶), and /show posting a finished song again (#14)."""

from __future__ import annotations

from bot.domain import Destination, GenerationRequest, JobState
from bot.service import Accepted, Requester
from tests.adapters.discord.conftest import (
    ALICE,
    BOB,
    CHANNEL,
    GUILD,
    Running,
    World,
    bot_on,
    jam,
    mp3_of,
    track_messages,
)
from tests.fakes.discord import RecordedMessage
from tests.harness import running_core, wait_for_job


async def _songs(run: Running, count: int) -> None:
    """``count`` songs of Alice's, made and posted (asked through the core: the page
    buttons are the point here, not /song)."""
    alice = Requester("discord", str(ALICE), "Alice")
    where = Destination("discord", str(CHANNEL), str(ALICE), scope_id=str(GUILD))
    for number in range(1, count + 1):
        made = await run.core.service.submit(
            alice, where, GenerationRequest(tags=f"song {number}", duration=5), enforce_quota=False
        )
        assert isinstance(made, Accepted)
    for job_id in range(1, count + 1):
        await wait_for_job(run.core, job_id, {JobState.DELIVERED}, timeout=20)


def _ids(message: RecordedMessage) -> list[str]:
    return [line.split(" ", 1)[0] for line in message.content.splitlines() if line[:1] == "#"]


def _page_buttons(message: RecordedMessage) -> list[tuple[str | None, str | None, bool]]:
    return [(b.emoji, b.custom_id, b.disabled) for b in message.buttons]


async def test_history_pages_through_every_song_with_their_ids(world: World) -> None:
    dc = world.dc
    async with running_core(world.settings) as core:
        async with bot_on(core, world) as run:
            await _songs(run, 6)
            asked = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "history")
            first = await asked.wait_for_original(lambda m: not m.loading)
        # The bot restarts: ◀ ▶ are known only through the registered dynamic items.
        async with bot_on(core, world):
            turned = await dc.click_button(first.id, "acejam:page:2", ALICE)
            second = await turned.wait_for_original(lambda m: "page 2 of 2" in m.content)
            assert second.id == first.id  # the same private message, turned
            assert _ids(second) == ["#1"]
            assert _page_buttons(second) == [
                ("◀", "acejam:page:1", False),
                ("▶", "acejam:page:3", True),
            ]
            back = await dc.click_button(first.id, "acejam:page:1", ALICE)
            await back.wait_for_original(lambda m: "page 1 of 2" in m.content)
            typed = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "history", {"page": 9})
            last = await typed.wait_for_original(lambda m: not m.loading)
    assert first.ephemeral  # back on page 1
    assert first.content.splitlines()[0] == "**Your songs** — page 1 of 2 (6 songs)"
    assert _ids(first) == ["#6", "#5", "#4", "#3", "#2"]
    assert "`/show 6` posts song #6 here again." in first.content
    assert _page_buttons(first) == [
        ("◀", "acejam:page:0", True),
        ("▶", "acejam:page:2", False),
    ]
    assert turned.response_type == 6 and back.response_type == 6
    assert last.content.splitlines()[0] == "**Your songs** — page 2 of 2 (6 songs)"
    assert all(not m.pings.anyone for m in (first, last))


async def test_show_posts_a_song_again_with_its_card_and_buttons(world: World) -> None:
    dc = world.dc
    async with jam(world) as run:
        await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": "bolero", "duration": 5})
        await dc.wait_for_attachment(CHANNEL, timeout=20)
        job = await wait_for_job(run.core, 1, {JobState.DELIVERED})
        (first,) = track_messages(dc)

        asked = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "show", {"song": 1})
        again = await asked.wait_for_original(lambda m: m.attachments)
        # Its buttons are the song's own: ✏️ opens the form for it.
        edit = await dc.click_button(again.id, "acejam:edit:1", ALICE)
        form = await edit.wait_for_modal()

        refused = await dc.invoke_slash(GUILD, CHANNEL, BOB, "show", {"song": 1})
        not_bobs = await refused.wait_for_followup(lambda m: m.ephemeral)
        missing = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "show", {"song": 99})
        not_there = await missing.wait_for_followup(lambda m: m.ephemeral)
        after = await run.core.service.get_job(1)
    assert not again.ephemeral and again.id != first.id
    assert again.content == "🔁 Song #1 again, shown by Alice."
    assert not again.pings.anyone  # nobody is notified of a song shown again
    assert again.embeds[0]["title"] == first.embeds[0]["title"]
    assert mp3_of(again).data == mp3_of(first).data
    assert [b.custom_id for b in again.buttons] == [b.custom_id for b in first.buttons]
    assert form["components"][0]["components"][0]["value"] == "bolero"
    # Someone else's song (this server doesn't let members press each other's buttons), or
    # none at all: the same private sentence, and the public "thinking" message goes.
    assert not_bobs.content == "⚠️ I can't find song #1 — /history lists yours."
    assert not_there.content == "⚠️ I can't find song #99 — /history lists yours."
    assert refused.original is None or refused.original.deleted
    # Showing changes nothing about the song itself.
    assert after == job
    assert len(world.ws.submits) == 1


async def test_show_posts_every_take_of_a_song_again(world: World) -> None:
    dc = world.dc
    async with jam(world) as run:
        await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "song", {"tags": "mambo", "duration": 5, "takes": 2}
        )
        await dc.wait_for_message(CHANNEL, lambda m: track_messages(dc), timeout=20)
        await wait_for_job(run.core, 1, {JobState.DELIVERED})
        (first,) = track_messages(dc)
        asked = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "show", {"song": 1})
        again = await asked.wait_for_original(lambda m: m.attachments)
    mp3s = sorted(a.filename for a in again.attachments if a.filename.endswith(".mp3"))
    assert mp3s == sorted(a.filename for a in first.attachments if a.filename.endswith(".mp3"))
    assert len(mp3s) == 2
    assert [b.custom_id for b in again.buttons] == [b.custom_id for b in first.buttons]
