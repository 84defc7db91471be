"""Renders a sample jam's board to docs/jamboard.png at a phone's width, for README.

Run by hand after changing the board's look:

    .venv/bin/python -m tests.board.screenshot [dark]   (light by default)

It serves the board on the bot's real listener on 127.0.0.1 (a jam in its second round,
voting, the first round's winner below) and photographs it in Debian's Chromium."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from playwright.async_api import ViewportSize

from bot.jams.model import Jam
from tests.board import sample
from tests.board.browser import PHONE, chromium
from tests.board.serve import serve_board

SCHEME: Literal["light", "dark"] = "dark" if sys.argv[1:] == ["dark"] else "light"
SHOT = ViewportSize(
    width=PHONE["width"], height=1180
)  # the top of the page: status, players, the round's words
OUT = Path(__file__).resolve().parents[2] / "docs" / "jamboard.png"


async def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        jam = sample.two_rounds(
            Path(folder), vote_ends_at=datetime.now(UTC) + timedelta(minutes=7, seconds=42)
        )

        async def find(token: str) -> Jam | None:
            return jam if token == jam.token else None

        async with serve_board(find) as base, chromium() as browser:
            page = await browser.new_page(viewport=SHOT, device_scale_factor=2)
            await page.emulate_media(color_scheme=SCHEME)
            await page.goto(f"{base}/jam/{sample.TOKEN}")
            await page.wait_for_function("!!document.getElementById('countdown')")
            await page.screenshot(path=str(OUT))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
