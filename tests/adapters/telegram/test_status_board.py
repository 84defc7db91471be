"""The status board at rest: a card whose track is on the way costs the event loop nothing."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from adapters.telegram.status import StatusBoard
from bot.clock import utcnow
from tests.fakes.telegram import FakeTelegram
from tests.harness import POLL_SCALE


async def test_a_frozen_card_with_an_estimate_run_out_does_not_spin(tg: FakeTelegram) -> None:
    # It did: the frozen card's refresh time, once past, was never moved on, so the pacer
    # waited 0 s for it over and over, and the busy loop starved the thread decoding the
    # track (a 10 s song took 30 s to reach the chat).
    alice = tg.user(42, "Alice")
    chat = tg.private_chat(alice)
    card = await tg.send_message(chat, alice, "card")
    looked = 0

    def clock() -> float:
        nonlocal looked
        looked += 1
        return time.monotonic()

    async with tg.bot() as bot:
        board = StatusBoard(bot, time_scale=POLL_SCALE, clock=clock)
        board.attach(7, chat.id, card["message_id"], "card")
        soon = utcnow() + timedelta(seconds=0.1)
        board.show(7, chat.id, lambda: "🎛 Making your song…", None, eta=soon)
        board.freeze(7)  # the track is on the way
        await asyncio.sleep(0.4)  # past the estimate: time for the pacer to spin, if it would
        await board.close()
    assert looked < 50
