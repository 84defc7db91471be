"""A WaveSpeed webhook and a poll that bring the same news: the song is finished once.

WaveSpeed may deliver a webhook (or repeat one) while a poll round is still handling its
answers. Whichever notice comes first finishes the job; the other changes nothing: one
download, one track in the chat.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from bot.app import webhook_receiver
from bot.domain import Destination, JobState
from bot.ports import EventKind, JobEvent
from bot.service import Accepted, Requester
from tests.fakes.wavespeed import FakeWaveSpeed, sign_webhook
from tests.harness import (
    WAVESPEED_KEY,
    RecordingDelivery,
    running_core,
    wait_for_job,
    wavespeed_settings,
)
from tests.kit.audit import audit

ALICE = Requester("telegram", "111", "alice")
BOB = Requester("telegram", "222", "bob")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SlowChat(RecordingDelivery):
    """A chat whose progress update takes a while; ``meanwhile`` runs during the first."""

    def __init__(self) -> None:
        super().__init__()
        self.meanwhile: Callable[[], Awaitable[None]] | None = None

    async def on_event(self, event: JobEvent) -> None:
        await super().on_event(event)
        if event.kind == EventKind.PROGRESS and self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            await meanwhile()


async def _submit(core, requester: Requester) -> Accepted:  # type: ignore[no-untyped-def]
    request = core.service.validate(tags="lo-fi", duration=10)
    destination = Destination(requester.platform, "chat-1", requester.user_id)
    outcome = await core.service.submit(requester, destination, request)
    assert isinstance(outcome, Accepted), outcome
    return outcome


async def test_a_webhook_during_a_poll_round_finishes_the_song_once(tmp_path: Path) -> None:
    listen = _free_port()
    unreachable = _free_port()  # WaveSpeed's own deliveries are lost; we redeliver by hand
    chat = SlowChat()
    answers: list[int] = []
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        # Two songs in flight while polls fail: a long one and a short one.
        fake.faults.add("poll", status=503, times=None)
        fake.faults.add_job(runtime=1000.0)
        settings = wavespeed_settings(tmp_path, fake.base_url)
        async with running_core(settings) as core:
            long_song = await _submit(core, ALICE)
            await wait_for_job(core, long_song.job.id, {JobState.SUBMITTED})
            short_song = await _submit(core, BOB)
            short = await wait_for_job(core, short_song.job.id, {JobState.SUBMITTED})
        # The bot restarts (with webhooks now); meanwhile the short song finished upstream.
        finished = await fake.wait_finished(short.remote_id or "")
        fake.faults.clear()
        receiving = asyncio.Event()

        async def redeliver_the_webhook() -> None:
            """WaveSpeed's webhook about the short song, while the bot is busy telling the
            chat that the long one started (in the same poll round)."""
            await asyncio.wait_for(receiving.wait(), 10)
            body = json.dumps(finished.to_json()).encode()
            now = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "webhook-id": "msg_again",
                "webhook-timestamp": now,
                "webhook-signature": sign_webhook(fake.webhook_secret, "msg_again", now, body),
            }
            async with httpx.AsyncClient() as client:
                answer = await client.post(
                    f"http://127.0.0.1:{listen}/hooks/wavespeed", content=body, headers=headers
                )
            answers.append(answer.status_code)

        chat.meanwhile = redeliver_the_webhook
        with_webhooks = wavespeed_settings(
            tmp_path,
            fake.base_url,
            wavespeed_webhook_url=f"http://127.0.0.1:{unreachable}/hooks/wavespeed",
            wavespeed_webhook_listen=f"127.0.0.1:{listen}",
        )
        async with running_core(with_webhooks, [chat]) as core, webhook_receiver(core):
            receiving.set()
            done = await wait_for_job(core, short.id, {JobState.DELIVERED})
            async with asyncio.timeout(10):  # the webhook's answer, if not in yet
                while not answers:
                    await asyncio.sleep(0.01)
            events = await audit(core).events(short.id)
    assert answers == [204]
    assert fake.downloads.count(short.remote_id or "") == 1
    assert chat.delivered == [(done.id, Path(done.audio_path or ""))]
    assert [to for _, to, _ in events].count("succeeded") == 1
    assert len(fake.submits) == 2
