"""A newcomer's first `acejam run`: with nothing in `.env` it says what is missing for the
backend and the chat platforms and where to get each, then stops; a fresh database's start
prints one line per migration and nothing else before the bot runs."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
from pathlib import Path

import pytest

from bot.cli.first_run import first_run_hint
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import WAVESPEED_KEY, wavespeed_settings
from tests.kit.cli import ACEJAM, acejam_env, run_acejam

MIGRATIONS = sorted(p.name[:4] for p in Path("storage/migrations/versions").glob("0*.py"))


def _default_acestep_answers() -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", 8001)) == 0


async def test_with_nothing_set_run_says_what_is_missing_and_where_to_get_it(
    tmp_path: Path,
) -> None:
    if _default_acestep_answers():
        pytest.skip("an ACE-Step server (or something) listens on 127.0.0.1:8001 here")
    unset = ("BACKEND", "WAVESPEED_", "ACESTEP_", "TELEGRAM_", "DISCORD_", "DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(unset)}
    env |= {"DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    code, out, err = await run_acejam("run", env=env, cwd=tmp_path)  # no .env there
    assert code == 2, out + err
    assert err.splitlines() == [
        "AceJam has nothing to make songs with: no backend is set, and nothing answers at the",
        "default ACE-Step address, http://127.0.0.1:8001. Put one in .env (see .env.example):",
        "  WAVESPEED_API_KEY=...                 hosted, paid per song: "
        "https://wavespeed.ai/accesskey",
        "  ACESTEP_API_URL=http://gpu-box:8001   your own GPU running `uv run acestep-api`",
        "No chat platform is configured, so AceJam only works through its queue.",
        "Put one or both of these in .env (see .env.example) and run `acejam run` again:",
        "  TELEGRAM_TOKEN=...   (from @BotFather)",
        "  DISCORD_TOKEN=...    (from the Discord developer portal)",
        "Then `acejam doctor` checks them, and `acejam run` starts the bot.",
    ]
    assert not (tmp_path / "data").exists()  # stopped before touching anything


async def test_a_fresh_database_start_prints_one_line_per_migration(tmp_path: Path) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        env = acejam_env(tmp_path / "data", fake.base_url, TELEGRAM_TOKEN="")
        process = await asyncio.create_subprocess_exec(
            *ACEJAM, "run", env=env, cwd=tmp_path, stderr=asyncio.subprocess.PIPE
        )
        assert process.stderr is not None
        lines: list[str] = []
        async with asyncio.timeout(30):
            while not lines or "AceJam running" not in lines[-1]:
                lines.append((await process.stderr.readline()).decode().rstrip("\n"))
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0
    logged = [re.sub(r"^\S+ \S+ ", "", line) for line in lines[4:-1]]  # after the chat hint
    assert [line.split(":")[0] for line in logged] == ["INFO storage.db"] * len(MIGRATIONS)
    assert [line.split()[5] for line in logged] == [f"{rev}:" for rev in MIGRATIONS]
    assert logged[0] == "INFO storage.db: database migrated to 0001: initial schema"


def test_a_jam_board_without_a_listener_says_to_set_web_listen(tmp_path: Path) -> None:
    settings = wavespeed_settings(
        tmp_path, "http://127.0.0.1:9", public_url="https://jams.example.org/"
    )
    hint, stop = first_run_hint(settings, backend=True, platforms=False)
    assert hint.splitlines() == [
        "PUBLIC_URL is set, so the jam board is on, but WEB_LISTEN is not, so nothing serves it.",
        "Put the listener's address in .env, and have https://jams.example.org reach it "
        "(docs/jamboard.md):",
        "  WEB_LISTEN=0.0.0.0:8080",
    ]
    assert not stop  # the bot runs; only the board is not reachable
    listening = wavespeed_settings(
        tmp_path, "http://127.0.0.1:9", public_url="https://jams.example.org", web_listen=":8080"
    )
    assert first_run_hint(listening, backend=True, platforms=False) == ("", False)
