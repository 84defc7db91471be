"""`kill -9` of the real `acejam run` at each step of a job, 20 songs in flight, then a restart.

What must hold after the restart, for every song: it ends delivered (one track in its chat) or
failed with its quota refunded; no request reached WaveSpeed twice; the quota ledger balances;
and the user's status message ends as "done" or "failed", never stuck on "making your song".

The one exception (README, Guarantees): a track Telegram accepted in the instant before the
bot recorded it is posted again after the restart, because the Bot API has no idempotency key
to ask "did this upload already happen?". The test computes that window (tracks in the chat
whose job the database does not call delivered, at the moment of the kill) and asserts
duplicates happen exactly there and nowhere else.

Each step is reached by holding the fakes, not by timing: polls answered 503 keep songs
`submitted`, a concurrency of 2 keeps the rest `queued`, a song seen running has its polls
refused, a Telegram flood wait keeps finished songs `succeeded`, and a `delay_response`
stall makes Telegram accept a track but never answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.adapters.telegram.conftest import TOKEN
from tests.fakes.telegram import FakeChat, FakeTelegram, RecordedMessage
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import POLL_SCALE, WAVESPEED_KEY

pytestmark = pytest.mark.faults

ACEJAM = [sys.executable, "-m", "bot", "run"]
JOBS = 20
GROUPS = 4
USERS = 5  # every user asks in every group: 4 songs each, 5 per group
DURATION = 5  # seconds of audio: the shortest, so 20 uploads cost little CPU
UPSTREAM_SCALE = 0.04  # WaveSpeed's clock: a nominal 25 s job takes 1 s here
# A loaded 2-core machine may take a few seconds to start Python; conditions end waits.
WAIT = 60.0
SIGTERM_BOUND = 15.0
FAILED_MARK = "⚠️"  # how the news that a song failed starts (its status card is gone)


# ---------------------------------------------------------------- the bot as a process
class BotProcess:
    """One `acejam run`, logging to a file (a pipe could fill up and stall it)."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path) -> None:
        self.process = process
        self.log = log

    @classmethod
    async def start(cls, cwd: Path, env: dict[str, str], name: str) -> BotProcess:
        log = cwd / f"{name}.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                *ACEJAM, env=env, cwd=cwd, stdout=out, stderr=asyncio.subprocess.STDOUT
            )
        return cls(process, log)

    async def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def terminate(self, within: float) -> int:
        """SIGTERM; the exit code (AssertionError if it takes longer than ``within``)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), within)
        except TimeoutError:
            await self.kill()
            raise AssertionError(
                f"acejam run ignored SIGTERM for {within} s\n{self.tail()}"
            ) from None

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def bot_env(data_dir: Path, tg: FakeTelegram, ws: FakeWaveSpeed, **extra: str) -> dict[str, str]:
    inherited = ("TELEGRAM_", "DISCORD_", "WAVESPEED_", "ACESTEP_", "DATABASE_", "BACKEND")
    env = {k: v for k, v in os.environ.items() if not k.startswith(inherited)}
    env.update(
        BACKEND="wavespeed",
        WAVESPEED_API_KEY=WAVESPEED_KEY,
        WAVESPEED_BASE_URL=ws.base_url,
        WAVESPEED_MAX_CONCURRENCY=str(JOBS),
        TELEGRAM_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=tg.base_url,
        DATA_DIR=str(data_dir),
        # The bot's poll intervals, flood windows and status pacing run on the fake
        # Telegram's shrunken clock.
        POLL_TIME_SCALE=str(POLL_SCALE),
        LEASE_SECONDS="2",
        HTTP_TIMEOUT_SECONDS="5",
        MAX_ACTIVE_JOBS_PER_USER=str(JOBS),
        MAX_ACTIVE_JOBS_PER_CHAT=str(JOBS),
        QUOTA_SECONDS_PER_DAY="100000",
        PTB_TIMEDELTA="true",
    )
    env.update(extra)
    return env


# ---------------------------------------------------------------- what the database says
@dataclass(frozen=True)
class JobRow:
    id: int
    tags: str
    state: str
    context: dict[str, Any]
    error_code: str | None
    delivered_message_id: str | None
    remote_id: str | None

    @property
    def status_message_id(self) -> int | None:
        value = self.context.get("status_message_id")
        return int(value) if value is not None else None


def read_jobs(database: Path) -> list[JobRow]:
    """A plain read of the bot's SQLite file, as an operator would (WAL: never blocks it)."""
    if not database.exists():
        return []
    with contextlib.closing(sqlite3.connect(database, timeout=5)) as connection:
        try:
            rows = connection.execute(
                "SELECT id, tags, state, context, error_code, delivered_message_id, remote_id "
                "FROM jobs ORDER BY id"
            ).fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return []
    return [JobRow(r[0], r[1], r[2], json.loads(r[3] or "{}"), r[4], r[5], r[6]) for r in rows]


