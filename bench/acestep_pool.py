"""Songs per minute with one, two and three ACE-Step servers in a pool (#20).

    .venv/bin/python bench/acestep_pool.py [--quick] [--songs N] [--runtime S]

Each server is a loopback ACE-Step fake (``tests/fakes/acestep.py``) that makes one song at a
time and takes ``--runtime`` seconds (real time) for each, like one GPU. The real core (SQLite,
``GenerationService`` → worker → ``AceStepPool`` → download → a recording delivery) makes
``--songs`` songs queued at once by 8 users, with ``ACESTEP_MAX_CONCURRENCY=2`` per server (one
running, one waiting upstream). Songs per minute = songs / (first queued → last delivered).

The goal (#20): rising close to linearly, two servers at least 1.8× one and three at least
2.6× one (90 % and 87 % of linear; the rest is the poll and the download after each song).
The worker's poll intervals are scaled by 0.05 (the 1 s politeness interval is policy, not
capacity), the same in every phase.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    RecordingDelivery,
    console,
    machine,
    running,
    settings_for,
    submit,
    table,
    user,
    verdict,
    warm_fake_audio,
)

from bot.backends.acestep_routing import server_of
from tests.fakes.acestep import FakeAceStep

DURATION = 10  # seconds of audio per song
GOALS = {1: 1.0, 2: 1.8, 3: 2.6}  # songs per minute, as a multiple of one server's


async def phase(servers: int, songs: int, runtime: float) -> tuple[float, Counter[str], int]:
    """(songs per minute, songs made per server, songs that failed)."""
    async with contextlib.AsyncExitStack() as stack:
        fakes = [
            await stack.enter_async_context(FakeAceStep(time_scale=1.0, runtime=runtime))
            for _ in range(servers)
        ]
        urls = [fake.base_url for fake in fakes]
        data = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        settings = settings_for(
            "acestep",
            data,
            ",".join(urls),
            acestep_max_concurrency=2,
            poll_time_scale=0.05,
            lease_seconds=10.0,
        )
        delivery = RecordingDelivery()
        delivery.expect(songs)
        async with running(settings, delivery) as core:
            started = time.monotonic()
            jobs = [await submit(core, user(i % 8), f"lo-fi {i}", DURATION) for i in range(songs)]
            await asyncio.wait_for(delivery.done.wait(), timeout=songs * runtime * 3 + 60)
            ended = max(delivery.delivered_at.values(), default=time.monotonic())
            made: Counter[str] = Counter()
            for job in jobs:
                found = await core.store.get(job.id)
                where = server_of(found.remote_id if found else None, urls)
                made[where[0] if where else urls[0]] += 1
    per_minute = len(delivery.delivered_at) / (ended - started) * 60
    return per_minute, made, len(delivery.failed)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer songs, shorter runs")
    parser.add_argument("--songs", type=int, default=None, help="songs per phase (default 24)")
    parser.add_argument("--runtime", type=float, default=None, help="seconds per song (2)")
    args = parser.parse_args()
    songs = args.songs or (12 if args.quick else 24)
    runtime = args.runtime or (1.0 if args.quick else 2.0)
    warm_fake_audio(DURATION)
    console.print(machine())
    console.print(f"{songs} songs of {DURATION} s per phase; each server {runtime} s per song\n")
    rows = []
    base = 0.0
    met = True
    for servers in (1, 2, 3):
        rate, made, failed = await phase(servers, songs, runtime)
        base = base or rate
        ratio = rate / base
        ok = ratio >= GOALS[servers] and failed == 0
        met = met and ok
        ideal = 60 / runtime * servers
        rows.append(
            [
                str(servers),
                f"{rate:.1f}",
                f"{ideal:.0f}",
                f"{ratio:.2f}x",
                f">= {GOALS[servers]:.1f}x",
                " / ".join(str(n) for n in sorted(made.values(), reverse=True)),
                str(failed),
                verdict(ok),
            ]
        )
    table(
        "ACE-Step pool: songs per minute",
        ["servers", "songs/min", "engines' max", "vs one", "goal", "per server", "failed", "ok"],
        rows,
    )
    console.print(f"goal {'met' if met else 'missed'}")


if __name__ == "__main__":
    asyncio.run(main())
