"""Delivery within and past the 15-minute token window, never twice, across restarts, and
within the upload limit."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from adapters.discord.client import Tuning
from bot.app import Core, open_core
from bot.clock import utcnow
from bot.delivery import tracks_of
from bot.domain import JobState
from bot.ports import EventKind, JobEvent
from tests.adapters.discord.conftest import (
    ALICE,
    APP_ID,
    CHANNEL,
    FAST,
    GUILD,
    ManualClock,
    Running,
    World,
    bot_on,
    field_value,
    jam,
    mp3_of,
    no_token_expired,
    removed_via,
    status_text,
    track_messages,
)
from tests.fakes.audio import probe_audio
from tests.fakes.discord import (
    DEFAULT_RATE_LIMITS,
    FakeDiscord,
    FakeInteraction,
    Perm,
    RecordedMessage,
    RecordedRequest,
)
from tests.harness import running_core, wait_for_job

QUIET = 1_190_000_000_000_000_102  # a channel where the bot may read but not write
CHANNEL_POSTS = "POST /channels/{channel_id}/messages"


async def test_within_the_token_window_the_song_is_a_channel_reply_to_its_status(
    world: World,
) -> None:
    dc = world.dc
    async with jam(world) as run:
        inter = await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "song", {"tags": "funk", "duration": 5}
        )
        track = await dc.wait_for_attachment(CHANNEL, timeout=20)
        status = await inter.wait_for_original(lambda m: m.deleted)
        job = await wait_for_job(run.core, 1, {JobState.DELIVERED})
    # The token was alive throughout, yet the track is the bot's own post: only that carries
    # a nonce. The status card still went through the token, and went once the track was in.
    assert track.via == "channel" and track.nonce == "acejam-1"
    assert track.pings.users == {ALICE} and not track.pings.everyone and not track.pings.roles
    assert abs(probe_audio(mp3_of(track).data)[0] - 5) <= 0.1
    assert [b.emoji for b in track.buttons] == ["🎲", "🔁", "✏️", "➕"]  # ➕: WaveSpeed extends
    assert all(e.via == "interaction" for e in status.edits)
    assert removed_via(dc, status) == ["token"]
    assert all(not m.attachments for m in inter.followups)
    assert track_messages(dc) == [track] and job.delivered_message_id == str(track.id)
    assert no_token_expired(dc)


async def test_a_post_discord_made_but_never_confirmed_is_not_made_twice(world: World) -> None:
    dc = world.dc
    # Discord makes the track's post, then its answer is lost (as when the bot dies in that
    # instant): the bot can't know, and posts again. Both ways of posting are covered, so this
    # holds whichever the bot picks.
    lost = [
        dc.faults.add(CHANNEL_POSTS, processed=True, drop=True),
        dc.faults.add("POST /webhooks/{application_id}/{token}", processed=True, drop=True),
    ]
    async with jam(world) as run:
        inter = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": "ska", "duration": 5})
        job = await wait_for_job(run.core, 1, {JobState.DELIVERED}, timeout=30)
        status = await inter.wait_for_original(lambda m: m.deleted)
        # Once more, as a restarted bot would if its record of the post were lost too.
        dc.faults.clear()  # the way not taken keeps its fault: Discord answers from now on
        delivery = run.core.service.notifier.delivery_for("discord")
        assert delivery is not None
        receipt = await delivery.deliver(job, tracks_of(job))
    assert sum(f.hits for f in lost) == 1
    tracks = track_messages(dc)
    assert len(tracks) == 1, [m.summary() for m in tracks]
    track = tracks[0]
    posts = dc.requests_to(CHANNEL_POSTS)
    assert len(posts) == 3  # each one reached Discord; its nonce made it keep the first
    assert all(p.json is not None and p.json["nonce"] == "acejam-1" for p in posts)
    assert job.delivered_message_id == str(track.id) == receipt.message_id
    assert removed_via(dc, status) == ["token"]  # the repeat found it gone, and said nothing


async def test_where_the_bot_may_not_post_the_song_is_a_follow_up(world: World) -> None:
    dc = world.dc
    dc.add_channel(GUILD, (QUIET, "listening"))
    dc.set_overwrite(QUIET, APP_ID, deny=Perm.SEND_MESSAGES)
    async with jam(world) as run:
        inter = await dc.invoke_slash(GUILD, QUIET, ALICE, "song", {"tags": "dub", "duration": 5})
        track = await dc.wait_for_attachment(QUIET, timeout=20)
        status = await inter.wait_for_original(lambda m: m.deleted)
        job = await wait_for_job(run.core, 1, {JobState.DELIVERED})
    assert dc.requests_to(CHANNEL_POSTS) == []  # not even tried
    assert track.via == "followup" and track.interaction_id == inter.id
    assert abs(probe_audio(mp3_of(track).data)[0] - 5) <= 0.1
    assert track.pings.users == {ALICE}  # a follow-up notifies the requester too
    assert removed_via(dc, status) == ["token"]
    assert track_messages(dc, QUIET) == [track] and job.delivered_message_id == str(track.id)


async def test_permissions_lost_after_the_request_fall_back_to_a_follow_up(world: World) -> None:
    dc = world.dc
    async with jam(world) as run:
        inter = await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "song", {"tags": "jazz", "duration": 5}
        )
        # Taken away once Discord has sent the request (which says the bot may post).
        dc.set_overwrite(CHANNEL, APP_ID, deny=Perm.ATTACH_FILES)
        track = await dc.wait_for_attachment(CHANNEL, timeout=20)
        status = await inter.wait_for_original(lambda m: m.deleted)
        job = await wait_for_job(run.core, 1, {JobState.DELIVERED})
    assert [r.status for r in dc.requests_to(CHANNEL_POSTS)] == [403]
    assert track.via == "followup" and track.interaction_id == inter.id
    assert removed_via(dc, status) == ["token"]
    assert track_messages(dc) == [track] and job.delivered_message_id == str(track.id)


@pytest.mark.parametrize("closed", ["no longer allowed to post", "deleted"])
async def test_a_channel_closed_to_the_bot_once_the_token_is_dead_fails_the_song_at_once(
    world: World, closed: str
) -> None:
    dc = world.dc
    async with a_song_on_our_clock(world, "drone") as (run, inter, clock):
        await inter.wait_for_original(lambda m: "Making your song" in status_text(m))
        await token_dies(dc, clock)
        if closed == "deleted":
            dc.delete_channel(CHANNEL)
        else:
            dc.set_overwrite(CHANNEL, APP_ID, deny=Perm.SEND_MESSAGES)
        job = await wait_for_job(run.core, 1, {JobState.FAILED}, timeout=20)
    # Like a Telegram chat that removed the bot: no retry gets through, so one try, and the
    # song counts as made (the chat turned it away), not as the bot's failure.
    assert job.error_code == "chat_gone"
    track_posts = [r for r in dc.requests_to(CHANNEL_POSTS) if r.files]
    assert [r.status for r in track_posts] == [404 if closed == "deleted" else 403]
    assert track_messages(dc) == []
    assert no_token_expired(dc)


async def test_past_the_token_window_the_song_arrives_as_a_channel_reply(world: World) -> None:
    dc = world.dc
    async with a_song_on_our_clock(world, "ambient") as (run, inter, clock):
        # Running, and nothing more to show until it's done: no edit is in flight.
        status = await inter.wait_for_original(lambda m: "Making your song" in status_text(m))
        within = len(status.edits)
        await token_dies(dc, clock)

        track = await dc.wait_for_attachment(CHANNEL, timeout=20)
        await inter.wait_for_original(lambda m: m.deleted)
        job = await wait_for_job(run.core, 1, {JobState.DELIVERED})

        # A retried post (say the bot died before recording it) comes back as the same message.
        delivery = run.core.service.notifier.delivery_for("discord")
        assert delivery is not None
        receipt = await delivery.deliver(job, tracks_of(job))
    assert no_token_expired(dc)  # no request was ever made with the expired token
    assert track.via == "channel" and track.nonce == "acejam-1"
    assert track.content == f"<@{ALICE}> your song is ready."
    assert track.pings.users == {ALICE} and not track.pings.everyone and not track.pings.roles
    assert field_value(track, "Requested by") == f"<@{ALICE}>"
    assert [b.emoji for b in track.buttons] == ["🎲", "🔁", "✏️", "➕"]  # ➕: WaveSpeed extends
    assert abs(probe_audio(mp3_of(track).data)[0] - 5) <= 0.1
    assert all(e.via == "interaction" for e in status.edits[:within])  # through the token
    assert all(e.via == "channel" for e in status.edits[within:])  # then with the bot's own
    assert removed_via(dc, status) == ["bot"]
    assert receipt.message_id == str(track.id) and track_messages(dc) == [track]


async def test_a_song_finished_while_the_bot_was_down_is_delivered_once(world: World) -> None:
    dc = world.dc
    world.ws.runtime = 50  # two seconds: it must not finish before the bot is down
    async with jam(world) as run:
        inter = await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "song", {"tags": "lullaby", "duration": 5}
        )
        status = await inter.wait_for_original(lambda m: m.embeds)
        await wait_for_job(run.core, 1, {JobState.SUBMITTED, JobState.RUNNING})
    # The song finishes while only the worker runs: nothing can post it.
    async with running_core(world.settings) as core:
        await wait_for_job(core, 1, {JobState.SUCCEEDED}, timeout=20)
    assert track_messages(dc) == []
    # Back up: the core hands the finished job over; no token, so through the channel.
    async with jam(world) as run:
        track = await dc.wait_for_attachment(CHANNEL, timeout=20)
        job = await wait_for_job(run.core, 1, {JobState.DELIVERED})
        await inter.wait_for_original(lambda m: m.deleted)
    assert track_messages(dc) == [track]
    assert track.via == "channel" and job.delivered_message_id == str(track.id)
    assert removed_via(dc, status) == ["bot"]  # found again through the job
    assert "Jam Club" in _id3_album(mp3_of(track).data)  # the guild name, kept in the job
    assert no_token_expired(dc)


@contextlib.asynccontextmanager
async def a_song_on_our_clock(
    world: World, tags: str
) -> AsyncIterator[tuple[Running, FakeInteraction, ManualClock]]:
    """The bot on a clock the test moves, and a 5 s song asked for that takes under two
    seconds: time to let the interaction's token expire meanwhile (:func:`token_dies`)."""
    clock = ManualClock()
    world.ws.runtime = 40
    async with jam(world, tuning=replace(FAST, clock=clock)) as run:
        inter = await world.dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "song", {"tags": tags, "duration": 5}
        )
        yield run, inter, clock


