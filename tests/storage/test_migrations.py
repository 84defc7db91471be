"""The migrated schema is exactly what models.py describes, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storage.db import create_engine, upgrade
from storage.models import Base


async def test_migrations_reach_the_models_schema(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        await upgrade(engine)  # a second start is a no-op

        def diff(connection: object) -> list[object]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})  # type: ignore[arg-type]
            return compare_metadata(context, Base.metadata)

        async with engine.connect() as connection:
            differences = await connection.run_sync(diff)
        assert differences == []
    finally:
        await engine.dispose()
