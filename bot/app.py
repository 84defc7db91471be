"""The one place that builds things: engine, HTTP client, backend, service, worker,
adapters. It owns their lifecycles (nested ``async with``) and the process signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

import httpx

from bot import quotas
from bot.admin import AdminService
from bot.backends.acestep_build import build_acestep, pool_hosts, pool_origins
from bot.backends.download import Downloader, DownloadPolicy
from bot.backends.probe import probe_acestep, probe_wavespeed
from bot.backends.wavespeed import WaveSpeedBackend
from bot.backends.wavespeed_edits import wavespeed_prices
from bot.config import Settings
from bot.domain import Limits
from bot.errors import ConfigError, StoreUnavailable
from bot.jams.clock import JamClock
from bot.jams.service import JamService
from bot.metrics import MeasuredDownloader, Metrics
from bot.notify import Notifier
from bot.ports import Backend, Nudge, Nudges
from bot.pricing import Prices
from bot.relay import EventRelay, NoNudges, forward_events
from bot.service import GenerationService
from bot.sources import SourceFiles
from bot.stores import CoreStore, JamStore, RulesStore
from bot.worker import Worker, WorkerConfig
from storage.connect import open_database
from storage.db import read_session_factory, session_factory, upgrade
from storage.jams import SqlJamStore
from storage.jobs import SqlJobStore
from storage.nudges import open_nudges
from storage.rules import SqlRulesStore

logger = logging.getLogger(__name__)


def backend_url(settings: Settings) -> str:
    if settings.backend_name == "wavespeed":
        return settings.wavespeed_base_url
    return settings.acestep_urls[0]  # a pool's others: pool_hosts


def build_downloader(
    settings: Settings, timeout: httpx.Timeout, metrics: Metrics | None = None
) -> Downloader:
    """Downloads obey the policy for the configured backend's origin (see DownloadPolicy)."""
    allowed = [*settings.download_allowed_hosts, *pool_hosts(settings)]
    policy = DownloadPolicy(backend_url(settings), allowed)
    deadline = settings.download_timeout_seconds
    if metrics is None:
        return Downloader(policy, timeout=timeout, deadline=deadline)
    return MeasuredDownloader(
        policy, timeout=timeout, deadline=deadline, metrics=metrics, backend=settings.backend_name
    )


def backend_client(settings: Settings, metrics: Metrics) -> httpx.AsyncClient:
    """The backend's shared HTTP client, each call measured (bot/metrics.py)."""
    timeout = httpx.Timeout(settings.http_timeout_seconds, connect=10.0)
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=20)
    transport = metrics.transport(settings.backend_name, limits, pool_origins(settings))
    return httpx.AsyncClient(timeout=timeout, transport=transport)


def build_backend(settings: Settings, http: httpx.AsyncClient, downloads: Downloader) -> Backend:
    if settings.backend_name == "wavespeed":
        assert settings.wavespeed_api_key is not None  # checked by Settings
        try:
            return WaveSpeedBackend(
                http,
                api_key=settings.wavespeed_api_key.get_secret_value(),
                base_url=settings.wavespeed_base_url,
                model=settings.wavespeed_model,
                downloads=downloads,
                max_concurrency=settings.wavespeed_max_concurrency,
                webhook_url=settings.wavespeed_webhook_url,
                edit_models=settings.wavespeed_edit_models,
            )
        except ValueError as exc:  # a model it has no schema for
            raise ConfigError(f"Invalid setting WAVESPEED_EDIT_MODELS: {exc}") from None
    return build_acestep(settings, http, downloads)  # one server, or a pool of them


@dataclass
class Core:
    settings: Settings
    store: CoreStore
    rules: RulesStore
    service: GenerationService
    worker: Worker
    backend: Backend
    metrics: Metrics
    # How this process and the others on its database wake each other (bot.ports.Nudge).
    nudges: Nudges = field(default_factory=NoNudges)
    # Renders, opens voting and closes jams on time (run where the adapters run).
    jam_clock: JamClock | None = None

    @property
    def admin(self) -> AdminService:
        """The operator's (`acejam admin`); chat admins go through ``service.admin``."""
        return self.service.operator_admin


