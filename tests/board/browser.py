"""Debian's Chromium (/usr/bin/chromium, or CHROMIUM_PATH) driven by Playwright, headless,
for the board's browser tests and the README screenshot. Never a downloaded browser: where
Chromium is missing the tests skip, unless ACEJAM_REQUIRE_CHROMIUM is set (.ci/run), which
makes them fail instead."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, ViewportSize, async_playwright

# Without the background-networking flags Chromium calls Google's hosts at start, which
# this network refuses (and which the "no request outside the bot" test would see).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
PHONE = ViewportSize(width=390, height=844)


def chromium_path() -> str:
    """The browser to drive, or skip (fail under ACEJAM_REQUIRE_CHROMIUM)."""
    path = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if Path(path).is_file():
        return path
    if os.environ.get("ACEJAM_REQUIRE_CHROMIUM"):
        pytest.fail(f"ACEJAM_REQUIRE_CHROMIUM is set but there is no Chromium at {path}")
    pytest.skip(f"the board's browser tests need Chromium at {path} (apt-get install chromium)")


@contextlib.asynccontextmanager
async def chromium(path: str | None = None) -> AsyncIterator[Browser]:
    """A headless Chromium."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=path or chromium_path(), args=FLAGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()
