"""Helpers for tests that run the real ``acejam`` command in a subprocess (tests/cli)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
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


WORKER = ("run", "--role", "worker")  # `acejam run --role worker`


async def acejam_killed_when(
    condition: Callable[[], bool],
    *command: str,
    env: dict[str, str],
    cwd: Path,
    within: float = 30.0,
) -> None:
    """Run ``acejam *command`` until ``condition`` holds (checked every 20 ms, at most
    ``within`` seconds), then kill -9 it: a crash at that very step."""
    process = await asyncio.create_subprocess_exec(
        *ACEJAM,
        *command,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + within
        while not condition():
            assert time.monotonic() < deadline, "the step to kill at never came"
            await asyncio.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
