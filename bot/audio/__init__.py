"""The finished song, made fit for a chat: probed, sized to the upload limit, tagged, pictured.

Everything here is synchronous CPU and file work; callers run it in ``asyncio.to_thread``.

    probe(path)              AudioInfo from the file's headers, without decoding (the worker's)
    analyse(path)            one full decode: AudioInfo (validated) + Envelope (for pictures)
    prepare_for_upload(...)  an MP3 ≤ limit_bytes, tagged, with its pictures (PreparedTrack)
    render_waveform / render_cover / render_thumbnail      PNG/JPEG pictures of a track
    write_tags(...)          ID3v2.3 title, artist, album, comment, front cover
    tags_for(...)            the TrackTags for a generated song
    remove_expired_audio(...) retention sweep over the audio directory

One module per responsibility: ``probing`` (headers), ``decoding`` (``analyse`` and the
envelope), ``fitting`` (``prepare_for_upload``: sizing, MP3 encoding, previews), ``tags``,
``pictures``, ``retention``, and ``model`` (the dataclasses and constants they share). Import
from ``bot.audio``; the modules are its layout, not its interface.

Each song is decoded once. The worker only ``probe``s headers (a few kB read), and the full
decode, the only way to find damage in the middle of a file, is the ``analyse`` inside
``prepare_for_upload``, which needs the loudness envelope for the pictures anyway. PyAV, NumPy
and Pillow (~45 MB of RSS once imported) are imported inside the functions that decode, encode or
draw, so a process that only runs the worker never loads them: no module here imports them at
the top, and this one must import only such modules.

Audio is streamed from disk (decode → resample → encode), so a 4-minute 48 kHz WAV (~46 MB)
is never held in memory: Python-level allocations stay under 4 MB, whatever the length.
"""

from bot.audio.decoding import analyse
from bot.audio.fitting import prepare_for_upload
from bot.audio.model import (
    ARTIST,
    MIN_PREVIEW_SECONDS,
    STANDARD_KBPS,
    TITLE_MAX,
    AudioInfo,
    Envelope,
    PreparedTrack,
    Thumbnail,
    TrackTags,
)
from bot.audio.pictures import render_cover, render_thumbnail, render_waveform
from bot.audio.probing import probe
from bot.audio.retention import remove_expired_audio
from bot.audio.tags import tags_for, write_tags

__all__ = [
    "ARTIST",
    "MIN_PREVIEW_SECONDS",
    "STANDARD_KBPS",
    "TITLE_MAX",
    "AudioInfo",
    "Envelope",
    "PreparedTrack",
    "Thumbnail",
    "TrackTags",
    "analyse",
    "prepare_for_upload",
    "probe",
    "remove_expired_audio",
    "render_cover",
    "render_thumbnail",
    "render_waveform",
    "tags_for",
    "write_tags",
]
