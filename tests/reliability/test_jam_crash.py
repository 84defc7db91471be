"""#16: `kill -9` of the bot in the middle of a jam, then a restart on the same SQLite file:
no contribution and no vote it had confirmed is lost, and a render cut off halfway makes
each take once (the restarted clock queues what is missing; the keys make a repeat the same
job), then voting opens and the jam closes with a winner."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.app import Core, open_core
from bot.domain import Destination
from bot.jams.model import Jam, JamChanged, JamState
from bot.service import Requester
from tests.fakes.acestep import FakeAceStep
from tests.harness import RecordingDelivery, acestep_settings, running_core

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]
HOST = Requester("telegram", "host", "Hana")
PLACE = Destination("telegram", "chat-1", "host")


async def _killed(
    tmp_path: Path, fake: FakeAceStep, phase: str, jam_id: int, enough: Callable[[list[str]], bool]
) -> list[str]:
    """Run jam_child until its acks are ``enough``, kill -9 it; the acks it printed."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.reliability.jam_child",
        str(tmp_path),
        fake.base_url,
        phase,
        str(jam_id),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=(tmp_path / f"{phase}.log").open("w"),
    )
    assert child.stdout is not None
    acks: list[str] = []

    async def read() -> None:
        assert child.stdout is not None
        while line := await child.stdout.readline():
            acks.append(line.decode().split()[1])

    reading = asyncio.create_task(read())
    try:
        async with asyncio.timeout(60):
            while not enough(acks):
                assert not reading.done(), "the child ended before it was killed"
                await asyncio.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
        await reading  # what it confirmed before the kill (printed while being killed too)
    return acks


async def _jam(core: Core, jam_id: int) -> Jam:
    jam = await core.service.jams.get(jam_id)
    assert jam is not None
    return jam


async def _until_state(core: Core, jam_id: int, state: JamState) -> Jam:
    async with asyncio.timeout(30):
        while (jam := await _jam(core, jam_id)).state != state:
            await asyncio.sleep(0.05)
    return jam


async def test_a_jam_killed_while_collecting_rendering_and_voting_loses_nothing(
    tmp_path: Path,
) -> None:
    async with FakeAceStep(time_scale=0.02) as fake:
        settings = acestep_settings(tmp_path, fake.base_url, lease_seconds=1.0)
        async with open_core(settings) as core:
            await core.service.admin.update_chat_rules("telegram", "chat-1", default_duration=10)
            started = await core.service.jams.start(
                HOST, PLACE, "rainy city", takes=2, minutes=600, vote_minutes=600
            )
            assert isinstance(started, JamChanged)
        jam_id = started.jam.id

        # Collecting: killed among its adds.
        added = await _killed(tmp_path, fake, "collect", jam_id, lambda acks: len(acks) >= 8)
        async with open_core(settings) as core:
            jam = await _jam(core, jam_id)
        texts = [c.text for c in jam.contributions]
        assert all(f"line {n}" in texts for n in added)  # every one confirmed is there
        assert [c.number for c in jam.contributions] == list(range(1, len(texts) + 1))
        assert len(texts) <= len(added) + 1  # at most one committed, not yet confirmed

        # Rendering: killed once the first take was sent upstream (the second may not be
        # queued yet); the engine takes long enough for the kill to find it working.
        fake.runtime = 20.0
        await _killed(tmp_path, fake, "render", jam_id, lambda acks: len(fake.submits) >= 1)
        fake.runtime = 2.0
        chat = RecordingDelivery()
        async with running_core(settings, [chat]) as core:  # its jam clock makes up the rest
            voting = await _until_state(core, jam_id, JamState.VOTING)
            jobs = await core.store.list_jobs(limit=20)
        assert sorted(t.take for t in voting.current.takes) == [1, 2]
        assert sorted(job.id for job in jobs) == sorted(t.job_id for t in voting.current.takes)
        assert all(t.made for t in voting.current.takes)

        # Voting: killed among the votes.
        votes = await _killed(tmp_path, fake, "vote", jam_id, lambda acks: len(acks) >= 8)
        async with open_core(settings) as core:
            jam = await _jam(core, jam_id)
            assert len(votes) <= jam.current.votes_cast <= len(votes) + 1
            closed = await core.service.jams.close(HOST, jam_id)
        assert isinstance(closed, JamChanged) and closed.jam.state == JamState.CLOSED
        assert closed.jam.current.winner_take in (1, 2)
