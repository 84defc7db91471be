"""The phases of one worker, wired once: what `Worker` hands a job to at each step."""

from __future__ import annotations

from dataclasses import dataclass

from bot.notify import Notifier
from bot.polling import PollPlanner
from bot.ports import Backend
from bot.retry import RetryPolicy
from bot.stores import RulesStore, WorkerStore
from bot.worker.config import WorkerConfig
from bot.worker.deliver import Deliverer
from bot.worker.failure import Failures
from bot.worker.finish import Finisher
from bot.worker.forecast import Forecast
from bot.worker.poll import Poller
from bot.worker.positions import Positions
from bot.worker.submit import Submitter

MAX_POLL_BACKOFF = 30.0


@dataclass(frozen=True)
class Phases:
    forecast: Forecast
    submitter: Submitter
    poller: Poller
    finisher: Finisher
    deliverer: Deliverer
    failures: Failures
    positions: Positions

    @classmethod
    def build(
        cls,
        *,
        store: WorkerStore,
        rules: RulesStore,
        backend: Backend,
        notifier: Notifier,
        config: WorkerConfig,
        planner: PollPlanner | None,
    ) -> Phases:
        min_interval = backend.min_poll_interval * config.time_scale
        max_backoff = MAX_POLL_BACKOFF * config.time_scale
        planner = planner or PollPlanner(
            min_interval=min_interval,
            max_backoff=max_backoff,
            safety_net=lambda: backend.uses_webhook,  # changes at run time
        )
        # Every step of a job backs off alike, from one poll interval up to MAX_POLL_BACKOFF.
        policy = RetryPolicy(base=min_interval, cap=max_backoff)
        forecast = Forecast(planner, min_interval=min_interval)
        lease = config.lease_seconds
        return cls(
            forecast=forecast,
            submitter=Submitter(
                store=store, backend=backend, forecast=forecast, policy=policy, lease_seconds=lease
            ),
            poller=Poller(
                store=store,
                backend=backend,
                notifier=notifier,
                forecast=forecast,
                policy=policy,
                job_timeout_seconds=config.job_timeout_seconds,
                min_interval=min_interval,
                time_scale=config.time_scale,
            ),
            finisher=Finisher(
                store=store,
                backend=backend,
                notifier=notifier,
                forecast=forecast,
                policy=policy,
                config=config,
            ),
            deliverer=Deliverer(
                store=store, rules=rules, notifier=notifier, policy=policy, lease_seconds=lease
            ),
            failures=Failures(
                store=store, backend=backend, notifier=notifier, secrets=config.secrets
            ),
            positions=Positions(store=store, backend=backend, notifier=notifier, forecast=forecast),
        )
