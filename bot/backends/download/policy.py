"""Where audio may be downloaded from: the rule, decided on resolved addresses.

An output URL comes from upstream JSON, so it is treated as hostile, but the upstream that sent
it is authenticated: WaveSpeed answers from ``api.wavespeed.ai`` and points at its CDN
(``https://<id>.cloudfront.net/predictions/<id>/1.mp3``), a host no operator should have to
list. So the rule is about *where a connection goes*, not about names:

- a host whose addresses are public (globally routable) may be fetched over https, or over the
  backend's own scheme (a self-hosted engine on plain http);
- a loopback, private, link-local (cloud metadata), shared, multicast or reserved address is
  refused, unless it is the backend's own origin (same address and port: the GPU box on the
  LAN, a test fake) or ``DOWNLOAD_ALLOWED_HOSTS`` names the host (optionally with a port).

:class:`DownloadPolicy` checks the URL (:meth:`check_url`) and then, at connect time, the
addresses the connection will actually use (:meth:`addresses`, called by the guarded network
backend in :mod:`bot.backends.download.transport`), so a name can't be re-resolved to somewhere else
between the check and the connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

import httpx

from bot.errors import AudioError

#: ``resolver(host, port)`` → the IP addresses a connection to ``host`` could use.
Resolver = Callable[[str, int], Awaitable[list[str]]]

_DEFAULT_PORTS = {"http": 80, "https": 443}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``getaddrinfo`` gives for ``host``, in its order, without duplicates."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise OSError(f"cannot resolve {host}: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def normalize_host(host: str) -> str:
    """Lower-case host without brackets, port or trailing dot; accepts a full URL too.

    Operators write allowlist entries as ``cdn.example.com``, ``cdn.example.com:443`` or
    ``https://cdn.example.com``; all name the same host.
    """
    return _split_entry(host)[0]


def is_public(address: str) -> bool:
    """True for a globally routable unicast address (the internet, not us or our LAN)."""
    ip = _ip(address)
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback in disguise
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


@dataclass(frozen=True)
class _Entry:
    host: str
    port: int | None  # None: any port of that host


class DownloadPolicy:
    """The download rule for one backend: its own origin, and the operator's extra hosts."""

    def __init__(
        self,
        backend_url: str,
        allowed_hosts: Collection[str] = (),
        *,
        resolver: Resolver = system_resolver,
    ) -> None:
        url = httpx.URL(backend_url)
        self._own_scheme = url.scheme
        self._own_host = normalize_host(url.host)
        self._own_port = url.port or _DEFAULT_PORTS.get(url.scheme, 0)
        self._allowed = tuple(_entry(h) for h in allowed_hosts if h.strip())
        self._resolve = resolver

    @property
    def allowed_schemes(self) -> frozenset[str]:
        return frozenset({"https", self._own_scheme})

    def check_url(self, url: httpx.URL) -> None:
        """Refuse what no address can make right: another scheme, or no host at all."""
        host = normalize_host(url.host)
        if not host:
            raise AudioError("the output URL has no host", code="download_refused")
        if url.scheme in self.allowed_schemes:
            return
        if url.scheme == "http" and self._listed(host, url.port or 80):
            return  # an operator-listed LAN host may serve plain http
        raise AudioError(
            f"refusing a {url.scheme or 'schemeless'} URL on {host}: outputs are fetched "
            f"over {' or '.join(sorted(self.allowed_schemes))}",
            code="download_refused",
        )

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses a connection to ``host:port`` may use, in resolver order.

        Raises :class:`AudioError` (``download_refused``) when none may be used, naming the
        setting that would allow it; ``OSError`` when the name does not resolve.
        """
        host = normalize_host(host)
        resolved = [host] if _ip(host) is not None else await self._resolve(host, port)
        if self._listed(host, port):
            return resolved  # the operator vouched for this host by name
        own: set[str] | None = None
        usable: list[str] = []
        for address in resolved:
            if is_public(address) or self._listed(address, port):
                usable.append(address)
                continue
            if port == self._own_port:
                if own is None:
                    own = await self._own_addresses()
                if address in own:
                    usable.append(address)
        if usable:
            return usable
        shown = ", ".join(resolved) or "nothing"
        raise AudioError(
            f"output host {host}:{port} resolves to {shown}, a private or local address that "
            f"is not the backend's own; set DOWNLOAD_ALLOWED_HOSTS={host}:{port} to allow it",
            code="download_refused",
        )

    async def _own_addresses(self) -> set[str]:
        if _ip(self._own_host) is not None:
            return {str(_ip(self._own_host))}
        with contextlib.suppress(OSError):
            return set(await self._resolve(self._own_host, self._own_port))
        return set()

    def _listed(self, host: str, port: int) -> bool:
        host = _canonical(host)
        return any(e.host == host and e.port in (None, port) for e in self._allowed)


def _entry(text: str) -> _Entry:
    host, port = _split_entry(text)
    return _Entry(_canonical(host), port)


def _split_entry(text: str) -> tuple[str, int | None]:
    """(host, port or None) from ``host``, ``host:port``, ``[v6]:port`` or a URL."""
    text = text.strip()
    port: str | None = None
    if "://" in text:
        with contextlib.suppress(httpx.InvalidURL):
            url = httpx.URL(text)
            return url.host.rstrip(".").lower(), url.port
    if text.startswith("["):  # "[::1]" or "[::1]:8001"
        text, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or None
    elif text.count(":") == 1:  # "host:port" (a bare IPv6 address has several colons)
        text, _, port = text.partition(":")
    number = int(port) if port and port.isdigit() else None
    return text.strip("[]").rstrip(".").lower(), number


def _canonical(host: str) -> str:
    """An IP literal in its one spelling (``::0001`` is ``::1``); a name as it is."""
    ip = _ip(host)
    return str(ip) if ip is not None else host


def _ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
