"""Peak RSS added by downloading a 50 MB file: ``bot.backends.download.Downloader.fetch`` vs.
reading it whole with httpx.

    .venv/bin/python bench/download_memory.py [--quick] [--mb 50] [--runs 3]

The file (an "ID3" header, so it passes the format sniff, then incompressible bytes) is
served by aiohttp's ``FileResponse`` from a separate process. Each download runs in a fresh
child process that imports everything and opens its HTTP client first, records VmRSS, resets
the kernel's peak counter (``/proc/self/clear_refs``, value 5) so VmHWM starts from the
current RSS, downloads, and reads VmHWM: the peak increase is VmHWM - VmRSS before. When the
reset is not allowed it falls back to VmHWM - max(VmRSS, VmHWM) before, which can only
under-count (noted in the output).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as c
import httpx
from _fake_server import ServerProcess

GOAL_MIB = 16.0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


async def _measure(method: str, url: str, dest: Path) -> dict[str, float]:
    from bot.backends.download import Downloader, DownloadPolicy

    limits = httpx.Limits(max_connections=50, max_keepalive_connections=20)
    timeout = httpx.Timeout(60, connect=10)
    async with (
        httpx.AsyncClient(timeout=timeout, limits=limits) as http,
        Downloader(DownloadPolicy(url), timeout=timeout) as downloads,
    ):
        await http.get(url, headers={"Range": "bytes=0-0"})  # warm the client and the pool
        await asyncio.to_thread(lambda: None)  # and the thread pool the Downloader uses
        before = c.status_kib("VmRSS")
        hwm_before = c.status_kib("VmHWM")
        reset = _reset_peak()
        started = time.perf_counter()
        if method == "downloader":
            got = await downloads.fetch(url, dest, max_bytes=200 * 1024 * 1024)
            size = got.size
        else:
            response = await http.get(url)
            body = response.content
            await asyncio.to_thread(dest.write_bytes, body)
            size = len(body)
            del body, response
        seconds = time.perf_counter() - started
        peak = c.status_kib("VmHWM")
    base = before if reset else max(before, hwm_before)
    return {
        "rss_before_mb": before * 1024 / 1e6,
        "peak_increase_mb": max(0, peak - base) * 1024 / 1e6,
        "seconds": seconds,
        "size_mb": size / 1e6,
        "reset": float(reset),
    }


def _child(method: str, url: str, dest: str) -> None:
    result = asyncio.run(_measure(method, url, Path(dest)))
    print("RESULT " + json.dumps(result), flush=True)


def _run(method: str, url: str, dest: Path) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", method, url, str(dest)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    dest.unlink(missing_ok=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[7:]))
    raise RuntimeError(f"{method} child failed:\n{proc.stdout}\n{proc.stderr[-3000:]}")


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run per method")
    parser.add_argument("--mb", type=float, default=50.0, help="file size in MB (10^6 bytes)")
    parser.add_argument("--runs", type=int, help="runs per method (default 3; quick 1)")
    args = parser.parse_args()
    runs = args.runs or (1 if args.quick else 3)
    c.header(
        "bench/download_memory.py: peak RSS increase while downloading one file",
        f"{args.mb:g} MB file served from a separate process; {runs} fresh child process(es) "
        "per method",
    )
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp, "big.mp3")
        with source.open("wb") as fh:
            fh.write(b"ID3\x04\x00\x00\x00\x00\x00\x00")
            remaining = int(args.mb * 1_000_000) - 10
            while remaining > 0:
                chunk = min(remaining, 1 << 20)
                fh.write(os.urandom(chunk))
                remaining -= chunk
        rows = []
        with ServerProcess("file", "--path", str(source)) as server:
            url = f"{server.base_url}/big.mp3"
            for method, name in (
                ("downloader", "bot.backends.download.Downloader.fetch"),
                ("whole", "baseline: httpx response.content, then write"),
            ):
                results = [_run(method, url, Path(tmp, f"out-{method}.mp3")) for _ in range(runs)]
                increases = [r["peak_increase_mb"] for r in results]
                worst = max(increases)
                rows.append(
                    [
                        name,
                        c.fmt(results[0]["size_mb"], 1),
                        c.fmt(c.mean([r["rss_before_mb"] for r in results]), 1),
                        " / ".join(c.fmt(x, 1) for x in increases),
                        c.fmt(worst, 1),
                        c.fmt(c.mean([r["seconds"] for r in results])),
                        c.verdict(worst <= GOAL_MIB),
                    ]
                )
                if not all(r["reset"] for r in results):
                    c.console.print("[yellow]VmHWM could not be reset: increases may be low[/]")
    c.table(
        "Peak RSS increase during one download (MB = 10^6 bytes)",
        [
            "method",
            "file MB",
            "RSS before MB",
            "increase per run MB",
            "worst MB",
            "seconds",
            "≤ 16 MB?",
        ],
        rows,
    )
    c.console.print(f"goal: downloading a 50 MB file raises peak RSS by ≤ {GOAL_MIB:g} MB.\n")


if __name__ == "__main__":
    main()
