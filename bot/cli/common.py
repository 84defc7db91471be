"""What every `acejam` command shares: the command tree, the consoles, and how a command
loads the settings and runs the core (a setting that fails ends in one red line, exit 2)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

from bot.config import Settings, load_settings
from bot.errors import ConfigError
from bot.logs import setup_logging

app = typer.Typer(help="AceJam: make songs together in Discord and Telegram.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
jobs_app = typer.Typer(help="Recent jobs; `export` copies one's audio out.")
admin_app = typer.Typer(
    help="Operator controls: quotas, blocks, queue, usage.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(jobs_app, name="jobs")
app.add_typer(admin_app, name="admin")
T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)


def load() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        stop_on_setting(exc)
    setup_logging(settings.log_level, settings.secrets(), settings.log_format)
    return settings


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, where a setting that only fails at start-up (a database that can't
    be opened) ends in the same one line as one that fails to parse."""
    try:
        return asyncio.run(main)
    except ConfigError as exc:
        stop_on_setting(exc)


def stop_on_setting(exc: ConfigError) -> NoReturn:
    # One line whatever the width: no markup, no highlighting, no wrapping.
    err_console.print(str(exc), style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2) from None
