"""Downloader against a small loopback file server: what lands on disk, and what never does.

Where a test needs "the internet" (a CDN host that resolves to a public address), it injects a
resolver and a network layer that carries that public address to the loopback file server:
everything above the socket (the policy, httpx, the redirects) is the real code path.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import ssl
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

import httpcore
import httpx
import pytest
from aiohttp import web

from bot.backends.download import (
    Downloader,
    DownloadPolicy,
    is_public,
    normalize_host,
    sniff_audio_format,
)
from bot.errors import AudioError, TransientBackendError
from tests.fakes.audio import make_audio, probe_audio
from tests.fakes.backend_common import AUDIO_CONTENT_TYPES
from tests.fakes.common import truncated_response
from tests.kit.backends import leftovers

MAX = 10_000_000
CDN = "d1q70pf5vjeyhc.cloudfront.net"
CDN_ADDRESS = "13.224.0.1"  # a public address: only the test's network layer "routes" it


class FileServer:
    """Serves test audio and misbehaves on request; records every request's headers."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.base_url = ""
        self.bomb = b""  # set by the test that serves /gzip-bomb
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/song.{fmt}", self._song)
        app.router.add_get("/status/{code}", self._status)
        app.router.add_get("/truncated", self._truncated)
        app.router.add_get("/chunked", self._chunked)
        app.router.add_get("/html", self._html)
        app.router.add_get("/empty", self._empty)
        app.router.add_get("/redirect", self._redirect)
        app.router.add_get("/loop", self._loop)
        app.router.add_get("/drip", self._drip)
        app.router.add_get("/gzip-bomb", self._gzip_bomb)
        app.router.add_get("/gzipped.mp3", self._gzipped)
        self._runner = web.AppRunner(app, access_log=None)

    @web.middleware
    async def _record(self, request: web.Request, handler: object) -> web.StreamResponse:
        self.requests.append((request.path, dict(request.headers)))
        return await handler(request)  # type: ignore[operator]

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _song(self, request: web.Request) -> web.Response:
        fmt = request.match_info["fmt"]
        return web.Response(body=make_audio(3.0, fmt), content_type=AUDIO_CONTENT_TYPES[fmt])

    async def _status(self, request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="error")

    async def _truncated(self, request: web.Request) -> web.StreamResponse:
        return await truncated_response(request, make_audio(3.0, "wav"), "audio/wav")

    async def _chunked(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # no Content-Length: only the running count can stop it
        await response.prepare(request)
        await response.write(make_audio(3.0, "wav"))
        return response

    async def _html(self, request: web.Request) -> web.Response:
        return web.Response(text="<html>nope</html>", content_type="text/html")

    async def _empty(self, request: web.Request) -> web.Response:
        return web.Response(body=b"")

    async def _loop(self, request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/loop"})

    async def _redirect(self, request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": request.query["to"]})

    async def _drip(self, request: web.Request) -> web.StreamResponse:
        # An MP3 header, then a byte every 0.2 s: no read ever times out, the whole never ends.
        response = web.StreamResponse(headers={"Content-Type": "audio/mpeg"})
        await response.prepare(request)
        await response.write(make_audio(3.0, "mp3")[:64])
        while True:
            await asyncio.sleep(0.2)
            await response.write(b"\x00")

    async def _gzip_bomb(self, request: web.Request) -> web.Response:
        return web.Response(body=self.bomb, headers={"Content-Encoding": "gzip, gzip"})

    async def _gzipped(self, request: web.Request) -> web.Response:
        # Sent compressed although we asked for identity: decoded, the song is intact.
        body = gzip.compress(make_audio(3.0, "mp3"))
        return web.Response(
            body=body, headers={"Content-Encoding": "gzip", "Content-Type": "audio/mpeg"}
        )


@pytest.fixture
async def files() -> AsyncIterator[FileServer]:
    server = FileServer()
    await server.start()
    yield server
    await server.stop()


class Internet(httpcore.AsyncNetworkBackend):
    """The socket layer, with some public addresses carried to loopback ports; records connects."""

    def __init__(self, routes: dict[str, int] | None = None) -> None:
        self.routes = routes or {}
        self.connects: list[tuple[str, int]] = []
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[object] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        if host in self.routes:
            host, port = "127.0.0.1", self.routes[host]
        return await self._inner.connect_tcp(host, port, timeout=timeout)


def resolver(names: dict[str, list[str]]) -> Callable[[str, int], object]:
    """A DNS that knows only ``names``; records each question."""
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        if host not in names:
            raise OSError(f"cannot resolve {host}")
        return names[host]

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


@pytest.fixture
async def downloads(files: FileServer, tls: ssl.SSLContext) -> AsyncIterator[Downloader]:
    """The downloader of a backend served by ``files`` itself (its own origin)."""
    async with Downloader(DownloadPolicy(files.base_url), timeout=2.0, verify=tls) as d:
        yield d


@pytest.fixture
async def make_downloader(tls: ssl.SSLContext) -> AsyncIterator[Callable[..., Downloader]]:
    """``make_downloader(policy, network=...)``: a Downloader closed after the test."""
    opened: list[Downloader] = []

    def make(policy: DownloadPolicy, network: Internet | None = None) -> Downloader:
        opened.append(Downloader(policy, timeout=2.0, verify=tls, network=network))
        return opened[-1]

    yield make
    for d in opened:
        await d.aclose()


@pytest.mark.parametrize("fmt", ["mp3", "wav", "flac"])
async def test_a_song_lands_on_disk_whole_and_playable(
    downloads: Downloader, files: FileServer, tmp_path: Path, fmt: str
) -> None:
    dest = tmp_path / "song"
    got = await downloads.fetch(f"{files.base_url}/song.{fmt}", dest, max_bytes=MAX)
    assert got.path == dest and got.format == fmt
    assert got.size == dest.stat().st_size == len(make_audio(3.0, fmt))
    duration, rate, _codec = probe_audio(dest)
    assert duration == pytest.approx(3.0, abs=0.1) and rate == 48000
    assert leftovers(tmp_path) == ["song"]


@pytest.mark.parametrize("code", [401, 403, 404, 410])
async def test_an_expired_link_is_an_audio_error_and_leaves_nothing(
    downloads: Downloader, files: FileServer, tmp_path: Path, code: int
) -> None:
    with pytest.raises(AudioError) as caught:
        await downloads.fetch(f"{files.base_url}/status/{code}", tmp_path / "s", max_bytes=MAX)
    assert caught.value.code == "download_expired"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/truncated", "download_truncated"),
        ("/html", "not_audio"),
        ("/empty", "empty_audio"),
        ("/status/418", "download_failed"),
        ("/loop", "download_failed"),
    ],
)
async def test_unusable_answers_are_audio_errors_and_leave_nothing(
    downloads: Downloader, files: FileServer, tmp_path: Path, path: str, code: str
) -> None:
    with pytest.raises(AudioError) as caught:
        await downloads.fetch(files.base_url + path, tmp_path / "s", max_bytes=MAX)
    assert caught.value.code == code
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("path", ["/song.wav", "/chunked"])
async def test_an_oversized_output_is_refused_with_or_without_content_length(
    downloads: Downloader, files: FileServer, tmp_path: Path, path: str
) -> None:
    with pytest.raises(AudioError) as caught:
        await downloads.fetch(files.base_url + path, tmp_path / "s", max_bytes=100_000)
    assert caught.value.code == "download_too_large"
    assert leftovers(tmp_path) == []


async def test_an_answer_without_content_length_is_still_saved(
    downloads: Downloader, files: FileServer, tmp_path: Path
) -> None:
    got = await downloads.fetch(f"{files.base_url}/chunked", tmp_path / "s", max_bytes=MAX)
    assert got.format == "wav" and probe_audio(got.path)[0] == pytest.approx(3.0, abs=0.1)


async def test_a_download_past_its_deadline_fails_and_leaves_nothing(
    make_downloader: Callable[..., Downloader], files: FileServer, tmp_path: Path
) -> None:
    downloads = make_downloader(DownloadPolicy(files.base_url))
    downloads.deadline = 0.5  # the server sends a byte every 0.2 s, for ever
    with pytest.raises(AudioError) as caught:
        await downloads.fetch(f"{files.base_url}/drip", tmp_path / "s", max_bytes=MAX)
    assert caught.value.code == "download_timeout"
    assert "DOWNLOAD_TIMEOUT_SECONDS" in caught.value.detail
    assert leftovers(tmp_path) == []


def _double_gzip(head: bytes, zeros: int) -> bytes:
    return gzip.compress(gzip.compress(head + bytes(zeros), 9), 9)


async def test_a_compression_bomb_is_capped_on_decoded_bytes_in_little_memory(
    downloads: Downloader, files: FileServer, tmp_path: Path
) -> None:
    # A WAV header then 64 MB of silence, gzipped twice: a few KB on the wire.
    files.bomb = await asyncio.to_thread(_double_gzip, make_audio(1.0, "wav")[:44], 64 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(AudioError) as caught:
            await downloads.fetch(f"{files.base_url}/gzip-bomb", tmp_path / "s", max_bytes=MAX)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.code == "download_too_large"
    assert peak < 16 * 1024 * 1024
    assert leftovers(tmp_path) == []


async def test_a_body_compressed_anyway_is_decoded(
    downloads: Downloader, files: FileServer, tmp_path: Path
) -> None:
    got = await downloads.fetch(f"{files.base_url}/gzipped.mp3", tmp_path / "s", max_bytes=MAX)
    assert got.format == "mp3" and got.path.read_bytes() == make_audio(3.0, "mp3")
    assert files.requests[-1][1]["Accept-Encoding"] == "identity"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.2:9/x.mp3",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9/x.mp3",
        "http://[::ffff:127.0.0.1]:9/x.mp3",
        "http://10.0.0.5/x.mp3",
        "http://[fd00:ec2::254]/latest/meta-data",
        "file:///etc/passwd",
        "ftp://127.0.0.1/x.mp3",
        "not a url",
    ],
)
async def test_local_and_private_addresses_are_never_contacted(
    make_downloader: Callable[..., Downloader], files: FileServer, tmp_path: Path, url: str
) -> None:
    internet = Internet()
    downloads = make_downloader(DownloadPolicy(files.base_url), network=internet)
    with pytest.raises(AudioError) as caught:
        await downloads.fetch(url, tmp_path / "s", max_bytes=MAX)
    assert caught.value.code == "download_refused"
    assert internet.connects == [] and leftovers(tmp_path) == []


