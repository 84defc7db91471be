"""Helpers for tests that run the real ``acejam`` command in a subprocess (tests/cli)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.harness import WAVESPEED_KEY

ACEJAM = [sys.executable, "-m", "bot"]


def acejam_env(data_dir: Path, base_url: str, **extra: str) -> dict[str, str]:
    """The environment of an ``acejam`` run against a WaveSpeed fake at ``base_url``, without
    chat tokens from the caller's environment; ``extra`` adds or overrides variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DISCORD_"))}
    env.update(
        BACKEND="wavespeed",
        WAVESPEED_API_KEY=WAVESPEED_KEY,
        WAVESPEED_BASE_URL=base_url,
        DATA_DIR=str(data_dir),
        POLL_TIME_SCALE="0.05",
        LEASE_SECONDS="2",
        HTTP_TIMEOUT_SECONDS="5",
        COLUMNS="200",
    )
    env.update(extra)
    return env


async def run_acejam(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """Run ``acejam *args`` to the end: (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        *ACEJAM,
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
