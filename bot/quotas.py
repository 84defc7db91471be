"""Who may queue what: quota and active-job rules, as pure functions.

Quotas are seconds of audio per user per rolling 24 h. A job *reserves* its seconds when
queued, *commits* them when delivered and gets a *refund* when it fails or is cancelled;
the ledger rows live in `storage/`, the arithmetic here.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.domain import EVERYWHERE, UNLIMITED, ChatRules, UserRules
from bot.units import humanize_seconds

QUOTA_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class UsageSnapshot:
    """What a user has in play right now, for quota decisions."""

    active_jobs: int
    # (reserved_at, seconds) of every reservation in the window not given back
    reservations: tuple[tuple[datetime, int], ...]
    scope_active_jobs: int = 0  # unfinished jobs in the same guild/chat
    scope_month_cost_usd: float = 0.0  # this calendar month (UTC), queued jobs included
    total_month_cost_usd: float = 0.0

    @property
    def used_seconds(self) -> int:
        return sum(seconds for _, seconds in self.reservations)


@dataclass(frozen=True)
class QuotaPolicy:
    seconds_per_day: int  # UNLIMITED (-1) for no limit
    max_active_jobs: int
    max_active_jobs_per_scope: int | None = None
    scope_budget_usd: float | None = None
    total_budget_usd: float | None = None
    job_cost_usd: float = 0.0  # what the job being admitted will cost

    @property
    def unlimited(self) -> bool:
        return self.seconds_per_day == UNLIMITED


@dataclass(frozen=True)
class Refusal:
    """Why a request can't be queued now. ``code`` is stable; ``frees_at`` says when it can."""

    code: str  # "quota" | "active_jobs"
    message: str
    frees_at: datetime | None = None


@dataclass(frozen=True)
class QuotaStatus:
    limit_seconds: int
    used_seconds: int
    active_jobs: int
    max_active_jobs: int
    next_free_at: datetime | None  # when the oldest reservation leaves the window

    @property
    def unlimited(self) -> bool:
        return self.limit_seconds == UNLIMITED

    @property
    def remaining_seconds(self) -> int:
        if self.unlimited:
            return 10**9
        return max(0, self.limit_seconds - self.used_seconds)


def frees_at(usage: UsageSnapshot, needed: int, limit: int) -> datetime | None:
    """When enough reservations leave the window for ``needed`` more seconds to fit."""
    excess = usage.used_seconds + needed - limit
    if excess <= 0:
        return None
    released = 0
    for reserved_at, seconds in usage.reservations:  # oldest first
        released += seconds
        if released >= excess:
            return reserved_at + QUOTA_WINDOW
    return None  # only finishing active jobs can't help: the request is larger than the quota


@dataclass(frozen=True)
class UsageNeeds:
    """Which parts of a :class:`UsageSnapshot` :func:`admit` reads under a policy; the
    store skips the rest (a month's cost is a scan of the month's jobs, a chat's a scan of
    the chat's; its songs in the works are a few index entries)."""

    reservations: bool = True
    month_cost: bool = True
    scope: bool = True  # the chat's songs in the works (and, on PostgreSQL, its lock)
    scope_cost: bool = True  # the chat's spending this month


def usage_needs(policy: QuotaPolicy) -> UsageNeeds:
    return UsageNeeds(
        reservations=not policy.unlimited,
        month_cost=policy.total_budget_usd is not None,
        scope=policy.max_active_jobs_per_scope is not None or policy.scope_budget_usd is not None,
        scope_cost=policy.scope_budget_usd is not None,
    )


def admit(usage: UsageSnapshot, duration: int, policy: QuotaPolicy) -> Refusal | None:
    budget = _over_budget(usage, policy)
    if budget is not None:
        return budget
    if (
        policy.max_active_jobs_per_scope is not None
        and usage.scope_active_jobs >= policy.max_active_jobs_per_scope
    ):
        return Refusal(
            "scope_busy",
            f"This chat already has {usage.scope_active_jobs} songs in the works (its limit); "
            "try again when one is done.",
        )
    if usage.active_jobs >= policy.max_active_jobs:
        return Refusal(
            "active_jobs",
            f"You already have {usage.active_jobs} song(s) in the works "
            f"(the limit is {policy.max_active_jobs}); wait for one to finish or /cancel it.",
        )
    if policy.unlimited:
        return None
    if duration > policy.seconds_per_day:
        return Refusal(
            "quota",
            f"That's longer than your whole daily allowance of "
            f"{humanize_seconds(policy.seconds_per_day)}; ask for a shorter song.",
        )
    if usage.used_seconds + duration > policy.seconds_per_day:
        left = max(0, policy.seconds_per_day - usage.used_seconds)
        when = frees_at(usage, duration, policy.seconds_per_day)
        return Refusal(
            "quota",
            f"You have {humanize_seconds(left)} of your daily "
            f"{humanize_seconds(policy.seconds_per_day)} left and this song needs "
            f"{humanize_seconds(duration)}.",
            frees_at=when,
        )
    return None


def _beyond(spent_usd: float, budget_usd: float) -> bool:
    # Costs are sums of floats (0.1 + 0.1 + 0.1 > 0.3): compared in millionths of a dollar,
    # a budget that fits N songs lets exactly N in.
    return round(spent_usd * 1_000_000) > round(budget_usd * 1_000_000)


def _over_budget(usage: UsageSnapshot, policy: QuotaPolicy) -> Refusal | None:
    cost = policy.job_cost_usd
    if policy.total_budget_usd is not None and _beyond(
        usage.total_month_cost_usd + cost, policy.total_budget_usd
    ):
        return Refusal(
            "budget",
            "The bot's music budget for this month is used up; it starts again on the 1st.",
        )
    if policy.scope_budget_usd is not None and _beyond(
        usage.scope_month_cost_usd + cost, policy.scope_budget_usd
    ):
        return Refusal(
            "budget",
            "This chat's music budget for this month is used up; it starts again on the 1st.",
        )
    return None


