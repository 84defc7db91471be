"""Shared fixtures: real databases (a SQLite file, and PostgreSQL when CI provides one)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage.db import create_engine, read_session_factory, session_factory, upgrade
from storage.jobs import SqlJobStore


def postgres_admin_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        if os.environ.get("ACEJAM_REQUIRE_POSTGRES"):
            pytest.fail("ACEJAM_REQUIRE_POSTGRES is set but TEST_DATABASE_URL is not")
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL (set by .ci/run)")
    return url


async def _create_pg_database() -> tuple[str, AsyncEngine, str]:
    admin_url = postgres_admin_url()
    assert admin_url is not None
    name = f"acejam_test_{secrets.token_hex(4)}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return url, admin, name


async def _drop_pg_database(admin: AsyncEngine, name: str) -> None:
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.dispose()


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'acejam.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'acejam.db'}"
        return
    url, admin, name = await _create_pg_database()
    try:
        yield url
    finally:
        await _drop_pg_database(admin, name)


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    url, admin, name = await _create_pg_database()
    try:
        yield url
    finally:
        await _drop_pg_database(admin, name)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlJobStore]:
    engine = create_engine(database_url)
    await upgrade(engine)
    try:
        yield SqlJobStore(session_factory(engine), read_session_factory(engine))
    finally:
        await engine.dispose()
