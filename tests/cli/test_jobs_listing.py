"""`acejam jobs` where people read it (an 80-column terminal, a pipe) and where scripts do
(`--json`): the id, the state and the seed that makes the song again are never cut."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import WAVESPEED_KEY
from tests.kit.cli import acejam_env, run_acejam

TAGS = "lo-fi, chill, rainy piano, late night, vinyl crackle, tape hiss, warm bass"


async def test_jobs_in_80_columns_shows_id_state_and_seed_whole_and_json_for_scripts(
    tmp_path: Path,
) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        env = acejam_env(tmp_path / "data", fake.base_url, COLUMNS="80")
        made = await run_acejam(
            "generate", "--tags", TAGS, "--duration", "10", "--seed", "2147483647",
            env=env, cwd=tmp_path,
        )  # fmt: skip
        assert made[0] == 0, made[2]
        code, table, err = await run_acejam("jobs", env=env, cwd=tmp_path)
        assert code == 0, err
        code, listed, err = await run_acejam("jobs", "--json", env=env, cwd=tmp_path)
        assert code == 0, err
    lines = table.splitlines()
    assert all(len(line) <= 80 for line in lines)
    [row] = [line.split() for line in lines if line.startswith("1 ")]
    assert row[:3] == ["1", "succeeded", "2147483647"]
    assert set(TAGS.replace(",", "").split()) <= set(table.replace(",", "").split())  # wrapped
    [job] = json.loads(listed)
    assert (job["id"], job["state"], job["seed"], job["tags"]) == (
        1,
        "succeeded",
        2147483647,
        TAGS,
    )
    assert (job["duration"], job["platform"], job["error_code"]) == (10, "cli", None)
    assert Path(job["audio_path"]).is_file()
