"""The jam board in a real headless Chromium (Debian's, through Playwright): what a member
who opens the link sees and hears. A jam made through the real core on SQLite, its takes
made by the worker against the fake ACE-Step server: the page renders the jam, a take plays,
a vote shows up on the open page without a reload, the console stays clean and the page
asks nothing of any other origin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, ConsoleMessage, Page, Request

from bot.app import Core, web_listener
from bot.domain import Destination, JobState
from bot.jams.model import Jam, Part
from bot.service import Refused, Requester
from tests.board.browser import PHONE, chromium, chromium_path
from tests.board.serve import free_port
from tests.fakes.acestep import FakeAceStep
from tests.harness import RecordingDelivery, acestep_settings, running_core, wait_for_job

PUBLIC_URL = "https://jams.example.org"
GROUP = "-1001"
ADA = Requester("telegram", "11", "Ada")
BO = Requester("telegram", "12", "Bo <b>")
CY = Requester("telegram", "13", "Cy")


@dataclass
class Watched:
    """An open board page and what it did: console messages, page errors, requests."""

    page: Page
    base: str
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def outside(self) -> list[str]:
        return [url for url in self.requests if not url.startswith(f"{self.base}/")]


# One browser for the module (starting Chromium takes seconds), a new page per test.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium(chromium_path()) as opened:
        yield opened


async def watch(browser: Browser, base: str, path: str) -> Watched:
    page = await browser.new_page(viewport=PHONE)
    watched = Watched(page, base)

    def console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            watched.console.append(f"{message.type}: {message.text}")

    def request(sent: Request) -> None:
        watched.requests.append(sent.url)

    page.on("console", console)
    page.on("pageerror", lambda error: watched.errors.append(str(error)))
    page.on("request", request)
    await page.goto(f"{base}{path}")
    return watched


@dataclass
class Running:
    core: Core
    base: str  # the listener's address (PUBLIC_URL points at it through a proxy)


@pytest_asyncio.fixture(loop_scope="module")
async def bot(tmp_path: Path) -> AsyncIterator[Running]:
    """The bot with its listener and the board on, the worker making songs on the fake."""
    port = free_port()
    async with FakeAceStep(time_scale=0.01) as ace:
        settings = acestep_settings(
            tmp_path,
            ace.base_url,
            public_url=PUBLIC_URL,
            web_listen=f"127.0.0.1:{port}",
            max_duration=10,  # short takes: the fake encodes real audio
            poll_time_scale=0.002,
        )
        async with (
            running_core(settings, [RecordingDelivery("telegram")]) as core,
            web_listener(core),
        ):
            yield Running(core, f"http://127.0.0.1:{port}")


async def rendered_jam(core: Core) -> Jam:
    """Three members' jam, rendered into two takes that reached the chat."""
    jams = core.service.jams
    where = Destination("telegram", GROUP, ADA.user_id, scope_id=GROUP)
    started = await jams.start(ADA, where, "rainy city lo-fi", takes=2)
    assert not isinstance(started, Refused), started
    jam_id = started.jam.id
    for who, part, text in (
        (BO, Part.TAG, "dreamy synths"),
        (CY, Part.LINE, "[Verse] neon puddles <hum> along"),
        (ADA, Part.LINE, "we walk where the streetlights sing"),
    ):
        assert not isinstance(await jams.add(who, jam_id, part, text), Refused)
    assert not isinstance(await jams.render(ADA, jam_id), Refused)
    rendering = await jams.get(jam_id)
    assert rendering is not None and len(rendering.current.takes) == 2
    for take in rendering.current.takes:
        await wait_for_job(core, take.job_id, [JobState.DELIVERED])
    jam = await jams.get(jam_id)
    assert jam is not None
    return jam


async def board_path(core: Core, jam: Jam) -> str:
    """The path of the link /jam board posts."""
    url = await core.service.jams.board_url(ADA, jam.id)
    assert isinstance(url, str) and url.startswith(f"{PUBLIC_URL}/jam/"), url
    return url.removeprefix(PUBLIC_URL)


async def test_a_jams_board_plays_its_takes_and_shows_a_vote_live(
    browser: Browser, bot: Running
) -> None:
    jam = await rendered_jam(bot.core)
    board = await watch(browser, bot.base, await board_path(bot.core, jam))
    page = board.page
    assert await page.title() == "rainy city lo-fi · AceJam jam"
    assert await page.locator(".take h3").all_inner_texts() == ["Take 1", "Take 2"]
    lines = await page.locator(".lyrics li").all_inner_texts()
    assert [" ".join(line.split()) for line in lines] == [
        "[Verse] neon puddles <hum> along Cy",
        "we walk where the streetlights sing Ada",
    ]
    assert await page.locator(".people li").all_inner_texts() == ["Bo <b>", "Cy", "Ada"]
    seeds = [t.seed for t in jam.current.takes]
    facts = await page.locator(".take .facts").all_inner_texts()
    assert [f.split(" · ")[0] for f in facts] == [f"seed {seed}" for seed in seeds]

    audio = page.locator("#take-1-1 audio")
    played = await audio.evaluate(
        """audio => new Promise((resolve, reject) => {
            audio.muted = true;
            audio.listened = true;
            audio.addEventListener("timeupdate", () => {
                if (audio.currentTime > 0) resolve(audio.currentTime);
            });
            audio.addEventListener("error", () => reject(audio.error && audio.error.code));
            audio.play().catch(reject);
        })"""
    )
    assert played > 0

    voted = await bot.core.service.jams.vote(CY, jam.id, 1, 2)
    assert not isinstance(voted, Refused), voted
    await page.locator("#status", has_text="1 vote cast").wait_for(timeout=10_000)
    # The player that was playing is the same element, still playing.
    assert await audio.evaluate("audio => audio.listened && !audio.paused")
    assert board.errors == [] and board.console == []
    assert board.outside() == []
    assert f"{bot.base}/jam/{jam.token}/audio/1/1" in board.requests


async def test_closing_the_vote_marks_the_winner_on_the_open_page_as_it_plays(
    browser: Browser, bot: Running
) -> None:
    jam = await rendered_jam(bot.core)
    jams = bot.core.service.jams
    for who, take in ((BO, 2), (CY, 2), (ADA, 1)):
        assert not isinstance(await jams.vote(who, jam.id, 1, take), Refused)
    board = await watch(browser, bot.base, await board_path(bot.core, jam))
    page = board.page
    assert await page.locator(".votes").count() == 0  # no counts while voting
    audio = page.locator("#take-1-1 audio")
    await audio.evaluate(
        "audio => { audio.muted = true; audio.listened = true; return audio.play(); }"
    )
    closed = await jams.close(ADA, jam.id)
    assert not isinstance(closed, Refused), closed
    winner = page.locator("#take-1-2.winner")
    await winner.locator(".badge", has_text="Winner").wait_for(timeout=10_000)
    assert await winner.locator(".votes").inner_text() == "2 votes"
    assert await page.locator("#take-1-1 .votes").inner_text() == "1 vote"
    assert await page.locator("#status .state").inner_text() == "Round closed"
    # The player that was playing is the same element, still playing.
    assert await audio.evaluate("audio => audio.listened && !audio.paused")
    assert board.errors == [] and board.console == []
    assert board.outside() == []
