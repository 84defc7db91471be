"""Every query on jobs, users and the quota ledger (procrastinate's JobManager role), one
module per responsibility, composed into the one store the shell builds:

- ``writes.py``: users, new songs and their quota checks, compare-and-set state changes;
- ``reads.py``: jobs by id or user, recent run times, audio to keep;
- ``queue.py``: the fair queue: claims and places in line;
- ``leases.py``: who holds which unfinished job; taking over a dead worker's;
- ``events.py``: the audit trail, which is also the feed other processes follow;
- ``reports.py``: usage per user, active jobs, ledger balances;
- ``rows.py``: what they share (a row as the core's Job, SQL helpers).

The value types come from the core (:mod:`bot.stores`); they are importable from here too.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.stores import Enqueued, NewJob, UsageRow, UserKey
from storage.errors import raises_store_unavailable
from storage.jobs.events import EventQueries
from storage.jobs.leases import LeaseQueries
from storage.jobs.queue import FairQueueQueries
from storage.jobs.reads import JobReads
from storage.jobs.reports import ReportQueries
from storage.jobs.rows import row_to_job
from storage.jobs.writes import JobWrites

__all__ = ["Enqueued", "NewJob", "SqlJobStore", "UsageRow", "UserKey", "row_to_job"]


@raises_store_unavailable
class SqlJobStore(JobWrites, JobReads, FairQueueQueries, LeaseQueries, EventQueries, ReportQueries):
    """The core's job stores (bot/stores.py: JobStore, FairQueue, Leases, EventFeed, Reports)
    on SQLAlchemy (SQLite or PostgreSQL)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        reads: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        super().__init__(sessions, reads)
