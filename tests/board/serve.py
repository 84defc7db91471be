"""The board on the bot's real listener (bot.web.WebListener) on 127.0.0.1, as the shell
serves it: for the route tests and the browser tests."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator

from bot.jamboard import JamBoard, RateLimit
from bot.jamboard.board import Find
from bot.web import WebListener


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def serve_board(
    find: Find, *, limit: RateLimit | None = None, poll_seconds: float = 0.2
) -> AsyncIterator[str]:
    """The listener with the board's routes (open pages poll every ``poll_seconds``: the
    tests wait on what a reader sees, not on the default 3 s); yields its base URL."""
    port = free_port()
    board = JamBoard(find, limit=limit, poll_seconds=poll_seconds)
    listener = WebListener(f"127.0.0.1:{port}", {}, board.routes)
    await listener.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await listener.stop()
