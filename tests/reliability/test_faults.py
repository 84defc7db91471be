"""Faults end to end, as the user sees them in a Telegram group.

Each test breaks one thing upstream or at Telegram and reads the chat: the song's status
card (gone once the song is over), the track or the news that it failed, /quota. Either the song arrives once, with no error ever shown, or the
user is told plainly what happened and gets the quota back; never two tracks, never a second
request upstream (WaveSpeed bills per request). The core-level versions of these faults are in
tests/service; here the point is what reaches the chat.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot import messages
from bot.domain import JobState
from tests.adapters.telegram.conftest import WAIT, Rig, bot_settings, telegram_bot
from tests.fakes.audio import probe_audio
from tests.fakes.telegram import FakeTelegram, RecordedMessage
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import wait_for_job

pytestmark = pytest.mark.faults

SONG = "/song rainy piano | 10"
SECONDS = 10
FULL_QUOTA = "You have 10 min of 10 min left"
CHARGED = "You have 9 min 50 s of 10 min left"


@pytest.fixture
async def rig(tmp_path: Path, tg: FakeTelegram, ws: FakeWaveSpeed) -> AsyncIterator[Rig]:
    # A short HTTP timeout, so that "upstream never answered" takes a second, not thirty.
    async with telegram_bot(
        bot_settings(tmp_path, tg, ws, http_timeout_seconds=1.0), tg, ws
    ) as bot:
        yield bot


async def ask_for_a_song(rig: Rig) -> RecordedMessage:
    """Alice asks for a song; the message that ends it (its track, or the news that it
    failed), once the status card the bot answered with is gone."""
    status = await rig.ask(SONG)
    ended = await rig.tg.wait_for_message(
        rig.group,
        lambda m: m is not status and (m.audio is not None or (m.text or "").startswith("⚠️")),
        timeout=WAIT,
    )
    await rig.tg.wait_until(lambda: status.deleted, what="the status card gone", timeout=WAIT)
    return ended


def bot_messages(rig: Rig) -> list[RecordedMessage]:
    return rig.tg.chat_log(rig.group)


def tracks(rig: Rig) -> list[RecordedMessage]:
    return [m for m in bot_messages(rig) if m.audio is not None]


def never_alarmed(rig: Rig) -> bool:
    return not any(
        text and text.startswith("⚠️") for m in bot_messages(rig) for text in m.text_history
    )


async def quota_line(rig: Rig) -> str:
    return (await rig.ask("/quota")).text or ""


async def assert_delivered_once(rig: Rig, ended: RecordedMessage) -> None:
    """The song arrived, whole, once, and the chat holds nothing but its track."""
    assert never_alarmed(rig), rig.tg.describe(rig.group)
    [track] = tracks(rig)
    assert track is ended
    assert track.audio is not None and abs(probe_audio(track.audio.data)[0] - SECONDS) <= 0.1
    assert rig.tg.chat_log(rig.group, include_deleted=False) == [track]
    assert CHARGED in await quota_line(rig)


async def assert_told_and_refunded(rig: Rig, told: RecordedMessage, code: str) -> None:
    """A new message tells Alice (by name) why, and her quota is back."""
    assert (told.text or "").startswith(f"⚠️ Alice: {messages.failure_message(code)}"), told.text
    assert tracks(rig) == []
    assert FULL_QUOTA in await quota_line(rig)


# ---------------------------------------------------------------- upstream: submit
async def test_a_burst_of_429s_on_submit_delays_the_song_but_it_arrives_once(rig: Rig) -> None:
    rig.ws.faults.add("submit", status=429, times=3)
    status = await ask_for_a_song(rig)
    await assert_delivered_once(rig, status)
    assert len(rig.ws.submits) == 4  # three refused before creating anything, one accepted
    assert len(rig.ws.predictions) == 1


@pytest.mark.parametrize(
    ("fault", "created"),
    [
        pytest.param({"status": 502}, 0, id="5xx"),
        pytest.param({"processed": True, "delay_response": 3.0}, 1, id="timeout-after-accepting"),
        pytest.param({"malformed": True}, 1, id="malformed-json"),
    ],
)
async def test_a_submit_with_no_clear_answer_is_not_resent_and_the_user_is_told(
    rig: Rig, fault: dict[str, Any], created: int
) -> None:
    # Upstream may or may not have the song (the fake knows: ``created``); the bot can't
    # know, so it never sends it again rather than risk paying twice.
    rig.ws.faults.add("submit", **fault)
    status = await ask_for_a_song(rig)
    await assert_told_and_refunded(rig, status, "submit_uncertain")
    assert "charged twice" in (status.text or "")
    assert len(rig.ws.submits) == 1
    assert len(rig.ws.predictions) == created


# ---------------------------------------------------------------- upstream: polls and jobs
async def test_poll_errors_timeouts_and_malformed_answers_never_reach_the_user(
    rig: Rig,
) -> None:
    for fault in (
        {"status": 429},
        {"status": 503},
        {"malformed": True},
        {"delay": 1.5},  # over the bot's 1 s timeout
    ):
        rig.ws.faults.add("poll", **fault)
    status = await ask_for_a_song(rig)
    await assert_delivered_once(rig, status)
    assert len(rig.ws.submits) == 1
    assert len(rig.ws.polls) >= 5  # every fault was met, and one more poll saw it done


async def test_a_song_that_never_finishes_upstream_is_given_up_and_refunded(
    tmp_path: Path, tg: FakeTelegram, ws: FakeWaveSpeed
) -> None:
    ws.faults.add_job(hang=True)
    settings = bot_settings(tmp_path, tg, ws, job_timeout_seconds=1.5)
    async with telegram_bot(settings, tg, ws) as rig:
        status = await ask_for_a_song(rig)
        await assert_told_and_refunded(rig, status, "timeout")
    assert "never finished" in (status.text or "")
    assert len(ws.submits) == 1


async def test_a_dead_download_link_is_polled_for_again_and_the_song_arrives(rig: Rig) -> None:
    rig.ws.faults.add("download", status=404)
    status = await ask_for_a_song(rig)
    await assert_delivered_once(rig, status)
    assert len(rig.ws.downloads) == 2 and len(rig.ws.submits) == 1


async def test_a_link_that_stays_expired_is_explained_and_refunded(rig: Rig) -> None:
    rig.ws.faults.add("download", status=404, times=None)
    status = await ask_for_a_song(rig)
    await assert_told_and_refunded(rig, status, "download_expired")
    assert "expired before I could fetch it" in (status.text or "")
    assert len(rig.ws.submits) == 1


async def test_a_cut_off_download_is_fetched_again_and_arrives_whole(rig: Rig) -> None:
    rig.ws.faults.add("download", truncate=True, times=2)
    status = await ask_for_a_song(rig)
    await assert_delivered_once(rig, status)  # decodes to the full 10 s
    assert len(rig.ws.downloads) == 3 and len(rig.ws.submits) == 1


# ---------------------------------------------------------------- Telegram
@pytest.mark.parametrize(
    ("where", "code"),
    [
        pytest.param("private", "bot_blocked", id="the-user-blocked-the-bot"),
        pytest.param("group", "chat_gone", id="the-group-removed-the-bot"),
    ],
)
async def test_a_song_the_chat_turns_away_counts_and_its_cost_is_kept(
    rig: Rig, where: str, code: str
) -> None:
    """WaveSpeed made (and billed) the song, then the chat refused it for good. That isn't
    the bot's or WaveSpeed's failure: no upload is tried again, the song counts against its
    asker's quota (or it could be asked for again and again for free) and its cost stays
    on the month's bill."""
    private = rig.tg.private_chat(rig.alice)
    chat, elsewhere = (private, rig.group) if where == "private" else (rig.group, private)
    rig.ws.runtime = 25.0  # a second: time to walk away
    status = await rig.reply_to(await rig.say(SONG, chat=chat), chat=chat)
    rig.tg.set_blocked(chat)
    [asked] = await rig.core.store.list_jobs(limit=1)
    job = await wait_for_job(rig.core, asked.id, {JobState.FAILED, JobState.DELIVERED}, WAIT)
    assert (job.state, job.error_code) == (JobState.FAILED, code)
    assert [m for m in rig.tg.chat_log(chat) if m.audio is not None] == []
    assert len(rig.tg.calls_to("sendAudio")) == 1
    assert job.cost_usd == pytest.approx(SECONDS * 0.0003)
    quota = await rig.reply_to(await rig.say("/quota", chat=elsewhere), chat=elsewhere)
    assert CHARGED in (quota.text or "")
    assert status.text is not None and not status.text.startswith("✅")


