"""The retention sweep over the audio directory."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path


def remove_expired_audio(
    audio_dir: Path,
    *,
    older_than: timedelta,
    keep: Collection[Path],
    now: datetime | None = None,
) -> list[Path]:
    """Delete files under ``audio_dir`` last modified before ``now - older_than``.

    Anything in ``keep`` (files, or directories whose whole content is kept: the caller passes
    undelivered jobs' audio) is never touched, however old. Directories emptied by the sweep
    are removed too. Returns the files removed.
    """
    cutoff = ((now or datetime.now(UTC)) - older_than).timestamp()
    kept = {path.resolve() for path in keep}
    removed: list[Path] = []
    emptied: set[Path] = set()
    if not audio_dir.is_dir():
        return removed
    for path in sorted(audio_dir.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        resolved = path.resolve()
        if resolved in kept or not kept.isdisjoint(resolved.parents):
            continue
        try:
            if path.stat().st_mtime >= cutoff:
                continue
            path.unlink()
        except FileNotFoundError:
            continue  # removed by someone else meanwhile: fine
        removed.append(path)
        emptied.add(path.parent)
    root = audio_dir.resolve()
    for directory in sorted(emptied, key=lambda p: len(p.parts), reverse=True):
        while directory.resolve() != root and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
            directory = directory.parent
    return removed
