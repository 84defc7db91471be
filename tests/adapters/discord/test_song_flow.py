"""/song and /compose, from the slash command to the MP3 in the channel."""

from __future__ import annotations

from typing import Any

from bot.domain import JobState
from bot.service import Requester
from tests.adapters.discord.conftest import (
    ALICE,
    BOB,
    CHANNEL,
    GUILD,
    OTHER_GUILD,
    World,
    field_value,
    jam,
    mp3_of,
    status_history,
    track_messages,
)
from tests.fakes.audio import probe_audio
from tests.fakes.discord import EPHEMERAL
from tests.harness import wait_for_job


async def test_song_is_made_and_posted_with_its_embed_and_buttons(world: World) -> None:
    dc = world.dc
    async with jam(world) as run:
        inter = await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "song", {"tags": "lo-fi, chill", "duration": 12, "seed": 42}
        )
        track = await dc.wait_for_attachment(CHANNEL, timeout=20)
        status = await inter.wait_for_original(lambda m: m.deleted)
        job = await wait_for_job(run.core, 1, {JobState.DELIVERED})
    assert inter.response_type == 5  # deferred at once: "AceJam is thinking…"
    # One status card, filled through the interaction; once the track (which pings its
    # requester alone) is there, the card goes: the song leaves one message.
    assert status.via == "interaction" and status.edits[0].via == "interaction"
    assert [m for m in dc.channel_messages(CHANNEL) if not m.deleted] == [track]
    assert track.message_reference is None  # nothing to reply to: the card is gone
    assert track.content == f"<@{ALICE}> your song is ready."
    assert track.pings.users == {ALICE} and not track.pings.everyone and not track.pings.roles
    duration, _, codec = probe_audio(mp3_of(track).data)
    assert abs(duration - 12) <= 0.1 and codec == "mp3"
    assert mp3_of(track).content_type == "audio/mpeg"
    (embed,) = track.embeds
    assert embed["title"] == "🎵 Lo-fi, Chill"
    assert "lo-fi, chill" in embed["description"]
    assert field_value(track, "Duration") == "12 s"
    assert field_value(track, "Seed") == "42"
    assert field_value(track, "Requested by") == f"<@{ALICE}>"
    assert embed["image"]["url"] == "attachment://waveform.png"
    assert {a.filename for a in track.attachments} == {"lo-fi-chill-1.mp3", "waveform.png"}
    assert [(b.emoji, b.custom_id) for b in track.buttons] == [
        ("🎲", "acejam:reroll:1"),
        ("🔁", "acejam:same:1"),
        ("✏️", "acejam:edit:1"),
        ("➕", "acejam:extend:1"),  # WaveSpeed extends (its outpaint model)
    ]
    assert status.buttons == []  # ✖ only while it can still be stopped
    assert job.delivered_message_id == str(track.id)
    assert track_messages(dc) == [track]
    assert world.ws.submits[0]["seed"] == 42 and world.ws.submits[0]["tags"] == "lo-fi, chill"


async def test_status_message_shows_the_queue_position_then_progress(world: World) -> None:
    dc = world.dc
    world.ws.runtime = 12  # nominal seconds: about half a second here
    async with jam(world, wavespeed_max_concurrency=1) as run:
        first = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": "one", "duration": 5})
        await first.wait_for_original(lambda m: m.embeds)
        await wait_for_job(run.core, 1, {JobState.SUBMITTED, JobState.RUNNING})  # the slot is taken
        second = await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "song", {"tags": "two", "duration": 5}
        )
        await second.wait_for_original(lambda m: m.deleted, timeout=20)
        await first.wait_for_original(lambda m: m.deleted)
    assert first.original is not None and second.original is not None
    # The second song waited its turn: its message said so first, with a ✖ to leave the queue.
    line, _, buttons = status_history(second.original)[0]
    assert line == "⏳ **Queued — position 1 (next up).**" and buttons == ["acejam:cancel:2"]
    # The first one was shown running (its ETA, the core's estimate, is tested in
    # test_delivery), then its card went for the track.
    history = status_history(first.original)
    running = [h for h in history if "Making your song" in h[0]]
    assert running and running[0][2] == ["acejam:cancel:1"]
    assert all("Done" not in h[0] for h in history)  # the card goes instead
    assert len(track_messages(dc)) == 2