def read_ledger(database: Path) -> list[tuple[int, str, int]]:
    with contextlib.closing(sqlite3.connect(database, timeout=5)) as connection:
        return connection.execute("SELECT job_id, kind, seconds FROM quota_ledger").fetchall()


# ---------------------------------------------------------------- one crash, end to end
@dataclass
class Scene:
    """The fakes, the chats, and the songs asked for in them."""

    tmp_path: Path
    tg: FakeTelegram
    ws: FakeWaveSpeed
    groups: list[FakeChat] = field(default_factory=list)
    requests: dict[str, tuple[FakeChat, int]] = field(default_factory=dict)  # tags -> where

    @property
    def database(self) -> Path:
        return self.tmp_path / "data" / "acejam.db"

    def jobs(self) -> list[JobRow]:
        return read_jobs(self.database)

    def states(self) -> Counter[str]:
        return Counter(job.state for job in self.jobs())

    async def start(self, name: str, **env: str) -> BotProcess:
        return await BotProcess.start(
            self.tmp_path, bot_env(self.tmp_path / "data", self.tg, self.ws, **env), name
        )

    async def until(
        self,
        what: str,
        condition: Callable[[], bool],
        bot: BotProcess,
        timeout: float = WAIT,
    ) -> None:
        """Wait for ``condition``, re-checked every 20 ms; fail with the bot's log and the
        chats if it doesn't come, or if the bot exits meanwhile (unless it was killed)."""
        try:
            async with asyncio.timeout(timeout):
                while not condition():
                    if bot.process.returncode not in (None, -signal.SIGKILL):
                        raise AssertionError(f"acejam run exited ({bot.process.returncode})")
                    await asyncio.sleep(0.02)
        except (TimeoutError, AssertionError) as error:
            raise AssertionError(
                f"{error or 'timed out'}: no {what} after {timeout} s; states {self.states()}\n"
                f"--- bot log ---\n{bot.tail()}\n--- chats ---\n{self.tg.describe()}"
            ) from None

    async def ask_for_songs(self) -> None:
        users = [self.tg.user(1000 + n, f"Singer {n}", f"singer{n}") for n in range(USERS)]
        self.groups = [self.tg.group_chat(-1001000 - n, f"Crash room {n}") for n in range(GROUPS)]
        for n in range(JOBS):
            # n -> (group n % 4, user n % 5) is one-to-one: everyone asks once in each room.
            chat, user = self.groups[n % GROUPS], users[n % USERS]
            tags = f"crash take {n:02d}"
            sent = await self.tg.send_message(chat, user, f"/song {tags} | {DURATION}")
            self.requests[tags] = (chat, int(sent["message_id"]))

    def bot_messages(self, job: JobRow) -> list[RecordedMessage]:
        chat, request_id = self.requests[job.tags]
        return [m for m in self.tg.chat_log(chat) if m.reply_to_message_id == request_id]

    def tracks(self, job: JobRow) -> list[RecordedMessage]:
        return [m for m in self.bot_messages(job) if m.audio is not None or m.document]

    def statuses(self, job: JobRow) -> list[RecordedMessage]:
        """What the chat still shows about the song besides its track: its status card while
        it is in the works, the news that it failed once it did."""
        return [
            m
            for m in self.bot_messages(job)
            if m.audio is None and not m.document and not m.deleted
        ]

    def posted(self) -> int:
        """Tracks in the chats."""
        return sum(len([m for m in self.tg.chat_log(c) if m.audio]) for c in self.groups)

    def telegram_is_quiet(self) -> bool:
        """Every upload Telegram received has been answered or recorded: after a kill, the
        fake's handlers run on, and an upload it got is posted even though nobody waits."""
        received = len(self.tg.calls_to("sendAudio"))
        refused = len([e for e in self.tg.errors if e.method.lower() == "sendaudio"])
        return received == refused + self.posted()