async def token_dies(dc: FakeDiscord, clock: ManualClock) -> None:
    """15 minutes on, by our clock and Discord's: the interaction's token is dead."""
    clock.advance(15 * 60)
    await dc.advance_time(15 * 60 + 1)


def _id3_album(data: bytes) -> str:
    import io

    from mutagen.id3 import ID3

    return str(ID3(io.BytesIO(data)).get("TALB", ""))


@pytest.mark.parametrize(
    ("output_format", "limit", "preview"),
    [("wav", 600_000, False), ("mp3", 200_000, True)],
    ids=["re-encoded", "preview"],
)
async def test_a_track_over_the_upload_limit_is_fitted(
    world: World, output_format: str, limit: int, preview: bool
) -> None:
    dc = world.dc
    world.ws.output_format = output_format
    dc.set_filesize_limit(GUILD, limit)
    async with jam(world):
        await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": "epic", "duration": 30})
        track = await dc.wait_for_attachment(CHANNEL, timeout=30)
    mp3 = mp3_of(track)
    duration = probe_audio(mp3.data)[0]
    assert mp3.size <= limit and all(a.size <= limit for a in track.attachments)
    description = track.embeds[0]["description"]
    if preview:
        assert 10 <= duration < 29
        assert track.embeds[0]["title"].endswith("(preview)")
        assert "Preview: the first" in description and "0.2 MB" in description
        assert "preview of 30 s" in field_value(track, "Duration")
    else:
        assert abs(duration - 30) <= 0.1
        assert "Preview" not in description


