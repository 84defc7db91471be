"""`GET /metrics` (Prometheus): what one process saw, in a registry of its own.

The shell builds one :class:`Metrics` per process and hands its parts to the seams it watches;
nothing of the core's knows it is measured:

- the backend's HTTP client runs on :meth:`Metrics.transport` (latency and answers per route,
  and which upstream ids were polled),
- downloads go through :class:`MeasuredDownloader`,
- the :class:`bot.notify.Notifier` has it as a watcher (finished jobs, their cost, the time to
  the chat, uploads, quota refusals),
- the adapters' waits on a 429 are read off their own warnings (:class:`RateLimitWaits`):
  discord.py and our Telegram FloodGate both say each wait, with its length, in one line,
- the store (jobs by state, the queue) and Discord's gateway latency are read when scraped.

Labels are bounded: backend, state, platform, a route name from a fixed list, a status code,
a refusal's code. No user, chat, job or upstream id is ever a label.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.backends.download import Downloader
from bot.clock import utcnow
from bot.domain import ACTIVE_STATES, Job, JobState
from bot.errors import StoreUnavailable
from bot.notify import Notifier
from bot.ports import DownloadedAudio, EventKind, JobEvent, TrackFile
from bot.stores import Reports, StateCount

logger = logging.getLogger(__name__)

SCRAPE_STORE_TIMEOUT = 5.0  # seconds the store may take to answer a scrape
POLLED_IDS_KEPT = 4096  # upstream ids whose polls are counted until their job ends
ENDED_IDS_KEPT = 4096  # jobs recently counted as ended, so a relayed repeat is not counted again
# Route names, by the last segments of a backend's URL path (ids never become a label).
ROUTES = ("release_task", "query_result", "format_input", "health", "models", "stats", "balance")
DELIVERY_BUCKETS = (10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200, 1800, 3600, 7200)
POLL_BUCKETS = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89)
# API calls answer within the HTTP timeout (30 s by default); a song's file may take minutes.
CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
TRANSFER_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


_PORTS = {"http": 80, "https": 443}


def route_of(method: str, path: str) -> str:
    """A bounded name for a backend call: ``submit``, ``result`` (WaveSpeed's poll),
    ``webhook_secret``, one of :data:`ROUTES`, else ``other``."""
    parts = [part for part in path.split("/") if part]
    if len(parts) >= 2 and parts[-1] == "result" and "predictions" in parts:
        return "result"
    if parts[-2:] == ["webhook", "secret"]:
        return "webhook_secret"
    if parts and parts[-1] in ROUTES:
        return parts[-1]
    if method == "POST" and parts[:2] == ["api", "v3"]:
        return "submit"  # WaveSpeed's POST /api/v3/{model}
    return "other"


def _polled_ids(route: str, request: httpx.Request) -> list[str]:
    """The upstream ids a poll asks about (one in WaveSpeed's URL, a list in ACE-Step's body)."""
    if route == "result":
        parts = request.url.path.split("/")
        return [parts[parts.index("predictions") + 1]]
    if route == "query_result":
        try:
            ids = json.loads(request.content).get("task_id_list", [])
        except (ValueError, AttributeError, httpx.RequestNotRead):
            return []
        return [str(i) for i in ids] if isinstance(ids, list) else []
    return []


class Metrics:
    """One process's metrics. Build it in the shell; :meth:`render` answers a scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.finished = Counter(
            "acejam_jobs_finished",
            "Jobs that ended, told to the chat",
            ["backend", "outcome"],
            registry=r,
        )
        self.delivery_seconds = Histogram(
            "acejam_delivery_seconds",
            "From the request to the song in the chat",
            ["backend"],
            buckets=DELIVERY_BUCKETS,
            registry=r,
        )
        self.cost = Counter(
            "acejam_cost_usd", "Upstream cost of the jobs that ended (USD)", ["backend"], registry=r
        )
        self.refusals = Counter(
            "acejam_refusals", "New songs refused by the quota policy", ["reason"], registry=r
        )
        self.upstream_seconds = Histogram(
            "acejam_upstream_request_seconds",
            "Backend API calls: time to the answer's headers",
            ["backend", "route"],
            buckets=CALL_BUCKETS,
            registry=r,
        )
        self.upstream_calls = Counter(
            "acejam_upstream_requests",
            "Backend API calls by answer (HTTP status, or timeout / connect_error / error)",
            ["backend", "route", "code"],
            registry=r,
        )
        # A pool of ACE-Step servers: each server's calls, by its key (bounded: the servers
        # configured, "other" for any other host, e.g. a song served elsewhere).
        self.server_calls = Counter(
            "acejam_acestep_server_requests",
            "Calls to each server of an ACE-Step pool by route and answer",
            ["server", "route", "code"],
            registry=r,
        )
        self.polls_per_job = Histogram(
            "acejam_polls_per_job",
            "Status polls a job took upstream",
            ["backend"],
            buckets=POLL_BUCKETS,
            registry=r,
        )
        self.download_bytes = Counter(
            "acejam_download_bytes", "Bytes of finished songs downloaded", ["backend"], registry=r
        )
        self.download_seconds = Histogram(
            "acejam_download_seconds",
            "Downloads of finished songs, by outcome",
            ["backend", "outcome"],
            buckets=TRANSFER_BUCKETS,
            registry=r,
        )
        self.upload_bytes = Counter(
            "acejam_upload_bytes",
            "Bytes of finished takes handed to the chats",
            ["platform"],
            registry=r,
        )
        self.upload_seconds = Histogram(
            "acejam_upload_seconds",
            "Posting a finished song to its chat (retries included)",
            ["platform"],
            buckets=TRANSFER_BUCKETS,
            registry=r,
        )
        self.rate_limit_waits = Counter(
            "acejam_rate_limit_waits", "Waits on a chat platform's 429", ["platform"], registry=r
        )
        self.rate_limit_seconds = Counter(
            "acejam_rate_limit_wait_seconds",
            "Seconds waited on a chat platform's 429",
            ["platform"],
            registry=r,
        )
        self._view = ScrapeView()
        r.register(self._view)
        self._polls: dict[str, int] = {}  # upstream id -> polls, until its job ends
        self._ended: dict[int, None] = {}  # the newest job ids counted as ended, oldest first
        self._scrape = asyncio.Lock()

    # ------------------------------------------------------------ wiring (the shell)
    def watch(self, store: Reports, notifier: Notifier) -> None:
        """Read ``store`` at each scrape, and Discord's latency from its delivery."""
        self._view.store = store
        self._view.gateway = lambda: discord_latency(notifier)

    def transport(
        self, backend: str, limits: httpx.Limits, servers: Mapping[str, str] | None = None
    ) -> MeasuredTransport:
        """``servers``: a pool's servers, origin (``scheme://host:port``) → key, whose calls
        are also counted by server."""
        inner = httpx.AsyncHTTPTransport(limits=limits)
        return MeasuredTransport(inner, self, backend, servers or {})

    def rate_limit_waits_seen(self) -> RateLimitWaits:
        return RateLimitWaits(self)

    # ------------------------------------------------------------ a scrape
    async def render(self) -> tuple[bytes, str]:
        """The text a scrape gets, and its content type."""
        async with self._scrape:  # two scrapes at once read the store once each, in turn
            await self._view.refresh()
            return generate_latest(self.registry), CONTENT_TYPE_LATEST

    # ------------------------------------------------------------ bot.notify.Watcher
    def on_event(self, event: JobEvent) -> None:
        if event.kind in (EventKind.FAILED, EventKind.CANCELLED):
            self._end(event.job, str(event.kind))

    def on_delivered(self, job: Job, tracks: Sequence[TrackFile], seconds: float) -> None:
        if not self._end(job, "delivered"):
            return
        delivered = job.updated_at  # the transition to DELIVERED
        self.delivery_seconds.labels(job.backend).observe(
            max(0.0, (delivered - job.created_at).total_seconds())
        )
        platform = job.destination.platform
        self.upload_seconds.labels(platform).observe(seconds)
        self.upload_bytes.labels(platform).inc(sum(_size(t.path) for t in tracks))

    def on_refused(self, code: str) -> None:
        self.refusals.labels(code).inc()

    def _end(self, job: Job, outcome: str) -> bool:
        """Count a job's end once: with ``--role adapters`` the relay may tell of an end this
        process already told the chat of (a cancel, a failed delivery). False: a repeat."""
        if job.id in self._ended:
            return False
        self._ended[job.id] = None
        if len(self._ended) > ENDED_IDS_KEPT:
            del self._ended[next(iter(self._ended))]
        self.finished.labels(job.backend, outcome).inc()
        if job.cost_usd:
            self.cost.labels(job.backend).inc(job.cost_usd)
        ids = {job.remote_id, *(take.remote_id for take in job.takes)} - {None}
        if ids:
            self.polls_per_job.labels(job.backend).observe(
                sum(self._polls.pop(i, 0) for i in ids if i is not None)
            )
        return True

    # ------------------------------------------------------------ from the transport
    def polled(self, remote_ids: Sequence[str]) -> None:
        for remote_id in remote_ids:
            self._polls[remote_id] = self._polls.pop(remote_id, 0) + 1
        while len(self._polls) > POLLED_IDS_KEPT:  # jobs that ended in another process
            del self._polls[next(iter(self._polls))]

    def downloaded(self, backend: str, got: DownloadedAudio | None, seconds: float) -> None:
        self.download_seconds.labels(backend, "ok" if got else "failed").observe(seconds)
        if got is not None:
            self.download_bytes.labels(backend).inc(got.size)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def discord_latency(notifier: Notifier) -> float | None:
    if "discord" not in notifier.platforms:
        return None
    # Imported only when Discord runs in this process (discord.py is loaded already then).
    from adapters.discord.delivery import DiscordDelivery

    delivery = notifier.delivery_for("discord")
    return delivery.client.latency if isinstance(delivery, DiscordDelivery) else None


