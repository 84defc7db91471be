"""Several takes of one song arrive together in a Telegram chat: one audio album, each take
titled and captioned with its number and seed, and one message under it with ▶ Keep per take
and 🎲 / 🔁. The real python-telegram-bot client posts them to the loopback Telegram."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from adapters.telegram.delivery import TelegramDelivery
from adapters.telegram.status import StatusBoard
from bot.clock import utcnow
from bot.delivery import tracks_of
from bot.domain import (
    Destination,
    GenerationRequest,
    Job,
    JobId,
    JobState,
    Take,
    TakeState,
    UserId,
)
from bot.messages import ALREADY_PRESSED
from tests.adapters.telegram.conftest import TOKEN, WAIT, Rig
from tests.fakes.audio import make_audio, probe_audio
from tests.fakes.telegram import FakeTelegram
from tests.harness import POLL_SCALE, wait_for_job

SEEDS = (101, 202, 303)


def job_with_takes(chat_id: int, request_id: int, folder: Path, seeds: tuple[int, ...]) -> Job:
    """A finished job whose takes are on disk, as the worker hands it to the delivery."""
    takes = []
    for number, seed in enumerate(seeds, start=1):
        path = folder / f"job-7-take-{number}.mp3"
        path.write_bytes(make_audio(3.0 + number))
        takes.append(Take(number, TakeState.READY, seed, str(path), "mp3", 3.0 + number))
    now = utcnow()
    return Job(
        id=JobId(7),
        user_id=UserId(1),
        request=GenerationRequest("lo-fi, rainy piano", "", 5, takes=len(seeds)),
        destination=Destination("telegram", str(chat_id), "42", {"request_message_id": request_id}),
        state=JobState.SUCCEEDED,
        backend="wavespeed",
        created_at=now,
        updated_at=now,
        seed_used=seeds[0],
        takes=tuple(takes),
    )


async def deliver(tg: FakeTelegram, job: Job) -> str:
    async with tg.bot() as bot:
        board = StatusBoard(bot, time_scale=POLL_SCALE)
        delivery = TelegramDelivery(bot, board)
        receipt = await delivery.deliver(job, tracks_of(job))
        await board.close()
    return receipt.message_id


async def test_three_takes_arrive_as_one_album_with_the_choices_under_it(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    alice = tg.user(42, "Alice")
    chat = tg.private_chat(alice)
    request = await tg.send_message(chat, alice, "/song lo-fi, rainy piano | takes=3")
    job = job_with_takes(chat.id, request["message_id"], tmp_path, SEEDS)

    receipt = await deliver(tg, job)

    album = await tg.wait_for_album(chat, size=3)
    assert receipt == str(album[0].message_id)  # the song's message: the album's first
    titles = [m.audio.title if m.audio else None for m in album]
    assert titles == [f"Lo-fi, Rainy Piano — take {n}" for n in (1, 2, 3)]
    for message, seed in zip(album, SEEDS, strict=True):
        assert message.caption is not None and f"Seed {seed}" in message.caption
        assert message.audio is not None and message.thumbnail is not None
        assert message.reply_to_message_id == request["message_id"]
    lengths = [round(probe_audio(m.audio.data)[0]) for m in album if m.audio]
    assert lengths == [4, 5, 6]  # each take its own file
    choices = await tg.wait_for_message(chat, lambda m: bool(m.buttons))
    assert choices.reply_to_message_id == album[0].message_id
    assert [b.text for b in choices.buttons] == [
        "▶ Keep 1",
        "▶ Keep 2",
        "▶ Keep 3",
        "🎲 New take",
        "🔁 Same seed",
    ]
    assert "3 takes above" in (choices.text or "")
    assert tg.calls_to("sendAudio") == []
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".telegram")]
    assert leftovers == []


async def test_a_failed_take_among_several_is_left_out_of_the_album(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    alice = tg.user(42, "Alice")
    chat = tg.private_chat(alice)
    request = await tg.send_message(chat, alice, "/song lo-fi | takes=3")
    job = job_with_takes(chat.id, request["message_id"], tmp_path, SEEDS)
    failed = Take(2, TakeState.FAILED, error_code="backend")
    job = replace(job, takes=(job.takes[0], failed, job.takes[2]))

    await deliver(tg, job)

    album = await tg.wait_for_album(chat, size=2)
    assert [(m.audio.title or "")[-6:] for m in album if m.audio] == ["take 1", "take 3"]
    choices = await tg.wait_for_message(chat, lambda m: bool(m.buttons))
    assert [b.text for b in choices.buttons][:2] == ["▶ Keep 1", "▶ Keep 3"]


async def test_a_one_take_job_is_one_audio_as_before(tg: FakeTelegram, tmp_path: Path) -> None:
    alice = tg.user(42, "Alice")
    chat = tg.private_chat(alice)
    request = await tg.send_message(chat, alice, "/song lo-fi, rainy piano")
    job = job_with_takes(chat.id, request["message_id"], tmp_path, (101,))
    one = GenerationRequest("lo-fi, rainy piano", "", 5, 101)
    job = replace(job, request=one, takes=(), audio_path=job.takes[0].audio_path)

    receipt = await deliver(tg, job)

    (track,) = tg.chat_log(chat)
    assert receipt == str(track.message_id) and track.media_group_id is None
    assert track.audio is not None and track.audio.title == "Lo-fi, Rainy Piano"
    assert [b.text for b in track.buttons] == ["🎲 New take", "🔁 Same seed"]
    assert tg.calls_to("sendMediaGroup") == []


async def test_a_local_bot_api_server_gets_the_albums_files_by_path(tmp_path: Path) -> None:
    async with FakeTelegram(token=TOKEN, local_mode=True, time_scale=POLL_SCALE) as tg:
        alice = tg.user(42, "Alice")
        chat = tg.private_chat(alice)
        request = await tg.send_message(chat, alice, "/song lo-fi | takes=2")
        job = job_with_takes(chat.id, request["message_id"], tmp_path, SEEDS[:2])
        async with tg.bot() as bot:
            board = StatusBoard(bot, time_scale=POLL_SCALE)
            await TelegramDelivery(bot, board, local_mode=True).deliver(job, tracks_of(job))
            await board.close()
        album = await tg.wait_for_album(chat, size=2)
    (call,) = tg.calls_to("sendMediaGroup")
    assert all(item["media"].startswith("file://") for item in json.loads(call["media"]))
    assert all(m.audio is not None and m.thumbnail is not None and not m.warnings for m in album)


async def test_keep_two_is_recorded_shown_and_what_the_dice_start_from(rig: Rig) -> None:
    tg, group, alice = rig.tg, rig.group, rig.alice
    request = await rig.say("/song lo-fi, rainy piano | 5 | takes=3")
    album = await tg.wait_for_album(group, size=3, timeout=WAIT)
    assert all(m.reply_to_message_id == request for m in album)
    choices = await rig.reply_to(album[0].message_id, also=lambda m: bool(m.buttons))
    job = await wait_for_job(rig.core, 1, {JobState.DELIVERED})
    take_two = job.takes[1]
    assert album[1].caption is not None and f"Seed {take_two.seed}" in album[1].caption

    query = await tg.press_button(group, alice, choices, button_text="▶ Keep 2")

    toast = await tg.wait_for_callback_answer(query, timeout=WAIT)
    assert toast.text is not None and "take 2" in toast.text and not toast.show_alert
    shown = await tg.wait_for_message(group, lambda m: "Take 2 kept" in (m.text or ""))
    assert shown.message_id == choices.message_id  # the same message, edited
    labels = [b.text for b in shown.buttons]
    assert labels == ["▶ Keep 1", "✅ Kept 2", "▶ Keep 3", "🎲 New take", "🔁 Same seed"]
    kept = await rig.core.store.get(1)
    assert kept is not None and kept.kept_take == 2 and kept.seed_used == take_two.seed

    # A double tap changes nothing; someone else may not choose for Alice.
    again = await tg.press_button(group, alice, choices, button_text="✅ Kept 2")
    assert (await tg.wait_for_callback_answer(again, timeout=WAIT)).text == ALREADY_PRESSED
    bobs = await tg.press_button(group, rig.bob, choices, button_text="▶ Keep 3")
    refused = await tg.wait_for_callback_answer(bobs, timeout=WAIT)
    assert refused.show_alert and "someone else's song" in (refused.text or "")
    assert [e.method for e in tg.message(group, choices.message_id).edits] == ["editMessageText"]
    still = await rig.core.store.get(1)
    assert still is not None and still.kept_take == 2

    # 🔁 after Keep 2 makes take 2 again (its seed); 🎲 a new take of the same song.
    same = await tg.press_button(group, alice, choices, button_text="🔁 Same seed")
    await tg.wait_for_callback_answer(same, timeout=WAIT)
    again_two = await wait_for_job(rig.core, 2, set(JobState))
    assert again_two.parent_id == 1 and again_two.request.seed == take_two.seed
    assert again_two.request.tags == "lo-fi, rainy piano" and again_two.request.takes == 1
    dice = await tg.press_button(group, alice, choices, button_text="🎲 New take")
    await tg.wait_for_callback_answer(dice, timeout=WAIT)
    new_take = await wait_for_job(rig.core, 3, set(JobState))
    assert new_take.parent_id == 1 and new_take.request.seed == -1
