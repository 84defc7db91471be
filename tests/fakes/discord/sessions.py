"""A gateway connection (one websocket, maybe zlib-compressed) and a session (one shard's
numbered dispatches, kept for RESUME, outliving the connection)."""

from __future__ import annotations

import asyncio
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.discord.protocol import Json


@dataclass(eq=False)
class Conn:
    ws: web.WebSocketResponse
    request: web.Request
    path: str
    query: dict[str, str]
    compressor: Any  # zlib compressobj or None
    session: Session | None = None
    heartbeats: int = 0
    server_closed: bool = False  # we closed it (its close_code is then the client's reply)

    async def send(self, payload: Json) -> None:
        text = json.dumps(payload, separators=(",", ":"))
        if self.compressor is not None:
            # zlib-stream: one shared context, every message ends with a Z_SYNC_FLUSH marker
            data = self.compressor.compress(text.encode())
            data += self.compressor.flush(zlib.Z_SYNC_FLUSH)
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(text)


@dataclass(eq=False)
class Session:
    id: str
    shard_id: int
    shard_count: int
    intents: int
    identify: Json
    seq: int = 0
    log: list[Json] = field(default_factory=list)
    conn: Conn | None = None
    live: bool = False  # the connection receives dispatches
    ready: bool = False  # READY and the GUILD_CREATEs went out
    resumable: bool = True
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