class ScrapeView(Collector):
    """What is read at the scrape: jobs by state and backend and the queue, as the store has
    them, and Discord's gateway latency (only once there is one)."""

    def __init__(self) -> None:
        self.store: Reports | None = None
        self.gateway: Callable[[], float | None] = lambda: None
        self._counts: list[StateCount] | None = None
        self._latency: float | None = None
        self._at: datetime = utcnow()

    async def refresh(self) -> None:
        latency = self.gateway()  # NaN before the first heartbeat
        self._latency = latency if latency is not None and math.isfinite(latency) else None
        if self.store is None:
            return
        self._at = utcnow()
        try:
            async with asyncio.timeout(SCRAPE_STORE_TIMEOUT):
                self._counts = await self.store.active_counts()
        except (StoreUnavailable, TimeoutError) as exc:
            logger.warning("metrics: the store did not answer (%s)", exc)
            self._counts = None

    def describe(self) -> Iterator[Metric]:
        return iter(())  # nothing to check at registration; names are fixed below

    def collect(self) -> Iterator[Metric]:
        if self._latency is not None:
            gateway = GaugeMetricFamily(
                "acejam_discord_gateway_latency_seconds", "Discord's gateway heartbeat latency"
            )
            gateway.add_metric([], self._latency)
            yield gateway
        up = GaugeMetricFamily("acejam_store_up", "Did the store answer this scrape (1) or not")
        up.add_metric([], 0 if self._counts is None else 1)
        yield up
        if self._counts is None:
            return
        jobs = GaugeMetricFamily(
            "acejam_jobs", "Unfinished jobs by state", labels=["backend", "state"]
        )
        queued = GaugeMetricFamily(
            "acejam_queue_length", "Jobs waiting in line", labels=["backend"]
        )
        age = GaugeMetricFamily(
            "acejam_queue_oldest_age_seconds",
            "How long the oldest queued job has waited",
            labels=["backend"],
        )
        backends = sorted({count.backend for count in self._counts})
        for backend in backends:
            mine = {c.state: c for c in self._counts if c.backend == backend}
            for state in sorted(ACTIVE_STATES):
                jobs.add_metric([backend, str(state)], mine[state].jobs if state in mine else 0)
            waiting = mine.get(JobState.QUEUED)
            queued.add_metric([backend], waiting.jobs if waiting else 0)
            oldest = (self._at - waiting.oldest).total_seconds() if waiting else 0.0
            age.add_metric([backend], max(0.0, oldest))
        yield from (jobs, queued, age)