async def test_commands_are_synced_to_the_configured_guilds_with_their_ranges(world: World) -> None:
    dc = world.dc
    async with jam(world, max_duration=120):
        names = (
            "song",
            "compose",
            "quota",
            "queue",
            "cancel",
            "limits",
            "history",
            "show",
            "help",
            "admin",
            "extend",  # the edits WaveSpeed offers (#15)
            "remix",
            "repaint",
            "jam",  # community jams (#16)
        )
        commands = await dc.wait_for_commands_synced(*names, guild_id=GUILD)
    assert dc.global_commands() == [] and dc.guild_commands(OTHER_GUILD) == []
    assert len(commands) == 14
    song = dc.command("song", GUILD)
    options = {o["name"]: o for o in song["options"]}
    assert list(options) == [
        "tags",
        "duration",
        "seed",
        "lyrics",
        "takes",
        "bpm",
        "key",
        "time_signature",
        "language",
        "describe",
    ]
    # A sentence alone may make a song, so nothing is required.
    assert not any(o.get("required") for o in options.values())
    assert options["tags"]["max_length"] == 512
    assert (options["takes"]["min_value"], options["takes"]["max_value"]) == (1, 4)
    # No range on the tempo: one out of range gets the core's sentence naming 30–300.
    assert options["bpm"]["type"] == 4 and "min_value" not in options["bpm"]
    assert options["key"]["autocomplete"] and options["language"]["autocomplete"]
    assert [(c["name"], c["value"]) for c in options["time_signature"]["choices"]] == [
        ("2/4", 2),
        ("3/4 (waltz)", 3),
        ("4/4", 4),
        ("6/8", 6),
    ]
    # Text, so `1:30` can be typed; the core checks the range.
    assert options["duration"]["type"] == 3
    assert options["duration"]["description"] == "Length: seconds (90) or minutes (1:30), 5–120 s"
    assert (options["seed"]["min_value"], options["seed"]["max_value"]) == (-1, 2_147_483_647)
    assert all(o["description"] and o["description"] != "…" for o in options.values())
    assert all(c["description"] for c in commands)
    cancel = dc.command("cancel", GUILD)
    assert cancel["options"][0]["autocomplete"] is True


async def test_compose_opens_a_form_for_multi_line_lyrics(world: World) -> None:
    dc = world.dc
    lyrics = "[Verse]\nRain on the window\n[Chorus]\nStay a little longer"
    async with jam(world):
        opener = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "compose")
        modal = await opener.wait_for_modal()
        assert modal["custom_id"].startswith("acejam:compose:")
        assert modal["title"] == "Compose a song"
        bad = await dc.submit_modal(
            opener, None, {"tags": "folk", "lyrics": lyrics, "duration": "long"}
        )
        answer = await bad.wait_for_original()
        assert answer.flags & EPHEMERAL and "“long” isn't a length I can use" in answer.content
        opener = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "compose")
        await opener.wait_for_modal()
        good = await dc.submit_modal(
            opener, None, {"tags": "folk", "lyrics": lyrics, "duration": "6s", "seed": ""}
        )
        track = await dc.wait_for_attachment(CHANNEL, timeout=20)
    assert bad.response_type == 4 and good.response_type == 5
    assert len(world.ws.submits) == 1
    assert world.ws.submits[0]["lyrics"] == lyrics and world.ws.submits[0]["duration"] == 6
    assert "Rain on the window" in field_value(track, "Lyrics")
    assert abs(probe_audio(mp3_of(track).data)[0] - 6) <= 0.1


async def test_mentions_in_tags_never_ping_anyone(world: World) -> None:
    dc = world.dc
    async with jam(world):
        inter = await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "song", {"tags": "@everyone @here <@&123> party", "duration": 5}
        )
        track = await dc.wait_for_attachment(CHANNEL, timeout=20)
        await inter.wait_for_original(lambda m: m.deleted)
        queue = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "history")
        listed = await queue.wait_for_original(lambda m: not m.loading)
    assert "@everyone" in track.embeds[0]["description"]
    assert "@everyone" in listed.content
    for message in dc.channel_messages(CHANNEL):
        pings = message.pings
        assert not pings.everyone and not pings.roles and pings.replied_user is None
        # The track pings its requester; nothing else pings anyone.
        assert pings.users == ({ALICE} if message is track else set()), message.summary()
        assert message.allowed_mentions is not None and message.allowed_mentions["parse"] == []


