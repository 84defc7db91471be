"""/extend, /remix, /repaint and ➕ on Discord (#15), end to end: the real discord.py client
against FakeDiscord, the real core, and the ACE-Step fake making the edits (WaveSpeed's at
the end: each edit on its model, its source uploaded first, the model named on the card, and
what it lacks not offered).

A member's own audio arrives as the command's attachment option (``data.resolved.attachments``
with its url on the fake's CDN); what the bot fetched from there is in ``dc.cdn_downloads``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import Core
from bot.domain import JobState, Task
from bot.edits import not_offered
from tests.adapters.discord.conftest import (
    ALICE,
    APP_ID,
    CHANNEL,
    GUILD,
    LOOSE_LIMITS,
    TOKEN,
    World,
    bot_on,
    field_value,
    jam,
    populate,
    track_messages,
)
from tests.fakes.acestep import FakeAceStep
from tests.fakes.audio import make_audio
from tests.fakes.discord import FakeDiscord, FakeInteraction, RecordedMessage
from tests.fakes.wavespeed_edits import AUDIO_TO_AUDIO, INPAINT, OUTPAINT
from tests.harness import acestep_settings, running_core, wait_for_job
from tests.kit.backends import assert_the_four_edits_went_through_uploads

MAX_DURATION = 20  # the longest song (and own audio) these tests allow
EDITS = ("extend", "remix", "repaint")


@pytest.fixture
async def ace_world(tmp_path: Path) -> AsyncIterator[tuple[World, FakeAceStep]]:
    async with (
        FakeAceStep(time_scale=0.04, runtime=1.0) as ace,
        FakeDiscord(application_id=APP_ID, token=TOKEN, rate_limits=LOOSE_LIMITS) as dc,
    ):
        populate(dc)
        settings = acestep_settings(
            tmp_path,
            ace.base_url,
            discord_token=TOKEN,
            discord_api_base_url=dc.api_base,
            discord_guild_ids=str(GUILD),
            max_duration=MAX_DURATION,
        )
        yield World(dc, None, settings, tmp_path), ace  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def _jam(world: World) -> AsyncIterator[Core]:
    """The core (its backend's edits known, as `acejam run` asks first) and the bot."""
    async with running_core(world.settings) as core:
        await core.backend.refresh_capabilities()
        async with bot_on(core, world):
            yield core


async def _track(dc: FakeDiscord, number: int) -> RecordedMessage:
    """The ``number``-th track message in the channel (1-based), once it is there."""
    await dc.wait_for_message(CHANNEL, lambda m: len(track_messages(dc)) >= number, timeout=20)
    return track_messages(dc)[number - 1]


async def _song(dc: FakeDiscord, core: Core, tags: str = "lo-fi piano") -> RecordedMessage:
    """A 10-second song (ACE-Step's shortest), delivered."""
    seen = len(track_messages(dc))
    await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": tags, "duration": 10})
    return await _track(dc, seen + 1)


async def _refusal(inter: FakeInteraction) -> str:
    """A refused command's private answer (whether or not it was deferred first)."""
    await inter.wait_for_response()
    if inter.response_type == 4:
        assert inter.original is not None and inter.original.ephemeral
        return inter.original.content
    answer = await inter.wait_for_followup(lambda m: m.ephemeral)
    return answer.content


def _seconds(text: str) -> float:
    """ "20 s" / "1 min 05 s" as shown in a card's Duration field."""
    total = 0
    for amount, unit in zip(text.split()[::2], text.split()[1::2], strict=True):
        total += int(amount) * (60 if unit == "min" else 1)
    return total


async def _quota_left(dc: FakeDiscord) -> str:
    quota = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "quota")
    return (await quota.wait_for_original(lambda m: not m.loading)).content


