"""The aiohttp app on 127.0.0.1: the routing table, authentication, fault injection and rate
limits in front of every REST handler, the CDN for attachments, and the gateway endpoints."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable
from typing import Any

from aiohttp import BodyPartReader, web

from tests.fakes.common.faults import FaultPlan, answer
from tests.fakes.common.loopback import LoopbackServer
from tests.fakes.discord.faults import DiscordFault, render_error
from tests.fakes.discord.gateway import Gateway
from tests.fakes.discord.protocol import (
    API_PREFIX,
    CDN_HOST,
    MIB,
    DiscordAPIError,
    api_error,
    json_response,
)
from tests.fakes.discord.ratelimits import RateLimiter
from tests.fakes.discord.records import RecordedRequest, Rejection, UploadedFile
from tests.fakes.discord.routes import Handler, Req, Route
from tests.fakes.discord.routes.interactions import interaction_of
from tests.fakes.discord.state import State

_Compiled = tuple[str, str, re.Pattern[str], Handler, bool]


class _RateLimited(Exception):
    """Carries a bucket's 429 out of a fault's ``answer`` (which would otherwise go on)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__("rate limited")
        self.response = response


class Server(LoopbackServer):
    def __init__(
        self,
        state: State,
        gateway: Gateway,
        faults: FaultPlan[DiscordFault],
        routes: Iterable[Route],
    ) -> None:
        super().__init__(state.time_scale, client_max_size=1024 * MIB, shutdown_timeout=1.0)
        self.state = state
        self.gateway = gateway
        self.faults = faults
        self.limiter = RateLimiter(lambda: state.rate_limits, state.now, state.time_scale)
        self._routes: list[_Compiled] = [
            (method, template, re.compile(_template_regex(template)), handler, auth)
            for method, template, handler, auth in routes
        ]
        self.app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._handle_api)
        self.app.router.add_get("/gateway", gateway.handle)
        self.app.router.add_get("/resume-gateway", gateway.handle)
        self.app.router.add_get(
            "/attachments/{channel_id}/{attachment_id}/{filename}", self._handle_cdn
        )

    async def start(self) -> None:
        self.state.clock.start()
        await super().start()
        self.state.port = self.port

    async def close(self) -> None:
        await self.gateway.close()
        await super().close()

    def _match(self, method: str, path: str) -> tuple[str, dict[str, str], Handler, bool] | None:
        for m, template, rx, handler, auth in self._routes:
            if m != method:
                continue
            found = rx.match(path)
            if found:
                return template, found.groupdict(), handler, auth
        return None

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        json_body, form, files = await _read_body(request)
        rec = RecordedRequest(
            request.method,
            path,
            None,
            dict(request.query),
            dict(request.headers),
            json_body,
            form,
            files,
            self.state.now(),
        )
        self.state.requests.append(rec)
        response = await self._answer(request, rec)
        if rec.status != -1:  # -1: a "drop" fault, nothing was answered
            rec.status = response.status
            if (
                isinstance(response, web.Response)
                and response.body
                and response.content_type == "application/json"
            ):
                with contextlib.suppress(ValueError, TypeError):
                    rec.response = json.loads(response.body)  # type: ignore[arg-type]
        scope = response.headers.get("X-RateLimit-Scope")
        if response.status in (401, 403) or (response.status == 429 and scope != "shared"):
            self.state.invalid_request_count += 1
        await self.state.clock.notify()
        return response

    async def _answer(self, request: web.Request, rec: RecordedRequest) -> web.StreamResponse:
        method, path, json_body, files = rec.method, rec.path, rec.json, rec.files
        extra_headers: dict[str, str] = {}
        params: dict[str, str] = {}
        try:
            matched = self._match(method, path)
            if matched is None:
                if any(rx.match(path) for _, _, rx, _, _ in self._routes):
                    raise api_error("method_not_allowed")
                raise api_error("not_found")
            template, params, handler, needs_auth = matched
            rec.route = f"{method} {template}"
            if needs_auth and request.headers.get("Authorization") != f"Bot {self.state.token}":
                raise api_error("unauthorized")
            fault = self.faults.take(f"{method} {path}")
            route_key = rec.route

            async def handle() -> web.StreamResponse:
                limited = self.limiter.take(route_key, params, extra_headers)
                if limited is not None:
                    raise _RateLimited(limited)
                req = Req(
                    method, route_key, params, request.query, json_body, files, request.headers
                )
                status, body = await handler(req)
                return json_response(status, body, extra_headers)

            try:
                response = await answer(
                    request,
                    fault,
                    handle,
                    error=lambda f: render_error(f, route_key, self.limiter),
                    sleep=self.sleep,
                )
            except _RateLimited as limited:
                # A request its bucket refused was not carried out: no fault after it.
                return limited.response
            if fault is not None and fault.drop:
                rec.status = -1  # no answer: the client sees a dropped connection
        except DiscordAPIError as e:
            response = json_response(e.status, e.body(), extra_headers)
            inter = interaction_of(self.state, params)
            if inter is not None:
                inter.rejections.append(
                    Rejection(rec.route or "", e.status, e.code, e.message, self.state.now())
                )
        except Exception as e:  # a bug in the fake: answer 500 and keep it visible
            self.state.server_errors.append(f"{method} {path}: {type(e).__name__}: {e}")
            response = json_response(500, {"message": "500: Internal Server Error", "code": 0})
        return response

    async def _handle_cdn(self, request: web.Request) -> web.StreamResponse:
        att = self.state.attachments.get(int(request.match_info["attachment_id"]))
        on_cdn = request.host.partition(":")[0] == CDN_HOST  # the API host serves no files
        if att is None or att.filename != request.match_info["filename"] or not on_cdn:
            return web.Response(status=404, text="Not Found")
        self.state.cdn_downloads.append(att.id)
        return web.Response(
            body=att.data, content_type=att.content_type or "application/octet-stream"
        )


def _template_regex(template: str) -> str:
    return "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"


async def _read_body(request: web.Request) -> tuple[Any, dict[str, str], list[UploadedFile]]:
    form: dict[str, str] = {}
    files: list[UploadedFile] = []
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                continue
            name = part.name or ""
            if part.filename is not None:
                data = await part.read(decode=False)
                files.append(
                    UploadedFile(name, part.filename, bytes(data), part.headers.get("Content-Type"))
                )
            else:
                form[name] = await part.text()
        body = json.loads(form["payload_json"]) if "payload_json" in form else None
        return body, form, files
    raw = await request.read()
    if not raw:
        return None, form, files
    try:
        return json.loads(raw), form, files
    except ValueError:
        return raw.decode(errors="replace"), form, files