async def test_progress_edits_are_coalesced_within_discords_rate_limits(world: World) -> None:
    dc = world.dc
    dc.rate_limits = dict(DEFAULT_RATE_LIMITS)  # Discord's own buckets this time
    world.ws.faults.add_job(hang=True)
    async with jam(world, tuning=replace(FAST, edit_interval=0.5)) as run:
        inter = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": "idm", "duration": 5})
        await inter.wait_for_original(lambda m: "Making your song" in status_text(m))
        job = await wait_for_job(run.core, 1, {JobState.RUNNING})
        delivery = run.core.service.notifier.delivery_for("discord")
        assert delivery is not None
        edits_before = len(dc.message(inter.original_id or 0).edits)
        # A chatty backend: 20 progress reports in a burst, as the core would pass them on.
        for step in range(1, 21):
            await delivery.on_event(JobEvent(EventKind.PROGRESS, job, progress=step / 20))
        status = await inter.wait_for_original(lambda m: "100%" in status_text(m))
    progress_edits = len(status.edits) - edits_before
    assert 1 <= progress_edits <= 3  # the first report, then only the newest one
    assert dc.invalid_request_count == 0  # never a 429


def token_refusals(dc: FakeDiscord, inter: FakeInteraction) -> list[int]:
    """Requests made with ``inter``'s token that Discord refused as a dead token."""
    return [
        r.status
        for r in dc.requests
        if r.path.startswith("/webhooks/")
        and inter.token in r.path
        and (r.status, _code(r)) in ((401, 50027), (404, 10015))
    ]


