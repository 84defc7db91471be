"""A user's audio as the source of an edit (bot/sources.py): real files in, a stored source
or a sentence out, and nothing left behind in ``incoming`` either way."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from PIL import Image

from bot.domain import Invalid
from bot.sources import MAX_UPLOAD_BYTES, SourceAudio, SourceFiles, safe_key
from tests.audio.conftest import write_audio


def _leftovers(files: SourceFiles) -> list[Path]:
    return sorted(p for p in files.root.rglob("*") if p.is_file())


async def _sent(files: SourceFiles, key: str, write: object) -> SourceAudio | Invalid:
    """What ``take_in`` makes of a file the adapter downloaded for ``key``."""
    path = files.incoming(key)
    assert not path.exists() and path.parent.is_dir()
    if isinstance(write, bytes):
        path.write_bytes(write)
    else:
        write(path)  # type: ignore[operator]
    taken = await files.take_in(path, key=key)
    assert not path.exists()  # the incoming file is gone, kept or refused
    return taken


@pytest.mark.parametrize(("fmt", "seconds"), [("mp3", 8.0), ("ogg", 5.0), ("m4a", 4.0)])
async def test_real_audio_is_decoded_and_kept_under_its_key(
    tmp_path: Path, fmt: str, seconds: float
) -> None:
    files = SourceFiles(tmp_path, max_seconds=60)
    taken = await _sent(files, "telegram:55:901", lambda p: write_audio(p, seconds, fmt))
    assert isinstance(taken, SourceAudio), taken
    assert taken.format == fmt and abs(taken.seconds - seconds) < 0.1
    kept = Path(taken.path)
    assert kept.parent == files.root and kept.name == f"{safe_key('telegram:55:901')}.{fmt}"
    assert kept.stat().st_size == taken.size > 0
    assert _leftovers(files) == [kept]


async def test_what_is_not_audio_gets_a_sentence_and_leaves_nothing(tmp_path: Path) -> None:
    files = SourceFiles(tmp_path, max_seconds=60)
    picture = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(picture, "PNG")
    refusals = {
        "text": b"[Verse]\nthese are lyrics, renamed song.mp3\n" * 50,
        "picture": picture.getvalue(),
        "empty": b"",
        # An MP3's first bytes and nothing an MP3 decoder can play after them.
        "fake": b"ID3\x03\x00\x00\x00\x00\x00\x00" + os.urandom(4000),
        # A WAV header that ends before any audio: a file cut short.
        "cut wav": b"RIFF\x00\x01\x00\x00WAVEjunk" + bytes(200),
    }
    said = {}
    for name, content in refusals.items():
        taken = await _sent(files, f"discord-{name}", content)
        assert isinstance(taken, Invalid), name
        said[name] = taken.message
    not_audio = "That file isn't audio I can read; send MP3, WAV, FLAC, OGG (voice messages too) "
    assert {said[name] for name in ("text", "picture", "fake")} == {not_audio + "or M4A."}
    assert said["empty"].startswith("That file is empty;")
    assert said["cut wav"] == (
        "That audio file is damaged or cut short, so I can't use it; try sending it again."
    )
    assert _leftovers(files) == []


async def test_a_file_over_20_mb_is_refused_before_it_is_read(tmp_path: Path) -> None:
    files = SourceFiles(tmp_path)

    def huge(path: Path) -> None:  # sparse: 21 MB without writing them
        with path.open("wb") as file:
            file.write(b"ID3")
            file.truncate(21 * 1024 * 1024)

    taken = await _sent(files, "big", huge)
    assert taken == Invalid("That file is 21.0 MB; audio to edit can be at most 20 MB.")
    assert MAX_UPLOAD_BYTES == 20 * 1024 * 1024
    assert _leftovers(files) == []


async def test_audio_longer_than_the_longest_song_is_refused(tmp_path: Path) -> None:
    files = SourceFiles(tmp_path, max_seconds=5)
    for fmt in ("wav", "mp3"):
        taken = await _sent(files, f"long-{fmt}", lambda p, f=fmt: write_audio(p, 7.0, f))
        assert taken == Invalid(
            "That audio is 0:07 long; audio to edit can be at most 0:05. Send a shorter part."
        )
    fits = await _sent(files, "short", lambda p: write_audio(p, 4.5, "wav"))
    assert isinstance(fits, SourceAudio)
    assert _leftovers(files) == [Path(fits.path)]


async def test_a_file_cut_short_or_never_downloaded_gets_a_sentence(tmp_path: Path) -> None:
    files = SourceFiles(tmp_path, max_seconds=60)

    def cut(path: Path) -> None:
        write_audio(path, 6.0, "wav")
        with path.open("r+b") as file:
            file.truncate(path.stat().st_size // 2)

    taken = await _sent(files, "cut", cut)
    assert taken == Invalid(
        "That audio file is damaged or cut short, so I can't use it; try sending it again."
    )
    missing = files.incoming("never")  # the download failed before writing anything
    assert await files.take_in(missing, key="never") == Invalid(
        "I couldn't get that file from the chat; please send it again."
    )
    assert _leftovers(files) == []


async def test_a_source_from_our_track_outlives_the_track(tmp_path: Path) -> None:
    files = SourceFiles(tmp_path)
    (tmp_path / "audio").mkdir()
    track = write_audio(tmp_path / "audio" / "7.mp3", 3.0, "mp3")
    os.utime(track, (1_000_000_000, 1_000_000_000))  # a track made years ago
    source = await files.copy_of(track, "telegram:1:2")
    again = await files.copy_of(track, "telegram:1:2")  # the same event: the same file
    assert source == again and source.parent == files.root and source.suffix == ".mp3"
    assert source.read_bytes() == track.read_bytes()
    assert source.stat().st_mtime > time.time() - 60  # its age starts with the edit
    track.unlink()  # the parent's audio swept: the edit's source stays
    assert source.is_file()
    with pytest.raises(FileNotFoundError):
        await files.copy_of(track, "telegram:1:3")
    files.remove(source)
    files.remove(tmp_path / "audio")  # nothing outside sources is ever removed
    assert (tmp_path / "audio").is_dir() and _leftovers(files) == []


def test_keys_become_distinct_safe_file_names() -> None:
    names = {safe_key(key) for key in ("tg:1/2", "tg:1_2", "tg_1_2", "../../etc", "x" * 300)}
    assert len(names) == 5
    assert all(name.replace("-", "").replace("_", "").isalnum() for name in names)
    assert all(len(name) <= 91 for name in names)
    assert safe_key("discord-123") == "discord-123"