@dataclass(frozen=True)
class AtKill:
    """What was true when the victim died."""

    states: dict[str, str]  # tags -> state
    window: frozenset[str]  # tags of songs in the chat but not recorded as delivered

    def count(self) -> dict[str, int]:
        return dict(Counter(self.states.values()))


@dataclass(frozen=True)
class Step:
    """How to bring 20 songs to one step of their life, and what the kill must find."""

    name: str
    concurrency: int  # WAVESPEED_MAX_CONCURRENCY of the victim
    runtime: float  # nominal seconds upstream takes per song
    # Refuse every poll until each request has its "queued" reply: nothing moves past
    # `submitted` meanwhile, however slow the machine.
    hold_polls: bool
    reach: Callable[[Scene, BotProcess], Awaitable[None]]  # from "all taken in" to the step
    found: Callable[[AtKill], bool]  # the kill really happened at this step


async def _stay(scene: Scene, bot: BotProcess) -> None:
    """Already there: polls are refused, so nothing moves."""


async def _running(scene: Scene, bot: BotProcess) -> None:
    # Polls were never held, and songs take 6 s upstream: each is seen "processing" first.
    # From then on its polls are refused, so it stays `running` however long the rest take.
    held: set[str] = set()

    def all_running() -> bool:
        jobs = scene.jobs()
        for job in jobs:
            if job.state == "running" and job.remote_id and job.remote_id not in held:
                scene.ws.faults.add("poll", status=503, about=job.remote_id, times=None)
                held.add(job.remote_id)
        return all(job.state == "running" for job in jobs)

    await scene.until("every song reported running", all_running, bot)


async def _downloaded(scene: Scene, bot: BotProcess) -> None:
    # Telegram asks for a long flood wait on every upload: finished songs stay `succeeded`
    # with their upload waiting in the bot's flood gate, never accepted.
    flood = scene.tg.faults.add("sendAudio", status=429, retry_after=600, times=None)
    scene.ws.faults.clear()
    await scene.until(
        "every song downloaded, its upload held back",
        lambda: _only(scene, "succeeded") and flood.hits >= GROUPS,
        bot,
    )


async def _uploading(scene: Scene, bot: BotProcess) -> None:
    # The first three uploads are accepted by Telegram, whose answer then never comes: the
    # window no Bot API call can close. The other songs carry on.
    stalled = scene.tg.faults.add("sendAudio", delay_response=600, times=3)
    scene.ws.faults.clear()
    await scene.until("three uploads accepted but unanswered", lambda: stalled.hits == 3, bot)


def _only(scene: Scene, state: str) -> bool:
    return scene.states() == Counter({state: JOBS})


STEPS = [
    Step(
        "queued",
        concurrency=2,
        runtime=2.5,
        hold_polls=True,
        reach=_stay,
        found=lambda kill: kill.count() == {"queued": JOBS - 2, "submitted": 2},
    ),
    Step(
        "submitted",
        concurrency=JOBS,
        runtime=2.5,
        hold_polls=True,
        reach=_stay,
        found=lambda kill: kill.count() == {"submitted": JOBS},
    ),
    Step(
        "running",
        concurrency=JOBS,
        runtime=150.0,
        hold_polls=False,
        reach=_running,
        found=lambda kill: kill.count() == {"running": JOBS},
    ),
    Step(
        "downloaded",
        concurrency=JOBS,
        runtime=2.5,
        hold_polls=True,
        reach=_downloaded,
        found=lambda kill: kill.count() == {"succeeded": JOBS} and not kill.window,
    ),
    Step(
        "uploading",
        concurrency=JOBS,
        runtime=2.5,
        hold_polls=True,
        reach=_uploading,
        found=lambda kill: len(kill.window) >= 3,
    ),
]


