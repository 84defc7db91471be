"""Renders a sample jam's board to docs/jamboard.png at a phone's width, for README.

Run by hand after changing the board's look:

    .venv/bin/python -m tests.board.screenshot

It serves the board on the bot's real listener on 127.0.0.1 (a jam in its second round,
voting, the first round's winner below) and photographs it in Debian's Chromium."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.jams.model import Jam, JamState, Part, Round
from tests.board import sample
from tests.board.browser import PHONE, chromium
from tests.board.serve import serve_board

SCHEME = sys.argv[1] if len(sys.argv) > 1 else "dark"  # or light
SHOT = {**PHONE, "height": 1180}  # the top of the page: status, players, the round's words
OUT = Path(__file__).resolve().parents[2] / "docs" / "jamboard.png"


def two_rounds(audio_dir: Path) -> Jam:
    first = sample.jam(audio_dir, state=JamState.CLOSED, votes=(4, 2, 1), winner=1)
    words = (
        sample.contribution(5, Part.TAG, "warm bass", "Dee", round=2),
        sample.contribution(6, Part.LINE, "[Chorus] hold the night, don't let it go", "Cy", 2),
        sample.contribution(7, Part.LINE, "every window hums our song", "Ada", 2),
    )
    takes = tuple(sample.take(audio_dir, 2, n) for n in (1, 2, 3))
    second = Round(
        number=2,
        state=JamState.VOTING,
        collect_ends_at=sample.START + timedelta(minutes=40),
        vote_ends_at=datetime.now(UTC) + timedelta(minutes=7, seconds=42),
        winner_take=None,
        base_job_id=first.current.takes[0].job_id,
        extended=True,
        takes=takes,
        votes_cast=5,
    )
    return dataclasses.replace(
        first,
        round=2,
        state=JamState.VOTING,
        contributions=first.contributions + words,
        rounds=(*first.rounds, second),
    )


async def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        jam = two_rounds(Path(folder))

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