def at_most(seconds: int, ceiling: int) -> int:
    """A daily quota capped by a ceiling (either may be ``UNLIMITED``)."""
    if ceiling == UNLIMITED:
        return seconds
    return ceiling if seconds == UNLIMITED else min(seconds, ceiling)


def exceeds(seconds: int, ceiling: int) -> bool:
    return at_most(seconds, ceiling) != seconds


def chat_quota_ceiling(base: QuotaPolicy, chat: ChatRules | None) -> int:
    """The most a chat's admins may give anyone there: QUOTA_SECONDS_PER_DAY, or what the
    operator allowed this chat."""
    if chat is not None and chat.operator_quota_seconds_per_day is not None:
        return chat.operator_quota_seconds_per_day
    return base.seconds_per_day


def user_quota_ceiling(
    base: QuotaPolicy, chat: ChatRules | None, overrides: Sequence[UserRules], scope_id: str
) -> int:
    """The most a chat's admins may give one user: the operator's grant to that user (here,
    else everywhere), else the chat's ceiling."""
    ceiling = chat_quota_ceiling(base, chat)
    for wanted in (EVERYWHERE, scope_id):  # the specific scope last, so it wins
        for rule in overrides:
            if rule.scope_id == wanted and rule.operator_quota_seconds_per_day is not None:
                ceiling = rule.operator_quota_seconds_per_day
    return ceiling


def chat_jobs_ceiling(base: QuotaPolicy, chat: ChatRules | None) -> int | None:
    """The most songs at once a chat's admins may allow (None: no limit)."""
    if chat is not None and chat.operator_max_active_jobs is not None:
        return chat.operator_max_active_jobs
    return base.max_active_jobs_per_scope


def effective_policy(
    base: QuotaPolicy,
    chat: ChatRules | None,
    overrides: Sequence[UserRules],
    roles: Collection[str],
    scope_id: str,
) -> QuotaPolicy:
    """The quota that applies to one user in one scope.

    The operator's values (the settings; their grants per chat and per user) are ceilings:
    what a chat's admins chose counts only up to the ceiling in force, so they can lower a
    limit but never lift it. Otherwise the more specific wins: a user override for this
    scope beats one for everywhere, which beats the best quota of the user's roles in the
    chat, which beats the chat's quota, which beats the setting.
    """
    ceiling = seconds = chat_quota_ceiling(base, chat)
    if chat is not None:
        if chat.quota_seconds_per_day is not None:
            seconds = at_most(chat.quota_seconds_per_day, ceiling)
        role_values = [chat.role_quotas[r] for r in roles if r in chat.role_quotas]
        if role_values:
            best = UNLIMITED if UNLIMITED in role_values else max(role_values)
            seconds = at_most(best, ceiling)
    for wanted in (EVERYWHERE, scope_id):  # the specific scope last, so it wins
        for rule in overrides:
            if rule.scope_id != wanted:
                continue
            if rule.operator_quota_seconds_per_day is not None:
                ceiling = seconds = rule.operator_quota_seconds_per_day
            if rule.quota_seconds_per_day is not None:
                seconds = at_most(rule.quota_seconds_per_day, ceiling)
    scope_jobs = chat_jobs_ceiling(base, chat)
    if chat is not None and chat.max_active_jobs is not None:
        scope_jobs = (
            chat.max_active_jobs if scope_jobs is None else min(chat.max_active_jobs, scope_jobs)
        )
    return replace(
        base,
        seconds_per_day=seconds,
        max_active_jobs_per_scope=scope_jobs,
        scope_budget_usd=chat.monthly_budget_usd if chat is not None else None,
    )


@dataclass(frozen=True)
class Charge:
    """How a song asked for on a group's behalf is charged (a jam's takes, bot/jams/):
    the takes of one render count as one request against the active-job limits, and where
    the chat pays (``jam_pays=chat``) the requester's daily seconds are neither checked nor
    counted, while the chat's monthly budget is."""

    extra_active_jobs: int = 0
    chat_pays: bool = False


def charged(policy: QuotaPolicy, charge: Charge | None) -> QuotaPolicy:
    if charge is None:
        return policy
    return replace(
        policy,
        max_active_jobs=policy.max_active_jobs + charge.extra_active_jobs,
        max_active_jobs_per_scope=(
            None
            if policy.max_active_jobs_per_scope is None
            else policy.max_active_jobs_per_scope + charge.extra_active_jobs
        ),
        seconds_per_day=UNLIMITED if charge.chat_pays else policy.seconds_per_day,
    )


def is_blocked(overrides: Sequence[UserRules], scope_id: str) -> bool:
    return any(r.blocked and r.scope_id in (EVERYWHERE, scope_id) for r in overrides)


def blocked_word(text: str, words: Iterable[str]) -> str | None:
    """The first blocked word found in ``text`` (whole words, any case), if any."""
    lowered = text.casefold()
    for word in words:
        needle = word.strip().casefold()
        if needle and re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", lowered):
            return word.strip()
    return None


def status(usage: UsageSnapshot, policy: QuotaPolicy) -> QuotaStatus:
    first = usage.reservations[0][0] + QUOTA_WINDOW if usage.reservations else None
    return QuotaStatus(
        limit_seconds=policy.seconds_per_day,
        used_seconds=usage.used_seconds,
        active_jobs=usage.active_jobs,
        max_active_jobs=policy.max_active_jobs,
        next_free_at=first,
    )
