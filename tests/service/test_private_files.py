"""DATA_DIR and the SQLite database are for the bot's own user only: they hold users' ids,
lyrics, chat names and every song."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

from bot.app import open_core
from tests.harness import wavespeed_settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def _start_once(data_dir: Path) -> dict[str, int]:
    """Start the core as `acejam run` does; the modes seen while it runs."""
    async with open_core(wavespeed_settings(data_dir, "http://127.0.0.1:9")) as core:
        await core.store.list_jobs(limit=1)
        return {p.name: _mode(p) for p in [data_dir, *data_dir.glob("acejam.db*")]}


async def test_a_new_data_dir_and_database_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    modes = await _start_once(data_dir)
    assert modes == {
        "data": 0o700,
        "acejam.db": 0o600,
        "acejam.db-wal": 0o600,
        "acejam.db-shm": 0o600,
    }


async def test_an_existing_world_readable_install_is_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    database = data_dir / "acejam.db"
    sqlite3.connect(database).close()
    database.chmod(0o644)
    modes = await _start_once(data_dir)
    assert (modes["data"], modes["acejam.db"]) == (0o700, 0o600)
    assert (_mode(data_dir), _mode(database)) == (0o700, 0o600)


async def test_a_database_in_a_shared_folder_leaves_the_folder_alone(tmp_path: Path) -> None:
    """DATABASE_URL may name a file in /tmp or /var/lib: the file is ours, the folder isn't
    (locking it 0700 once took /tmp away from every other user of the machine)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    database = shared / "acejam.db"
    settings = wavespeed_settings(
        tmp_path / "data", "http://127.0.0.1:9", database_url=f"sqlite+aiosqlite:///{database}"
    )
    async with open_core(settings) as core:
        await core.store.list_jobs(limit=1)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert _mode(database) == 0o600