async def test_the_backends_own_address_and_port_is_allowed_under_another_name(
    downloads: Downloader, files: FileServer, tmp_path: Path
) -> None:
    # WaveSpeed's fake: API on 127.0.0.1, files on "localhost" (same address and port).
    cdn = files.base_url.replace("127.0.0.1", "LocalHost.")
    got = await downloads.fetch(f"{cdn}/song.mp3", tmp_path / "s", max_bytes=MAX)
    assert got.format == "mp3"


async def test_another_port_of_the_backends_own_address_is_refused(
    make_downloader: Callable[..., Downloader], files: FileServer, tmp_path: Path
) -> None:
    backend = "http://127.0.0.1:8001"  # ACESTEP_API_URL: only port 8001 is the engine's
    with pytest.raises(AudioError) as caught:
        await make_downloader(DownloadPolicy(backend)).fetch(
            f"{files.base_url}/song.mp3", tmp_path / "s", max_bytes=MAX
        )
    assert caught.value.code == "download_refused"
    assert f"DOWNLOAD_ALLOWED_HOSTS=127.0.0.1:{httpx.URL(files.base_url).port}" in str(caught.value)
    assert files.requests == []


@pytest.mark.parametrize("entry", ["localhost", "LOCALHOST.:{port}", "http://localhost:{port}/"])
async def test_a_listed_private_host_is_allowed(
    make_downloader: Callable[..., Downloader], files: FileServer, tmp_path: Path, entry: str
) -> None:
    port = httpx.URL(files.base_url).port
    policy = DownloadPolicy("http://127.0.0.1:8001", [entry.format(port=port)])
    got = await make_downloader(policy).fetch(
        f"http://localhost:{port}/song.mp3", tmp_path / "s", max_bytes=MAX
    )
    assert got.format == "mp3"


