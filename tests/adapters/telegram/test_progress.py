"""Progress that tells the truth: a queued song's expected wait, the engine's own progress, and
an estimate said again before it runs out, never left showing a moment that has passed."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from bot.clock import utcnow
from bot.ports import EventKind, JobEvent
from tests.adapters.telegram.conftest import WAIT, bot_settings, telegram_bot
from tests.adapters.telegram.test_commands import job_id_of
from tests.fakes.telegram import FakeTelegram
from tests.fakes.wavespeed import FakeWaveSpeed

SOON = 2.5  # real seconds until the estimated moment


async def test_an_estimate_is_shown_then_reworded_before_it_could_run_out(
    tmp_path: Path, tg: FakeTelegram, ws: FakeWaveSpeed
) -> None:
    # No worker: the test reports the job's events, with estimates it chooses.
    async with telegram_bot(bot_settings(tmp_path, tg, ws), tg, ws, worker=False) as rig:
        card = await rig.ask("/song dub techno | 30")
        job = await rig.core.service.get_job(job_id_of(card))
        assert job is not None

        eta = utcnow() + timedelta(seconds=SOON)
        await rig.delivery.on_event(JobEvent(EventKind.QUEUED, job, position=2, eta=eta))
        await tg.wait_until(lambda: "Ready in about" in (card.text or ""), what="the wait shown")
        assert (card.text or "").startswith("🎶 Queued — position 2. Ready in about a few seconds.")

        # Nothing new is reported, yet the card doesn't keep a promise that has expired.
        await tg.wait_until(
            lambda: "Ready any moment now." in (card.text or ""),
            what="the estimate reworded",
            timeout=WAIT,
        )
        reworded = card.edits[-1].at
        assert reworded - card.edits[0].at <= SOON + 1.0

        # The engine's own progress (ACE-Step reports one) is shown with a fresh estimate.
        eta = utcnow() + timedelta(seconds=90)
        await rig.delivery.on_event(JobEvent(EventKind.PROGRESS, job, progress=0.4, eta=eta))
        await tg.wait_until(lambda: "40%" in (card.text or ""), what="progress", timeout=WAIT)
        assert re.match(
            r"🎛 Making your song — 40%\. Ready in about 1 min (2|3)0 s\.", card.text or ""
        ), card.text
        assert tg.flood_errors == []