@contextlib.asynccontextmanager
async def open_core(settings: Settings, *, generates: bool = True) -> AsyncIterator[Core]:
    """Database (migrated), backend client, service and worker, closed on exit."""
    engine = await open_database(settings)
    try:
        await upgrade(engine)
        metrics = Metrics()  # this process's own (each serves its /metrics)
        # The adapters' 429 waits are counted while the core is open.
        with metrics.rate_limit_waits_seen():
            async with (
                backend_client(settings, metrics) as http,
                build_downloader(settings, http.timeout, metrics) as downloads,
                open_nudges(engine) as nudges,
            ):
                backend = build_backend(settings, http, downloads)
                sessions, reads = session_factory(engine), read_session_factory(engine)
                store = SqlJobStore(sessions, reads)
                rules = SqlRulesStore(sessions, reads)
                yield assemble_core(
                    settings,
                    backend,
                    store,
                    rules,
                    generates=generates,
                    metrics=metrics,
                    nudges=nudges,
                    jams=SqlJamStore(sessions, reads),
                )
    finally:
        await engine.dispose()


def assemble_core(
    settings: Settings,
    backend: Backend,
    store: CoreStore,
    rules: RulesStore,
    *,
    generates: bool = True,
    metrics: Metrics | None = None,
    nudges: Nudges | None = None,
    jams: JamStore | None = None,
) -> Core:
    """The service and the worker on these stores and this backend (tests assemble the
    same core on in-memory stores: tests/kit/memory_core.py)."""
    metrics = metrics or Metrics()
    nudges = nudges or NoNudges()
    # Events for chats another process serves go to it as nudges (bot/relay.py).
    notifier = Notifier({}, watchers=(metrics,), elsewhere=forward_events(nudges))
    metrics.watch(store, notifier)
    # Each edit at its own model's price where it runs on one (WaveSpeed's edit models).
    prices = (
        wavespeed_prices(settings, backend.capabilities.edit_models)
        if backend.name == "wavespeed"
        else Prices()
    )
    service = GenerationService(
        store=store,
        rules=rules,
        notifier=notifier,
        backend_name=backend.name,
        # The backend's own limits, so nothing is queued that it would refuse.
        limits=Limits(
            backend.min_duration,
            min(settings.max_duration, backend.max_duration),
            max_tags_chars=backend.max_tags_chars,
            max_lyrics_chars=backend.max_lyrics_chars,
            max_takes=settings.max_takes,
            controls_in_tags=not backend.capabilities.controls_as_parameters,
        ),
        policy=quotas.QuotaPolicy(
            seconds_per_day=settings.quota_seconds_per_day,
            max_active_jobs=settings.max_active_jobs_per_user,
            max_active_jobs_per_scope=settings.max_active_jobs_per_chat,
            total_budget_usd=settings.monthly_budget_usd,
        ),
        price_per_second_usd=prices.song,
        price_of=prices.per_second,
        blocked_words=tuple(settings.blocked_words),
        capabilities=lambda: backend.capabilities,
        sources=SourceFiles(settings.data_dir, max_seconds=settings.max_duration),
        max_extended_duration=min(settings.max_extended_duration, backend.max_duration),
    )
    worker = Worker(
        store=store,
        rules=rules,
        backend=backend,
        notifier=notifier,
        config=WorkerConfig(
            audio_dir=settings.audio_dir,
            sources_dir=service.sources.root,
            lease_seconds=settings.lease_seconds,
            job_timeout_seconds=settings.job_timeout_seconds,
            max_download_bytes=settings.max_download_mb * 1024 * 1024,
            time_scale=settings.poll_time_scale,
            audio_retention=timedelta(days=settings.audio_retention_days),
            event_retention=timedelta(days=settings.event_retention_days),
            generates=generates,
            secrets=tuple(settings.secrets()),
        ),
        nudges=nudges,
    )
    service.on_new_work(worker.nudge)
    clock = None
    if jams is not None:  # PUBLIC_URL switches the jam board on
        service.attach_jams(JamService(service, jams, rules, public_url=settings.public_url))
        clock = JamClock(service.jams)
        notifier.watch(clock)  # a jam's take delivered or failed here wakes it
    # A song queued here may be claimed by a worker process (and its place told by ours).
    service.on_new_work(lambda: nudges.send(Nudge.WORK, backend.name))
    return Core(settings, store, rules, service, worker, backend, metrics, nudges, clock)