def shows(text: str) -> Callable[[RecordedMessage], bool]:
    return lambda message: text in status_text(message)


def _code(request: RecordedRequest) -> int | None:
    body = request.response
    return body.get("code") if isinstance(body, dict) else None


async def test_a_token_discord_refuses_is_never_used_again(world: World) -> None:
    dc = world.dc
    world.ws.runtime = 40  # under two seconds: time to let the token die meanwhile
    # Our clock stands still, so by our reckoning the token still lives: Discord alone knows.
    async with jam(world, tuning=replace(FAST, clock=ManualClock())) as run:
        inter = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": "dub", "duration": 5})
        status = await inter.wait_for_original(lambda m: "Making your song" in status_text(m))
        within = len(status.edits)
        await dc.advance_time(15 * 60 + 1)

        track = await dc.wait_for_attachment(CHANNEL, timeout=20)
        await inter.wait_for_original(lambda m: m.deleted)
        job = await wait_for_job(run.core, 1, {JobState.DELIVERED})
    # One refusal, then the bot's own token: every later request still reached the message.
    assert token_refusals(dc, inter) == [401]
    assert all(e.via == "channel" for e in status.edits[within:])
    assert removed_via(dc, status) == ["bot"]
    assert track_messages(dc) == [track] and job.delivered_message_id == str(track.id)


async def test_an_unknown_webhook_answer_retires_the_token_too(world: World) -> None:
    dc = world.dc
    world.ws.faults.add_job(hang=True)
    dc.faults.add(
        "PATCH /webhooks/{application_id}/*",
        status=404,
        body={"message": "Unknown Webhook", "code": 10015},
        times=None,
    )
    async with jam(world) as run:
        inter = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": "idm", "duration": 5})
        job = await wait_for_job(run.core, 1, {JobState.RUNNING})
        delivery = run.core.service.notifier.delivery_for("discord")
        assert delivery is not None
        for step in range(1, 6):  # news keeps coming; each would be an edit
            await delivery.on_event(JobEvent(EventKind.PROGRESS, job, progress=step / 5))
            await inter.wait_for_original(shows(f"{step * 20}%"))
    assert token_refusals(dc, inter) == [404]  # the message itself was there all along
    status = dc.message(inter.original_id or 0)
    assert "100%" in status_text(status) and status.edits[-1].via == "channel"


async def test_a_track_whose_follow_up_is_refused_goes_as_the_bots_own_post(world: World) -> None:
    dc = world.dc
    dc.add_channel(GUILD, (QUIET, "listening"))
    dc.set_overwrite(QUIET, APP_ID, deny=Perm.SEND_MESSAGES)
    world.ws.runtime = 40  # under two seconds: time to let the token die meanwhile
    async with jam(world, tuning=replace(FAST, clock=ManualClock())) as run:
        inter = await dc.invoke_slash(GUILD, QUIET, ALICE, "song", {"tags": "dub", "duration": 5})
        await inter.wait_for_original(lambda m: "Making your song" in status_text(m))
        # The bot may post here after all, and the token dies before the song is done.
        dc.set_overwrite(QUIET, APP_ID)
        await dc.advance_time(15 * 60 + 1)
        track = await dc.wait_for_attachment(QUIET, timeout=20)
        job = await wait_for_job(run.core, 1, {JobState.DELIVERED})
    assert token_refusals(dc, inter) == [401]  # once, for the status edit or the track
    assert track.via == "channel" and track.nonce == "acejam-1"
    assert track_messages(dc, QUIET) == [track] and job.delivered_message_id == str(track.id)


def _card(message: RecordedMessage) -> str:
    return str(message.embeds[0].get("description", "")) if message.embeds else ""


