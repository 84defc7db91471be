"""What the benchmark scripts share: import path, settings, a recording delivery, statistics,
tables and a description of the machine. Not a benchmark itself.

The scripts run the real core (``bot.app.open_core`` + ``Worker``) against the loopback fakes
from ``tests/fakes``; nothing of the bot is patched.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import platform
import random
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bot.app import Core, open_core  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.domain import Destination, Job  # noqa: E402
from bot.ports import DeliveryReceipt, EventKind, JobEvent, TrackFile  # noqa: E402
from bot.service import Accepted, Requester  # noqa: E402

# Wide when piped to a file, so tables are not wrapped into unreadable columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)

WAVESPEED_KEY = "ws-bench-key-not-real"
# Generous limits: the benchmarks measure the pipeline, not the quota rules.
NO_QUOTA = {
    "quota_seconds_per_day": 10**9,
    "max_active_jobs_per_user": 10**6,
    "max_active_jobs_per_chat": 10**6,
}


def settings_for(backend: str, data_dir: Path, base_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"backend": backend, "data_dir": data_dir, **NO_QUOTA}
    if backend == "wavespeed":
        values |= {"wavespeed_api_key": WAVESPEED_KEY, "wavespeed_base_url": base_url}
    else:
        values |= {"acestep_api_url": base_url}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def nominal_runtime(seed: int, low: float = 8.0, high: float = 14.0) -> Any:
    """A fake's ``runtime``: uniform in [low, high] nominal seconds, fixed per prompt text, so
    the same job list takes the same times in every phase of one run (a fair comparison)."""

    def runtime(body: dict[str, Any]) -> float:
        text = str(body.get("tags") or body.get("prompt") or "")
        return random.Random(f"{seed}:{text}").uniform(low, high)

    return runtime


def warm_fake_audio(*durations: float) -> None:
    """Encode the fakes' audio once up front. The fakes encode real MP3s on the first download
    of each length (~1 s each, several at once on a cold cache): that is the fake's cost, not
    the bot's, and would otherwise land in the first jobs' timings."""
    from tests.fakes.audio import make_audio

    for seconds in durations:
        make_audio(float(seconds), "mp3")


# ------------------------------------------------------------------ the core
@contextlib.asynccontextmanager
async def running(settings: Settings, delivery: RecordingDelivery) -> AsyncIterator[Core]:
    """``open_core`` with its worker running and ``delivery`` registered; stopped on exit."""
    async with open_core(settings) as core:
        core.service.register_delivery(delivery)
        stop = asyncio.Event()
        task = asyncio.create_task(core.worker.run(stop))
        try:
            yield core
        finally:
            stop.set()
            await task


def user(n: int, platform_name: str = "telegram") -> Requester:
    return Requester(platform_name, str(1000 + n), f"bench-user-{n}")


async def submit(core: Core, who: Requester, tags: str, duration: int) -> Job:
    request = core.service.validate(tags=tags, duration=duration)
    destination = Destination(who.platform, f"chat-{who.user_id}", who.user_id)
    outcome = await core.service.submit(who, destination, request)
    if not isinstance(outcome, Accepted):
        raise RuntimeError(f"refused: {outcome}")
    return outcome.job


@dataclass
class RecordingDelivery:
    """A chat platform reduced to timestamps: when each job was handed over, or failed.
    ``done`` is set once ``expected`` jobs ended either way."""

    platform: str = "telegram"
    expected: int = 0
    delivered_at: dict[int, float] = field(default_factory=dict)  # job id -> monotonic
    failed: dict[int, str] = field(default_factory=dict)  # job id -> message
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def expect(self, count: int) -> None:
        self.expected = count
        self.delivered_at.clear()
        self.failed.clear()
        self.done.clear()

    def _check(self) -> None:
        if len(self.delivered_at) + len(self.failed) >= self.expected:
            self.done.set()

    async def on_event(self, event: JobEvent) -> None:
        if event.kind == EventKind.FAILED:
            self.failed[event.job.id] = event.job.error_code or "failed"
            self._check()

    async def deliver(self, job: Job, tracks: Sequence[TrackFile]) -> DeliveryReceipt:
        self.delivered_at[job.id] = time.monotonic()
        self._check()
        return DeliveryReceipt(message_id=f"msg-{job.id}")


def to_monotonic(moment: datetime | None) -> float:
    """A database timestamp (aware UTC) on this process's monotonic clock."""
    assert moment is not None
    offset = time.time() - time.monotonic()
    return moment.replace(tzinfo=moment.tzinfo or UTC).timestamp() - offset


# ------------------------------------------------------------------ numbers
def pct(values: Sequence[float], p: float) -> float:
    """The p-th percentile with linear interpolation (numpy's default); nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def fmt(value: float, digits: int = 2) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def verdict(ok: bool) -> str:
    return "[green]yes[/green]" if ok else "[red]NO[/red]"


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    out = Table(title=title, title_justify="left", show_lines=False)
    for i, header in enumerate(headers):
        out.add_column(header, justify="left" if i == 0 else "right")
    for row in rows:
        out.add_row(*row)
    console.print(out)


# ------------------------------------------------------------------ the machine
def status_kib(field_name: str, pid: int | str = "self") -> int:
    """A ``VmRSS``/``VmHWM``-style line of /proc/<pid>/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field_name} not in /proc/{pid}/status")


def status_mb(field_name: str, pid: int | str = "self") -> float:
    """The same in MB (10^6 bytes), the unit the performance goals use."""
    return status_kib(field_name, pid) * 1024 / 1e6


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = status_total_mib()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {mem / 1024:.1f} GiB RAM, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}, "
        f"load average {load}"
    )


def status_total_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024
    return math.nan


def header(title: str, note: str) -> None:
    console.print(f"[bold]{title}[/bold]")
    console.print(f"machine: {machine()}")
    console.print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    console.print(note)
    console.print()
