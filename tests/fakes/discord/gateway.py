"""The gateway websocket: HELLO, IDENTIFY (READY and GUILD_CREATE per shard), heartbeats, RESUME
with replay of missed dispatches, op 7/op 9 and server-side closes on demand, zlib-stream frames."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import zlib
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.discord.payloads import guild_create_payload, me_payload, member_payload
from tests.fakes.discord.protocol import (
    HEARTBEAT_INTERVAL_MS,
    INTENT_GUILDS,
    PRIVILEGED_INTENTS,
    FakeDiscordError,
    Json,
    as_int,
)
from tests.fakes.discord.records import GatewayEvent
from tests.fakes.discord.sessions import Conn, Session
from tests.fakes.discord.state import State


class Gateway:
    """Sessions by id and by shard, and the live connections."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.sessions: dict[str, Session] = {}
        self.shard_sessions: dict[int, Session] = {}
        self.conns: set[Conn] = set()
        # Index into gateway_events when the last drop/reconnect/invalidate happened.
        self.marker = 0

    def summary(self) -> str:
        lines = ["gateway events:"]
        for e in self.state.gateway_events[-10:]:
            lines.append(f"  {e.kind} shard={e.shard_id} code={e.code} path={e.path}")
        return "\n".join(lines)

    async def close(self) -> None:
        for conn in list(self.conns):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=1001, message=b"fake closing"), 1.0)

    def session_for(self, guild_id: int | None, *, required: bool) -> Session | None:
        if self.shard_sessions:
            count = next(iter(self.shard_sessions.values())).shard_count
            shard = self.state.shard_for(guild_id, count) if guild_id else 0
            session = self.shard_sessions.get(shard)
            if session is not None:
                return session
        if required:
            raise FakeDiscordError(
                "the bot has no gateway session for that guild's shard: start it and "
                "`await dc.wait_until_ready()` first\n" + self.summary()
            )
        return None

    def _record_gw(
        self,
        kind: str,
        conn: Conn | None,
        *,
        shard_id: int | None = None,
        session: Session | None = None,
        code: int | None = None,
        payload: Json | None = None,
    ) -> None:
        session = session or (conn.session if conn else None)
        self.state.gateway_events.append(
            GatewayEvent(
                kind=kind,
                shard_id=shard_id
                if shard_id is not None
                else (session.shard_id if session else None),
                session_id=session.id if session else None,
                code=code,
                path=conn.path if conn else "",
                query=dict(conn.query) if conn else {},
                payload=payload,
                at=self.state.now(),
            )
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        query = dict(request.query)
        compressor = None
        if query.get("compress") == "zlib-stream" and self.state.gateway_compression:
            compressor = zlib.compressobj()
        # zstd-stream is not available here: plain text frames, which discord.py accepts too.
        conn = Conn(ws=ws, request=request, path=request.path, query=query, compressor=compressor)
        self.conns.add(conn)
        self._record_gw("connect", conn)
        try:
            if query.get("v", "10") not in ("9", "10"):
                await ws.close(code=4012, message=b"Invalid API version.")
                return ws
            if query.get("encoding", "json") != "json":
                await ws.close(code=4002, message=b"Decode error.")
                return ws
            interval = max(100, int(HEARTBEAT_INTERVAL_MS * self.state.time_scale))
            await conn.send(
                {
                    "op": 10,
                    "d": {"heartbeat_interval": interval, "_trace": ['["fake-gateway"]']},
                    "s": None,
                    "t": None,
                }
            )
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    try:
                        data = json.loads(msg.data)
                    except ValueError:
                        await ws.close(code=4002, message=b"Decode error.")
                        break
                    await self._on_gateway_op(conn, data)
                elif msg.type == WSMsgType.BINARY:
                    await ws.close(code=4002, message=b"Decode error.")
                    break
        finally:
            self.conns.discard(conn)
            session = conn.session
            if session is not None and session.conn is conn:
                session.conn = None
                session.live = False
                if ws.close_code in (1000, 1001):
                    # A client closing with 1000/1001 ends its session (Discord docs).
                    session.resumable = False
            if ws.close_code is not None and not conn.server_closed:
                self._record_gw("client_close", conn, code=ws.close_code)
            await self.state.clock.notify()
        return ws

    async def _on_gateway_op(self, conn: Conn, data: Json) -> None:
        op = data.get("op")
        d = data.get("d")
        if op == 1:
            conn.heartbeats += 1
            await conn.send({"op": 11})
        elif op == 2:
            await self._identify(conn, d or {})
        elif op == 6:
            await self._resume(conn, d or {})
        elif conn.session is None:
            await self._server_close(conn, 4003, "Not authenticated.")
        elif op == 3:
            self.state.presence_updates.append(d or {})
        elif op == 4:
            pass  # voice state updates: nothing to do
        elif op == 8:
            await self._request_members(conn, d or {})
        else:
            await self._server_close(conn, 4001, "Unknown opcode.")

    async def _server_close(self, conn: Conn, code: int, reason: str) -> None:
        conn.server_closed = True
        self._record_gw("server_close", conn, code=code)
        await conn.ws.close(code=code, message=reason.encode())

    async def _identify(self, conn: Conn, d: Json) -> None:
        if conn.session is not None:
            await self._server_close(conn, 4005, "Already authenticated.")
            return
        if d.get("token") != self.state.token:
            await self._server_close(conn, 4004, "Authentication failed.")
            return
        shard_id, shard_count = d.get("shard") or [0, 1]
        if not (0 <= shard_id < shard_count):
            await self._server_close(conn, 4010, "Invalid shard.")
            return
        intents = d.get("intents")
        if not isinstance(intents, int):
            await self._server_close(conn, 4013, "Invalid intent(s).")
            return
        if intents & PRIVILEGED_INTENTS & ~self.state.allowed_privileged_intents:
            await self._server_close(conn, 4014, "Disallowed intent(s).")
            return
        session = Session(
            id=secrets.token_hex(16),
            shard_id=shard_id,
            shard_count=shard_count,
            intents=intents,
            identify={k: v for k, v in d.items() if k != "token"},
        )
        self.state.identify_payloads.append(session.identify)
        old = self.shard_sessions.get(shard_id)
        if old is not None and old is not session and old.conn is not None and old.conn is not conn:
            old.resumable = False
        self.sessions[session.id] = session
        self.shard_sessions[shard_id] = session
        conn.session = session
        session.conn = conn
        self._record_gw("identify", conn, payload=session.identify)
        guilds = [
            g
            for g in self.state.guilds.values()
            if self.state.shard_for(g.id, shard_count) == shard_id
        ]
        async with session.lock:
            ready: Json = {
                "v": 10,
                "user": me_payload(self.state),
                "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
                "session_id": session.id,
                "session_type": "normal",
                "resume_gateway_url": self.state.resume_gateway_url,
                "application": {
                    "id": str(self.state.application_id),
                    "flags": self.state.application_flags,
                },
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "geo_ordered_rtc_regions": [],
                "_trace": ['["fake-gateway"]'],
            }
            if d.get("shard") is not None:
                ready["shard"] = [shard_id, shard_count]
            session.live = True
            await self._send_dispatch(session, "READY", ready)
            if intents & INTENT_GUILDS:
                for g in guilds:
                    await self._send_dispatch(
                        session, "GUILD_CREATE", guild_create_payload(self.state, g)
                    )
            session.ready = True
        await self.state.clock.notify()

    async def _resume(self, conn: Conn, d: Json) -> None:
        session = self.sessions.get(str(d.get("session_id")))
        if (
            session is None
            or not session.resumable
            or d.get("token") != self.state.token
            or self.shard_sessions.get(session.shard_id) is not session
        ):
            self._record_gw("invalid_session", conn, session=session)
            await conn.send({"op": 9, "d": False})
            await self.state.clock.notify()
            return
        if session.conn is not None and session.conn is not conn:
            stale = session.conn
            session.conn = None
            with contextlib.suppress(Exception):
                await self._server_close(stale, 4000, "Session resumed elsewhere.")
        conn.session = session
        async with session.lock:
            session.conn = conn
            since = int(d.get("seq") or 0)
            for event in session.log:
                if event["s"] > since:
                    await conn.send(event)
            session.live = True
            await self._send_dispatch(session, "RESUMED", {"_trace": ['["fake-gateway"]']})
        self._record_gw("resume", conn, payload={"seq": since})
        await self.state.clock.notify()

    async def _request_members(self, conn: Conn, d: Json) -> None:
        session = conn.session
        assert session is not None
        ids = d.get("guild_id")
        for gid in ids if isinstance(ids, list) else [ids]:
            guild = self.state.guilds.get(as_int(gid))
            if guild is None:
                continue
            wanted = d.get("user_ids")
            uids = [u for u in guild.members if wanted is None or str(u) in map(str, wanted)]
            chunk: Json = {
                "guild_id": str(guild.id),
                "members": [member_payload(self.state, guild, u) for u in uids],
                "chunk_index": 0,
                "chunk_count": 1,
            }
            if d.get("nonce") is not None:
                chunk["nonce"] = d["nonce"]
            await self.dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)

    async def _send_dispatch(self, session: Session, event: str, data: Json) -> None:
        """Number, log and (if connected) send a dispatch. Caller holds session.lock."""
        session.seq += 1
        payload = {"op": 0, "t": event, "s": session.seq, "d": data}
        session.log.append(payload)
        conn = session.conn
        if session.live and conn is not None and not conn.ws.closed:
            try:
                await conn.send(payload)
            except (ConnectionError, RuntimeError):
                pass  # stays in the log for a RESUME

    async def dispatch(self, session: Session, event: str, data: Json) -> None:
        async with session.lock:
            await self._send_dispatch(session, event, data)

    def _target_sessions(self, shard_id: int | None) -> list[Session]:
        if shard_id is None:
            return list(self.shard_sessions.values())
        s = self.shard_sessions.get(shard_id)
        if s is None:
            raise FakeDiscordError(f"no session for shard {shard_id}")
        return [s]

    async def drop_connection(
        self, shard_id: int | None = None, *, code: int | None = 4000, forget_session: bool = False
    ) -> None:
        """Close the bot's gateway socket from the server side. ``code=None`` cuts the TCP
        connection (a network failure); 4000 is "unknown error, reconnect". Close codes
        1000/1001 or ``forget_session=True`` make the session unresumable, so the client's
        RESUME gets op 9 and it re-identifies."""
        self.marker = len(self.state.gateway_events)
        for session in self._target_sessions(shard_id):
            conn = session.conn
            session.live = False
            session.conn = None
            if forget_session or code in (1000, 1001):
                session.resumable = False
            if conn is None:
                continue
            conn.server_closed = True
            self._record_gw("server_close", conn, session=session, code=code)
            if code is None:
                transport = conn.request.transport
                if transport is not None:
                    transport.abort()
            else:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.ws.close(code=code, message=b"fake drop"), 5.0)
        await self.state.clock.notify()

    async def send_reconnect(self, shard_id: int | None = None) -> None:
        """Op 7 RECONNECT: the client should reconnect and RESUME."""
        self.marker = len(self.state.gateway_events)
        for session in self._target_sessions(shard_id):
            if session.conn is not None:
                self._record_gw("reconnect_sent", session.conn, session=session)
                await session.conn.send({"op": 7, "d": None})

    async def invalidate_session(
        self, shard_id: int | None = None, *, resumable: bool = False
    ) -> None:
        """Op 9 INVALID_SESSION (``d=resumable``)."""
        self.marker = len(self.state.gateway_events)
        for session in self._target_sessions(shard_id):
            if not resumable:
                session.resumable = False
            if session.conn is not None:
                self._record_gw("invalid_session", session.conn, session=session)
                session.live = False
                await session.conn.send({"op": 9, "d": resumable})

    def session_info(self, shard_id: int = 0) -> dict[str, Any]:
        """Current session of a shard: id, seq, intents, shard, connected, resumable."""
        s = self._target_sessions(shard_id)[0]
        return {
            "session_id": s.id,
            "seq": s.seq,
            "intents": s.intents,
            "shard": [s.shard_id, s.shard_count],
            "connected": s.live,
            "resumable": s.resumable,
            "heartbeats": s.conn.heartbeats if s.conn else 0,
        }


# --------------------------------------------------------------------------------------------
# Pointing discord.py at the fake
