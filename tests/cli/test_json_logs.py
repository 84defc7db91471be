"""LOG_FORMAT=json for log shippers: every line `acejam run` writes is one JSON object with
time, level, logger, message and the job, platform, chat and user it is about; the default
stays readable text."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import signal
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bot.domain import Destination, Job, JobState
from bot.logs import job_context, log_handler
from bot.ports import DeliveryReceipt, JobEvent
from bot.service import Accepted, Requester
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import WAVESPEED_KEY, running_core, wait_for_job, wavespeed_settings
from tests.kit.cli import ACEJAM, acejam_env

KEYS = ["time", "level", "logger", "message", "job", "platform", "chat", "user"]


@pytest.fixture
def shipped() -> Iterator[io.StringIO]:
    """The bot's JSON handler on the root logger, as `acejam run` installs it."""
    stream = io.StringIO()
    handler = log_handler("json", ["s3cret-token"], stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def test_a_line_is_one_object_with_ids_and_the_exception(shipped: io.StringIO) -> None:
    log = logging.getLogger("bot.test")
    log.info("no job here")
    with job_context(7, platform="telegram", chat="-100123", user="42"):
        try:
            raise RuntimeError("upstream said s3cret-token\nand more")
        except RuntimeError:
            log.exception("job failed:\nsee below")
    first, second = (json.loads(line) for line in shipped.getvalue().splitlines())
    assert list(first) == KEYS
    assert first["job"] is first["platform"] is first["chat"] is first["user"] is None
    assert datetime.fromisoformat(first["time"]).utcoffset() is not None
    assert (first["level"], first["logger"], first["message"]) == (
        "INFO",
        "bot.test",
        "no job here",
    )
    assert {k: second[k] for k in KEYS[1:]} == {
        "level": "ERROR",
        "logger": "bot.test",
        "message": "job failed:\nsee below",
        "job": 7,
        "platform": "telegram",
        "chat": "-100123",
        "user": "42",
    }
    assert "RuntimeError: upstream said [redacted]" in second["exception"]


class _TalkingChat:
    """A platform whose event handling logs, as the adapters' do."""

    platform = "telegram"

    async def on_event(self, event: JobEvent) -> None:
        logging.getLogger("adapters.telegram.test").info("showing %s", event.kind.value)

    async def deliver(self, job: Job, tracks: Any) -> DeliveryReceipt:
        return DeliveryReceipt(message_id="1")


async def test_the_lines_about_a_job_name_it_and_where_it_goes(
    tmp_path: Path, shipped: io.StringIO
) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        settings = wavespeed_settings(tmp_path, fake.base_url)
        async with running_core(settings, [_TalkingChat()]) as core:
            request = core.service.validate(tags="lo-fi", duration=6)
            outcome = await core.service.submit(
                Requester("telegram", "42"), Destination("telegram", "-100123", "42"), request
            )
            assert isinstance(outcome, Accepted)
            await wait_for_job(core, outcome.job.id, {JobState.DELIVERED})
    lines = [json.loads(line) for line in shipped.getvalue().splitlines()]
    shown = [line for line in lines if line["logger"] == "adapters.telegram.test"]
    assert shown and all(
        (line["job"], line["platform"], line["chat"], line["user"])
        == (outcome.job.id, "telegram", "-100123", "42")
        for line in shown
    )
    assert any(
        line["job"] == outcome.job.id and line["logger"].startswith("bot.worker") for line in lines
    )


async def test_acejam_run_writes_nothing_but_json_lines(tmp_path: Path) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        env = acejam_env(tmp_path / "data", fake.base_url, LOG_FORMAT="json")
        process = await asyncio.create_subprocess_exec(
            *ACEJAM, "run", env=env, cwd=tmp_path, stderr=asyncio.subprocess.PIPE
        )
        assert process.stderr is not None
        text = ""
        async with asyncio.timeout(30):
            while "AceJam running" not in text:
                text += (await process.stderr.readline()).decode()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0
        text += (await process.stderr.read()).decode()
    lines = [json.loads(line) for line in text.splitlines()]  # every line parses
    assert all(list(line) == KEYS for line in lines)
    hint, *rest = lines
    assert (hint["level"], hint["logger"]) == ("WARNING", "bot.cli")
    assert "TELEGRAM_TOKEN" in hint["message"]  # what to set, still said
    assert [line["message"].split(":")[0] for line in rest[:2]] == [
        "database migrated to 0001",
        "database migrated to 0002",
    ]
    assert WAVESPEED_KEY not in text
