"""Client-side balancing for ``H2Channel``: one connection per address of the target's name, calls round-robin.

A Kubernetes ClusterIP Service balances connections, not calls, so a client with one HTTP/2 connection talks to
one replica. Behind a headless Service the name resolves to every ready pod; the balancer keeps a connection to
each address (opened as calls come) and gives each call the next working one in turn. Streams stay on the
connection they started on.

- An address whose connect failed is skipped for ``RETRY_AFTER_S`` while other addresses work, so a call never
  waits for a broken one; when none is connected, a call tries every address at once and takes the first that
  answers (``UNAVAILABLE`` when none does, as with one address).
- The name is looked up again every ``resolve_interval_s`` and at once when a connection breaks or receives
  GOAWAY. New addresses get connections; a connection to an address that vanished drains: its calls finish,
  then it closes.
- A target with one address costs what it did before balancing: its connection is *pinned* on the channel,
  whose fast path returns it without entering the balancer. An IP literal is never looked up.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import grpc

from omniroute_core.grpc_h2._connection import Connection
from omniroute_core.grpc_h2._wire import rpc_error

__all__ = ["RETRY_AFTER_S", "Balancer", "Resolver", "resolve"]

log = logging.getLogger("omniroute_core.grpc_h2")

# the addresses of a name: ``await resolver(host, port)`` → IP addresses, in the order to use them
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
# how long an address whose connect failed is skipped while another address works
RETRY_AFTER_S = 1.0


async def resolve(host: str, port: int) -> list[str]:
    """``host``'s addresses from the system resolver (A and AAAA records, /etc/hosts), without repeats."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _Address:
    __slots__ = ("conn", "connecting", "host", "retry_at")

    def __init__(self, host: str) -> None:
        self.host = host
        self.conn: Connection | None = None
        self.connecting: asyncio.Future[Connection] | None = None
        self.retry_at = 0.0  # loop time before which a failed address is skipped