@contextlib.asynccontextmanager
async def web_listener(
    core: Core, *, webhooks: bool = True, adapters: Iterable[str] = (), backend: bool = True
) -> AsyncIterator[None]:
    """The bot's HTTP listener while it runs: /healthz and /readyz whenever ``WEB_LISTEN`` is
    set, and WaveSpeed's webhooks when configured (on ``WEB_LISTEN``, else on
    ``WAVESPEED_WEBHOOK_LISTEN`` as before there was a listener of its own), and the jam
    board on ``WEB_LISTEN`` when ``PUBLIC_URL`` is set.

    Ready means: the database answers a read, every adapter in ``adapters`` has connected
    (registered its delivery), and (``backend``) the backend answered a free read within the
    last minutes (bot/backends/probe.py)."""
    settings = core.settings
    url = settings.wavespeed_webhook_url
    hooks = webhooks and url is not None and isinstance(core.backend, WaveSpeedBackend)
    listen = settings.web_listen or (settings.wavespeed_webhook_listen if hooks else None)
    if listen is None:
        yield
        return
    # Imported only here: the listener brings aiohttp (~10 MB), which nothing else needs
    # unless discord.py is loaded.
    from bot.web import Handler, Recently, WebListener
    from bot.webhooks import WebhookReceiver

    receiver = None
    if hooks and url is not None and isinstance(core.backend, WaveSpeedBackend):
        receiver = WebhookReceiver(
            backend=core.backend,
            public_url=url,
            on_status=core.worker.on_remote_status,
            time_scale=settings.poll_time_scale,
        )
    expected = frozenset(adapters)

    async def database() -> str | None:
        try:
            await core.store.list_jobs(limit=1)
        except StoreUnavailable as exc:
            return f"does not answer ({exc.kind})"
        return None

    async def connected() -> str | None:
        missing = expected - core.service.notifier.platforms
        return f"not connected: {', '.join(sorted(missing))}" if missing else None

    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as http:
        checks = {"database": database, "adapters": connected}
        if backend:
            checks["backend"] = Recently(lambda: backend_answers(http, settings))
        routes: tuple[tuple[str, str, Handler], ...] = (receiver.route,) if receiver else ()
        if settings.public_url is not None and settings.web_listen is not None:
            # The jam board (docs/jamboard.md): it reads jams by their board token only.
            from bot.jamboard import JamBoard

            routes += JamBoard(core.service.jams.by_token).routes
        listener = WebListener(listen, checks, routes, metrics=core.metrics.render)
        await listener.start()
        try:
            if receiver is not None:
                await receiver.start()
            try:
                yield
            finally:
                if receiver is not None:
                    await receiver.stop()
        finally:
            await listener.stop()


def webhook_receiver(
    core: Core, *, enabled: bool = True
) -> contextlib.AbstractAsyncContextManager[None]:
    """The listener with the webhooks (tests and benches that run no adapters)."""
    return web_listener(core, webhooks=enabled)


async def backend_answers(http: httpx.AsyncClient, settings: Settings) -> bool:
    """One free read of the backend (the first of doctor's checks) succeeded."""
    if settings.backend_name == "wavespeed":
        assert settings.wavespeed_api_key is not None  # checked by Settings
        found = await probe_wavespeed(
            http,
            base_url=settings.wavespeed_base_url,
            api_key=settings.wavespeed_api_key.get_secret_value(),
        )
        return found.ok
    servers = settings.acestep_servers  # a pool is ready while any of its servers answers
    probes = [probe_acestep(http, base_url=s.url, api_key=s.api_key) for s in servers]
    return any(found[0].ok for found in await asyncio.gather(*probes))


