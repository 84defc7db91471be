"""Chat settings and per-user overrides: what admins decided, as typed rows."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain import EVERYWHERE, ChatRules, UserRules
from storage.db import Sessions
from storage.errors import raises_store_unavailable
from storage.models import ChatSettingsRow, UserOverrideRow

CHAT_RULE_FIELDS = frozenset(ChatRules.__dataclass_fields__)
_CHATS = ChatSettingsRow.__table__.c
_OVERRIDES = UserOverrideRow.__table__.c
# Every new song reads both: Core statements built once, their values bound at execution
# (building an ORM select each time cost more than running it; docs/performance.md §9).
CHAT_RULES = select(ChatSettingsRow.__table__).where(
    _CHATS.platform == bindparam("platform"), _CHATS.scope_id == bindparam("scope")
)
USER_RULES = select(UserOverrideRow.__table__).where(
    _OVERRIDES.platform == bindparam("platform"),
    _OVERRIDES.platform_user_id == bindparam("user"),
    or_(_OVERRIDES.scope_id == bindparam("scope"), _OVERRIDES.scope_id == EVERYWHERE),
)


def _to_rules(row: Any) -> ChatRules:
    """A chat_settings row (ORM or Core: the same attribute names) as the core's rules."""
    return ChatRules(
        quota_seconds_per_day=row.quota_seconds_per_day,
        role_quotas={str(k): int(v) for k, v in (row.role_quotas or {}).items()},
        max_active_jobs=row.max_active_jobs,
        default_duration=row.default_duration,
        max_duration=row.max_duration,
        allowed_channels=tuple(row.allowed_channels or ()),
        others_may_press=row.others_may_press,
        allow_nsfw=row.allow_nsfw,
        blocked_words=tuple(row.blocked_words or ()),
        monthly_budget_usd=row.monthly_budget_usd,
        own_audio=row.own_audio,
        jam_pays=row.jam_pays or "host",
        operator_quota_seconds_per_day=row.operator_quota_seconds_per_day,
        operator_max_active_jobs=row.operator_max_active_jobs,
    )


def _to_user_rules(row: Any) -> UserRules:
    return UserRules(
        scope_id=row.scope_id,
        quota_seconds_per_day=row.quota_seconds_per_day,
        blocked=row.blocked,
        note=row.note,
        operator_quota_seconds_per_day=row.operator_quota_seconds_per_day,
    )


@raises_store_unavailable
class SqlRulesStore(Sessions):
    """The core's RulesStore (bot/stores.py) on SQLAlchemy."""

    async def chat_rules(self, platform: str, scope_id: str) -> ChatRules | None:
        async with self._querying() as connection:
            return await self._chat_rules(connection, platform, scope_id)

    async def _chat_rules(
        self, connection: AsyncConnection, platform: str, scope_id: str
    ) -> ChatRules | None:
        result = await connection.execute(CHAT_RULES, {"platform": platform, "scope": scope_id})
        row = result.first()
        return _to_rules(row) if row is not None else None

    async def rules_for(
        self, platform: str, user_id: str, scope_id: str
    ) -> tuple[ChatRules | None, list[UserRules]]:
        """A chat's rules and a user's overrides there, read together (every new song)."""
        async with self._querying() as connection:
            return (
                await self._chat_rules(connection, platform, scope_id),
                await self._user_rules(connection, platform, user_id, scope_id),
            )

    async def update_chat_rules(
        self,
        platform: str,
        scope_id: str,
        changes: Mapping[str, Any] | Callable[[ChatRules], Mapping[str, Any]],
        now: datetime,
    ) -> ChatRules:
        """Apply ``changes`` — or ``changes(current rules)``, computed under the row lock so
        two admins editing a list at once can't lose each other's edit."""
        async with self._sessions.begin() as session:
            row = await session.scalar(
                select(ChatSettingsRow)
                .where(ChatSettingsRow.platform == platform, ChatSettingsRow.scope_id == scope_id)
                .with_for_update()
            )
            if row is None:
                row = ChatSettingsRow(
                    platform=platform,
                    scope_id=scope_id,
                    role_quotas={},
                    allowed_channels=[],
                    blocked_words=[],
                    others_may_press=False,
                    allow_nsfw=False,
                    updated_at=now,
                )
                session.add(row)
                await session.flush()
            resolved = changes(_to_rules(row)) if callable(changes) else changes
            unknown = set(resolved) - CHAT_RULE_FIELDS
            if unknown:
                raise ValueError(f"unknown chat setting(s): {', '.join(sorted(unknown))}")
            for name, value in resolved.items():
                setattr(row, name, list(value) if isinstance(value, tuple) else value)
            row.updated_at = now
            await session.flush()
            return _to_rules(row)

    async def user_rules(self, platform: str, user_id: str, scope_id: str) -> list[UserRules]:
        async with self._querying() as connection:
            return await self._user_rules(connection, platform, user_id, scope_id)

    async def _user_rules(
        self, connection: AsyncConnection, platform: str, user_id: str, scope_id: str
    ) -> list[UserRules]:
        rows = await connection.execute(
            USER_RULES, {"platform": platform, "user": user_id, "scope": scope_id}
        )
        return [_to_user_rules(r) for r in rows]

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
    ) -> None:
        """Replace a user's override in one scope; with nothing set, remove it."""
        whole = {
            "quota_seconds_per_day": quota_seconds_per_day,
            "blocked": blocked,
            "note": note,
            "operator_quota_seconds_per_day": operator_quota_seconds_per_day,
        }
        await self.update_user_rules(platform, user_id, scope_id, lambda _: whole, now)

    async def update_user_rules(
        self,
        platform: str,
        user_id: str,
        scope_id: str,
        changes: Callable[[UserRules], Mapping[str, Any]],
        now: datetime,
    ) -> UserRules:
        """Apply ``changes(current override)`` under the row lock (the operator and a chat's
        admins write different columns of one row); a row left with nothing set is removed."""
        async with self._sessions.begin() as session:
            row = await session.scalar(
                select(UserOverrideRow)
                .where(
                    UserOverrideRow.platform == platform,
                    UserOverrideRow.platform_user_id == user_id,
                    UserOverrideRow.scope_id == scope_id,
                )
                .with_for_update()
            )
            current = _to_user_rules(row) if row is not None else UserRules(scope_id)
            updated = replace(current, **changes(current))
            if row is not None:
                await session.execute(delete(UserOverrideRow).where(UserOverrideRow.id == row.id))
            if (
                updated.quota_seconds_per_day is None
                and updated.operator_quota_seconds_per_day is None
                and not updated.blocked
            ):
                return updated
            session.add(
                UserOverrideRow(
                    platform=platform,
                    platform_user_id=user_id,
                    scope_id=scope_id,
                    quota_seconds_per_day=updated.quota_seconds_per_day,
                    operator_quota_seconds_per_day=updated.operator_quota_seconds_per_day,
                    blocked=updated.blocked,
                    note=updated.note,
                    updated_at=now,
                )
            )
            return updated
