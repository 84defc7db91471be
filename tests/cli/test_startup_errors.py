"""A setting that only fails when it is used (a database that can't be opened) stops
start-up with the same one line, naming the setting, as one that fails to parse."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.kit.cli import acejam_env, run_acejam


@pytest.mark.parametrize(
    ("database_url", "reason"),
    [
        ("foo", "Could not parse"),
        ("postgres://u@db.example/acejam", "Can't load plugin"),
        ("sqlite:///acejam.db", "requires an async driver"),
        (
            "postgresql+asyncpg://acejam:hunter2@127.0.0.1:1/acejam",
            "cannot open the database at postgresql+asyncpg://acejam:***@127.0.0.1:1/acejam",
        ),
    ],
)
async def test_a_database_that_cannot_be_opened_is_one_line_naming_database_url(
    tmp_path: Path, database_url: str, reason: str
) -> None:
    env = acejam_env(tmp_path / "data", "http://127.0.0.1:9", DATABASE_URL=database_url)
    # Two process starts at once: each is mostly the interpreter's imports.
    results = await asyncio.gather(
        *(run_acejam(*command, env=env, cwd=tmp_path) for command in (["jobs"], ["db", "upgrade"]))
    )
    for code, out, err in results:
        assert code == 2
        [line] = err.strip().splitlines()
        assert line.startswith("Invalid setting DATABASE_URL: ") and reason in line
        assert "hunter2" not in err + out


async def test_a_data_dir_that_cannot_be_made_is_one_line_naming_data_dir(
    tmp_path: Path,
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    env = acejam_env(tmp_path / "a-file" / "data", "http://127.0.0.1:9")
    code, _out, err = await run_acejam("jobs", env=env, cwd=tmp_path)
    assert code == 2
    [line] = err.strip().splitlines()
    assert line.startswith("Invalid setting DATA_DIR: ")
