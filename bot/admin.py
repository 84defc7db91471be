"""What admins can do, for every front end (Discord /admin, Telegram admin commands, the
`acejam admin` CLI). Callers check *who* may call these; this module decides nothing about
permissions, only applies what an admin asked, in one place.

Two kinds of admin: the operator (`acejam admin`, ``operator=True``), whose settings are
ceilings, and a guild's or chat's admins, who may only choose less. Values stored before the
ceilings were checked are capped when read (`bot.quotas.effective_policy`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from bot import quotas
from bot.admin_grammar import MAX_LIST_ITEMS, MAX_WORD_LENGTH
from bot.clock import utcnow
from bot.domain import UNLIMITED, ChatRules, Job, Limits, UserRules
from bot.messages import humanize_seconds
from bot.service import Done, GenerationService, QueueEntry, Refused, Requester
from bot.stores import RulesStore, ServiceStore, UsageRow

OPERATOR_FIELDS = frozenset({"operator_quota_seconds_per_day", "operator_max_active_jobs"})
OPERATORS_ONLY = "Only the bot's operator can change that."


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
    seconds = [
        rules.quota_seconds_per_day,
        rules.operator_quota_seconds_per_day,
        *rules.role_quotas.values(),
    ]
    if any(q is not None and q < 0 and q != UNLIMITED for q in seconds):
        raise ValueError("A quota is a number of seconds, or unlimited.")
    for jobs in (rules.max_active_jobs, rules.operator_max_active_jobs):
        if jobs is not None and jobs < 1:
            raise ValueError("The songs-at-once limit must be at least 1.")
    if rules.monthly_budget_usd is not None and rules.monthly_budget_usd < 0:
        raise ValueError("A budget can't be negative.")
    if rules.jam_pays not in ("host", "chat"):
        raise ValueError("jam_pays is host (the jam's host pays) or chat (the chat's budget).")
    if rules.jam_pays == "chat" and rules.monthly_budget_usd is None:
        raise ValueError(
            "jam_pays=chat takes the jams' takes from the chat's monthly budget: set "
            "monthly_budget_usd first."
        )
    for name in ("blocked_words", "allowed_channels"):
        items = getattr(rules, name)
        if len(items) > MAX_LIST_ITEMS:
            raise ValueError(f"That list is full ({MAX_LIST_ITEMS} entries).")
        if any(len(item) > MAX_WORD_LENGTH for item in items):
            raise ValueError(f"Entries are at most {MAX_WORD_LENGTH} characters.")


def _over_quota_ceiling(ceiling: int, whom: str = "") -> ValueError:
    return ValueError(
        f"The bot's operator allows at most {humanize_seconds(ceiling)} a day{whom} here; "
        "only they can raise it."
    )


def check_ceilings(before: ChatRules, after: ChatRules, base: quotas.QuotaPolicy) -> None:
    """Raise ValueError naming the ceiling when a chat admin's change would lift a limit
    past what the operator allows (only what changes is checked: an old value stored before
    the ceilings existed doesn't block unrelated edits; it is capped when read)."""
    if before.operator_quota_seconds_per_day != after.operator_quota_seconds_per_day or (
        before.operator_max_active_jobs != after.operator_max_active_jobs
    ):
        raise ValueError(OPERATORS_ONLY)
    ceiling = quotas.chat_quota_ceiling(base, after)
    changed: list[int | None] = [
        seconds
        for role, seconds in after.role_quotas.items()
        if before.role_quotas.get(role) != seconds
    ]
    if after.quota_seconds_per_day != before.quota_seconds_per_day:
        changed.append(after.quota_seconds_per_day)
    if any(s is not None and quotas.exceeds(s, ceiling) for s in changed):
        raise _over_quota_ceiling(ceiling)
    most = quotas.chat_jobs_ceiling(base, after)
    jobs = after.max_active_jobs
    if jobs != before.max_active_jobs and jobs is not None and most is not None and jobs > most:
        songs = "1 song" if most == 1 else f"{most} songs"
        raise ValueError(
            f"The bot's operator allows at most {songs} at once here; only they can raise it."
        )


def raise_ceilings(
    current: ChatRules, changes: Mapping[str, Any], base: quotas.QuotaPolicy
) -> dict[str, Any]:
    """The operator's changes, plus the ceilings they lift: a value the operator sets above
    this chat's ceiling becomes its new ceiling."""
    raised = dict(changes)
    after = replace(current, **changes)
    ceiling = quotas.chat_quota_ceiling(base, after)
    for seconds in (after.quota_seconds_per_day, *after.role_quotas.values()):
        if seconds is not None and quotas.exceeds(seconds, ceiling):
            ceiling = seconds
    if ceiling != quotas.chat_quota_ceiling(base, after):
        raised["operator_quota_seconds_per_day"] = ceiling
    most = quotas.chat_jobs_ceiling(base, after)
    if after.max_active_jobs is not None and most is not None and after.max_active_jobs > most:
        raised["operator_max_active_jobs"] = after.max_active_jobs
    return raised


@dataclass(frozen=True)
class UserStanding:
    quota_seconds_per_day: int | None  # None: the chat's or bot's default; -1 unlimited
    blocked: bool  # here or everywhere
    blocked_here: bool = False  # by this scope's own admins


class AdminService:
    def __init__(
        self,
        *,
        service: GenerationService,
        store: ServiceStore,
        rules: RulesStore,
        operator: bool = False,
    ) -> None:
        self._service = service
        self._store = store
        self._rules = rules
        # The operator's settings are the ceilings; a chat's admins may only go below them.
        self.operator = operator

    def _checked(self, changes: Mapping[str, Any]) -> Callable[[ChatRules], Mapping[str, Any]]:
        """``changes`` as applied under the row lock: checked, and for the operator with the
        ceilings they lift."""
        limits, base = self._service.limits, self._service.policy

        def checked(current: ChatRules) -> Mapping[str, Any]:
            resolved = raise_ceilings(current, changes, base) if self.operator else changes
            after = replace(current, **resolved)
            check_rules(after, limits)
            if not self.operator:
                check_ceilings(current, after, base)
            return resolved

        return checked

    # ------------------------------------------------------------ chat settings
    async def chat_rules(self, platform: str, scope_id: str) -> ChatRules:
        return await self._rules.chat_rules(platform, scope_id) or ChatRules()

    async def update_chat_rules(self, platform: str, scope_id: str, **changes: Any) -> ChatRules:
        """Change settings; a ValueError carries a sentence for the admin when one is off."""
        unknown = set(changes) - set(ChatRules.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown chat setting(s): {', '.join(sorted(unknown))}")
        return await self._rules.update_chat_rules(
            platform, scope_id, self._checked(changes), utcnow()
        )

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

        def edited(current: ChatRules) -> Mapping[str, Any]:
            items = [i for i in getattr(current, name) if i.casefold() not in removing]
            items += [i for i in adding if i.casefold() not in {x.casefold() for x in items}]
            return self._checked({name: tuple(items)})(current)

        return await self._rules.update_chat_rules(platform, scope_id, edited, utcnow())

    async def set_role_quota(
        self, platform: str, scope_id: str, role: str, seconds: int | None
    ) -> ChatRules:
        """A role's daily quota (``UNLIMITED`` for none), or None to drop the role's own."""

        def edited(current: ChatRules) -> Mapping[str, Any]:
            roles = {k: v for k, v in current.role_quotas.items() if k != role}
            if seconds is not None:
                roles[role] = seconds
            return self._checked({"role_quotas": roles})(current)

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
        """``seconds``: a daily quota, ``UNLIMITED`` (-1), or None for the default.

        The operator's is a grant (it may exceed the settings, and replaces what the scope's
        admins chose for the user); a chat admin's may not exceed the user's ceiling."""
        if seconds is not None and seconds < 0 and seconds != UNLIMITED:
            raise ValueError("a quota is a number of seconds, or unlimited")
        changes: dict[str, int | None]
        if self.operator:
            changes = {"operator_quota_seconds_per_day": seconds, "quota_seconds_per_day": None}
        else:
            chat, overrides = await self._rules.rules_for(platform, user_id, scope_id)
            ceiling = quotas.user_quota_ceiling(self._service.policy, chat, overrides, scope_id)
            if seconds is not None and quotas.exceeds(seconds, ceiling):
                raise _over_quota_ceiling(ceiling, " for them")
            changes = {"quota_seconds_per_day": seconds}
        await self._rules.update_user_rules(
            platform, user_id, scope_id, lambda _: changes, utcnow()
        )

    async def set_blocked(
        self, platform: str, user_id: str, scope_id: str, blocked: bool, note: str | None = None
    ) -> None:
        def block(_: UserRules) -> Mapping[str, Any]:
            return {"blocked": blocked, "note": note}

        await self._rules.update_user_rules(platform, user_id, scope_id, block, utcnow())

    # ------------------------------------------------------------ jobs
    async def queue(
        self, platform: str | None = None, scope_id: str | None = None
    ) -> list[QueueEntry]:
        jobs = await self._store.active_jobs(platform=platform, scope=scope_id)
        places = await self._store.positions(jobs)
        return [QueueEntry(job, places.get(job.id, 0)) for job in jobs]

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