async def test_a_listed_host_with_a_port_allows_only_that_port(
    make_downloader: Callable[..., Downloader], files: FileServer, tmp_path: Path
) -> None:
    policy = DownloadPolicy("http://127.0.0.1:8001", ["localhost:9"])
    with pytest.raises(AudioError) as caught:
        await make_downloader(policy).fetch(
            f"{files.base_url.replace('127.0.0.1', 'localhost')}/song.mp3",
            tmp_path / "s",
            max_bytes=MAX,
        )
    assert caught.value.code == "download_refused"


async def test_a_cdn_host_that_resolves_to_public_addresses_is_fetched(
    make_downloader: Callable[..., Downloader], files: FileServer, tmp_path: Path
) -> None:
    port = httpx.URL(files.base_url).port
    assert port is not None
    internet = Internet({CDN_ADDRESS: port})
    dns = resolver({CDN: [CDN_ADDRESS]})
    policy = DownloadPolicy("http://api.wavespeed.test", resolver=dns)  # type: ignore[arg-type]
    got = await make_downloader(policy, network=internet).fetch(
        f"http://{CDN}:{port}/song.mp3", tmp_path / "s", max_bytes=MAX
    )
    assert got.format == "mp3"
    # The connection went to the address that was checked, and the name was resolved once.
    assert internet.connects == [(CDN_ADDRESS, port)] and dns.asked == [CDN]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "addresses",
    [["127.0.0.1"], ["10.1.2.3"], ["169.254.169.254"], ["fd00:ec2::254"], ["::ffff:10.0.0.1"]],
)
async def test_a_name_that_resolves_to_a_private_address_is_refused(
    make_downloader: Callable[..., Downloader], tmp_path: Path, addresses: list[str]
) -> None:
    internet = Internet()
    policy = DownloadPolicy(
        "https://api.wavespeed.ai",
        resolver=resolver({CDN: addresses}),  # type: ignore[arg-type]
    )
    with pytest.raises(AudioError) as caught:
        await make_downloader(policy, network=internet).fetch(
            f"https://{CDN}/predictions/x/1.mp3", tmp_path / "s", max_bytes=MAX
        )
    assert caught.value.code == "download_refused"
    assert f"DOWNLOAD_ALLOWED_HOSTS={CDN}:443" in str(caught.value)
    assert internet.connects == []


