"""What admins can do, for every front end (Discord /admin, Telegram admin commands, the
`acejam admin` CLI). Callers check *who* may call these; this module decides nothing about
permissions, only applies what an admin asked, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.clock import utcnow
from bot.domain import EVERYWHERE, UNLIMITED, ChatRules, Job
from bot.service import Done, GenerationService, QueueEntry, Refused, Requester
from storage.jobs import SqlJobStore, UsageRow
from storage.rules import SqlRulesStore


@dataclass(frozen=True)
class UserStanding:
    quota_seconds_per_day: int | None  # None: the chat's or bot's default; -1 unlimited
    blocked: bool


class AdminService:
    def __init__(
        self, *, service: GenerationService, store: SqlJobStore, rules: SqlRulesStore
    ) -> None:
        self._service = service
        self._store = store
        self._rules = rules

    # ------------------------------------------------------------ chat settings
    async def chat_rules(self, platform: str, scope_id: str) -> ChatRules:
        return await self._rules.chat_rules(platform, scope_id) or ChatRules()

    async def update_chat_rules(self, platform: str, scope_id: str, **changes: Any) -> ChatRules:
        return await self._rules.update_chat_rules(platform, scope_id, changes, utcnow())

    # ------------------------------------------------------------ users
    async def standing(self, platform: str, user_id: str, scope_id: str) -> UserStanding:
        rules = [r for r in await self._rules.user_rules(platform, user_id, scope_id)]
        own = next((r for r in rules if r.scope_id == scope_id), None)
        return UserStanding(
            quota_seconds_per_day=own.quota_seconds_per_day if own else None,
            blocked=any(r.blocked for r in rules),
        )

    async def set_user_quota(
        self, platform: str, user_id: str, scope_id: str, seconds: int | None
    ) -> None:
        """``seconds``: a daily quota, ``UNLIMITED`` (-1), or None for the default."""
        if seconds is not None and seconds < 0 and seconds != UNLIMITED:
            raise ValueError("a quota is a number of seconds, or unlimited")
        current = await self.standing(platform, user_id, scope_id)
        await self._rules.set_user_rules(
            platform,
            user_id,
            scope_id,
            utcnow(),
            quota_seconds_per_day=seconds,
            blocked=current.blocked and scope_id != EVERYWHERE,
        )

    async def set_blocked(
        self, platform: str, user_id: str, scope_id: str, blocked: bool, note: str | None = None
    ) -> None:
        current = await self.standing(platform, user_id, scope_id)
        await self._rules.set_user_rules(
            platform,
            user_id,
            scope_id,
            utcnow(),
            quota_seconds_per_day=current.quota_seconds_per_day,
            blocked=blocked,
            note=note,
        )

    # ------------------------------------------------------------ jobs
    async def queue(
        self, platform: str | None = None, scope_id: str | None = None
    ) -> list[QueueEntry]:
        jobs = await self._store.active_jobs(platform=platform, scope=scope_id)
        orders: dict[str, list[int]] = {}
        entries = []
        for job in jobs:
            order = orders.get(job.backend)
            if order is None:
                order = orders[job.backend] = await self._store.queue_order(job.backend)
            entries.append(QueueEntry(job, order.index(job.id) + 1 if job.id in order else 0))
        return entries

    async def cancel(self, job_id: int, admin: Requester) -> Done | Refused:
        """Cancel anyone's job; the owner is told it was an admin."""
        return await self._service.cancel(job_id, admin)

    async def job(self, job_id: int) -> Job | None:
        return await self._store.get(job_id)

    async def usage(
        self, *, days: int = 30, platform: str | None = None, scope_id: str | None = None
    ) -> list[UsageRow]:
        since = utcnow() - timedelta(days=days)
        return await self._store.usage_report(since=since, platform=platform, scope=scope_id)