async def test_extend_posts_the_longer_song_saying_where_it_came_from(
    ace_world: tuple[World, FakeAceStep],
) -> None:
    world, ace = ace_world
    dc = world.dc
    async with _jam(world) as core:
        synced = {c["name"] for c in dc.guild_commands(GUILD)}
        first = await _song(dc, core)
        await dc.invoke_slash(GUILD, CHANNEL, ALICE, "extend", {"id": 1, "seconds": "0:10"})
        longer = await _track(dc, 2)
        job = await wait_for_job(core, 2, {JobState.DELIVERED})
        history = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "history")
        listed = (await history.wait_for_original(lambda m: not m.loading)).content
    assert set(EDITS) <= synced  # the fake's model does all three
    extend, remix, repaint = (
        {o["name"]: o for o in dc.command(name, GUILD)["options"]} for name in EDITS
    )
    assert list(extend) == ["id", "seconds", "at", "tags", "lyrics", "audio"]
    assert [c["value"] for c in extend["at"]["choices"]] == ["end", "start"]
    assert extend["audio"]["type"] == remix["audio"]["type"] == 11  # an attachment
    assert [n for n, o in remix.items() if o.get("required")] == ["tags"]
    assert (remix["strength"]["min_value"], remix["strength"]["max_value"]) == (0, 1)
    assert [n for n, o in repaint.items() if o.get("required")] == ["id", "start", "end"]
    assert "audio" not in repaint
    assert job.parent_id == 1 and job.request.task == Task.EXTEND
    assert job.request.edit is not None and job.request.edit.seconds == 10
    assert "extended from #1" in longer.embeds[0]["description"]
    assert _seconds(field_value(longer, "Duration")) > _seconds(field_value(first, "Duration"))
    assert len(ace.submits) == 2
    assert longer.button("acejam:extend:2") is not None  # ➕ under the new one too
    (line,) = [line for line in listed.splitlines() if line.startswith("#2 ")]
    assert "— 20 s" in line and "extended from #1" in line  # the whole song's length


async def test_remix_of_an_attachment_once_the_server_allows_own_audio(
    ace_world: tuple[World, FakeAceStep],
) -> None:
    world, ace = ace_world
    dc = world.dc
    owner = dc.guilds[GUILD].owner_id
    clip = ("hum.mp3", make_audio(12.0, "mp3"))
    async with _jam(world) as core:
        # Servers keep members' own audio out until an admin lets it in.
        refused = await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "remix", {"tags": "jazz trio", "audio": clip}
        )
        assert "`/admin own-audio allow:True`" in await _refusal(refused)
        assert dc.cdn_downloads == [] and ace.submits == []

        allow = await dc.invoke_slash(GUILD, CHANNEL, owner, "admin own-audio", {"allow": True})
        said = (await allow.wait_for_original(lambda m: not m.loading)).content
        assert said.startswith("✅ Members here may attach their own audio")
        settings = await dc.invoke_slash(GUILD, CHANNEL, owner, "admin settings")
        shown = (await settings.wait_for_original(lambda m: not m.loading)).content
        assert "Members' own audio in /remix and /extend: allowed" in shown

        accepted = await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "remix", {"tags": "jazz trio", "audio": clip, "strength": 0.7}
        )
        remix = await _track(dc, 1)
        job = await wait_for_job(core, 1, {JobState.DELIVERED})
    assert accepted.response_type == 5  # deferred publicly, like /song
    assert len(dc.cdn_downloads) == 1  # fetched once, by the bot, through discord.py
    (sent,) = ace.submits
    assert dc.cdn_url not in repr(sent)  # the file went upstream, never its Discord url
    assert job.request.task == Task.REMIX and job.request.edit is not None
    assert job.request.edit.own_audio and job.request.edit.strength == 0.7
    assert "jazz trio" in remix.embeds[0]["description"]


async def test_repaint_takes_times_as_typed(ace_world: tuple[World, FakeAceStep]) -> None:
    world, _ace = ace_world
    dc = world.dc
    async with _jam(world) as core:
        await _song(dc, core)
        typing = await dc.autocomplete(GUILD, CHANNEL, ALICE, "repaint", "id", "")
        await typing.wait_for_response()
        await dc.invoke_slash(
            GUILD,
            CHANNEL,
            ALICE,
            "repaint",
            {"id": 1, "start": "0:02", "end": "6", "tags": "choir"},
        )
        repainted = await _track(dc, 2)
        job = await wait_for_job(core, 2, {JobState.DELIVERED})
    edit = job.request.edit
    assert edit is not None and (edit.start, edit.end) == (2.0, 6.0)
    assert "repaint of #1" in repainted.embeds[0]["description"]
    assert typing.autocomplete_choices == [{"name": "#1 lo-fi piano", "value": 1}]


async def test_extend_button_pressed_twice_after_a_restart_makes_one_job(
    ace_world: tuple[World, FakeAceStep],
) -> None:
    world, ace = ace_world
    dc = world.dc
    async with running_core(world.settings) as core:
        await core.backend.refresh_capabilities()
        async with bot_on(core, world):
            first = await _song(dc, core)
        # A new bot: ➕ is known only through the registered dynamic items.
        async with bot_on(core, world):
            taps = await asyncio.gather(
                dc.click_button(first.id, "acejam:extend:1", ALICE),
                dc.click_button(first.id, "acejam:extend:1", ALICE),
            )
            longer = await _track(dc, 2)
            await wait_for_job(core, 2, {JobState.DELIVERED})
            for tap in taps:
                await tap.wait_for_response()
            assert await core.store.get(3) is None
    assert len(ace.submits) == 2 and len(track_messages(dc)) == 2
    (repeat,) = [tap for tap in taps if tap.response_type == 4]
    assert repeat.original is not None and repeat.original.content == "Already done — see above."
    assert "extended from #1" in longer.embeds[0]["description"]
    pressed = dc.message(first.id)
    assert pressed.button("acejam:extend:1").style == 3  # shown used (green)


