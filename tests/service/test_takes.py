"""#14's takes through the core on both backends: one job makes N takes and delivers them
together; ACE-Step makes them in one task (``batch_size``), WaveSpeed in one submit each with
its own seed; quota and cost count every take, a take that fails does so alone with its
share back; ▶ Keep chooses the take that 🎲 and 🔁 start from."""

from __future__ import annotations

from pathlib import Path

from bot.domain import Destination, Job, JobState, TakeState
from bot.service import Accepted, Done, Refused, Requester
from tests.fakes.acestep import FakeAceStep
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import (
    WAVESPEED_KEY,
    RecordingDelivery,
    acestep_settings,
    wait_for_job,
    wavespeed_settings,
)
from tests.kit.audit import audit
from tests.kit.memory_core import Running

ALICE = Requester("telegram", "111", "alice")
BOB = Requester("telegram", "222", "bob")
CHAT = Destination("telegram", "chat-1", "111")
FINAL = {JobState.DELIVERED, JobState.FAILED}


async def _song(core, requester: Requester = ALICE, **fields: str) -> Job:  # type: ignore[no-untyped-def]
    request = core.service.validate(**{"tags": "lo-fi", "duration": "10", **fields})
    outcome = await core.service.submit(requester, CHAT, request)
    assert isinstance(outcome, Accepted), outcome
    return await wait_for_job(core, outcome.job.id, FINAL)


async def test_three_takes_on_acestep_are_one_task_and_one_delivery(
    tmp_path: Path, running: Running
) -> None:
    chat = RecordingDelivery()
    async with FakeAceStep(time_scale=0.04) as fake:
        async with running(acestep_settings(tmp_path, fake.base_url), [chat]) as core:
            job = await _song(core, takes="3", seed="500")
            balance = await audit(core).ledger_balance(job.user_id)
    assert len(fake.submits) == 1 and fake.submits[0]["batch_size"] == 3
    assert job.state == JobState.DELIVERED
    assert [t.state for t in job.takes] == [TakeState.READY] * 3
    tracks = chat.tracks[job.id]
    assert [t.take for t in tracks] == [1, 2, 3] and len(chat.delivered) == 1
    assert len({t.path for t in tracks}) == 3 and all(t.path.exists() for t in tracks)
    assert [t.seed for t in tracks] == [t.seed for t in job.takes]
    assert job.audio_path == str(tracks[0].path) and job.seed_used == tracks[0].seed
    assert balance == {"reserve": 30, "commit": 30}


async def test_three_takes_on_wavespeed_are_three_submits_with_their_own_seeds(
    tmp_path: Path, running: Running
) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.output_format = "wav"
        settings = wavespeed_settings(tmp_path, fake.base_url, wavespeed_price_per_second=0.01)
        async with running(settings, [chat]) as core:
            job = await _song(core, takes="3", seed="41")
            random = await _song(core, takes="2")
            balance = await audit(core).ledger_balance(job.user_id)
    assert [s["seed"] for s in fake.submits[:3]] == [41, 42, 43]
    random_seeds = [s["seed"] for s in fake.submits[3:]]
    assert len(random_seeds) == 2 and len(set(random_seeds)) == 2 and -1 not in random_seeds
    assert job.state == random.state == JobState.DELIVERED
    assert [t.seed for t in chat.tracks[job.id]] == [41, 42, 43]
    assert [t.seed for t in chat.tracks[random.id]] == random_seeds
    assert len({t.remote_id for t in job.takes}) == 3
    assert job.cost_usd is not None and abs(job.cost_usd - 0.3) < 1e-9  # 3 takes x 10 s
    assert balance == {"reserve": 50, "commit": 50}


async def test_a_failed_take_fails_alone_with_its_share_of_quota_and_cost_back(
    tmp_path: Path, running: Running
) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.output_format = "wav"
        fake.faults.add_job(fail="boom")  # the first take made upstream fails there
        settings = wavespeed_settings(
            tmp_path, fake.base_url, wavespeed_price_per_second=0.01, quota_seconds_per_day=30
        )
        async with running(settings, [chat]) as core:
            refused = await core.service.submit(
                ALICE, CHAT, core.service.validate(tags="x", duration="11", takes="3")
            )
            assert isinstance(refused, Refused) and refused.code == "quota"  # 33 s > 30 s
            job = await _song(core, takes="3")
            usage = await core.service.quota(ALICE, CHAT.scope)
            balance = await audit(core).ledger_balance(job.user_id)
    assert job.state == JobState.DELIVERED
    assert [t.state for t in job.takes] == [TakeState.FAILED, TakeState.READY, TakeState.READY]
    assert [t.take for t in chat.tracks[job.id]] == [2, 3]
    assert job.audio_path == job.takes[1].audio_path  # the first take made is the job's track
    assert balance == {"reserve": 30, "commit": 20, "refund": 10}
    assert usage.used_seconds == 20
    assert job.cost_usd is not None and abs(job.cost_usd - 0.2) < 1e-9  # WaveSpeed refunds it


