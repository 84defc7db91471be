"""/quota, /queue, /history, /help, /start, and cancelling with ✖ or /cancel."""

from __future__ import annotations

import re

from adapters.telegram import keyboards
from bot.domain import JobState
from tests.adapters.telegram.conftest import WAIT, Rig, requester
from tests.fakes.telegram import RecordedMessage
from tests.harness import wait_for_job


def job_id_of(message: RecordedMessage) -> int:
    """The job a status message (its "#12") or a track (its buttons) is about."""
    if message.audio is not None:
        press = keyboards.parse(message.buttons[0].callback_data)
        assert press is not None, message
        return press.job_id
    found = re.search(r"#(\d+)$", message.text_history[0] or "")
    assert found is not None, message
    return int(found.group(1))


async def test_quota_history_and_queue_show_what_the_user_has(rig: Rig) -> None:
    fresh = await rig.ask("/quota")
    assert fresh.text == (
        "🎚 You have 10 min of 10 min left (a rolling 24 hours).\nSongs queued or running: 0 of 2."
        "\n🧹 Removed in 1 min to keep the chat tidy."  # a group: personal answers don't stay
    )
    empty = await rig.ask("/history")
    assert (empty.text or "").startswith(
        "📭 You haven't made any songs yet. Ask for one with /song."
    )

    await rig.say("/song lo-fi, chill | 30 | 99")
    track = await rig.tg.wait_for_audio(rig.group, timeout=WAIT)
    await wait_for_job(rig.core, job_id_of(track), {JobState.DELIVERED})

    quota = await rig.ask("/quota@AceJamBot")
    assert quota.text is not None
    assert "You have 9 min 30 s of 10 min left" in quota.text
    assert "Your oldest song's seconds come back in" in quota.text
    assert "Songs queued or running: 0 of 2." in quota.text

    history = await rig.ask("/history")
    assert f"#{job_id_of(track)} lo-fi, chill — 30 s, seed 99" in (history.text or "")

    rig.ws.faults.add_job(hang=True)
    status = await rig.ask("/song drone | 20")
    queue = await rig.ask("/queue")
    assert queue.text is not None and queue.text.startswith("🎶 Your songs in the works")
    assert f"#{job_id_of(status)} drone — 20 s: " in queue.text
    assert "lo-fi" not in queue.text  # delivered songs aren't in the queue


async def test_help_and_start(rig: Rig) -> None:
    chat = rig.tg.private_chat(rig.alice)
    await rig.say("/start", chat=chat)
    start = await rig.tg.wait_for_message(chat, "Hi Alice!", timeout=WAIT)
    help_ = await rig.ask("/help")
    for text in (start.text or "", help_.text or ""):
        assert "/song lo-fi, chill, rainy piano | 30" in text
        for command in ("/queue", "/cancel", "/quota", "/history", "/limits"):
            assert command in text
        # One vocabulary: the buttons' own names, durations as 1:30, what a seed does.
        for words in ("✖ Cancel", "/cancel 12", "1:30", "🎲 New take", "🔁 Same seed", "seed"):
            assert words in text, words
        assert "in progress" not in text and "Re-roll" not in text
    # Every /song field and the newer commands, with one example each.
    text = help_.text or ""
    for example in (
        "takes=2",
        "bpm=120",
        "key=F# minor",
        "time=3",
        "lang=pt",
        "/describe a sad song about rain in Lisbon",
        "/show 12",
        "/history 2",
        "/song jazz, brushed drums",
    ):
        assert example in text, example
    assert "this bot's has none right now" in text  # WaveSpeed: no language model


async def test_the_cancel_button_stops_the_song_and_gives_the_quota_back(rig: Rig) -> None:
    rig.ws.faults.add_job(hang=True)
    status = await rig.ask("/song drone | 40")
    job_id = job_id_of(status)
    await wait_for_job(rig.core, job_id, {JobState.RUNNING})

    refused = await rig.tg.press_button(rig.group, rig.bob, status, f"cx:{job_id}")
    answer = await rig.tg.wait_for_callback_answer(refused, timeout=WAIT)
    assert answer.text == "Only the person who asked for that song can cancel it."
    assert answer.show_alert

    query = await rig.tg.press_button(rig.group, rig.alice, status, f"cx:{job_id}")
    answer = await rig.tg.wait_for_callback_answer(query, timeout=WAIT)
    assert answer.text == "Cancelled. Your quota has been given back."
    await rig.tg.wait_until(
        lambda: (status.text or "").startswith("✖"), what="cancelled status", timeout=WAIT
    )
    assert status.text is not None
    assert status.text.startswith("✖ Cancelled. Your quota has been given back.")
    assert status.reply_markup is None
    assert (await rig.core.service.quota(requester(rig.alice))).used_seconds == 0
    assert (await rig.core.service.get_job(job_id)).state == JobState.CANCELLED  # type: ignore[union-attr]


async def test_a_cancel_during_the_cards_edit_still_shows_on_the_card(rig: Rig) -> None:
    """The card's "making your song" edit is on its way when the song is cancelled: the
    card is edited once more, to the cancellation (it used to keep the older text)."""
    rig.ws.faults.add_job(hang=True)
    rig.tg.faults.add("editMessageText", delay_response=1.0)  # done, answered a second late
    status = await rig.ask("/song drone | 40")
    job_id = job_id_of(status)
    await rig.tg.wait_until(
        lambda: any(call.method == "editMessageText" for call in rig.tg.calls),
        what="the card's edit on its way",
        timeout=WAIT,
    )
    answer = await rig.ask(f"/cancel {job_id}")
    assert answer.text == "✖ Cancelled. Your quota has been given back."
    await rig.tg.wait_until(
        lambda: (status.text or "").startswith("✖"), what="cancelled card", timeout=WAIT
    )
    assert status.text is not None
    assert status.text.startswith("✖ Cancelled. Your quota has been given back.")
    assert status.reply_markup is None
    assert (await rig.core.service.quota(requester(rig.alice))).used_seconds == 0


async def test_cancel_command_targets_the_replied_job_then_the_latest(rig: Rig) -> None:
    rig.ws.faults.add_job(hang=True, times=2)
    first = await rig.ask("/song first | 20")
    second = await rig.ask("/song second | 20")

    answer = await rig.reply_to(await rig.say("/cancel", reply_to=first))
    assert answer.text == "✖ Cancelled. Your quota has been given back."
    await rig.tg.wait_until(
        lambda: (first.text or "").startswith("✖"), what="first cancelled", timeout=WAIT
    )
    [left] = await rig.core.service.queue_of(requester(rig.alice))
    assert left.job.id == job_id_of(second)

    answer = await rig.ask("/cancel")
    assert answer.text == "✖ Cancelled. Your quota has been given back."
    await rig.tg.wait_until(
        lambda: (second.text or "").startswith("✖"), what="second cancelled", timeout=WAIT
    )

    answer = await rig.ask("/cancel")
    assert answer.text == "📭 You have nothing queued or running to cancel."
    assert (await rig.core.service.quota(requester(rig.alice))).used_seconds == 0
    assert rig.tg.chat_log(rig.group, include_user_messages=False)[-1] is answer