async def test_an_edit_the_engine_no_longer_offers_gets_the_cores_sentence(
    ace_world: tuple[World, FakeAceStep],
) -> None:
    world, ace = ace_world
    dc = world.dc
    async with _jam(world) as core:
        ace.task_types = ("text2music", "repaint")  # another model loaded: no covers
        await core.backend.refresh_capabilities()
        inter = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "remix", {"tags": "jazz"})
        said = await _refusal(inter)
    offered = frozenset({Task.EXTEND, Task.REPAINT})
    assert said == f"⚠️ {not_offered(Task.REMIX, offered)}"
    assert ace.submits == []


async def test_a_new_take_of_an_edit_edits_again_and_its_form_is_the_whole_song(
    ace_world: tuple[World, FakeAceStep],
) -> None:
    world, ace = ace_world
    dc = world.dc
    async with _jam(world) as core:
        await _song(dc, core)
        await dc.invoke_slash(GUILD, CHANNEL, ALICE, "extend", {"seconds": "10"})  # the latest
        longer = await _track(dc, 2)
        await dc.click_button(longer.id, "acejam:reroll:2", ALICE)
        again = await _track(dc, 3)
        job = await wait_for_job(core, 3, {JobState.DELIVERED})
        press = await dc.click_button(longer.id, "acejam:edit:2", ALICE)
        form = await press.wait_for_modal()
    assert job.request.task == Task.EXTEND and job.parent_id == 1
    assert "extended from #1" in again.embeds[0]["description"]
    assert len(ace.edits) == 2  # the edit ran again, on its own copy of the source
    inputs = {
        c["custom_id"]: c.get("value", "")
        for row in form["components"]
        for c in row.get("components") or [row.get("component") or {}]
    }
    assert inputs["duration"] == "20"  # the whole song, not the 10 s the extend added


@pytest.mark.parametrize(
    ("name", "data", "content_type", "sentence", "fetched"),
    [
        # Renamed: Discord calls it audio by its name, the core's decoder knows better.
        ("notes.mp3", b"verse one\nchorus\n" * 200, None, "isn't audio I can read", True),
        # Too big by what Discord says: never downloaded.
        ("long.wav", b"RIFF" + bytes(21 * 1024 * 1024), None, "at most 20 MB", False),
        # A picture: its content type gives it away before any download.
        ("cover.png", b"\x89PNG\r\n\x1a\n" + bytes(100), None, "isn't audio", False),
    ],
)
async def test_a_bad_attachment_gets_a_sentence_and_costs_nothing(
    ace_world: tuple[World, FakeAceStep],
    name: str,
    data: bytes,
    content_type: str | None,
    sentence: str,
    fetched: bool,
) -> None:
    world, ace = ace_world
    dc = world.dc
    async with _jam(world) as core:
        await core.service.admin.update_chat_rules("discord", str(GUILD), own_audio=True)
        before = await _quota_left(dc)
        upload = (name, data) if content_type is None else (name, data, content_type)
        inter = await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "extend", {"audio": upload, "seconds": "10"}
        )
        said = await _refusal(inter)
        after = await _quota_left(dc)
        assert await core.store.get(1) is None
    assert sentence in said
    assert bool(dc.cdn_downloads) == fetched
    assert after == before and ace.submits == []
    leftovers = [p for p in (world.data_dir / "sources").rglob("*") if p.is_file()]
    assert leftovers == []


async def test_a_song_number_and_an_attachment_together_ask_which_one(
    ace_world: tuple[World, FakeAceStep],
) -> None:
    world, ace = ace_world
    dc = world.dc
    clip = ("hum.mp3", make_audio(12.0, "mp3"))
    async with _jam(world) as core:
        await core.service.admin.update_chat_rules("discord", str(GUILD), own_audio=True)
        await _song(dc, core)
        inter = await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "remix", {"id": 1, "tags": "jazz trio", "audio": clip}
        )
        said = await _refusal(inter)
        assert await core.store.get(2) is None
    assert said.endswith(
        "Pick one thing to remix: song #1 or the audio you attached, not both. "
        "Leave out `id` to use your file, or the file to use the song."
    )
    assert dc.cdn_downloads == [] and len(ace.submits) == 1  # the song alone