class Balancer:
    """The connections of one channel; ``pin(conn)`` is told the connection every call may take (the only
    address's, when it works) or None (the channel must ask ``connection()``)."""

    def __init__(
        self,
        host: str,
        port: int,
        authority: bytes,
        *,
        connect_timeout_s: float,
        resolver: Resolver | None,
        resolve_interval_s: float,
        pin: Callable[[Connection | None], None],
    ) -> None:
        self._host = host
        self._port = port
        self._authority = authority
        self._connect_timeout_s = connect_timeout_s
        self._resolver = resolver if resolver is not None or _is_ip(host) else resolve
        self._resolve_interval_s = resolve_interval_s
        self._pin = pin
        self._addresses: dict[str, _Address] = {} if self._resolver is not None else {host: _Address(host)}
        self._ready: list[Connection] = []  # the working connections, in round-robin order
        self._turn = 0
        self._all: set[Connection] = set()
        self._resolving: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def addresses(self) -> list[str]:
        return list(self._addresses)

    async def connection(self, timeout: float | None) -> Connection:
        """A working connection for the next call (waiting for one to open when none is connected)."""
        wait = self._connect_timeout_s if timeout is None else min(timeout, self._connect_timeout_s)
        if not self._addresses:  # the first call, or every lookup so far failed
            try:
                await asyncio.wait_for(asyncio.shield(self._resolve_now()), wait)
            except Exception as exc:  # the resolver's errors (OSError from the system's) and the timeout
                raise rpc_error(grpc.StatusCode.UNAVAILABLE, f"cannot resolve {self._host}: {exc!r}") from exc
        conn = self._pick()
        if conn is not None:
            return conn
        # none is connected: every address at once, backoff or not; the first to answer takes the call
        return await self._first([self._connect(address) for address in self._addresses.values()], wait)

    def _pick(self) -> Connection | None:
        ready = self._ready
        conn = None
        while ready:
            self._turn += 1
            if self._turn >= len(ready):
                self._turn = 0
            candidate = ready[self._turn]
            if candidate.usable:
                conn = candidate
                break
            ready.remove(candidate)  # past a GOAWAY (it drains) or out of stream ids: look the name up again
            self._refresh()
        if len(ready) < len(self._addresses):
            self._open_missing()
        return conn

    def _open_missing(self) -> None:
        now = asyncio.get_running_loop().time()
        for address in self._addresses.values():
            conn = address.conn
            if address.connecting is None and address.retry_at <= now and (conn is None or not conn.usable):
                self._connect(address)

    async def _first(self, pending: list[asyncio.Future[Connection]], wait: float) -> Connection:
        loop = asyncio.get_running_loop()
        end = loop.time() + wait
        waiting = set(pending)
        error: BaseException | None = None
        while waiting:
            timeout = max(0.0, end - loop.time())
            done, waiting = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                raise rpc_error(grpc.StatusCode.UNAVAILABLE, "timed out connecting to the server")
            for future in done:
                if future.cancelled():
                    continue
                error = future.exception()
                if error is None and future.result().usable:
                    return future.result()
        if isinstance(error, grpc.aio.AioRpcError):
            raise error
        raise rpc_error(grpc.StatusCode.UNAVAILABLE, f"no connection to {self._host}:{self._port}")

    # -- connections -----------------------------------------------------------------------------------------

    def _connect(self, address: _Address) -> asyncio.Future[Connection]:
        if address.connecting is None:
            address.connecting = asyncio.ensure_future(self._open(address.host))
            address.connecting.add_done_callback(partial(self._connected, address))
        return address.connecting

    async def _open(self, host: str) -> Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: Connection(self._authority, self._lost), host, self._port),
                self._connect_timeout_s,
            )
        except (OSError, TimeoutError) as exc:
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, f"cannot connect to {host}:{self._port}: {exc!r}") from exc
        self._all.add(conn)
        return conn

    def _connected(self, address: _Address, future: asyncio.Future[Connection]) -> None:
        address.connecting = None
        if future.cancelled():
            return
        if future.exception() is not None:
            address.retry_at = asyncio.get_running_loop().time() + RETRY_AFTER_S
            return
        conn = future.result()
        if self._closed or self._addresses.get(address.host) is not address:  # closed, or the address vanished
            _drain(conn)
            return
        address.conn = conn
        address.retry_at = 0.0
        self._ready.append(conn)
        self._update_pin()

    def _lost(self, conn: Connection) -> None:
        """A connection closed (broken, drained, or the channel closed)."""
        self._all.discard(conn)
        with contextlib.suppress(ValueError):
            self._ready.remove(conn)
        for address in self._addresses.values():
            if address.conn is conn:
                address.conn = None
        self._update_pin()
        self._refresh()

    def _update_pin(self) -> None:
        only = None
        if len(self._addresses) == 1:
            conn = next(iter(self._addresses.values())).conn
            if conn is not None and conn.usable:
                only = conn
        self._pin(only)

    # -- the name's addresses --------------------------------------------------------------------------------

    def _refresh(self) -> None:
        """Look the name up again now (once at a time)."""
        if self._resolver is not None and not self._closed:
            self._resolve_now()

    def _resolve_now(self) -> asyncio.Future[None]:
        if self._resolving is None:
            self._resolving = asyncio.ensure_future(self._resolve())
            self._resolving.add_done_callback(self._resolved)
        return self._resolving

    async def _resolve(self) -> None:
        assert self._resolver is not None
        hosts = list(await self._resolver(self._host, self._port))
        if not hosts:
            raise OSError(f"{self._host} has no address")
        if self._closed:
            return
        known = self._addresses
        self._addresses = {host: known.get(host) or _Address(host) for host in hosts}
        for host, address in known.items():
            if host not in self._addresses:
                self._retire(address)
        self._update_pin()

    def _resolved(self, future: asyncio.Future[None]) -> None:
        self._resolving = None
        if not future.cancelled() and (error := future.exception()) is not None:
            log.warning("looking up %s failed: %r (its known addresses stay in use)", self._host, error)
        if self._timer is not None:
            self._timer.cancel()
        if not self._closed and self._resolve_interval_s > 0:
            self._timer = asyncio.get_running_loop().call_later(self._resolve_interval_s, self._refresh)

    def _retire(self, address: _Address) -> None:
        if address.connecting is not None:
            address.connecting.cancel()
        conn = address.conn
        if conn is not None:
            with contextlib.suppress(ValueError):
                self._ready.remove(conn)
            _drain(conn)

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self._resolving is not None:
            self._resolving.cancel()
        for address in self._addresses.values():
            if address.connecting is not None:
                address.connecting.cancel()
        for conn in list(self._all):
            conn.close()
        self._ready.clear()
        self._pin(None)


def _drain(conn: Connection) -> None:
    """No new call on ``conn``; it closes once its calls have ended."""
    conn.draining = True
    if not conn.streams:
        conn.close()