@contextlib.asynccontextmanager
async def news_from_the_test(world: World, tuning: Tuning) -> AsyncIterator[tuple[Core, Any]]:
    """The bot on a core whose worker doesn't run: the songs stay queued, and the only news
    about them is what the test hands the delivery (as the worker would)."""
    async with open_core(world.settings) as core, bot_on(core, world, tuning=tuning):
        delivery = core.service.notifier.delivery_for("discord")
        assert delivery is not None
        yield core, delivery


async def test_an_expected_time_is_shown_and_reworded_before_it_runs_out(world: World) -> None:
    dc = world.dc
    async with news_from_the_test(world, replace(FAST, reword_before=2.5)) as (core, delivery):
        first = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": "a", "duration": 5})
        second = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": "b", "duration": 5})
        for song in (first, second):
            await song.wait_for_original(lambda m: "Queued" in status_text(m))
        running, queued = await core.service.get_job(1), await core.service.get_job(2)
        assert running is not None and queued is not None
        soon, later = utcnow() + timedelta(seconds=5), utcnow() + timedelta(minutes=2)
        await delivery.on_event(JobEvent(EventKind.PROGRESS, running, progress=0.4, eta=soon))
        await delivery.on_event(JobEvent(EventKind.QUEUED, queued, position=1, eta=later))
        wait = await second.wait_for_original(
            lambda m: f"Ready <t:{int(later.timestamp())}:R>" in _card(m)
        )
        counting = await first.wait_for_original(
            lambda m: f"Ready <t:{int(soon.timestamp())}:R>" in _card(m)
        )
        reworded = await first.wait_for_original(lambda m: "Ready any moment now" in _card(m))
        # Discord shows the timestamp to the second: it would read "ago" from here on.
        assert utcnow().timestamp() < int(soon.timestamp())
    assert status_text(counting) == "🎛️ **Making your song — 40%.**"
    assert "<t:" not in _card(reworded) and "40%" in _card(reworded)
    assert "Queued — position 1 (next up)." in _card(wait)


async def test_a_quiet_chat_sees_one_message_per_song_and_no_edit_it_cannot_read(
    world: World,
) -> None:
    dc = world.dc
    world.ws.runtime = 15  # about half a second
    # Every state of this song stands less than `settle`: none is worth an edit.
    async with jam(world, tuning=replace(FAST, settle=30.0)):
        inter = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": "hum", "duration": 5})
        track = await dc.wait_for_attachment(CHANNEL, timeout=20)
        card = await inter.wait_for_original(lambda m: m.deleted)
    # "Thinking…", then the track in its place: no "Queued" overwritten within milliseconds,
    # no "Finished — sending it" nobody reads, no "Done" beside the track.
    assert card.edits == []
    assert dc.channel_messages(CHANNEL) == [track] and track.pings.users == {ALICE}


async def test_answers_to_commands_never_wait_behind_status_edits(world: World) -> None:
    dc = world.dc
    dc.rate_limits = dict(DEFAULT_RATE_LIMITS)  # 5 edits per 5 s in a channel, as Discord
    clock = ManualClock()
    settings = world.settings.model_copy(update={"max_active_jobs_per_user": 4})
    world = replace(world, settings=settings)
    async with news_from_the_test(world, replace(FAST, clock=clock)) as (core, delivery):
        songs = [
            await dc.invoke_slash(
                GUILD, CHANNEL, ALICE, "song", {"tags": f"loop {n}", "duration": 5}
            )
            for n in range(4)
        ]
        for song in songs:
            await song.wait_for_original(lambda m: "Queued" in status_text(m))
        jobs = [await core.service.get_job(n) for n in range(1, 5)]
        clock.advance(15 * 60)  # the tokens are spent: every card is edited in one channel bucket
        for step in (1, 2):  # eight edits: Discord lets five through, the rest wait their turn
            for job in jobs:
                assert job is not None
                await delivery.on_event(JobEvent(EventKind.PROGRESS, job, progress=step / 4))
            await songs[0].wait_for_original(shows(f"{step * 25}%"))
        quota = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "quota")
        answer = await quota.wait_for_original(lambda m: not m.loading, timeout=2)
        behind = [s for s in songs if s.original and "50%" not in status_text(s.original)]
        assert behind, "the cards' edits were not held back: nothing was tested"
    assert answer.ephemeral and "You have" in answer.content