async def test_every_take_failed_fails_the_job_as_one_would(
    tmp_path: Path, running: Running
) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.faults.add_job(fail="boom", times=2)
        async with running(wavespeed_settings(tmp_path, fake.base_url), [chat]) as core:
            job = await _song(core, takes="2")
            balance = await audit(core).ledger_balance(job.user_id)
    assert job.state == JobState.FAILED and job.error_code == "upstream_failed"
    assert job.cost_usd == 0.0 and chat.delivered == []
    assert balance == {"reserve": 20, "refund": 20}


async def test_keeping_a_take_is_what_a_reroll_starts_from(
    tmp_path: Path, running: Running
) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.output_format = "wav"
        async with running(wavespeed_settings(tmp_path, fake.base_url), [chat]) as core:
            job = await _song(core, takes="3", seed="7")
            assert isinstance(await core.service.keep_take(job.id, 3, BOB), Refused)
            assert isinstance(await core.service.keep_take(job.id, 4, ALICE), Refused)
            kept = await core.service.keep_take(job.id, 3, ALICE)
            assert isinstance(kept, Done) and kept.job.kept_take == 3
            assert kept.job.seed_used == 9 and kept.job.audio_path == job.takes[2].audio_path
            again = await core.service.reroll(job.id, ALICE, same_seed=True)
            assert isinstance(again, Accepted)
            await wait_for_job(core, again.job.id, FINAL)
    assert again.job.request.seed == 9 and fake.submits[-1]["seed"] == 9


async def test_a_take_of_a_batch_that_cannot_be_fetched_fails_alone(
    tmp_path: Path, running: Running
) -> None:
    chat = RecordingDelivery()
    async with FakeAceStep(time_scale=0.04) as fake:
        fake.faults.add("download", malformed=True)  # the first take's file is no audio
        async with running(acestep_settings(tmp_path, fake.base_url), [chat]) as core:
            job = await _song(core, takes="3")
            balance = await audit(core).ledger_balance(job.user_id)
    assert len(fake.submits) == 1 and job.state == JobState.DELIVERED
    assert [t.state for t in job.takes] == [TakeState.FAILED, TakeState.READY, TakeState.READY]
    assert job.takes[0].billed  # the engine made it: only the fetch failed
    assert [t.take for t in chat.tracks[job.id]] == [2, 3]
    assert balance == {"reserve": 30, "commit": 20, "refund": 10}


async def test_a_take_still_out_at_the_deadline_fails_alone(
    tmp_path: Path, running: Running
) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.output_format = "wav"
        fake.faults.add_job(hang=True)  # the first take never finishes upstream
        settings = wavespeed_settings(tmp_path, fake.base_url, job_timeout_seconds=2.0)
        async with running(settings, [chat]) as core:
            job = await _song(core, takes="2")
            balance = await audit(core).ledger_balance(job.user_id)
    assert job.state == JobState.DELIVERED
    assert [(t.state, t.error_code) for t in job.takes] == [
        (TakeState.FAILED, "timeout"),
        (TakeState.READY, None),
    ]
    assert [t.take for t in chat.tracks[job.id]] == [2]
    assert balance == {"reserve": 20, "commit": 10, "refund": 10}


async def test_a_refused_submit_is_sent_again_and_never_a_take_twice(
    tmp_path: Path, running: Running
) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.output_format = "wav"
        fake.faults.add("submit", status=429, times=1)  # before any take is upstream
        fake.faults.add("submit", times=1)  # the first take goes through
        fake.faults.add("submit", status=429, times=1)  # the second is refused once
        async with running(wavespeed_settings(tmp_path, fake.base_url), [chat]) as core:
            job = await _song(core, takes="2", seed="5")
    assert [s["seed"] for s in fake.submits] == [5, 5, 6, 6]  # each refused one sent again
    assert job.state == JobState.DELIVERED
    assert [t.seed for t in chat.tracks[job.id]] == [5, 6]
    assert len({t.remote_id for t in job.takes}) == 2


async def test_a_take_whose_submit_may_be_upstream_fails_alone_and_is_not_sent_again(
    tmp_path: Path, running: Running
) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.output_format = "wav"
        fake.faults.add("submit", times=1)
        fake.faults.add("submit", processed=True, drop=True, times=1)  # taken, answer lost
        async with running(wavespeed_settings(tmp_path, fake.base_url), [chat]) as core:
            job = await _song(core, takes="3", seed="5")
            balance = await audit(core).ledger_balance(job.user_id)
    assert [s["seed"] for s in fake.submits] == [5, 6, 7]
    assert [t.error_code for t in job.takes] == [None, "submit_uncertain", None]
    assert [t.take for t in chat.tracks[job.id]] == [1, 3]
    assert balance == {"reserve": 30, "commit": 20, "refund": 10}
