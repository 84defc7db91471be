"""What users see when things go wrong: one friendly line, nothing queued, no crash."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.domain import JobState
from tests.adapters.telegram.conftest import WAIT, Rig, bot_settings, requester, telegram_bot
from tests.adapters.telegram.test_commands import job_id_of
from tests.fakes.telegram import FakeTelegram, FloodLimits
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import wait_for_job

BAD_REQUESTS = [
    (
        "/song rock | soon",
        "“soon” isn't a length I can use: write seconds like 90 or minutes like 1:30.",
    ),
    ("/song rock | 999", "999 s is too long: songs here are 5 to 240 s long. Try 240."),
    ("/song rock | 30 | lucky", "“lucky” isn't a seed: use a whole number from 0 to 2147483647"),
    ("/song rock | 30 | 99999999999999999999", "“99999999999999999999” isn't a seed"),
    ("/song " + "x" * 600, "The style tags are 600 characters long; please keep them to 512."),
    ("/song a | 30 | 1 | extra", "I don't know what “extra” is for"),
    ("/song | 30\n[Verse]\nla la", "Tell me the style first, e.g. lo-fi, chill, rainy piano."),
]


async def test_bad_requests_get_a_friendly_one_liner_and_queue_nothing(rig: Rig) -> None:
    for text, expected in BAD_REQUESTS:
        answer = await rig.ask(text)
        assert answer.text is not None and answer.text.startswith("⚠️ "), text
        assert expected in answer.text, (text, answer.text)
        assert "\n" not in answer.text
    assert rig.ws.submits == []
    assert await rig.core.service.queue_of(requester(rig.alice)) == []


async def test_an_exhausted_quota_is_explained(
    tmp_path: Path, tg: FakeTelegram, ws: FakeWaveSpeed
) -> None:
    settings = bot_settings(tmp_path, tg, ws, quota_seconds_per_day=50)
    async with telegram_bot(settings, tg, ws) as rig:
        first = await rig.ask("/song first | 30")
        refused = await rig.ask("/song second | 30")
        assert refused.text is not None
        assert refused.text.startswith(
            "⚠️ You have 20 s of your daily 50 s left and this song needs 30 s."
        )
        assert "Enough frees up in" in refused.text
        assert refused.reply_markup is None
        await wait_for_job(rig.core, job_id_of(first), {JobState.DELIVERED})
        assert [s["tags"] for s in rig.ws.submits] == ["first"]


async def test_a_failure_is_a_new_message_that_reaches_the_requester(rig: Rig) -> None:
    rig.ws.faults.add_job(fail="GPU fell over")
    request_id = await rig.say("/song doomed | 30")
    status = await rig.reply_to(request_id)
    await wait_for_job(rig.core, job_id_of(status), {JobState.FAILED})
    # Not an edit of the card (edits notify nobody): a reply to the request naming Alice.
    failure = await rig.tg.wait_for_message(
        rig.group, lambda m: m is not status and "⚠️" in (m.text or ""), timeout=WAIT
    )
    assert failure.reply_to_message_id == request_id
    assert failure.text is not None
    assert failure.text.startswith(
        "⚠️ Alice: The music engine couldn't make this song. Your quota has been given back."
    )
    assert [e["user"]["id"] for e in failure.entities if e["type"] == "text_mention"] == [
        rig.alice.id
    ]
    assert "GPU" not in failure.text  # upstream's own words are never shown
    assert [b.text for b in failure.buttons] == ["🔁 Try again"]
    await rig.tg.wait_until(lambda: status.deleted, what="the card gone", timeout=WAIT)
    assert (await rig.core.service.quota(requester(rig.alice))).used_seconds == 0
    assert not [m for m in rig.tg.chat_log(rig.group) if m.audio]

    # Trying again makes the same request again, and this time it works.
    query = await rig.tg.press_button(rig.group, rig.alice, failure, button_text="Try again")
    await rig.tg.wait_for_callback_answer(query, timeout=WAIT)
    track = await rig.tg.wait_for_audio(rig.group, timeout=WAIT)
    assert track.reply_to_message_id == failure.message_id
    assert [(s["tags"], s["duration"]) for s in rig.ws.submits] == [("doomed", 30)] * 2
    assert [b.text for b in failure.buttons] == ["🔁 Try again ✓"]  # it shows it was used


async def test_html_in_tags_is_echoed_as_text(rig: Rig) -> None:
    tags = '<b>bold</b> & <a href="https://x.io">x</a> </pre> <script>alert(1)</script>'
    status = await rig.ask(f"/song {tags} | 10")
    first_text = status.text_history[0] or ""
    assert tags in first_text
    assert [e["type"] for e in status.entities] == ["italic"]  # only our own formatting
    track = await rig.tg.wait_for_audio(rig.group, timeout=WAIT)
    assert track.caption is not None and tags in track.caption
    assert track.audio is not None and track.audio.title is not None
    assert track.audio.title.startswith("<b>bold</b> & <a")  # shortened to 60 characters
    assert rig.ws.submits[0]["tags"] == tags


async def test_weird_input_never_crashes_the_bot(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    expectations = {
        "/song | | | |": "tags | duration | seed",  # nothing given: the format
        "/song@AceJamBot\n\n\n": "tags | duration | seed",
        "/cancel abc": "nothing queued or running",
        "/cancel 99999": "I can't find that song.",
        "/cancel 99999999999999999999999999": "I can't find that song.",
        "/cancel #-1": "nothing queued or running",
        "/quota@AceJamBot and more": "left (a rolling 24 hours)",
        "/history \x00\u202e": "haven't made any songs",
        "/queue 🎵🎵🎵": "no songs queued",
        "/start@AceJamBot <b>hi</b>": "Hi Alice!",
    }
    for text, expected in expectations.items():
        answer = await rig.ask(text)
        assert expected in (answer.text or ""), (text, answer.text)

    # A reply to one of the bot's messages that isn't a job: /cancel explains.
    help_ = await rig.ask("/help")
    answer = await rig.reply_to(await rig.say("/cancel", reply_to=help_))
    assert "nothing to cancel there" in (answer.text or "")

    # Buttons of songs that are gone, finished, or from an older version still get answers.
    # The old version's post is scaffolding, sent past the group's flood budget the answers
    # above used (the same token: one budget; on a loaded machine it may be spent).
    limits, rig.tg.flood_limits = rig.tg.flood_limits, FloodLimits.off()
    async with rig.tg.bot() as old_version:
        markup = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton("🎲", callback_data="rr:424242"),
                    InlineKeyboardButton("✖", callback_data="cx:424242"),
                    InlineKeyboardButton("?", callback_data="reroll:v1:7"),
                ]
            ]
        )
        old = await old_version.send_message(rig.group.id, "an old track", reply_markup=markup)
    rig.tg.flood_limits = limits
    answers = {}
    for data in ("rr:424242", "cx:424242", "reroll:v1:7"):
        query = await rig.tg.press_button(rig.group, rig.alice, old.message_id, data)
        answers[data] = (await rig.tg.wait_for_callback_answer(query, timeout=WAIT)).text
    assert answers == {
        "rr:424242": "I can't find that song any more.",
        "cx:424242": "I can't find that song.",
        "reroll:v1:7": "That button no longer works; try /help.",
    }

    assert rig.ws.submits == []
    assert not any("went wrong" in (m.text or "") for m in rig.tg.chat_log(rig.group))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "AceJam" in ((await rig.ask("/help")).text or "")  # still answering