class MeasuredTransport(httpx.AsyncBaseTransport):
    """The backend client's transport: each call's time to headers and its answer, by a
    bounded route name, and the upstream ids each poll asked about."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        metrics: Metrics,
        backend: str,
        servers: Mapping[str, str] | None = None,
    ) -> None:
        self._inner = inner
        self._metrics = metrics
        self._backend = backend
        self._servers = servers or {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        route = route_of(request.method, request.url.path)
        started = time.monotonic()
        code = "error"
        try:
            response = await self._inner.handle_async_request(request)
            code = str(response.status_code)
            return response
        except httpx.TimeoutException:
            code = "timeout"
            raise
        except httpx.ConnectError:
            code = "connect_error"
            raise
        finally:
            m = self._metrics
            m.upstream_seconds.labels(self._backend, route).observe(time.monotonic() - started)
            m.upstream_calls.labels(self._backend, route, code).inc()
            if self._servers:
                url = request.url
                origin = f"{url.scheme}://{url.host}:{url.port or _PORTS.get(url.scheme, 0)}"
                m.server_calls.labels(self._servers.get(origin, "other"), route, code).inc()
            m.polled(_polled_ids(route, request))

    async def aclose(self) -> None:
        await self._inner.aclose()


class MeasuredDownloader(Downloader):
    """The backend's :class:`Downloader`, timing each download and counting its bytes."""

    def __init__(self, *args: Any, metrics: Metrics, backend: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._metrics = metrics
        self._backend = backend

    async def fetch(
        self, url: str, dest: Path, *, max_bytes: int, headers: Any = None
    ) -> DownloadedAudio:
        started = time.monotonic()
        got: DownloadedAudio | None = None
        try:
            got = await super().fetch(url, dest, max_bytes=max_bytes, headers=headers)
            return got
        finally:
            self._metrics.downloaded(self._backend, got, time.monotonic() - started)


# What discord.py and our Telegram FloodGate (adapters/telegram/flood.py) log as they wait on
# a 429: (logger, the format's start, which argument holds the seconds).
RATE_LIMIT_LINES = (
    ("discord", "discord.http", "We are being rate limited. %s %s responded with 429. Retrying", 2),
    ("telegram", "adapters.telegram.flood", "%s: flood-limited; retrying in", 1),
)


class RateLimitWaits(logging.Handler):
    """Counts the chat platforms' 429 waits from the lines their clients log as they wait
    (neither offers another hook). Use as ``with``: it listens to those two loggers only.
    A LOG_LEVEL above WARNING silences those lines, and so these counts."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(logging.WARNING)
        self._metrics = metrics

    def __enter__(self) -> RateLimitWaits:
        for _, name, _, _ in RATE_LIMIT_LINES:
            logging.getLogger(name).addHandler(self)
        return self

    def __exit__(self, *_exc: object) -> None:
        for _, name, _, _ in RATE_LIMIT_LINES:
            logging.getLogger(name).removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        for platform, name, start, arg in RATE_LIMIT_LINES:
            if record.name == name and str(record.msg).startswith(start):
                args = record.args if isinstance(record.args, tuple) else ()
                seconds = args[arg] if len(args) > arg else 0.0
                self._metrics.rate_limit_waits.labels(platform).inc()
                if isinstance(seconds, int | float):
                    self._metrics.rate_limit_seconds.labels(platform).inc(float(seconds))
