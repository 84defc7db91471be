"""What tests read of a core's stores beyond the ports: the audit trail and the ledger.

Both the SQL stores (storage/) and the in-memory ones (tests/kit/memory_store.py) have these
methods; the core never calls them, so they are not part of its ports (bot/stores.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, cast

from bot.app import Core
from bot.stores import CoreStore, RulesStore


class AuditedStore(CoreStore, Protocol):
    async def events(self, job_id: int) -> list[tuple[str | None, str, str | None]]:
        """(from state, to state, detail) of each of the job's transitions, in order."""
        ...

    async def ledger_balance(self, user_id: int) -> dict[str, int]:
        """Seconds per ledger kind (reserve, commit, refund) of the user."""
        ...


class SettableRules(RulesStore, Protocol):
    async def set_user_rules(
        self,
        platform: str,
        user_id: str,
        scope_id: str,
        now: datetime,
        *,
        quota_seconds_per_day: int | None = None,
        blocked: bool = False,
        note: str | None = None,
        operator_quota_seconds_per_day: int | None = None,
    ) -> None: ...


def audit(core: Core) -> AuditedStore:
    return cast(AuditedStore, core.store)


def rules_of(core: Core) -> SettableRules:
    return cast(SettableRules, core.rules)
