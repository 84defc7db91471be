"""Keys never reach a log line, an error shown to users, or the database."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.domain import Destination, JobState
from bot.logs import RedactSecrets, log_handler
from bot.service import Accepted, Requester
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import RecordingDelivery, running_core, wait_for_job, wavespeed_settings

KEY = "ws-live-SECRET-abcdef123456"


@pytest.fixture(autouse=True)
def _root_handlers() -> Iterator[None]:
    """A test may add a handler of the bot's own: the next test starts without it."""
    before = list(logging.getLogger().handlers)
    yield
    logging.getLogger().handlers[:] = before


async def test_the_api_key_appears_nowhere(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    chat = RecordingDelivery()
    shipped = io.StringIO()  # what LOG_FORMAT=json hands a log shipper
    logging.getLogger().addHandler(log_handler("json", [KEY], shipped))
    async with FakeWaveSpeed(time_scale=0.04, api_key=KEY) as fake:
        fake.faults.add("poll", status=500, times=1)
        fake.faults.add(
            "submit", status=401, times=1, message=f"bad key {KEY}"
        )  # upstream echoes it
        fake.faults.add_job(fail=f"internal error for key {KEY}")
        settings = wavespeed_settings(
            tmp_path, fake.base_url, wavespeed_api_key=KEY, max_active_jobs_per_user=5
        )
        async with running_core(settings, [chat]) as core:
            user = Requester("telegram", "1")
            ids = []
            for n in range(3):
                request = core.service.validate(tags=f"song {n}", duration=10)
                outcome = await core.service.submit(
                    user, Destination("telegram", "c", "1"), request
                )
                assert isinstance(outcome, Accepted)
                ids.append(outcome.job.id)
            jobs = [await wait_for_job(core, i, {JobState.DELIVERED, JobState.FAILED}) for i in ids]
    assert {j.state for j in jobs} == {JobState.DELIVERED, JobState.FAILED}
    logged = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {logging.Formatter().formatException(r.exc_info) if r.exc_info else ''}"
        for r in caplog.records
    )
    assert KEY not in logged
    lines = [json.loads(line) for line in shipped.getvalue().splitlines()]
    assert any(line["job"] == ids[0] for line in lines)
    assert len(lines) >= len(caplog.records) and KEY not in shipped.getvalue()
    assert all(KEY not in (e.message or "") for e in chat.events)
    assert all(KEY not in (j.error_message or "") for j in jobs)
    for path in tmp_path.rglob("acejam.db*"):
        assert KEY.encode() not in path.read_bytes()


async def test_a_key_straddling_the_cut_of_an_upstream_error_leaves_no_prefix(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = "sk-straddle-9f8e7d6c5b4a"
    # The key starts 12 characters before the 300th: cut first, "sk-straddle-" would stay.
    echoed = "x" * 288 + key + " was refused"
    async with FakeWaveSpeed(time_scale=0.04, api_key=key) as fake:
        fake.faults.add("submit", status=400, message=echoed)
        fake.faults.add("poll", status=422, message=echoed)
        settings = wavespeed_settings(
            tmp_path, fake.base_url, wavespeed_api_key=key, max_active_jobs_per_user=5
        )
        async with running_core(settings) as core:
            user = Requester("telegram", "1")
            ids = []
            for n in range(2):
                request = core.service.validate(tags=f"song {n}", duration=10)
                outcome = await core.service.submit(
                    user, Destination("telegram", "c", "1"), request
                )
                assert isinstance(outcome, Accepted)
                ids.append(outcome.job.id)
            jobs = [await wait_for_job(core, i, {JobState.FAILED}) for i in ids]
    # Refused at submit, then at a poll: both keep the upstream's reason, scrubbed.
    assert all("x" * 200 in (j.error_message or "") for j in jobs)
    assert all("***" in (j.error_message or "") for j in jobs)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    prefix = key[:6]
    assert prefix not in logged
    assert all(prefix not in (j.error_message or "") for j in jobs)
    for path in tmp_path.rglob("acejam.db*"):
        assert prefix.encode() not in path.read_bytes()


def test_redaction_filter_is_the_last_line_of_defence() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "token %s leaked", (KEY,), None)
    assert RedactSecrets([KEY]).filter(record)
    assert record.getMessage() == "token [redacted] leaked"
