"""/extend, /remix, /repaint and ➕ as users meet them: the real python-telegram-bot client
against the fake Telegram, the core on SQLite, and the fake ACE-Step server (which reads an
edit's multipart fields as the real one does); at the end the same edits on the fake WaveSpeed
(its media upload, then each edit model)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot import messages
from bot.domain import JobState, Task
from tests.adapters.telegram.conftest import TOKEN, WAIT, Rig, requester, telegram_bot
from tests.adapters.telegram.test_commands import job_id_of
from tests.fakes.acestep import FakeAceStep
from tests.fakes.audio import make_audio, probe_audio
from tests.fakes.telegram import FakeChat, FakeTelegram, FakeUser, RecordedMessage
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.fakes.wavespeed_edits import AUDIO_TO_AUDIO, INPAINT, OUTPAINT
from tests.harness import acestep_settings, wait_for_job
from tests.kit.backends import assert_the_four_edits_went_through_uploads


@contextlib.asynccontextmanager
async def ace_bot(
    tmp_path: Path,
    tg: FakeTelegram,
    ws: FakeWaveSpeed,
    *,
    task_types: tuple[str, ...] | None = None,
    **overrides: Any,
) -> AsyncIterator[tuple[Rig, FakeAceStep]]:
    server: dict[str, Any] = {} if task_types is None else {"task_types": task_types}
    async with FakeAceStep(time_scale=0.04, **server) as ace:
        settings = acestep_settings(
            tmp_path,
            ace.base_url,
            telegram_token=TOKEN,
            telegram_api_base_url=tg.base_url,
            **overrides,
        )
        async with telegram_bot(settings, tg, ws) as rig:
            yield rig, ace


@pytest.fixture
async def ace(
    tmp_path: Path, tg: FakeTelegram, ws: FakeWaveSpeed
) -> AsyncIterator[tuple[Rig, FakeAceStep]]:
    async with ace_bot(tmp_path, tg, ws) as running:
        yield running


def audios(rig: Rig, chat: FakeChat) -> list[RecordedMessage]:
    return [m for m in rig.tg.chat_log(chat, include_deleted=False) if m.audio is not None]


async def track_for(rig: Rig, asked: int, chat: FakeChat | None = None) -> RecordedMessage:
    """The track answering the message ``asked`` (a command, or a button's message)."""
    return await rig.tg.wait_for_audio(
        chat or rig.group, timeout=WAIT, predicate=lambda m: m.reply_to_message_id == asked
    )


async def song(rig: Rig, seconds: int = 10, chat: FakeChat | None = None) -> RecordedMessage:
    asked = await rig.say(f"/song ambient, pads | {seconds}", chat=chat)
    return await track_for(rig, asked, chat)


def length(track: RecordedMessage) -> str:
    found = re.search(r"⏱ Length (\d+:\d\d)", track.caption or "")
    assert found is not None, track
    return found[1]


async def used_seconds(rig: Rig, user: FakeUser, chat: FakeChat) -> int:
    status = await rig.core.service.quota(requester(user), str(chat.id))
    return status.used_seconds


async def test_extend_makes_a_delivered_track_longer_and_says_so(
    ace: tuple[Rig, FakeAceStep],
) -> None:
    rig, fake = ace
    first = await song(rig)
    parent = job_id_of(first)
    assert "➕ Extend" in [b.text for b in first.buttons]  # the engine can extend

    asked = await rig.say("/extend 10 | at=end", reply_to=first)
    longer = await track_for(rig, asked)
    assert f"🧬 Extended from #{parent}" in (longer.caption or "")
    assert (length(first), length(longer)) == ("0:10", "0:20")
    assert longer.audio is not None
    seconds, _, _ = probe_audio(longer.audio.data)
    assert seconds == pytest.approx(20, abs=0.5)
    sent = fake.edits[-1]
    assert sent.task_type == "repaint" and sent.source_seconds == pytest.approx(10, abs=0.5)
    assert TOKEN not in repr(sent.fields)  # the bot's token never goes upstream

    history = await rig.ask("/history")
    child = job_id_of(longer)
    line = (
        re.escape(f"#{child} ambient, pads — 10 s, seed ") + r"\d+ · " + f"extended from #{parent}"
    )
    assert re.search(line, history.text or "")


async def test_remix_of_audio_sent_in_a_private_chat(ace: tuple[Rig, FakeAceStep]) -> None:
    rig, fake = ace
    dm = rig.tg.private_chat(rig.alice)
    mine = await rig.tg.send_file(
        dm, rig.alice, make_audio(12.0, "mp3"), filename="demo.mp3", mime_type="audio/mpeg"
    )
    asked = await rig.say("/remix jazz, brass 0.7", chat=dm, reply_to=mine["message_id"])
    remix = await track_for(rig, asked, dm)
    card = remix.caption or ""
    assert "🧬 Remix of your audio" in card and "🏷 Style: jazz, brass" in card
    assert rig.tg.calls_to("getFile")  # fetched through the Bot API
    sent = fake.edits[-1]
    assert sent.task_type == "cover" and sent.audio_cover_strength == pytest.approx(0.7)
    assert sent.source_seconds == pytest.approx(12, abs=0.5)
    assert TOKEN not in repr(sent.fields) and "/file/bot" not in repr(sent.fields)


async def test_repaint_a_section_given_by_its_times(ace: tuple[Rig, FakeAceStep]) -> None:
    rig, fake = ace
    first = await song(rig, 12)
    parent = job_id_of(first)
    asked = await rig.say(f"/repaint {parent} 0:03 7 gospel choir")
    repainted = await track_for(rig, asked)
    assert f"🧬 Repaint of #{parent}" in (repainted.caption or "")
    assert length(repainted) == "0:12"
    sent = fake.edits[-1]
    assert (sent.task_type, sent.repainting_start, sent.repainting_end) == ("repaint", 3.0, 7.0)

    # A section that isn't in the track gets the core's sentence, and nothing is queued.
    refused = await rig.ask(f"/repaint {parent} 0:30 0:40")
    assert (refused.text or "").startswith("⚠️")
    assert len(fake.edits) == 1


async def test_extend_pressed_twice_makes_one_longer_track(ace: tuple[Rig, FakeAceStep]) -> None:
    rig, fake = ace
    first = await song(rig)
    parent = job_id_of(first)
    one = await rig.tg.press_button(rig.group, rig.alice, first, button_text="➕ Extend")
    two = await rig.tg.press_button(rig.group, rig.alice, first, button_text="➕ Extend")
    answers = [await rig.tg.wait_for_callback_answer(q, timeout=WAIT) for q in (one, two)]
    assert sorted(a.text or "" for a in answers)[1] == "➕ A longer version — queued."
    longer = await track_for(rig, first.message_id)
    assert f"🧬 Extended from #{parent}" in (longer.caption or "")
    assert length(longer) == "0:40"  # 30 s more, the default
    # A press later on is the same press: still one extension.
    three = await rig.tg.press_button(rig.group, rig.alice, first, button_text="➕ Extend")
    late = await rig.tg.wait_for_callback_answer(three, timeout=WAIT)
    assert late.text == messages.ALREADY_PRESSED
    assert len(fake.edits) == 1 and await rig.core.service.queue_of(requester(rig.alice)) == []
    assert "✓" in rig.tg.message(rig.group, first.message_id).button("Extend").text


async def test_a_bad_upload_gets_a_sentence_and_costs_nothing(
    tmp_path: Path, tg: FakeTelegram, ws: FakeWaveSpeed
) -> None:
    async with ace_bot(tmp_path, tg, ws, max_duration=30) as (rig, fake):
        dm = rig.tg.private_chat(rig.alice)
        before = await used_seconds(rig, rig.alice, dm)

        async def remix_of(data: bytes, **file: Any) -> str:
            sent = await rig.tg.send_file(dm, rig.alice, data, **file)
            answer = await rig.reply_to(
                await rig.say("/remix jazz", chat=dm, reply_to=sent["message_id"]), dm
            )
            return answer.text or ""

        renamed = await remix_of(b"just some words\n" * 50, kind="document", filename="song.mp3")
        assert "isn't audio I can read" in renamed
        calls = len(rig.tg.calls_to("getFile"))
        big = await remix_of(bytes(21 * 1024 * 1024), kind="document", filename="big.wav")
        assert "at most 20 MB" in big
        assert len(rig.tg.calls_to("getFile")) == calls  # refused before any download
        long = await remix_of(make_audio(40.0, "mp3"), filename="long.mp3")
        assert "at most 0:30" in long
        voice = await remix_of(b"\x00" * 1000, kind="voice", mime_type="audio/ogg")
        assert voice.startswith("⚠️")
        rig.tg.faults.add("getFile", status=502)  # Telegram's front end, for a moment
        unfetched = await remix_of(make_audio(12.0, "mp3"), filename="fine.mp3")
        assert "couldn't get that file" in unfetched

        assert fake.edits == []
        assert await used_seconds(rig, rig.alice, dm) == before
        assert [p for p in (tmp_path / "sources").rglob("*") if p.is_file()] == []  # none kept


async def test_own_audio_in_a_group_waits_for_an_admin_to_allow_it(
    ace: tuple[Rig, FakeAceStep],
) -> None:
    rig, fake = ace
    rig.tg.set_admins(rig.group, [rig.alice.id])
    sent = await rig.tg.send_file(
        rig.group, rig.bob, make_audio(5.0, "mp3"), filename="riff.mp3", mime_type="audio/mpeg"
    )
    refused = await rig.reply_to(
        await rig.say("/extend 10 surf rock", rig.bob, reply_to=sent["message_id"])
    )
    assert "isn't switched on in this chat" in (refused.text or "")
    assert "/admin own_audio on" in (refused.text or "")  # Telegram's own syntax
    assert rig.tg.calls_to("getFile") == []

    settings = await rig.ask("/admin")
    assert "Members may edit audio they send: no (the default)" in (settings.text or "")
    turned = await rig.ask("/admin own_audio on")
    assert (turned.text or "").startswith("✅")

    asked = await rig.say("/extend 10 surf rock", rig.bob, reply_to=sent["message_id"])
    longer = await track_for(rig, asked)
    assert "🧬 Extended from your audio" in (longer.caption or "")
    assert length(longer) == "0:15"
    assert fake.edits[-1].source_seconds == pytest.approx(5, abs=0.5)
    job = await wait_for_job(rig.core, job_id_of(longer), {JobState.DELIVERED})
    assert job.request.task == Task.EXTEND and job.request.duration == 10  # what it counts


async def test_help_and_the_command_menu_offer_the_edits(ace: tuple[Rig, FakeAceStep]) -> None:
    rig, _ = ace
    help_ = await rig.ask("/help")
    assert "/extend — make a track longer" in (help_.text or "")
    assert {"extend", "remix", "repaint"} <= set(rig.tg.command_names())
    usage = await rig.ask("/repaint")
    assert (usage.text or "").startswith("/repaint song start end tags")


async def test_edits_are_not_offered_where_the_engine_has_none(
    tmp_path: Path, tg: FakeTelegram, ws: FakeWaveSpeed
) -> None:
    # A model that only makes songs: no ➕, no menu entries, and a sentence when typed.
    async with ace_bot(tmp_path, tg, ws, task_types=("text2music",)) as (rig, fake):
        first = await song(rig)
        assert "➕ Extend" not in [b.text for b in first.buttons]
        assert "extend" not in rig.tg.command_names()
        answer = await rig.ask(f"/extend {job_id_of(first)}")
        help_ = await rig.ask("/help")
    assert "can't do extending" in (answer.text or "")
    assert "/extend" not in (help_.text or "") and fake.edits == []


async def test_on_wavespeed_each_edit_uploads_its_source_and_runs_on_its_model(
    rig: Rig, ws: FakeWaveSpeed
) -> None:
    first = await song(rig)
    parent = job_id_of(first)
    longer = await track_for(rig, await rig.say("/extend 10", reply_to=first))
    remix = await track_for(rig, await rig.say(f"/remix {parent} jazz, brass"))
    repaint = await track_for(rig, await rig.say(f"/repaint {parent} 0:02 0:06"))
    dm = rig.tg.private_chat(rig.alice)
    mine = await rig.tg.send_file(
        dm, rig.alice, make_audio(12.0, "mp3"), filename="demo.mp3", mime_type="audio/mpeg"
    )
    own = await track_for(
        rig, await rig.say("/remix bossa", chat=dm, reply_to=mine["message_id"]), dm
    )

    assert f"🧬 Extended from #{parent} · with {OUTPAINT}" in (longer.caption or "")
    assert f"🧬 Remix of #{parent} · with {AUDIO_TO_AUDIO}" in (remix.caption or "")
    assert f"🧬 Repaint of #{parent} · with {INPAINT}" in (repaint.caption or "")
    assert f"🧬 Remix of your audio · with {AUDIO_TO_AUDIO}" in (own.caption or "")
    assert (length(first), length(longer), length(repaint)) == ("0:10", "0:20", "0:10")
    assert_the_four_edits_went_through_uploads(
        ws, remix_tags="jazz, brass", never_sent=(TOKEN, "/file/bot")
    )