async def test_flood_waits_on_every_kind_of_message_are_waited_out(rig: Rig) -> None:
    for method in ("sendMessage", "editMessageText", "sendAudio"):
        rig.tg.faults.add(method, status=429, retry_after=1)
    status = await ask_for_a_song(rig)
    await assert_delivered_once(rig, status)  # one reply, one track: nothing sent twice
    refused = sorted(e.method for e in rig.tg.flood_errors)
    # A quick song's card may never be edited (it shows each text a while, then goes).
    assert refused in (
        ["editMessageText", "sendAudio", "sendMessage"],
        ["sendAudio", "sendMessage"],
    )


async def test_telegram_5xx_on_an_upload_is_retried_without_a_second_track(rig: Rig) -> None:
    rig.tg.faults.add("sendAudio", status=502)  # nginx's page, the upload never reached the chat
    rig.tg.faults.add("sendAudio", status=500)
    status = await ask_for_a_song(rig)
    await assert_delivered_once(rig, status)
    assert len(rig.tg.calls_to("sendAudio")) == 3


async def test_an_upload_whose_answer_is_lost_is_posted_again(rig: Rig) -> None:
    """The one duplicate AceJam allows (README, Guarantees): Telegram posted the track but
    its answer was lost (a 5xx or a timeout after processing). The Bot API has no idempotency
    key and no way to list a chat's messages, so the bot cannot tell this from an upload that
    never arrived; it sends again rather than risk the user never getting the song."""
    rig.tg.faults.add("sendAudio", status=502, processed=True)
    await ask_for_a_song(rig)
    first, second = tracks(rig)
    [asked] = await rig.core.store.list_jobs(limit=1)
    job = await wait_for_job(rig.core, asked.id, {JobState.DELIVERED})
    assert job.delivered_message_id == str(second.message_id)
    assert first.audio is not None and second.audio is not None
    assert first.audio.data == second.audio.data
    assert CHARGED in await quota_line(rig)  # charged once