async def test_own_audio_longer_than_max_duration_gets_a_sentence(
    ace_world: tuple[World, FakeAceStep],
) -> None:
    world, ace = ace_world
    dc = world.dc
    async with _jam(world) as core:
        await core.service.admin.update_chat_rules("discord", str(GUILD), own_audio=True)
        inter = await dc.invoke_slash(
            GUILD,
            CHANNEL,
            ALICE,
            "remix",
            {"tags": "dub", "audio": ("jam.mp3", make_audio(MAX_DURATION + 6.0, "mp3"))},
        )
        said = await _refusal(inter)
        assert await core.store.get(1) is None
    assert "0:26 long" in said and "at most 0:20" in said
    assert ace.submits == []


async def test_on_wavespeed_each_edit_uploads_its_source_and_runs_on_its_model(
    world: World,
) -> None:
    dc, ws = world.dc, world.ws
    owner = dc.guilds[GUILD].owner_id
    clip = ("hum.mp3", make_audio(12.0, "mp3"))
    async with jam(world) as run:
        await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": "surf rock", "duration": 10})
        first = await _track(dc, 1)
        await dc.invoke_slash(GUILD, CHANNEL, ALICE, "extend", {"seconds": "10"})  # the latest
        longer = await _track(dc, 2)
        await dc.invoke_slash(GUILD, CHANNEL, ALICE, "remix", {"id": 1, "tags": "jazz trio"})
        remix = await _track(dc, 3)
        await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "repaint", {"id": 1, "start": "0:02", "end": "6"}
        )
        repaint = await _track(dc, 4)
        await dc.invoke_slash(GUILD, CHANNEL, owner, "admin own-audio", {"allow": True})
        await dc.invoke_slash(GUILD, CHANNEL, ALICE, "remix", {"tags": "bossa", "audio": clip})
        own = await _track(dc, 5)
        jobs = [await wait_for_job(run.core, n, {JobState.DELIVERED}) for n in (2, 3, 4, 5)]

    assert [j.request.task for j in jobs] == [Task.EXTEND, Task.REMIX, Task.REPAINT, Task.REMIX]
    assert [j.parent_id for j in jobs] == [1, 1, 1, None]
    assert [field_value(m, "Model") for m in (longer, remix, repaint, own)] == [
        OUTPAINT,
        AUDIO_TO_AUDIO,
        INPAINT,
        AUDIO_TO_AUDIO,
    ]
    assert not any(f["name"] == "Model" for f in first.embeds[0]["fields"])  # a song's own
    assert "extended from #1" in longer.embeds[0]["description"]
    assert _seconds(field_value(longer, "Duration")) == 20  # the whole longer song
    assert_the_four_edits_went_through_uploads(
        ws, remix_tags="jazz trio", never_sent=(dc.cdn_url, TOKEN)
    )


async def test_edits_the_backend_lacks_are_not_offered(world: World) -> None:
    dc = world.dc
    async with jam(world, wavespeed_edit_models=["wavespeed-ai/ace-step/audio-to-audio"]):
        synced = {c["name"] for c in dc.guild_commands(GUILD)}
        await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": "surf rock", "duration": 10})
        track = await _track(dc, 1)
        helped = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "help")
        help_text = (await helped.wait_for_original()).content
    assert "remix" in synced and not {"extend", "repaint"} & synced
    assert [b.custom_id for b in track.buttons] == [
        "acejam:reroll:1",
        "acejam:same:1",
        "acejam:edit:1",
    ]  # no ➕
    assert "`/remix tags:`" in help_text and "/extend" not in help_text


async def test_own_audio_is_on_by_default_in_a_dm(ace_world: tuple[World, FakeAceStep]) -> None:
    world, ace = ace_world
    dc = world.dc
    dm = 1_190_000_000_000_000_901
    # Commands everywhere (global), so the DM has them too.
    world.settings = world.settings.model_copy(update={"discord_guild_ids": []})
    async with _jam(world) as core:
        await dc.invoke_slash(
            None,
            dm,
            ALICE,
            "remix",
            {"tags": "bossa nova", "audio": ("hum.mp3", make_audio(12.0, "mp3"))},
        )
        await dc.wait_for_message(dm, lambda m: track_messages(dc, dm), timeout=20)
        job = await wait_for_job(core, 1, {JobState.DELIVERED})
    (track,) = track_messages(dc, dm)
    assert job.request.edit is not None and job.request.edit.own_audio
    assert "remix of your audio" in track.embeds[0]["description"]
    assert len(ace.edits) == 1 and len(dc.cdn_downloads) == 1
