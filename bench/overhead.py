"""Upstream completion → audio posted, for a 60 s MP3, against loopback WaveSpeed and Telegram.

    .venv/bin/python bench/overhead.py [--quick] [--jobs N] [--concurrency K]

Rows, on the same fakes in one run:

* **AceJam → Telegram, polling / webhook** (only when ``adapters/telegram/app.py`` has
  ``serve``): ``open_core`` + worker (+ the WaveSpeed webhook receiver, for the webhook row,
  as ``acejam run`` starts it when ``WAVESPEED_WEBHOOK_URL`` is set) + the real Telegram
  adapter polling a loopback ``FakeTelegram``; each job is a ``/song ... | 60`` sent by its
  own user in their private chat (so Telegram's per-chat flood limit never makes one job wait
  for another); "posted" = the moment the fake Telegram holds the bot's audio message.
* **AceJam → recording delivery**: the same core, but the platform is a stub whose
  ``deliver()`` only records the time: the core's share alone (download, probe, DB).
* **fixed 1 s poller → sendAudio**: the SDK's loop (poll at once, then every 1 s), the whole
  MP3 read with httpx, posted with a plain PTB ``send_audio``: a minimal bot, no checks.

Per job: *lag* = upstream completion → the poll that sees it (``fake.polls``; 0 with a
webhook, whose delivery then counts in fetch), *fetch* = → the job's SUCCEEDED row
(download + header probe + DB), *post* = → posted (for Telegram: the one decode, cover,
waveform, thumbnail, tags, upload), *overhead* = noticed → posted (what webhooks cannot
remove), *total* = completion → posted. Real time (scale 1): the work after
completion is CPU and I/O that no time scale applies to. Upstream jobs take 3-5 s here (the
run time does not matter for what happens after completion; ``bench/polling.py`` measures
the lag of 8-14 s jobs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common as c
import httpx

from bot.app import open_core, webhook_receiver
from bot.config import Settings
from bot.domain import JobState
from tests.fakes.telegram import FakeChat, FakeTelegram, FakeUser
from tests.fakes.wavespeed import FakeWaveSpeed

TOKEN = "123456:BENCH-TOKEN"
DURATION = 60
GOAL_P95 = 1.0


@dataclass
class Timing:
    lag: float
    fetch: float  # nan when not known (baseline)
    post: float
    total: float

    @property
    def overhead(self) -> float:
        return self.total - self.lag


def adapter_available() -> bool:
    if importlib.util.find_spec("adapters.telegram.app") is None:
        return False
    from adapters.telegram import app

    return hasattr(app, "serve")


def noticed(ws: FakeWaveSpeed, remote_id: str) -> float:
    done = ws.completed_at[remote_id]
    return min(t for i, t in ws.polls if i == remote_id and t >= done)


def timing(
    ws: FakeWaveSpeed, remote_id: str, succeeded: float, posted: float, *, pushed: bool = False
) -> Timing:
    """``pushed``: the job was heard of by webhook, sent at completion, so the lag is 0 and
    the webhook's own delivery counts in ``fetch``."""
    done = ws.completed_at[remote_id]
    seen = done if pushed else noticed(ws, remote_id)
    return Timing(seen - done, succeeded - seen, posted - succeeded, posted - done)


