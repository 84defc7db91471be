"""Service tests that are not about the database run on the in-memory stores of the test kit
(tests/kit): ``running(settings, deliveries)`` is tests/harness.py's ``running_core`` on one
in-memory database per test, so a second core in the same test (a restart) finds the jobs
the first left. The same behaviour on SQLite stays covered by the tests still on
``running_core`` (and tests/storage/test_store_contract.py holds the two stores equal)."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager

import pytest

from bot.app import Core
from bot.config import Settings
from bot.ports import Delivery
from tests.kit.memory_core import MemoryDatabase, Running, running_memory_core


@pytest.fixture
def running() -> Running:
    database = MemoryDatabase()

    def run(
        settings: Settings, deliveries: Iterable[Delivery] = ()
    ) -> AbstractAsyncContextManager[Core]:
        return running_memory_core(settings, database, deliveries)

    return run
