"""An edit's source file over its job's life: a source gone before the submit fails the job
for good with its seconds back and nothing sent, and the retention sweep removes the sources
of ended jobs (and uploads that never became a job's) while keeping those still needed."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.domain import Destination, Edit, GenerationRequest, JobState, Task
from bot.edits import EditAsk
from bot.service import Accepted, Requester
from bot.stores import Enqueued, NewJob, UserKey
from bot.worker import retention
from bot.worker.config import WorkerConfig
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import WAVESPEED_KEY, RecordingDelivery, wait_for_job, wavespeed_settings
from tests.kit.memory_core import Running
from tests.kit.memory_store import MemoryJobStore

ALICE = Requester("telegram", "111", "alice")
CHAT = Destination("telegram", "-100", "111")


async def test_an_edit_whose_source_is_gone_fails_with_its_seconds_back(
    tmp_path: Path, running: Running
) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        fake.output_format = "wav"
        async with running(wavespeed_settings(tmp_path, fake.base_url), [chat]) as core:
            request = core.service.validate(tags="lo-fi", duration="10")
            song = await core.service.submit(ALICE, CHAT, request)
            assert isinstance(song, Accepted)
            await wait_for_job(core, song.job.id, {JobState.DELIVERED})
            before = (await core.service.quota(ALICE)).used_seconds
            edit = await core.service.edit(
                ALICE, CHAT, EditAsk(Task.EXTEND, of_job=song.job.id, seconds="15")
            )
            assert isinstance(edit, Accepted), edit
            assert edit.job.request.edit is not None
            # Before the worker has had a turn (no await in between): as if cleaned by hand.
            Path(edit.job.request.edit.source_path).unlink()
            failed = await wait_for_job(core, edit.job.id, {JobState.FAILED})
            after = (await core.service.quota(ALICE)).used_seconds
    assert failed.error_code == "source_missing"
    assert after == before
    assert fake.edit_submits == [] and fake.uploads == {}  # nothing sent upstream
    said = [e.message or "" for e in chat.events if e.job.id == edit.job.id and e.message]
    assert said[-1] == (
        "The audio this edit starts from is gone; ask again (with /extend, /remix or /repaint "
        "on a track that is still kept, or send your audio again). Your quota has been given "
        "back."
    )


def _file(path: Path, age: timedelta) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"ID3 audio")
    then = (datetime.now(UTC) - age).timestamp()
    os.utime(path, (then, then))
    return path


async def test_the_sweep_takes_sources_of_ended_jobs_and_old_uploads(tmp_path: Path) -> None:
    store = MemoryJobStore()
    sources = tmp_path / "sources"
    month = timedelta(days=40)
    files = {
        "waiting": _file(sources / "waiting.mp3", month),  # its job is still queued
        "ended": _file(sources / "ended.mp3", month),
        "recent": _file(sources / "recent.mp3", timedelta(hours=2)),  # ended, within retention
        "left over": _file(sources / "incoming" / "tg-1-2", timedelta(days=2)),
        "arriving": _file(sources / "incoming" / "tg-1-3", timedelta(minutes=5)),
    }
    now = datetime.now(UTC)
    for name in ("waiting", "ended", "recent"):
        queued = await store.enqueue(
            NewJob(
                user=UserKey("telegram", "111"),
                request=GenerationRequest(
                    tags="jazz", duration=12, edit=Edit(Task.REMIX, str(files[name]), 12.0)
                ),
                destination=CHAT,
                backend="wavespeed",
            ),
            admit=lambda usage: None,
            now=now,
        )
        assert isinstance(queued, Enqueued)
        if name != "waiting":
            await store.transition(queued.job.id, {JobState.QUEUED}, JobState.DELIVERED, now=now)
    config = WorkerConfig(audio_dir=tmp_path / "audio", sources_dir=sources)
    await retention.sweep(store, config)
    left = {name for name, path in files.items() if path.exists()}
    assert left == {"waiting", "recent", "arriving"}
