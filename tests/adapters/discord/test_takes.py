"""Several takes of one song arrive together on Discord: one message with a file per take
(named with its take and seed), a card listing the seeds, ▶ Keep per take above 🎲 / 🔁; and
takes too big together for one message are fitted to a share of it each. The real discord.py
client posts them to the loopback Discord."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from adapters.discord.client import Tuning
from adapters.discord.delivery import DiscordDelivery
from adapters.discord.posting import CAN_POST, REQUEST_OVERHEAD
from bot.app import open_core
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
from tests.adapters.discord.conftest import (
    ALICE,
    BOB,
    CHANNEL,
    FAST,
    GUILD,
    World,
    bot_on,
    field_value,
    jam,
    track_messages,
)
from tests.fakes.audio import make_audio, probe_audio
from tests.harness import wait_for_job

SEEDS = (101, 202, 303)


def job_with_takes(folder: Path, seeds: tuple[int, ...], seconds: float = 4.0) -> Job:
    """A finished job whose takes are on disk, as the worker hands it to the delivery."""
    takes = []
    for number, seed in enumerate(seeds, start=1):
        path = folder / f"job-7-take-{number}.wav"
        path.write_bytes(make_audio(seconds, "wav"))
        takes.append(Take(number, TakeState.READY, seed, str(path), "wav", seconds))
    now = utcnow()
    return Job(
        id=JobId(7),
        user_id=UserId(1),
        request=GenerationRequest("lo-fi, rainy piano", "", round(seconds), takes=len(seeds)),
        destination=Destination(
            "discord",
            str(CHANNEL),
            str(ALICE),
            {CAN_POST: True, "guild_name": "Jam Club"},
            scope_id=str(GUILD),
        ),
        state=JobState.SUCCEEDED,
        backend="wavespeed",
        created_at=now,
        updated_at=now,
        seed_used=seeds[0],
        takes=tuple(takes),
    )


async def deliver(world: World, job: Job, tuning: Tuning = FAST) -> str:
    async with open_core(world.settings) as core, bot_on(core, world, tuning=tuning):
        delivery = core.service.notifier.delivery_for("discord")
        assert isinstance(delivery, DiscordDelivery)
        receipt = await delivery.deliver(job, tracks_of(job))
    return receipt.message_id


async def test_three_takes_arrive_as_one_message_with_a_file_each(
    world: World, tmp_path: Path
) -> None:
    job = job_with_takes(tmp_path, SEEDS)

    receipt = await deliver(world, job)

    (track,) = track_messages(world.dc)
    assert receipt == str(track.id)
    names = [a.filename for a in track.attachments]
    assert names == ["take-1-seed-101.mp3", "take-2-seed-202.mp3", "take-3-seed-303.mp3"]
    assert all(abs(probe_audio(a.data)[0] - 4) <= 0.1 for a in track.attachments)
    takes = field_value(track, "Takes")
    assert all(f"Take {n}: seed {s}" in takes for n, s in zip((1, 2, 3), SEEDS, strict=True))
    labels = [b.label for b in track.buttons]
    assert labels[:3] == ["Keep 1", "Keep 2", "Keep 3"]
    assert labels[3:5] == ["New take", "Same seed"]
    assert track.pings.users == {ALICE}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".discord")] == []


async def test_takes_too_big_for_one_message_are_fitted_to_a_share_each(
    world: World, tmp_path: Path
) -> None:
    # Discord's numbers shrunk (a file 600 kB, a message 900 kB) so no megabytes move: each
    # 8 s take fits a file as an MP3 at its best, three together do not fit the message.
    request_limit = 900_000
    world.dc.set_filesize_limit(GUILD, 600_000)
    world.dc.max_request_bytes = request_limit
    job = job_with_takes(tmp_path, SEEDS, seconds=8.0)
    job.destination.context["filesize_limit"] = 600_000  # as the interaction told it

    await deliver(world, job, replace(FAST, request_limit=request_limit))

    (track,) = track_messages(world.dc)
    sizes = [a.size for a in track.attachments]
    assert len(sizes) == 3 and sum(sizes) <= request_limit - REQUEST_OVERHEAD
    assert all(abs(probe_audio(a.data)[0] - 8) <= 0.1 for a in track.attachments)  # whole
    posts = world.dc.requests_to("POST /channels/{channel_id}/messages")
    assert [p.status for p in posts] == [200]  # fitted before the post, not after a refusal


async def test_a_one_take_job_is_one_file_as_before(world: World, tmp_path: Path) -> None:
    job = job_with_takes(tmp_path, (101,))
    one = GenerationRequest("lo-fi, rainy piano", "", 4, 101)
    job = replace(job, request=one, takes=(), audio_path=job.takes[0].audio_path)

    await deliver(world, job)

    (track,) = track_messages(world.dc)
    assert len([a for a in track.attachments if a.filename.endswith(".mp3")]) == 1
    assert not any((b.label or "").startswith("Keep") for b in track.buttons)
    assert field_value(track, "Seed") == "101"


async def test_keep_two_after_a_restart_is_recorded_shown_and_what_the_dice_start_from(
    world: World,
) -> None:
    dc = world.dc
    async with jam(world) as run:
        await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "song", {"tags": "lo-fi", "duration": 5, "takes": 3}
        )
        track = await dc.wait_for_attachment(CHANNEL, lambda m: len(m.attachments) == 3, timeout=30)
        job = await wait_for_job(run.core, 1, {JobState.DELIVERED})
    names = [a.filename for a in track.attachments]
    assert names == [f"take-{t.number}-seed-{t.seed}.mp3" for t in job.takes]
    # A new process: ▶ Keep is known only through the registered dynamic items.
    async with jam(world) as run:
        press = await dc.click_button(track.id, "acejam:keep:1:2", ALICE)

        told = await press.wait_for_followup(timeout=20)
        assert told.ephemeral and "take 2" in told.content
        shown = await dc.wait_for_message(
            CHANNEL, lambda m: m.id == track.id and m.button("acejam:keep:1:2").label == "Kept 2"
        )
        kept = [b.label for b in shown.buttons if (b.custom_id or "").startswith("acejam:keep")]
        assert kept == ["Keep 1", "Kept 2", "Keep 3"]
        stored = await run.core.store.get(1)
        assert stored is not None and stored.kept_take == 2
        assert stored.seed_used == job.takes[1].seed

        # A double tap changes nothing; someone else may not choose for Alice.
        again = await dc.click_button(track.id, "acejam:keep:1:2", ALICE)
        assert (await again.wait_for_original()).content == ALREADY_PRESSED
        bobs = await dc.click_button(track.id, "acejam:keep:1:3", BOB)
        assert "someone else's song" in (await bobs.wait_for_followup()).content
        assert (await run.core.store.get(1)).kept_take == 2  # type: ignore[union-attr]

        # 🔁 after Keep 2 makes take 2 again: its seed.
        same = await dc.click_button(track.id, "acejam:same:1", ALICE)
        await same.wait_for_response()
        again_two = await wait_for_job(run.core, 2, set(JobState))
        assert again_two.parent_id == 1 and again_two.request.seed == job.takes[1].seed
        after = dc.message(track.id)
        assert [b.label for b in after.buttons][:3] == ["Keep 1", "Kept 2", "Keep 3"]
