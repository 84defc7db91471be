"""What admins can do, for every front end (Discord /admin, Telegram admin commands, the
`acejam admin` CLI). Callers check *who* may call these; this module decides nothing about
permissions, only applies what an admin asked, in one place."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from bot.clock import utcnow
from bot.domain import UNLIMITED, ChatRules, Job, Limits
from bot.service import Done, GenerationService, QueueEntry, Refused, Requester
from storage.jobs import SqlJobStore, UsageRow
from storage.rules import SqlRulesStore

MAX_LIST_ITEMS = 200
MAX_WORD_LENGTH = 64


def check_rules(rules: ChatRules, limits: Limits) -> None:
    """Raise ValueError with a sentence for the admin when a setting can't work."""
    for name in ("default_duration", "max_duration"):
        value = getattr(rules, name)
        if value is not None and not limits.min_duration <= value <= limits.max_duration:
            raise ValueError(
                f"{name.replace('_', ' ')} must be between {limits.min_duration} and "
                f"{limits.max_duration} seconds."
            )
    if (
        rules.default_duration is not None
        and rules.max_duration is not None
        and rules.default_duration > rules.max_duration
    ):
        raise ValueError("The default duration can't be longer than the maximum.")
    quotas = [rules.quota_seconds_per_day, *rules.role_quotas.values()]
    if any(q is not None and q < 0 and q != UNLIMITED for q in quotas):
        raise ValueError("A quota is a number of seconds, or unlimited.")
    if rules.max_active_jobs is not None and rules.max_active_jobs < 1:
        raise ValueError("The songs-at-once limit must be at least 1.")
    if rules.monthly_budget_usd is not None and rules.monthly_budget_usd < 0:
        raise ValueError("A budget can't be negative.")
    for name in ("blocked_words", "allowed_channels"):
        items = getattr(rules, name)
        if len(items) > MAX_LIST_ITEMS:
            raise ValueError(f"That list is full ({MAX_LIST_ITEMS} entries).")
        if any(len(item) > MAX_WORD_LENGTH for item in items):
            raise ValueError(f"Entries are at most {MAX_WORD_LENGTH} characters.")


@dataclass(frozen=True)
class UserStanding:
    quota_seconds_per_day: int | None  # None: the chat's or bot's default; -1 unlimited
    blocked: bool  # here or everywhere
    blocked_here: bool = False  # by this scope's own admins


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
        """Change settings; a ValueError carries a sentence for the admin when one is off."""
        unknown = set(changes) - set(ChatRules.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown chat setting(s): {', '.join(sorted(unknown))}")
        limits = self._service.limits

        def checked(current: ChatRules) -> Mapping[str, Any]:
            check_rules(replace(current, **changes), limits)
            return changes

        return await self._rules.update_chat_rules(platform, scope_id, checked, utcnow())

    async def edit_list(
        self,
        platform: str,
        scope_id: str,
        name: str,
        *,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
    ) -> ChatRules:
        """Add to / remove from ``blocked_words`` or ``allowed_channels`` in one step."""
        if name not in ("blocked_words", "allowed_channels"):
            raise ValueError(f"{name} is not a list setting")
        adding = [item.strip() for item in add if item.strip()]
        removing = {item.strip().casefold() for item in remove}
        limits = self._service.limits

        def edited(current: ChatRules) -> Mapping[str, Any]:
            items = [i for i in getattr(current, name) if i.casefold() not in removing]
            items += [i for i in adding if i.casefold() not in {x.casefold() for x in items}]
            check_rules(replace(current, **{name: tuple(items)}), limits)  # type: ignore[arg-type]
            return {name: tuple(items)}

        return await self._rules.update_chat_rules(platform, scope_id, edited, utcnow())

    async def set_role_quota(
        self, platform: str, scope_id: str, role: str, seconds: int | None
    ) -> ChatRules:
        """A role's daily quota (``UNLIMITED`` for none), or None to drop the role's own."""
        limits = self._service.limits

        def edited(current: ChatRules) -> Mapping[str, Any]:
            quotas = {k: v for k, v in current.role_quotas.items() if k != role}
            if seconds is not None:
                quotas[role] = seconds
            check_rules(replace(current, role_quotas=quotas), limits)
            return {"role_quotas": quotas}

        return await self._rules.update_chat_rules(platform, scope_id, edited, utcnow())

    # ------------------------------------------------------------ users
    async def standing(self, platform: str, user_id: str, scope_id: str) -> UserStanding:
        """A user's own settings in ``scope_id``; ``blocked`` also counts an everywhere-block."""
        rules = await self._rules.user_rules(platform, user_id, scope_id)
        own = next((r for r in rules if r.scope_id == scope_id), None)
        return UserStanding(
            quota_seconds_per_day=own.quota_seconds_per_day if own else None,
            blocked=any(r.blocked for r in rules),
            blocked_here=own is not None and own.blocked,
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
            blocked=current.blocked_here,  # keep this scope's own block, nothing wider
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