async def test_gateway_drop_mid_job_still_delivers_once(world: World) -> None:
    dc = world.dc
    world.ws.runtime = 25
    async with jam(world) as run:
        inter = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": "dub", "duration": 5})
        await inter.wait_for_original(lambda m: m.embeds)
        await dc.drop_connection(code=None)  # the network goes away
        await dc.wait_for_resume()
        track = await dc.wait_for_attachment(CHANNEL, timeout=20)
        await wait_for_job(run.core, 1, {JobState.DELIVERED})
        # Still connected enough to take new commands.
        helped = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "help")
        await helped.wait_for_original()
    assert track_messages(dc) == [track]


def _inputs(modal: dict[str, Any]) -> dict[str, str]:
    """A form's prefilled values by input."""
    return {
        c["custom_id"]: c.get("value", "")
        for row in modal["components"]
        for c in row.get("components") or [row.get("component") or {}]
    }


async def test_a_refused_form_reopens_filled_in_and_takes_minutes(world: World) -> None:
    dc = world.dc
    lyrics = "\n".join(["[Verse]", "one", "two", "[Chorus]", "three", "four"])
    typed = {"tags": "sea shanty", "lyrics": lyrics, "duration": "300", "seed": "-1"}
    async with jam(world) as run:
        opener = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "compose")
        await opener.wait_for_modal()
        bad = await dc.submit_modal(opener, None, dict(typed))
        refusal = await bad.wait_for_original()
        assert (
            refusal.ephemeral
            and "300 s is too long: songs here are 5 to 240 s long. Try `240`." in refusal.content
        )
        fix = refusal.button("Fix and resubmit")
        assert fix.emoji == "✏️"
        reopened = await dc.click_button(refusal.id, fix.custom_id or "", ALICE)
        form = await reopened.wait_for_modal()
        assert _inputs(form) == {**typed, "controls": ""}  # nothing typed is lost
        good = await dc.submit_modal(reopened, None, {"duration": "0:07"})
        track = await dc.wait_for_attachment(CHANNEL, timeout=20)
        await good.wait_for_original(lambda m: m.embeds)
        await wait_for_job(run.core, 1, {JobState.DELIVERED})
    (submit,) = world.ws.submits
    assert submit["duration"] == 7 and submit["lyrics"] == lyrics and submit["tags"] == "sea shanty"
    assert field_value(track, "Duration") == "7 s"


async def test_song_takes_minutes_and_a_seed_of_minus_one(world: World) -> None:
    dc = world.dc
    world.ws.faults.add_job(hang=True)
    async with jam(world) as run:
        inter = await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "song", {"tags": "march", "duration": "1:30", "seed": -1}
        )
        status = await inter.wait_for_original(lambda m: m.embeds)
        job = await wait_for_job(run.core, 1, {JobState.SUBMITTED, JobState.RUNNING})
        wrong = await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "song", {"tags": "march", "duration": "1h"}
        )
        refusal = await wrong.wait_for_original()
        await run.core.service.cancel(1, Requester("discord", str(ALICE)))
    assert job.request.duration == 90 and job.request.seed == -1
    assert field_value(status, "Duration") == "1 min 30 s"
    assert refusal.ephemeral and "“1h” isn't a length I can use" in refusal.content
    assert refusal.button("Fix and resubmit")  # /song's refusals offer the form too


async def test_two_members_composing_at_once_both_get_their_song(world: World) -> None:
    dc = world.dc
    async with jam(world):
        forms = [await dc.invoke_slash(GUILD, CHANNEL, who, "compose") for who in (ALICE, BOB)]
        for form in forms:
            await form.wait_for_modal()
        sent = [
            await dc.submit_modal(form, None, {"tags": tags, "duration": "5"})
            for form, tags in zip(forms, ("alice's tune", "bob's tune"), strict=True)
        ]
        for submission in sent:
            await submission.wait_for_original(lambda m: m.deleted, timeout=20)
    assert sorted(s["tags"] for s in world.ws.submits) == ["alice's tune", "bob's tune"]
