"""Opening the database the settings name, with one sentence naming the setting to look at
when it can't be opened (`acejam run`, `acejam doctor`)."""

from __future__ import annotations

import re

from sqlalchemy.exc import ArgumentError, DBAPIError, InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from bot.errors import ConfigError
from storage.db import create_engine, private_dir


async def open_database(settings: Settings) -> AsyncEngine:
    """An engine on a database that answers, or a :class:`ConfigError` in one line naming
    the setting to look at (a traceback of the driver's internals helps nobody)."""
    setting = "DATABASE_URL" if settings.database_url else "DATA_DIR"
    try:
        private_dir(settings.data_dir)  # 0700: the database and every song live there
        engine = create_engine(settings.resolved_database_url)
    except (ArgumentError, InvalidRequestError, ImportError, ValueError) as exc:
        raise ConfigError(
            f"Invalid setting DATABASE_URL: {_reason(exc)} (expected sqlite+aiosqlite:///PATH "
            "or postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DATABASE)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"Invalid setting {setting}: {_reason(exc)}") from None
    try:
        async with engine.connect():
            pass
    except (OSError, DBAPIError) as exc:
        await engine.dispose()
        where = engine.url.render_as_string(hide_password=True)
        raise ConfigError(
            f"Invalid setting {setting}: cannot open the database at {where}: {_reason(exc)}"
        ) from None
    return engine


def _reason(exc: BaseException) -> str:
    """The first line of an error, without SQLAlchemy's "(driver.Error) " prefix."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"^\([\w.]+\) ", "", text)