class AudioWatch:
    """Records when each watched chat first holds an audio message from the bot."""

    def __init__(self, tg: FakeTelegram) -> None:
        self._tg = tg
        self.chats: set[int] = set()
        self.posted: dict[int, float] = {}
        self._next_user = 10_000

    def new_chat(self, name: str) -> tuple[FakeUser, FakeChat]:
        """A new user and their private chat, watched from now on (fresh per row, so an
        earlier row's audio never counts)."""
        self._next_user += 1
        person = self._tg.user(self._next_user, name, f"{name.lower()}{self._next_user}")
        chat = self._tg.private_chat(person)
        self.chats.add(chat.id)
        return person, chat

    def _scan(self) -> bool:
        now = time.monotonic()
        for chat_id in self.chats - set(self.posted):
            if any(m.audio is not None for m in self._tg.chat_log(chat_id)):
                self.posted[chat_id] = now
        return False  # keep waiting: wait_until re-checks after every change

    async def run(self) -> None:
        with contextlib.suppress(AssertionError):
            await self._tg.wait_until(self._scan, timeout=24 * 3600)

    async def wait_for(self, chat_ids: set[int], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not chat_ids <= set(self.posted):
                await asyncio.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def core_settings(
    data_dir: Path, ws: FakeWaveSpeed, concurrency: int, webhook: bool, **extra: Any
) -> Settings:
    if webhook:
        port = free_port()
        extra |= {
            "wavespeed_webhook_url": f"http://127.0.0.1:{port}/hooks/wavespeed",
            "wavespeed_webhook_listen": f"127.0.0.1:{port}",
        }
    return c.settings_for(
        "wavespeed", data_dir, ws.base_url, wavespeed_max_concurrency=concurrency, **extra
    )


# ------------------------------------------------------------------ AceJam
async def acejam(
    ws: FakeWaveSpeed,
    tg: FakeTelegram | None,
    watch: AudioWatch | None,
    n: int,
    concurrency: int,
    *,
    webhook: bool,
) -> list[Timing]:
    """The core as ``acejam run`` wires it (worker, webhook receiver when configured), with
    the real Telegram adapter when ``tg`` is given, else a recording delivery."""
    extra = {"telegram_token": TOKEN, "telegram_api_base_url": tg.base_url} if tg else {}
    stub = c.RecordingDelivery(expected=n)
    with tempfile.TemporaryDirectory() as tmp:
        settings = core_settings(Path(tmp), ws, concurrency, webhook, **extra)
        async with open_core(settings) as core, webhook_receiver(core):
            stop = asyncio.Event()
            tasks = [asyncio.create_task(core.worker.run(stop))]
            try:
                chats: set[int] = set()
                if tg is not None and watch is not None:
                    from adapters.telegram.app import serve

                    tasks.append(asyncio.create_task(serve(settings, core.service, stop)))
                    async with asyncio.timeout(30):
                        while core.service.notifier.delivery_for("telegram") is None:
                            if tasks[1].done():
                                tasks[1].result()
                            await asyncio.sleep(0.01)
                    for i in range(n):
                        person, chat = watch.new_chat("Bench")
                        chats.add(chat.id)
                        text = f"/song bench tune {i}, lo-fi | {DURATION}"
                        await tg.send_message(chat, person, text)
                    await watch.wait_for(chats, timeout=120 + 15 * n)
                else:
                    core.service.register_delivery(stub)
                    for i in range(n):
                        await c.submit(core, c.user(i), f"bench stub {i}, lo-fi", DURATION)
                    await asyncio.wait_for(stub.done.wait(), timeout=120 + 15 * n)
                # The audio can be on Telegram a moment before the DELIVERED row is written.
                async with asyncio.timeout(30):
                    while True:
                        jobs = await core.store.list_jobs(limit=n + 10)
                        if len(jobs) >= n and all(j.state == JobState.DELIVERED for j in jobs):
                            break
                        await asyncio.sleep(0.05)
            finally:
                stop.set()
                await asyncio.gather(*tasks)
    if tg is not None and watch is not None:
        jobs = [j for j in jobs if int(j.destination.chat_id) in chats]
        posted = {int(j.id): watch.posted[int(j.destination.chat_id)] for j in jobs}
    else:
        posted = dict(stub.delivered_at)
    if len(jobs) != n or any(j.state != JobState.DELIVERED for j in jobs):
        raise RuntimeError(f"not all delivered: {[(j.id, j.state) for j in jobs]}")
    return [
        timing(
            ws,
            j.remote_id or "",
            c.to_monotonic(j.finished_at),
            posted[int(j.id)],
            pushed=webhook,
        )
        for j in jobs
    ]


# ------------------------------------------------------------------ baseline
async def naive_bot(
    ws: FakeWaveSpeed, tg: FakeTelegram | None, watch: AudioWatch | None, n: int, concurrency: int
) -> list[Timing]:
    """Poll every 1 s, read the MP3 into memory, post it (or just record, without Telegram)."""
    slots = asyncio.Semaphore(concurrency)
    auth = {"Authorization": f"Bearer {c.WAVESPEED_KEY}"}
    results: list[tuple[str, float, float]] = []  # remote id, fetched at, posted at

    async def one(http: httpx.AsyncClient, i: int, post: Callable[[int, bytes], Any]) -> None:
        async with slots:
            body = {"tags": f"naive tune {i}, lo-fi", "duration": DURATION, "seed": -1}
            answer = await http.post(f"{ws.base_url}/api/v3/{ws.model}", json=body, headers=auth)
            remote_id = str(answer.json()["data"]["id"])
            url = f"{ws.base_url}/api/v3/predictions/{remote_id}/result"
            while True:
                data = (await http.get(url, headers=auth)).json()["data"]
                if data["status"] == "completed":
                    break
                await asyncio.sleep(1.0)
            mp3 = (await http.get(data["outputs"][0])).content
            fetched = time.monotonic()
            posted = await post(i, mp3)
            results.append((remote_id, fetched, posted))

    async with httpx.AsyncClient(timeout=60) as http:
        if tg is None or watch is None:

            async def record(i: int, mp3: bytes) -> float:
                return time.monotonic()

            await asyncio.gather(*(one(http, i, record) for i in range(n)))
        else:
            async with tg.bot() as bot:
                chats: dict[int, int] = {}
                for i in range(n):
                    chats[i] = watch.new_chat("Naive")[1].id

                async def send(i: int, mp3: bytes) -> float:
                    await bot.send_audio(
                        chats[i], mp3, duration=DURATION, title=f"naive tune {i}", performer="x"
                    )
                    await watch.wait_for({chats[i]}, timeout=60)
                    return watch.posted[chats[i]]

                await asyncio.gather(*(one(http, i, send) for i in range(n)))
    return [timing(ws, rid, fetched, posted) for rid, fetched, posted in results]


# ------------------------------------------------------------------ report
def row(name: str, timings: list[Timing]) -> list[str]:
    def p(values: list[float]) -> str:
        return f"{c.fmt(c.pct(values, 50))} / {c.fmt(c.pct(values, 95))}"

    over = [t.overhead for t in timings]
    total = [t.total for t in timings]
    return [
        name,
        str(len(timings)),
        p([t.lag for t in timings]),
        p([t.fetch for t in timings]),
        p([t.post for t in timings]),
        p(over),
        p(total),
        c.fmt(max(total)),
        c.verdict(c.pct(total, 95) <= GOAL_P95),
        c.verdict(c.pct(over, 95) <= GOAL_P95),
    ]


async def run(args: argparse.Namespace) -> None:
    os.environ.setdefault("PTB_TIMEDELTA", "true")  # PTB 22: durations as timedelta
    c.warm_fake_audio(DURATION)
    rows = []
    real = adapter_available() and not args.no_telegram
    async with FakeWaveSpeed(time_scale=1.0, api_key=c.WAVESPEED_KEY) as ws:
        ws.runtime = c.nominal_runtime(args.seed, 3.0, 5.0)
        async with FakeTelegram(token=TOKEN, bot_username="AceJamBot", time_scale=1.0) as tg:
            watch = AudioWatch(tg)
            watcher = asyncio.create_task(watch.run())
            try:
                if real:
                    for webhook in (False, True):
                        how = "webhook" if webhook else "polling"
                        timings = await acejam(
                            ws, tg, watch, args.jobs, args.concurrency, webhook=webhook
                        )
                        rows.append(row(f"AceJam → Telegram, {how}", timings))
                for webhook in (False, True) if not real else (True,):
                    how = "webhook" if webhook else "polling"
                    timings = await acejam(
                        ws, None, None, args.jobs, args.concurrency, webhook=webhook
                    )
                    rows.append(row(f"AceJam → recording delivery, {how}", timings))
                base = await naive_bot(
                    ws, tg if real else None, watch if real else None, args.jobs, args.concurrency
                )
                name = "fixed 1 s poller → sendAudio" if real else "fixed 1 s poller → record"
                rows.append(row(name, base))
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
    c.table(
        f"Completion → posted, {DURATION} s MP3, {args.jobs} jobs, {args.concurrency} in flight "
        "(real seconds)",
        [
            "path",
            "jobs",
            "lag p50 / p95",
            "fetch p50 / p95",
            "post p50 / p95",
            "overhead p50 / p95",
            "total p50 / p95",
            "total max",
            "total p95 ≤ 1 s?",
            "overhead p95 ≤ 1 s?",
        ],
        rows,
    )
    if not real:
        c.console.print(
            "[yellow]adapters/telegram/app.py with serve() not found: measured completion → "
            "deliver() called on a recording delivery instead.[/yellow]"
        )
    c.console.print(
        "goal: upstream completion → audio posted, p95 ≤ 1 s. lag = completion → the poll that "
        "sees it; fetch = → SUCCEEDED row (download, header probe, DB); post = → posted; "
        "overhead = fetch + post (what remains with webhooks); total = lag + overhead. For the "
        "baseline, fetch is the plain download only.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer jobs")
    parser.add_argument("--jobs", type=int, help="jobs per row (default 16; quick 6)")
    parser.add_argument("--concurrency", type=int, default=2, help="WAVESPEED_MAX_CONCURRENCY")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-telegram", action="store_true", help="skip the real adapter")
    args = parser.parse_args()
    args.jobs = args.jobs or (6 if args.quick else 16)
    c.header(
        "bench/overhead.py: upstream completion → audio posted",
        "no time scale (1.0): everything after completion is real CPU and I/O; upstream jobs "
        "take 3-5 s",
    )
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
