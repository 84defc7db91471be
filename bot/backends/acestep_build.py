"""The ACE-Step backend from settings: one server as before, or a pool of them
(:class:`~bot.backends.acestep_pool.AceStepPool`) when ``ACESTEP_API_URL`` names several."""

from __future__ import annotations

import httpx

from bot.backends.acestep import AceStepBackend
from bot.backends.acestep_members import Member
from bot.backends.acestep_pool import AceStepPool
from bot.backends.acestep_routing import server_key
from bot.backends.download import Downloader, normalize_host
from bot.config import Settings
from bot.errors import ConfigError


def build_acestep(
    settings: Settings, http: httpx.AsyncClient, downloads: Downloader
) -> AceStepBackend | AceStepPool:
    """One shared client and downloader (whose policy lets in every server's own origin:
    :func:`pool_hosts`)."""
    servers = settings.acestep_servers
    engines = [
        AceStepBackend(
            http,
            base_url=server.url,
            api_key=server.api_key,
            downloads=downloads,
            max_concurrency=server.max_concurrency,
        )
        for server in servers
    ]
    if len(servers) == 1:
        return engines[0]  # exactly as before the pool: plain remote ids
    keys = [server_key(server.url) for server in servers]
    if len(set(keys)) != len(keys):
        raise ConfigError("Invalid setting ACESTEP_API_URL: names one server twice")
    members = [
        Member(
            key=key,
            url=server.url,
            api_key=server.api_key,
            engine=engine,
            capacity=server.max_concurrency,
            http=http,
            time_scale=settings.poll_time_scale,
        )
        for key, server, engine in zip(keys, servers, engines, strict=True)
    ]
    return AceStepPool(members, failover_seconds=settings.acestep_failover_seconds)


def pool_origins(settings: Settings) -> dict[str, str]:
    """A pool's servers by origin (``scheme://host:port``) → key, for the metrics' bounded
    ``server`` label (bot/metrics.py); empty without a pool."""
    urls = settings.acestep_urls if settings.backend_name == "acestep" else []
    if len(urls) < 2:
        return {}
    origins = {}
    for url in urls:
        parsed = httpx.URL(url)
        port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme, 80)
        origins[f"{parsed.scheme}://{parsed.host}:{port}"] = server_key(url)
    return origins


def pool_hosts(settings: Settings) -> list[str]:
    """``host:port`` of a pool's servers after the first (whose origin is the download
    policy's own), as if listed in DOWNLOAD_ALLOWED_HOSTS: each serves its own songs."""
    if settings.backend_name != "acestep":
        return []
    hosts = []
    for url in settings.acestep_urls[1:]:
        parsed = httpx.URL(url)
        port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme, 80)
        host = normalize_host(parsed.host)
        hosts.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return hosts
