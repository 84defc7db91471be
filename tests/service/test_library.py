"""A user's finished songs through the service: pages of /history, /show posting one again
(and changing nothing), and variations made from a parent song."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bot.app import Core
from bot.clock import utcnow
from bot.domain import Destination, Job, JobState, Take, TakeState
from bot.ports import DeliveryReceipt, TrackFile
from bot.service import Accepted, Done, Refused, Requester
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import WAVESPEED_KEY, RecordingDelivery, wait_for_job, wavespeed_settings
from tests.kit.audit import audit
from tests.kit.memory_core import Running

ALICE = Requester("telegram", "111", "alice")
BOB = Requester("telegram", "222", "bob")
GROUP = "-100"


class Chat(RecordingDelivery):
    """Keeps the job each post was made for: where it went and what its card says."""

    def __init__(self) -> None:
        super().__init__("telegram")
        self.posted: list[Job] = []

    async def deliver(self, job: Job, tracks: Sequence[TrackFile]) -> DeliveryReceipt:
        self.posted.append(job)
        return await super().deliver(job, tracks)


def _dest(requester: Requester, chat: str = GROUP, **context: object) -> Destination:
    return Destination("telegram", chat, requester.user_id, context=dict(context))


async def _song(core: Core, requester: Requester = ALICE, chat: str = GROUP, **fields: str) -> Job:
    request = core.service.validate(
        **{"tags": "lo-fi", "duration": "10", **fields}  # type: ignore[arg-type]
    )
    outcome = await core.service.submit(requester, _dest(requester, chat), request)
    assert isinstance(outcome, Accepted), outcome
    return await wait_for_job(core, outcome.job.id, {JobState.DELIVERED})


async def test_history_pages_through_every_finished_song_newest_first(
    tmp_path: Path, running: Running
) -> None:
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        fake.output_format = "wav"
        async with running(wavespeed_settings(tmp_path, fake.base_url), [Chat()]) as core:
            songs = [await _song(core, tags=f"song {n}") for n in range(5)]
            await _song(core, BOB)
            first = await core.service.history(ALICE, page=1, page_size=2)
            last = await core.service.history(ALICE, page=3, page_size=2)
            beyond = await core.service.history(ALICE, page=40, page_size=2)
            stranger = await core.service.history(Requester("telegram", "999"))
    assert [j.id for j in first.jobs] == [songs[4].id, songs[3].id]
    assert (first.page, first.pages, first.total) == (1, 3, 5)
    assert first.has_next and not first.has_previous
    assert [j.id for j in last.jobs] == [songs[0].id] and not last.has_next
    assert beyond.page == 3 and [j.id for j in beyond.jobs] == [songs[0].id]
    assert stranger.jobs == [] and (stranger.page, stranger.pages, stranger.total) == (1, 1, 0)


async def test_show_posts_a_song_again_and_changes_nothing(
    tmp_path: Path, running: Running
) -> None:
    chat = Chat()
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        fake.output_format = "wav"
        async with running(wavespeed_settings(tmp_path, fake.base_url), [chat]) as core:
            song = await _song(core)
            used = (await core.service.quota(ALICE)).used_seconds
            events = await audit(core).events(song.id)
            shown = await core.service.show(
                song.id, ALICE, _dest(ALICE, "555", request_message_id=9, status_message_id=None)
            )
            after = await core.store.get(song.id)
            assert (await core.service.quota(ALICE)).used_seconds == used
            assert await audit(core).events(song.id) == events  # no state change, no ledger row
    assert isinstance(shown, Done) and shown.job.id == song.id
    assert after == song
    again = chat.posted[-1]
    assert len(chat.posted) == 2 and again.id == song.id
    assert again.destination.chat_id == "555"  # posted where it was asked for
    assert again.destination.context["request_message_id"] == 9
    assert again.destination.context["status_message_id"] is None  # the old card stays
    assert again.destination.user_id == ALICE.user_id  # still Alice's song
    assert chat.delivered[-1] == (song.id, Path(song.audio_path or ""))


async def test_others_see_a_song_only_in_its_chat_and_only_when_it_lets_them(
    tmp_path: Path, running: Running
) -> None:
    chat = Chat()
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        fake.output_format = "wav"
        async with running(wavespeed_settings(tmp_path, fake.base_url), [chat]) as core:
            song = await _song(core)
            hidden = await core.service.show(song.id, BOB, _dest(BOB))
            unknown = await core.service.show(10_000, BOB, _dest(BOB))
            await core.service.admin.update_chat_rules("telegram", GROUP, others_may_press=True)
            here = await core.service.show(song.id, BOB, _dest(BOB))
            elsewhere = await core.service.show(song.id, BOB, _dest(BOB, "777"))
            discord = await core.service.show(song.id, Requester("discord", "111"), _dest(ALICE))
    # Not someone else's and not there read the same: trying ids reveals nothing.
    assert hidden == Refused(f"I can't find song #{song.id} — /history lists yours.", "not_found")
    assert unknown == Refused("I can't find song #10000 — /history lists yours.", "not_found")
    assert isinstance(here, Done)
    assert isinstance(elsewhere, Refused) and elsewhere.code == "not_found"
    assert isinstance(discord, Refused) and discord.code == "not_found"
    assert [j.destination.chat_id for j in chat.posted] == [GROUP, GROUP]


async def test_show_says_when_the_audio_is_gone_or_the_song_unfinished(
    tmp_path: Path, running: Running
) -> None:
    chat = Chat()
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        fake.output_format = "wav"
        async with running(wavespeed_settings(tmp_path, fake.base_url), [chat]) as core:
            song = await _song(core)
            Path(song.audio_path or "").unlink()  # what the retention sweep does
            swept = await core.service.show(song.id, ALICE, _dest(ALICE))
            fake.faults.add_job(hang=True)
            request = core.service.validate(tags="slow", duration=10)
            busy = await core.service.submit(ALICE, _dest(ALICE), request)
            assert isinstance(busy, Accepted)
            pending = await core.service.show(busy.job.id, ALICE, _dest(ALICE))
            await core.service.cancel(busy.job.id, ALICE)
            cancelled = await core.service.show(busy.job.id, ALICE, _dest(ALICE))
    assert isinstance(swept, Refused) and swept.code == "swept"
    assert "isn't kept any more" in swept.message and "same seed" in swept.message
    assert pending == Refused(
        f"Song #{busy.job.id} isn't finished yet; it will be posted when it is.", "in_progress"
    )
    assert isinstance(cancelled, Refused) and "was cancelled" in cancelled.message
    assert len(chat.posted) == 1  # only the first delivery


async def test_a_variation_keeps_what_it_does_not_change_and_names_its_parent(
    tmp_path: Path, running: Running
) -> None:
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        fake.output_format = "wav"
        settings = wavespeed_settings(tmp_path, fake.base_url, quota_seconds_per_day=40)
        async with running(settings, [Chat()]) as core:
            parent = await _song(
                core, lyrics="[Verse]\nRain on the window", seed="42", bpm="90", key="F# minor"
            )
            outcome = await core.service.variation(
                parent.id, ALICE, _dest(ALICE), {"tags": "jazz", "lyrics": "  "}
            )
            assert isinstance(outcome, Accepted)
            child = await wait_for_job(core, outcome.job.id, {JobState.DELIVERED})
            bobs = await core.service.variation(parent.id, BOB, _dest(BOB), {})
            too_long = await core.service.variation(
                parent.id, ALICE, _dest(ALICE), {"duration": "30"}
            )
            bad = await core.service.variation(parent.id, ALICE, _dest(ALICE), {"bpm": "9"})
            gone = await core.service.variation(10_000, ALICE, _dest(ALICE), {})
    assert child.parent_id == parent.id
    assert child.request.tags == "jazz"
    assert child.request.lyrics == parent.request.lyrics  # blank is not given
    assert (child.request.duration, child.request.seed) == (10, 42)
    assert child.request.controls == parent.request.controls
    assert child.request.takes == 1
    assert isinstance(bobs, Refused) and bobs.code == "forbidden"
    assert isinstance(too_long, Refused) and too_long.code == "quota"  # the same rules
    assert isinstance(bad, Refused) and "30 to 300" in bad.message
    assert isinstance(gone, Refused) and gone.code == "not_found"


async def test_a_variation_of_a_song_with_several_takes_starts_from_the_kept_one(
    tmp_path: Path, running: Running
) -> None:
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        fake.output_format = "wav"
        async with running(wavespeed_settings(tmp_path, fake.base_url), [Chat()]) as core:
            parent = await _song(core, seed="42")
            takes = tuple(
                Take(n, TakeState.READY, seed=seed, audio_path=parent.audio_path)
                for n, seed in ((1, 42), (2, 4242))
            )
            await core.store.update_fields(
                parent.id, {JobState.DELIVERED}, now=utcnow(), takes=takes, kept_take=2
            )
            outcome = await core.service.variation(parent.id, ALICE, _dest(ALICE), {})
            assert isinstance(outcome, Accepted)
    assert outcome.job.request.seed == 4242 and outcome.job.parent_id == parent.id
