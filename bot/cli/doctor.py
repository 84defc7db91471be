"""`acejam doctor`: one line per check, ✓ or ✗ with what to do; exit 0 only when all pass."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer

from bot.cli.common import app, console
from bot.config import load_settings
from bot.errors import ConfigError
from bot.logs import setup_logging


@app.command()
def doctor(
    role: Annotated[
        str,
        typer.Option(help="worker: skip the chat platforms (a host that only makes songs)."),
    ] = "all",
) -> None:
    """Check the settings, database, backend, chat platforms, webhook URL and disk space."""
    # Imported here, not with the command tree: the checks bring aiohttp, which no other
    # command needs.
    from bot.doctor import Finding, diagnose, line

    try:
        settings = load_settings()
    except ConfigError as exc:
        _print(line(Finding("Settings", False, str(exc), "fix it in .env (see .env.example)")))
        raise typer.Exit(1) from None
    # The checks' own findings say what went wrong; library chatter would only interleave.
    setup_logging("WARNING", settings.secrets())
    logging.getLogger("aiohttp").setLevel(logging.ERROR)
    _print(line(Finding("Settings", True, f"valid; backend {settings.backend_name}")))
    findings = asyncio.run(diagnose(settings, platforms=role != "worker"))
    for finding in findings:
        _print(line(finding))
    raise typer.Exit(0 if all(f.ok for f in findings) else 1)


def _print(text: str) -> None:
    # One line each, whatever the width: a line per check is what scripts and eyes scan.
    # The mark is coloured on a terminal only (console.print drops styles in a pipe).
    mark, rest = text[0], text[1:]
    style = "green" if mark == "✓" else "red"
    console.print(f"[{style}]{mark}[/{style}]", end="", highlight=False)
    console.print(rest, markup=False, highlight=False, soft_wrap=True)
