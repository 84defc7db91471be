"""Inspecting jobs as an operator: `acejam jobs --state failed --since 1d`, and `acejam jobs
show ID` with the job's timeline (every state change with its time, the upstream's id, the
error), each as text and as `--json`."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer

from bot.cli.jobs import parse_since, parse_states
from bot.domain import Destination, JobState
from bot.service import Accepted, Requester
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import WAVESPEED_KEY, running_core, wait_for_job, wavespeed_settings
from tests.kit.cli import acejam_env, run_acejam


async def test_failed_jobs_of_the_last_day_and_one_jobs_timeline(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.faults.add_job(fail="the engine ran out of memory", error_code=5001)
        async with running_core(wavespeed_settings(data, fake.base_url)) as core:
            ids = []
            for tags in ("doomed, drone", "lo-fi, rain"):
                outcome = await core.service.submit(
                    Requester("telegram", "42"),
                    Destination("telegram", "-100123", "42"),
                    core.service.validate(tags=tags, duration=6),
                    enforce_quota=False,
                )
                assert isinstance(outcome, Accepted)
                ids.append(outcome.job.id)
            failed = await wait_for_job(core, ids[0], {JobState.FAILED})
            await wait_for_job(core, ids[1], {JobState.SUCCEEDED, JobState.DELIVERED})
        env = acejam_env(data, fake.base_url)
        (code, listed, err), (shown_code, shown, _), (json_code, as_json, _) = await asyncio.gather(
            run_acejam(
                "jobs", "--state", "failed", "--since", "1d", "--json", env=env, cwd=tmp_path
            ),
            run_acejam("jobs", "show", str(failed.id), env=env, cwd=tmp_path),
            run_acejam("jobs", "show", str(failed.id), "--json", env=env, cwd=tmp_path),
        )
    assert code == shown_code == json_code == 0, err
    [row] = json.loads(listed)  # the delivered song is not listed
    assert (row["id"], row["state"], row["remote_id"]) == (failed.id, "failed", failed.remote_id)
    assert row["error_code"] == failed.error_code and failed.remote_id

    lines = shown.splitlines()
    assert lines[0] == f"job {failed.id}: failed"
    assert lines[2] == "from: telegram chat -100123, user 42"
    assert lines[3] == f"backend: wavespeed, upstream id {failed.remote_id}"
    assert lines[4].startswith(f"error: {failed.error_code}: ")
    steps = lines[lines.index("timeline:") + 1 :]
    moves = [step.split("  ")[2] for step in steps]
    assert moves[0] == "queued" and moves[-1].endswith("→ failed")
    assert all(datetime.strptime(step.split("  ")[1], "%Y-%m-%d %H:%M:%S") for step in steps)

    shown_json = json.loads(as_json)
    assert (shown_json["id"], shown_json["remote_id"]) == (failed.id, failed.remote_id)
    events = shown_json["events"]
    assert events[0]["to"] == "queued" and events[-1]["to"] == "failed"
    assert [e["from"] for e in events[1:]] == [e["to"] for e in events[:-1]]  # a chain
    times = [datetime.fromisoformat(e["at"]) for e in events]
    assert times == sorted(times) and datetime.now(UTC) - times[0] < timedelta(minutes=5)


@pytest.mark.parametrize(
    ("text", "span"),
    [("30m", timedelta(minutes=30)), ("12h", timedelta(hours=12)), ("1d", timedelta(days=1)),
     ("2w", timedelta(weeks=2)), (" 3D ", timedelta(days=3))],
)  # fmt: skip
def test_since_reads_minutes_hours_days_weeks(text: str, span: timedelta) -> None:
    assert parse_since(text) == span


@pytest.mark.parametrize("text", ["", "1", "d", "1y", "-1d", "1.5h"])
def test_since_refuses_anything_else_with_the_forms_it_takes(text: str) -> None:
    with pytest.raises(typer.BadParameter, match="30m, 12h, 1d, 2w"):
        parse_since(text)


def test_states_are_the_jobs_own_names() -> None:
    assert parse_states(["failed", "delivered"]) == {JobState.FAILED, JobState.DELIVERED}
    assert parse_states([]) is None
    with pytest.raises(typer.BadParameter, match="broken: not one of queued, "):
        parse_states(["broken"])