async def test_only_the_public_addresses_of_a_mixed_answer_are_used(
    make_downloader: Callable[..., Downloader], files: FileServer, tmp_path: Path
) -> None:
    port = httpx.URL(files.base_url).port
    assert port is not None
    internet = Internet({CDN_ADDRESS: port})
    dns = resolver({CDN: ["10.0.0.7", CDN_ADDRESS]})
    policy = DownloadPolicy("http://api.wavespeed.test", resolver=dns)  # type: ignore[arg-type]
    await make_downloader(policy, network=internet).fetch(
        f"http://{CDN}:{port}/song.mp3", tmp_path / "s", max_bytes=MAX
    )
    assert internet.connects == [(CDN_ADDRESS, port)]


async def test_plain_http_to_a_public_host_is_refused_when_the_backend_speaks_https(
    make_downloader: Callable[..., Downloader], tmp_path: Path
) -> None:
    internet = Internet()
    dns = resolver({CDN: [CDN_ADDRESS]})
    policy = DownloadPolicy("https://api.wavespeed.ai", resolver=dns)  # type: ignore[arg-type]
    with pytest.raises(AudioError) as caught:
        await make_downloader(policy, network=internet).fetch(
            f"http://{CDN}/predictions/x/1.mp3", tmp_path / "s", max_bytes=MAX
        )
    assert caught.value.code == "download_refused" and internet.connects == []


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://127.0.0.2:9/x.mp3",
        "http://127.0.0.1:9/x.mp3",
        f"http://{CDN}/x.mp3",  # a name that resolves to the metadata address
    ],
)
async def test_a_redirect_into_a_local_address_is_refused(
    make_downloader: Callable[..., Downloader], files: FileServer, tmp_path: Path, target: str
) -> None:
    internet = Internet()
    dns = resolver({CDN: ["169.254.169.254"]})
    policy = DownloadPolicy(files.base_url, resolver=dns)  # type: ignore[arg-type]
    url = str(httpx.URL(f"{files.base_url}/redirect", params={"to": target}))
    with pytest.raises(AudioError) as caught:
        await make_downloader(policy, network=internet).fetch(url, tmp_path / "s", max_bytes=MAX)
    assert caught.value.code == "download_refused"
    assert {host for host, _port in internet.connects} == {"127.0.0.1"}  # the first hop only
    assert leftovers(tmp_path) == []


