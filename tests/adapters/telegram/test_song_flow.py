"""/song from request to track: the queued reply, its edits, the MP3 under the request."""

from __future__ import annotations

import asyncio
import io
import itertools
from pathlib import Path

import pytest
from mutagen.id3 import ID3

from adapters.telegram.status import GROUP_INTERVAL
from bot.app import run_bot
from bot.domain import JobState
from tests.adapters.telegram.conftest import WAIT, Rig, bot_settings, requester
from tests.adapters.telegram.test_commands import job_id_of
from tests.fakes.audio import probe_audio
from tests.fakes.telegram import FakeTelegram, RecordedMessage
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import POLL_SCALE, wait_for_job


def texts_of(message: RecordedMessage) -> list[str]:
    return [text or "" for text in message.text_history]


@pytest.mark.parametrize("command", ["/song", "/song@AceJamBot"])
async def test_a_song_asked_in_a_group_arrives_as_an_mp3_under_the_request(
    rig: Rig, command: str
) -> None:
    request_id = await rig.say(f"{command} lo-fi, chill | 30 | 1234")

    status = await rig.reply_to(request_id, also=lambda m: m.audio is None)
    assert status.text_history[0] is not None
    # Position 1, unless the worker took the job before the reply was written.
    assert status.text_history[0].startswith(("🎶 Queued — position 1", "🎶 Queued — starting"))
    assert "lo-fi, chill · 30 s · seed 1234 · #1" in (status.text_history[0] or "")
    [sent] = [c for c in rig.tg.calls_to("sendMessage") if "Queued" in c["text"]]
    assert sent["reply_markup"]["inline_keyboard"][0][0]["text"] == "✖ Cancel"

    track = await rig.tg.wait_for_audio(rig.group, timeout=WAIT)
    assert track.reply_to_message_id == request_id
    assert track.audio is not None and track.audio.mime_type == "audio/mpeg"
    seconds, _, codec = probe_audio(track.audio.data)
    assert codec == "mp3" and abs(seconds - 30) <= 0.1
    assert (track.audio.title, track.audio.performer, track.audio.duration) == (
        "Lo-fi, Chill",
        "AceJam",
        30,
    )
    assert track.caption == (  # what was made, for whom; words beside every emoji
        "🎵 Lo-fi, Chill\n🙋 Asked by Alice\n📝 Instrumental (no lyrics)\n"
        "🏷 Style: lo-fi, chill\n⏱ Length 0:30 · 🌱 Seed 1234 · #1"
    )
    assert track.thumbnail is not None and track.thumbnail[:2] == b"\xff\xd8"  # a JPEG
    # ➕ too: WaveSpeed's edit models can extend it.
    assert [b.text for b in track.buttons] == ["🎲 New take", "🔁 Same seed", "➕ Extend"]
    assert not track.warnings  # in the music player, thumbnail accepted
    id3 = ID3(io.BytesIO(track.audio.data))
    assert (str(id3["TALB"]), str(id3["TPE1"])) == ("Jam room", "AceJam")  # album: the chat

    # One song, one message: the card followed the job, then went when the track came.
    await rig.tg.wait_until(lambda: status.deleted, what="the card deleted", timeout=WAIT)
    history = texts_of(status)
    assert not any("Done" in text for text in history)  # no edit nobody would see
    assert all(a != b for a, b in itertools.pairwise(history))  # never repeated
    # Each text stayed up for at least the pacing interval before the next replaced it.
    shown_at = [status.sent_at, *(edit.at for edit in status.edits)]
    assert all(b - a >= GROUP_INTERVAL * POLL_SCALE * 0.95 for a, b in itertools.pairwise(shown_at))
    assert all(
        [b.text for b in edit.buttons] == ["✖ Cancel"]
        for edit in status.edits
        if edit.text and edit.text.startswith("🎛")
    )
    assert len(rig.tg.chat_log(rig.group, include_deleted=False)) == 1  # the track alone
    assert rig.ws.submits[0]["tags"] == "lo-fi, chill"
    assert (rig.ws.submits[0]["duration"], rig.ws.submits[0]["seed"]) == (30, 1234)
    [job] = (await rig.core.service.history(requester(rig.alice))).jobs
    job = await wait_for_job(rig.core, job.id, {JobState.DELIVERED})
    assert job.delivered_message_id == str(track.message_id)
    assert len([m for m in rig.tg.chat_log(rig.group) if m.audio]) == 1
    assert rig.tg.flood_errors == []


async def test_lyrics_on_the_lines_below_the_command(rig: Rig) -> None:
    await rig.ask("/song jazz, smoky | 20\n[Verse]\nHello moon\n\n[Chorus]\nGoodnight")
    await rig.tg.wait_until(lambda: rig.ws.submits, what="a submit", timeout=WAIT)
    assert rig.ws.submits[0]["tags"] == "jazz, smoky"
    assert rig.ws.submits[0]["lyrics"] == "[Verse]\nHello moon\n\n[Chorus]\nGoodnight"


async def test_lyrics_from_the_message_the_command_replies_to(rig: Rig) -> None:
    lyrics_id = await rig.say("[Verse]\nWe were young\n[Chorus]\nAnd the night was long", rig.bob)
    reply = await rig.reply_to(await rig.say("/song synthwave | 20", reply_to=lyrics_id))
    assert (reply.text_history[0] or "").startswith("🎶 Queued")
    await rig.tg.wait_until(lambda: rig.ws.submits, what="a submit", timeout=WAIT)
    assert rig.ws.submits[0]["lyrics"] == "[Verse]\nWe were young\n[Chorus]\nAnd the night was long"