@pytest.mark.parametrize("step", STEPS, ids=[s.name for s in STEPS])
async def test_kill_9_at_each_step_then_restart_loses_and_repeats_nothing(
    tmp_path: Path, step: Step
) -> None:
    async with (
        FakeTelegram(token=TOKEN, time_scale=POLL_SCALE) as tg,
        FakeWaveSpeed(time_scale=UPSTREAM_SCALE, api_key=WAVESPEED_KEY) as ws,
    ):
        scene = Scene(tmp_path, tg, ws)
        ws.runtime = step.runtime
        if step.hold_polls:
            ws.faults.add("poll", status=503, times=None)
        victim = await scene.start("victim", WAVESPEED_MAX_CONCURRENCY=str(step.concurrency))
        try:
            await scene.ask_for_songs()
            upstream = min(step.concurrency, JOBS)
            await scene.until(
                "reply to every request",
                lambda: _taken_in(scene.jobs(), upstream),
                victim,
            )
            await step.reach(scene, victim)
        finally:
            await victim.kill()
        at_kill = await _after_the_kill(scene, victim)
        assert step.found(at_kill), f"killed at {at_kill.count()}, not at {step.name}"

        ws.faults.clear()
        tg.faults.clear()
        ws.runtime = 2.5
        survivor = await scene.start("survivor")
        try:
            await scene.until("every song settled", lambda: _settled(scene), survivor)
        finally:
            code = await survivor.terminate(SIGTERM_BOUND)
        assert code == 0, survivor.tail()
        _check(scene, at_kill, step.name)


def _taken_in(jobs: list[JobRow], upstream: int) -> bool:
    """All songs replied to (status message recorded) and ``upstream`` of them sent."""
    states = Counter(job.state for job in jobs)
    return (
        len(jobs) == JOBS
        and all(job.status_message_id is not None for job in jobs)
        and states["queued"] == JOBS - upstream
        and states["submitting"] == 0
    )


async def _after_the_kill(scene: Scene, victim: BotProcess) -> AtKill:
    await scene.until("Telegram to finish what it received", scene.telegram_is_quiet, victim)
    jobs = scene.jobs()
    window = frozenset(j.tags for j in jobs if scene.tracks(j) and j.state != "delivered")
    return AtKill({j.tags: j.state for j in jobs}, window)


def _settled(scene: Scene) -> bool:
    jobs = scene.jobs()
    if len(jobs) != JOBS or any(j.state not in ("delivered", "failed") for j in jobs):
        return False
    # ... and the chat shows it: no status card left saying "queued" or "making".
    return all(
        (status.text or "").startswith(FAILED_MARK) for j in jobs for status in scene.statuses(j)
    )


