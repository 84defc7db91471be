"""Checks of this machine's side: the database and the disk under DATA_DIR."""

from __future__ import annotations

import shutil
from pathlib import Path

from bot.app import open_database
from bot.backends.probe import Finding
from bot.config import Settings
from bot.errors import ConfigError
from storage.db import HEAD_REVISION, MIGRATIONS_DIR, stamped_revisions

MIB = 1024 * 1024


async def check_database(settings: Settings) -> Finding:
    """Opens the database as the bot does and reads which migration it is at; migrates
    nothing (the bot does that at its start, or `acejam db upgrade`)."""
    name = "Database"
    try:
        engine = await open_database(settings)
    except ConfigError as exc:
        return Finding(name, False, str(exc), "fix the setting it names")
    try:
        stamped = await stamped_revisions(engine)
    finally:
        await engine.dispose()
    where = engine.url.render_as_string(hide_password=True)
    if stamped == {HEAD_REVISION}:
        return Finding(name, True, f"{where} answers, migrated to {HEAD_REVISION}")
    known = {path.name.partition("_")[0] for path in MIGRATIONS_DIR.glob("versions/*.py")}
    if stamped <= known:
        # Older or empty: the bot migrates it at its next start, as it always does.
        at = f"at {', '.join(sorted(stamped))}" if stamped else "empty"
        return Finding(
            name, True, f"{where} answers ({at}; migrated to {HEAD_REVISION} at the next start)"
        )
    return Finding(
        name,
        False,
        f"{where} is at {', '.join(sorted(stamped))}, which this AceJam does not know",
        "a newer AceJam migrated it: run that version (databases are not migrated back)",
    )


def check_disk(settings: Settings) -> Finding:
    name = "Disk space"
    place = settings.data_dir.resolve()
    existing = next((p for p in (place, *place.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(existing).free
    needed = settings.min_free_disk_mb * MIB
    text = f"{free // MIB:,} MB free in {place}"
    if free < needed:
        return Finding(
            name,
            False,
            f"{text}, under MIN_FREE_DISK_MB={settings.min_free_disk_mb}",
            "free some space, lower AUDIO_RETENTION_DAYS, or move DATA_DIR",
        )
    return Finding(name, True, text)
