"""Alembic environment: always handed a live connection by `storage.db.upgrade`."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo

from storage.models import Base

logger = logging.getLogger("storage.db")


def _applied(
    ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
) -> None:
    # One line per migration is what an operator reads at a fresh start (alembic's own INFO
    # lines are silenced in bot.logs).
    doc = " ".join(str(getattr(step.up_revision, "doc", "") or "").split())
    logger.info("database migrated to %s: %s", step.up_revision_id, doc)


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `acejam db upgrade` (storage.db.upgrade)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    on_version_apply=_applied,
)
with context.begin_transaction():
    context.run_migrations()