async def test_a_redirect_to_a_listed_origin_is_followed_without_the_credentials(
    make_downloader: Callable[..., Downloader], files: FileServer, tmp_path: Path
) -> None:
    other = FileServer()  # same host, other port: a different origin
    await other.start()
    try:
        policy = DownloadPolicy(files.base_url, [httpx.URL(other.base_url).netloc.decode()])
        url = str(
            httpx.URL(f"{files.base_url}/redirect", params={"to": f"{other.base_url}/song.mp3"})
        )
        got = await make_downloader(policy).fetch(
            url, tmp_path / "s", max_bytes=MAX, headers={"Authorization": "Bearer origin-only"}
        )
    finally:
        await other.stop()
    assert got.format == "mp3"
    assert files.requests[0][1].get("Authorization") == "Bearer origin-only"
    assert "Authorization" not in other.requests[0][1]


@pytest.mark.parametrize(
    ("entry", "host"),
    [
        ("CDN.Example.com", "cdn.example.com"),
        ("cdn.example.com:443", "cdn.example.com"),
        ("https://cdn.example.com/path", "cdn.example.com"),
        ("[::1]:8001", "::1"),
        ("::1", "::1"),
        ("127.0.0.1.", "127.0.0.1"),
    ],
)
def test_allowlist_entries_are_normalised_to_bare_hosts(entry: str, host: str) -> None:
    assert normalize_host(entry) == host


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("13.224.0.1", True),
        ("2600:9000:2000::1", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("100.100.100.200", False),  # carrier-grade NAT (Alibaba's metadata service)
        ("169.254.169.254", False),
        ("224.0.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00:ec2::254", False),
        ("::ffff:127.0.0.1", False),
        ("ff02::1", False),
    ],
)
def test_public_means_globally_routable_unicast(address: str, public: bool) -> None:
    assert is_public(address) is public


@pytest.mark.parametrize("code", [429, 500, 502, 503])
async def test_a_busy_or_broken_file_host_is_transient(
    downloads: Downloader, files: FileServer, tmp_path: Path, code: int
) -> None:
    with pytest.raises(TransientBackendError):
        await downloads.fetch(f"{files.base_url}/status/{code}", tmp_path / "s", max_bytes=MAX)
    assert leftovers(tmp_path) == []


async def test_an_unreachable_file_host_is_transient(
    make_downloader: Callable[..., Downloader], closed_port_url: str, tmp_path: Path
) -> None:
    downloads = make_downloader(DownloadPolicy(closed_port_url))
    with pytest.raises(TransientBackendError):
        await downloads.fetch(f"{closed_port_url}/x.mp3", tmp_path / "s", max_bytes=MAX)


async def test_a_name_that_does_not_resolve_is_transient(
    make_downloader: Callable[..., Downloader], tmp_path: Path
) -> None:
    policy = DownloadPolicy("https://api.wavespeed.ai", resolver=resolver({}))  # type: ignore[arg-type]
    with pytest.raises(TransientBackendError):
        await make_downloader(policy, network=Internet()).fetch(
            f"https://{CDN}/x.mp3", tmp_path / "s", max_bytes=MAX
        )


async def test_signed_query_strings_stay_out_of_logs_and_errors(
    downloads: Downloader, files: FileServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    await downloads.fetch(
        f"{files.base_url}/song.mp3?sig=SIGNED-SECRET", tmp_path / "a", max_bytes=MAX
    )
    with pytest.raises(AudioError) as caught:
        await downloads.fetch(
            f"{files.base_url}/status/403?sig=SIGNED-SECRET", tmp_path / "b", max_bytes=MAX
        )
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("bot")]
    assert ours and not any("SIGNED-SECRET" in line for line in ours)
    assert "SIGNED-SECRET" not in str(caught.value)


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"ID3\x04\x00\x00\x00\x00\x00\x00\x00\x00", "mp3"),
        (b"\xff\xfb\x90\x64" + bytes(8), "mp3"),  # MPEG-1 layer III frame
        (b"\xff\xf3\x90\x64" + bytes(8), "mp3"),  # MPEG-2 layer III frame
        (b"\xff\xf1\x50\x80" + bytes(8), None),  # AAC ADTS shares the sync word
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "wav"),
        (b"RIFF\x24\x00\x00\x00AVI LIST", None),
        (b"fLaC\x00\x00\x00\x22" + bytes(4), "flac"),
        (b"OggS\x00\x02" + bytes(6), "ogg"),
        (b"\x00\x00\x00\x20ftypM4A ", "m4a"),
        (b"<!DOCTYPE html>", None),
        (b'{"error": "x"}', None),
        (b"", None),
    ],
)
def test_formats_are_recognised_from_their_first_bytes(head: bytes, fmt: str | None) -> None:
    assert sniff_audio_format(head) == fmt
