"""What a worker is told at start: its settings, and who it is (its lease owner id)."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path


def new_owner_id() -> str:
    """``host:pid:nonce`` — lets a restart on the same host see that the owner is dead."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def owner_is_dead_here(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(frozen=True)
class WorkerConfig:
    audio_dir: Path
    lease_seconds: float = 30.0
    job_timeout_seconds: float = 1800.0
    max_download_bytes: int = 200 * 1024 * 1024
    # Multiplies every poll interval and back-off: 1 in production, small in tests.
    time_scale: float = 1.0
    # Delivered audio older than this is deleted; undelivered audio never is.
    audio_retention: timedelta = timedelta(days=30)
    # Job events (the audit trail and the relay's feed) older than this are deleted with the
    # same sweep; jobs and the ledger, the accounting, are kept.
    event_retention: timedelta = timedelta(days=30)
    retention_sweep_seconds: float = 3600.0
    # The sources of edits (bot/sources.py, DATA_DIR/sources): swept with the audio once
    # their jobs have ended; what never became a job's (sources/incoming) after a day.
    sources_dir: Path | None = None
    # False in a chat-only process (`acejam run --role adapters`): deliver finished jobs,
    # never claim or poll.
    generates: bool = True
    # Configured keys and tokens: scrubbed from any upstream text we store.
    secrets: tuple[str, ...] = ()
    owner: str = field(default_factory=new_owner_id)