def _check(scene: Scene, at_kill: AtKill, step: str) -> None:
    jobs = scene.jobs()
    assert sorted(j.tags for j in jobs) == sorted(scene.requests), "a song lost or queued twice"

    # Upstream: one prediction per song at most, and none for a song that never left.
    created = Counter(p.body["tags"] for p in scene.ws.predictions.values())
    sent = Counter(body["tags"] for body in scene.ws.submits)
    assert max(sent.values()) == 1, f"resubmitted: {[t for t, n in sent.items() if n > 1]}"
    assert created == sent

    uncertain = {j.tags for j in jobs if j.state == "failed"}
    for job in jobs:
        tracks = scene.tracks(job)
        statuses = scene.statuses(job)
        assert len(statuses) <= 1, f"{job.tags}: {len(statuses)} status messages"
        if job.state == "failed":
            # Only a kill while the submit was on the wire may fail a song: WaveSpeed bills
            # per request, so it is not sent again, and the quota is given back.
            assert job.error_code == "submit_uncertain", (job.tags, job.error_code)
            assert at_kill.states[job.tags] == "submitting"
            assert tracks == []
            continue
        assert created[job.tags] == 1
        expected = 2 if job.tags in at_kill.window else 1
        assert len(tracks) == expected, (job.tags, at_kill.states[job.tags], len(tracks))
        assert job.delivered_message_id == str(tracks[-1].message_id)

    # The quota ledger: one reservation per song, then exactly one commit or refund of it.
    ledger: dict[int, dict[str, int]] = {}
    for job_id, kind, seconds in read_ledger(scene.database):
        assert kind not in ledger.setdefault(job_id, {}), f"job {job_id}: two {kind} rows"
        ledger[job_id][kind] = seconds
    for job in jobs:
        closing = "commit" if job.state == "delivered" else "refund"
        assert ledger[job.id] == {"reserve": DURATION, closing: DURATION}, (
            job.tags,
            ledger[job.id],
        )

    print(  # the tally README's Guarantees section quotes
        f"\n[{step}] at the kill: {dict(Counter(at_kill.states.values()))}; "
        f"posted twice (accepted, unrecorded): {len(at_kill.window)}; "
        f"failed submit_uncertain: {len(uncertain)}"
    )


async def test_sigterm_finishes_uploads_parks_the_rest_and_a_restart_ends_them_once(
    tmp_path: Path,
) -> None:
    async with (
        FakeTelegram(token=TOKEN, time_scale=POLL_SCALE) as tg,
        FakeWaveSpeed(time_scale=UPSTREAM_SCALE, api_key=WAVESPEED_KEY) as ws,
    ):
        scene = Scene(tmp_path, tg, ws)
        ws.faults.add("poll", status=503, times=None)
        bot = await scene.start("first")
        try:
            await scene.ask_for_songs()
            await scene.until("reply to every request", lambda: _taken_in(scene.jobs(), JOBS), bot)
            # Songs 10-19 stay upstream (their polls are refused); 00-09 finish, and Telegram
            # takes 2 s to answer each upload: SIGTERM comes while one is on the wire.
            ws.faults.clear()
            for job in scene.jobs():
                if _slow(job.tags):
                    ws.faults.add("poll", status=503, about=job.remote_id, times=None)
            slow_uploads = tg.faults.add("sendAudio", delay=2.0, times=None)
            await scene.until(
                "an upload on the wire", lambda: slow_uploads.hits > scene.posted(), bot
            )
        finally:
            code = await bot.terminate(SIGTERM_BOUND)
        assert code == 0, bot.tail()
        jobs = scene.jobs()
        # The uploads Telegram had received were seen through and recorded: none repeats.
        assert scene.telegram_is_quiet()
        assert all(j.state == "delivered" for j in jobs if scene.tracks(j)), bot.tail()
        # The rest are parked, unowned, so the next start takes them up at once.
        parked = {j.tags: j.state for j in jobs if j.state != "delivered"}
        assert all(parked.get(j.tags) == "submitted" for j in jobs if _slow(j.tags))
        assert set(parked.values()) <= {"submitted", "running", "succeeded"}, parked
        assert _lease_owners(scene.database) == set()

        ws.faults.clear()
        tg.faults.clear()
        survivor = await scene.start("survivor")
        try:
            await scene.until("every song settled", lambda: _settled(scene), survivor)
        finally:
            code = await survivor.terminate(SIGTERM_BOUND)
        assert code == 0, survivor.tail()
        _check(scene, AtKill(dict.fromkeys(scene.requests, "sigterm"), frozenset()), "sigterm")
        assert {j.state for j in scene.jobs()} == {"delivered"}


def _slow(tags: str) -> bool:
    return tags >= "crash take 10"


def _lease_owners(database: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(database, timeout=5)) as connection:
        rows = connection.execute("SELECT lease_owner FROM jobs WHERE lease_owner IS NOT NULL")
        return {row[0] for row in rows}
