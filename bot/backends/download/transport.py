"""An httpx transport whose every TCP connection first asks the :class:`DownloadPolicy`.

httpcore hands its network backend the host *name* of each new connection (TLS still verifies
and sends SNI for that name afterwards). :class:`GuardedNetworkBackend` resolves the name once,
lets the policy pick the addresses it may use, and connects to one of those literal addresses:
what was checked is what is connected to, on the first hop and on every redirect (each new
origin is a new connection; a pooled one was checked when it was opened).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable

import httpcore
import httpx
from httpcore import AsyncNetworkBackend, AsyncNetworkStream
from httpcore._backends.base import SOCKET_OPTION as SocketOption

from bot.backends.download.policy import DownloadPolicy


class GuardedNetworkBackend(AsyncNetworkBackend):
    def __init__(self, policy: DownloadPolicy, inner: AsyncNetworkBackend | None = None) -> None:
        self._policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._policy.addresses(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from None
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # try the next permitted address, as a resolver's order allows
        assert failure is not None  # addresses() never returns an empty list
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> AsyncNetworkStream:
        raise httpcore.ConnectError("downloads never use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` over a :class:`GuardedNetworkBackend`, without proxies.

    httpx 0.28 takes no network backend, so the connection pool it built is replaced by the
    same pool with ours (its constructor arguments are the ones httpx passes). No proxy from
    the environment: a proxy would make the checked address the proxy's, not the target's.
    """

    def __init__(
        self,
        policy: DownloadPolicy,
        *,
        limits: httpx.Limits,
        verify: ssl.SSLContext | bool = True,
        network: AsyncNetworkBackend | None = None,
    ) -> None:
        super().__init__(verify=verify, limits=limits, trust_env=False)
        ssl_context = verify if isinstance(verify, ssl.SSLContext) else None
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedNetworkBackend(policy, network),
        )
