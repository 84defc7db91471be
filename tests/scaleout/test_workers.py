"""Several `acejam run --role worker` processes on one PostgreSQL, one killed mid-run."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest

from bot.app import open_core
from bot.domain import Destination, JobState
from bot.service import Accepted, Requester
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import WAVESPEED_KEY, wavespeed_settings
from tests.kit.audit import audit

pytestmark = pytest.mark.postgres
JOBS = 24


def _worker_env(data_dir: Path, base_url: str, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DISCORD_"))}
    env.update(
        BACKEND="wavespeed",
        WAVESPEED_API_KEY=WAVESPEED_KEY,
        WAVESPEED_BASE_URL=base_url,
        WAVESPEED_MAX_CONCURRENCY="8",
        DATABASE_URL=database_url,
        DATA_DIR=str(data_dir),
        POLL_TIME_SCALE="0.05",
        LEASE_SECONDS="2",
        HTTP_TIMEOUT_SECONDS="5",
    )
    return env


async def test_three_workers_one_killed_no_job_lost_none_twice(
    tmp_path: Path, postgres_url: str
) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.runtime = 40.0  # 1.6 s each: several rounds for three workers
        settings = wavespeed_settings(tmp_path / "data", fake.base_url, database_url=postgres_url)
        async with open_core(settings) as core:  # migrate, and queue the work
            job_ids = []
            for n in range(JOBS):
                user = Requester("cli", f"user-{n % 5}")
                request = core.service.validate(tags=f"track {n}", duration=10)
                outcome = await core.service.submit(
                    user, Destination("cli", "local", user.user_id), request, enforce_quota=False
                )
                assert isinstance(outcome, Accepted)
                job_ids.append(outcome.job.id)

            env = _worker_env(tmp_path / "data", fake.base_url, postgres_url)

            async def start_worker() -> asyncio.subprocess.Process:
                return await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bot",
                    "run",
                    "--role",
                    "worker",
                    env=env,
                    cwd=tmp_path,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )

            # The victim starts first so that it surely holds work when it dies.
            victim = await start_worker()
            workers = [victim]
            try:
                # Kill the first worker while upstream runs jobs it holds. (A kill in the
                # instant a submit is on the wire fails that job instead — never resends
                # it — which tests/service covers; here we want the take-over.)
                async with asyncio.timeout(60):
                    while True:
                        victims = [
                            j
                            for j in await core.store.list_jobs(limit=JOBS)
                            if await _owner_pid(core, j.id) == victim.pid
                        ]
                        held = [
                            j for j in victims if j.state in (JobState.SUBMITTED, JobState.RUNNING)
                        ]
                        if held and all(j.state != JobState.SUBMITTING for j in victims):
                            break
                        await asyncio.sleep(0.02)
                workers += [await start_worker(), await start_worker()]
                victim.send_signal(signal.SIGKILL)
                await victim.wait()

                done = {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}
                async with asyncio.timeout(120):
                    while True:
                        jobs = [await core.store.get(i) for i in job_ids]
                        if all(j is not None and j.state in done for j in jobs):
                            break
                        await asyncio.sleep(0.2)
            finally:
                for worker in workers[1:]:
                    if worker.returncode is None:
                        worker.send_signal(signal.SIGTERM)
                for worker in workers[1:]:
                    assert await asyncio.wait_for(worker.wait(), 30) == 0

            final = {j.id: j for j in jobs if j is not None}
            balances = [await audit(core).ledger_balance(j.user_id) for j in final.values()]

    submitted = Counter(body["tags"] for body in fake.submits)
    assert all(count == 1 for count in submitted.values()), "a job was submitted twice"
    # The victim's running jobs were taken over and finished by the others; nothing lost.
    assert all(final[j.id].state == JobState.SUCCEEDED for j in held)
    assert [j.id for j in final.values() if j.state != JobState.SUCCEEDED] == []
    assert len(submitted) == JOBS
    for balance in balances:
        assert balance.get("reserve", 0) == balance.get("commit", 0) + balance.get("refund", 0)


async def _owner_pid(core, job_id: int) -> int | None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from storage.models import JobRow

    async with core.store._sessions() as session:  # a test peeking at the lease column
        owner = await session.scalar(select(JobRow.lease_owner).where(JobRow.id == job_id))
    if not owner:
        return None
    return int(owner.split(":")[1])