async def test_song_alone_explains_the_format_with_an_example(rig: Rig) -> None:
    answer = await rig.ask("/song@AceJamBot")
    assert answer.text is not None
    assert "tags | duration | seed" in answer.text
    assert "/song lo-fi, chill, rainy piano | 30\n[Verse]" in answer.text
    assert await rig.core.service.queue_of(requester(rig.alice)) == []


async def test_same_seed_and_reroll_buttons_make_new_takes(rig: Rig) -> None:
    request_id = await rig.say("/song ambient drone | 20\n[Verse]\nStill water")
    first = await rig.tg.wait_for_audio(rig.group, timeout=WAIT)
    first_seed = rig.ws.submits[0]["seed"]

    query = await rig.tg.press_button(rig.group, rig.alice, first, button_text="Same seed")
    answer = await rig.tg.wait_for_callback_answer(query, timeout=WAIT)
    assert answer.text == "🔁 Same seed again — queued."
    second = await rig.tg.wait_for_audio(
        rig.group, predicate=lambda m: m is not first, timeout=WAIT
    )
    assert second.reply_to_message_id == first.message_id  # under the track it came from
    assert rig.ws.submits[1]["seed"] == first_seed
    assert f"Seed {first_seed}" in (second.caption or "")
    assert "📝 Lyrics: “Still water”" in (second.caption or "")  # the first sung line

    query = await rig.tg.press_button(rig.group, rig.alice, first, button_text="New take")
    await rig.tg.wait_for_callback_answer(query, timeout=WAIT)
    await rig.tg.wait_until(
        lambda: len([m for m in rig.tg.chat_log(rig.group) if m.audio]) == 3,
        what="a third track",
        timeout=WAIT,
    )
    for submit in rig.ws.submits[1:]:
        assert (submit["tags"], submit["lyrics"], submit["duration"]) == (
            "ambient drone",
            "[Verse]\nStill water",
            20,
        )
    assert request_id < first.message_id < second.message_id
    assert [b.text for b in first.buttons] == ["🎲 New take ✓", "🔁 Same seed ✓", "➕ Extend"]


async def test_a_double_tap_makes_one_song_and_the_button_shows_it_was_used(rig: Rig) -> None:
    await rig.say("/song polka | 10")
    track = await rig.tg.wait_for_audio(rig.group, timeout=WAIT)
    used = await rig.core.service.quota(requester(rig.alice))

    taps = [
        await rig.tg.press_button(rig.group, rig.alice, track, button_text="New take")
        for _ in range(2)
    ]
    answers = [(await rig.tg.wait_for_callback_answer(q, timeout=WAIT)).text for q in taps]
    assert answers == ["🎲 New take — queued.", "Already done — see above."]
    await rig.tg.wait_until(
        lambda: [b.text for b in track.buttons] == ["🎲 New take ✓", "🔁 Same seed", "➕ Extend"],
        what="the pressed button marked",
        timeout=WAIT,
    )
    second = await rig.tg.wait_for_audio(
        rig.group, predicate=lambda m: m is not track, timeout=WAIT
    )
    await wait_for_job(rig.core, job_id_of(second), {JobState.DELIVERED})
    assert len(rig.ws.submits) == 2  # one take, not two
    quota = await rig.core.service.quota(requester(rig.alice))
    assert quota.used_seconds == used.used_seconds + 10  # charged once
    assert second.reply_to_message_id == track.message_id


async def test_someone_elses_buttons_are_politely_refused(rig: Rig) -> None:
    await rig.ask("/song bossa nova | 20")
    track = await rig.tg.wait_for_audio(rig.group, timeout=WAIT)
    before = len(rig.tg.chat_log(rig.group))

    for label in ("New take", "Same seed"):
        query = await rig.tg.press_button(rig.group, rig.bob, track, button_text=label)
        answer = await rig.tg.wait_for_callback_answer(query, timeout=WAIT)
        assert answer.text is not None and "someone else's song" in answer.text
        assert answer.show_alert

    assert len(rig.ws.submits) == 1
    assert len(rig.tg.chat_log(rig.group)) == before
    assert await rig.core.service.queue_of(requester(rig.bob)) == []


async def test_acejam_run_starts_telegram_and_registers_its_commands(
    tmp_path: Path, tg: FakeTelegram, ws: FakeWaveSpeed
) -> None:
    stop = asyncio.Event()
    running = asyncio.create_task(run_bot(bot_settings(tmp_path, tg, ws), stop))
    try:
        await tg.wait_until(lambda: tg.commands, what="setMyCommands", timeout=WAIT)
        assert tg.command_names() == [
            "song",  # no /describe: WaveSpeed's model has no language model
            "extend",  # its edit models
            "remix",
            "repaint",
            "show",
            "history",
            "queue",
            "cancel",
            "quota",
            "limits",
            "jam",
            "help",
        ]
        alice = tg.user(42, "Alice")
        chat = tg.private_chat(alice)
        await tg.wait_until(lambda: tg.calls_to("getUpdates"), what="polling", timeout=WAIT)
        await tg.send_message(chat, alice, "/song piano | 10")
        track = await tg.wait_for_audio(chat, timeout=WAIT)
        assert track.audio is not None and abs(probe_audio(track.audio.data)[0] - 10) <= 0.1
    finally:
        stop.set()
        await asyncio.wait_for(running, WAIT)
