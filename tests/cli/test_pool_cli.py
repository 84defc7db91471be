"""What the operator of a pool of ACE-Step servers (#20) reads: `acejam jobs` and `acejam jobs
show` say which server made each song, and `acejam doctor` has lines for each server."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from bot.backends.acestep_routing import server_key
from bot.doctor import diagnose, line
from bot.domain import Destination, JobState
from bot.service import Accepted, Requester
from tests.fakes.acestep import FakeAceStep
from tests.harness import acestep_settings, running_core, wait_for_job
from tests.kit.cli import acejam_env, run_acejam

ALICE = Requester("telegram", "111", "alice")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_jobs_say_which_server_made_each_song(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with (
        FakeAceStep(time_scale=0.04, runtime=20) as one,
        FakeAceStep(time_scale=0.04, runtime=20) as two,
    ):
        urls = f"{one.base_url},{two.base_url}"
        settings = acestep_settings(data, urls, acestep_max_concurrency=1)
        async with running_core(settings) as core:
            request = core.service.validate(tags="lo-fi", duration=10)
            ids = []
            for chat in ("chat-1", "chat-2"):
                accepted = await core.service.submit(
                    ALICE, Destination("local", chat, ALICE.user_id), request
                )
                assert isinstance(accepted, Accepted)
                ids.append(accepted.job.id)
            for job_id in ids:
                await wait_for_job(core, job_id, {JobState.SUCCEEDED})
        env = acejam_env(data, "", BACKEND="acestep", ACESTEP_API_URL=urls)
        env.pop("WAVESPEED_API_KEY"), env.pop("WAVESPEED_BASE_URL")
        code, listed, err = await run_acejam("jobs", "--json", env=env, cwd=tmp_path)
        assert code == 0, err
        code, table, err = await run_acejam("jobs", env=env, cwd=tmp_path)
        assert code == 0, err
        code, shown, err = await run_acejam("jobs", "show", str(ids[0]), env=env, cwd=tmp_path)
        assert code == 0, err
    keys = {server_key(one.base_url): one, server_key(two.base_url): two}
    servers = {job["id"]: job["server"] for job in json.loads(listed)}
    # One each (one job at a time per server), and the key is the remote id's.
    assert {s["key"] for s in servers.values()} == set(keys)
    for found in servers.values():
        assert found["url"] == keys[found["key"]].base_url
    first = servers[ids[0]]
    assert f"server: {first['key']} (127.0.0.1:{keys[first['key']].port})" in shown
    assert all(key in table for key in keys)


async def test_doctor_has_lines_for_each_server(tmp_path: Path) -> None:
    async with FakeAceStep() as up:
        down = f"http://127.0.0.1:{_closed_port()}"
        settings = acestep_settings(tmp_path, f"{up.base_url},{down}")
        found = {f.name: f for f in await diagnose(settings, platforms=False)}
    assert found[f"ACE-Step server {server_key(up.base_url)}"].ok
    assert found[f"ACE-Step models {server_key(up.base_url)}"].ok
    dead = found[f"ACE-Step server {server_key(down)}"]
    assert not dead.ok and "cannot reach" in line(dead)
