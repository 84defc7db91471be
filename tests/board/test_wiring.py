"""The board as `acejam run` serves it: on WEB_LISTEN when PUBLIC_URL is set, reading the jams
of the real core on SQLite; the link /jam board posts opens the jam, a revoked link is a 404
at once and the next /jam board link works; without PUBLIC_URL there is no board at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from bot.app import Core, web_listener
from bot.domain import Destination
from bot.jams import texts
from bot.jams.model import Part
from bot.service import Refused, Requester
from tests.board.serve import free_port
from tests.fakes.acestep import FakeAceStep
from tests.harness import acestep_settings, running_core

PUBLIC_URL = "https://jams.example.org/acejam"
HOST = Requester("discord", "21", "Ada")
WHERE = Destination("discord", "thread-9", HOST.user_id, scope_id="guild-9")


@asynccontextmanager
async def serving(tmp_path: Path, **settings: Any) -> AsyncIterator[tuple[Core, httpx.AsyncClient]]:
    port = free_port()
    async with FakeAceStep() as ace:
        configured = acestep_settings(
            tmp_path, ace.base_url, web_listen=f"127.0.0.1:{port}", **settings
        )
        async with (
            running_core(configured) as core,
            web_listener(core),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
        ):
            yield core, http


async def test_the_link_opens_the_jam_and_a_revoked_link_is_gone_at_once(tmp_path: Path) -> None:
    async with serving(tmp_path, public_url=PUBLIC_URL) as (core, http):
        jams = core.service.jams
        started = await jams.start(HOST, WHERE, "sea shanties", takes=2)
        assert not isinstance(started, Refused), started
        jam_id = started.jam.id
        added = await jams.add(HOST, jam_id, Part.LINE, "[Chorus] we row <and> we row")
        assert not isinstance(added, Refused), added
        link = await jams.board_url(HOST, jam_id)
        assert isinstance(link, str) and link.startswith(f"{PUBLIC_URL}/jam/")
        path = link.removeprefix(PUBLIC_URL)  # what the proxy forwards

        page = await http.get(path)
        assert page.status_code == 200
        assert "<h1>sea shanties</h1>" in page.text
        assert "[Chorus] we row &lt;and&gt; we row" in page.text
        assert "Collecting tags and lines" in page.text
        assert (await http.get(f"{path}.json")).json()["contributors"] == ["Ada"]

        unknown = await http.get("/jam/no-such-jam")
        revoked = await jams.revoke_board(HOST, jam_id)
        assert not isinstance(revoked, Refused) and revoked.message == texts.BOARD_REVOKED
        gone = await http.get(path)
        assert (gone.status_code, gone.content) == (404, unknown.content)
        assert (await http.get(f"{path}.json")).status_code == 404

        again = await jams.board_url(HOST, jam_id)
        assert isinstance(again, str) and again != link
        assert (await http.get(again.removeprefix(PUBLIC_URL))).status_code == 200


async def test_without_public_url_there_is_no_board(tmp_path: Path) -> None:
    async with serving(tmp_path) as (core, http):
        started = await core.service.jams.start(HOST, WHERE, "sea shanties")
        assert not isinstance(started, Refused), started
        refused = await core.service.jams.board_url(HOST, started.jam.id)
        assert isinstance(refused, Refused) and refused.message == texts.BOARD_OFF
        assert started.jam.token is not None
        assert (await http.get(f"/jam/{started.jam.token}")).status_code == 404
        assert (await http.get("/jam-static/board.js")).status_code == 404
        assert (await http.get("/healthz")).status_code == 200  # the listener itself runs