# An adapter runs until ``stop`` is set; it registers its Delivery with the service once
# it can post messages.
Adapter = Callable[[Settings, GenerationService, asyncio.Event], Awaitable[None]]


def enabled_adapters(settings: Settings) -> dict[str, Adapter]:
    adapters: dict[str, Adapter] = {}
    if settings.telegram_token is not None:
        from adapters.telegram.app import serve as serve_telegram

        adapters["telegram"] = serve_telegram
    if settings.discord_token is not None:
        from adapters.discord.client import serve as serve_discord

        adapters["discord"] = serve_discord
    return adapters


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)


Role = Literal["all", "worker", "adapters"]


async def run_bot(
    settings: Settings, stop: asyncio.Event | None = None, *, role: Role = "all"
) -> None:
    """`acejam run`: until SIGINT/SIGTERM, run

    - ``all``: the generation worker and every adapter with a token (one machine);
    - ``worker``: only the worker (scale-out: any number, sharing one PostgreSQL);
    - ``adapters``: only the chat adapters, delivering finished songs and relaying
      job events from the database.
    """
    stop = stop or asyncio.Event()
    install_signal_handlers(stop)
    async with open_core(settings, generates=role != "adapters") as core:
        # Before the adapters start: they offer what the backend can do (/describe).
        await core.backend.refresh_capabilities()
        adapters = enabled_adapters(settings) if role != "worker" else {}
        logger.info(
            "AceJam running (%s): backend %s at %s, adapters: %s",
            role,
            core.backend.name,
            _host_of(settings),
            ", ".join(adapters) or "none",
        )
        async with (
            web_listener(
                core,
                webhooks=role != "adapters",
                adapters=adapters,
                backend=role != "adapters",
            ),
            asyncio.TaskGroup() as group,
        ):
            group.create_task(serve_role(core, stop, role=role, platforms=adapters))
            for name, serve in adapters.items():
                group.create_task(
                    _until_stopped(serve(settings, core.service, stop), stop), name=name
                )


async def serve_role(
    core: Core, stop: asyncio.Event, *, role: Role, platforms: Iterable[str]
) -> None:
    """The worker (and for ``adapters`` the event relay) until ``stop``, woken by the
    other processes on the database for what this role acts on (bot.ports.Nudge); their
    timers stay the safety net. ``platforms``: the chats this process delivers to."""
    nudges, worker = core.nudges, core.worker

    def work(_: str) -> None:  # a song queued, or one in flight handed back
        worker.nudge()
        worker.adopt_soon()

    if role != "adapters":
        nudges.on(Nudge.WORK, core.backend.name, work)
    for platform in platforms:
        nudges.on(Nudge.DELIVER, platform, lambda _: worker.adopt_soon())
    async with asyncio.TaskGroup() as group:
        group.create_task(_until_stopped(worker.run(stop), stop))
        if role != "worker" and core.jam_clock is not None:  # where the adapters run
            group.create_task(_until_stopped(core.jam_clock.run(stop), stop))
        if role == "adapters":
            relay = EventRelay(store=core.store, notifier=core.service.notifier)
            for platform in platforms:
                nudges.on(Nudge.EVENT, platform, relay.hear)
            group.create_task(_until_stopped(relay.run(stop), stop))


async def _until_stopped(coro: Awaitable[None], stop: asyncio.Event) -> None:
    try:
        await coro
    finally:
        stop.set()  # one part ending (or crashing) stops the others gracefully


def _host_of(settings: Settings) -> str:
    if settings.backend_name == "wavespeed":
        return urlsplit(settings.wavespeed_base_url).netloc
    return ", ".join(urlsplit(url).netloc for url in settings.acestep_urls)
