"""Wall-clock deadlines for registry requests, enforced on every socket operation.

A socket timeout bounds one operation: a registry that answers 2 bytes per second never
trips it and can keep a command running forever. Every request therefore gets a
:class:`Watch`, and while it is current (:func:`scope`) each connect, read and write on the
connection is bounded by the time the watch has left. The rule:

- the answer's headers must arrive within ``limit`` seconds of sending the request (or of
  sending its last body byte);
- after that, body bytes (received or sent) must keep coming: each ``limit``-second window
  must carry at least ``min_rate * limit`` bytes (at least one), else the request is over;
- nothing runs past the overall deadline (``--deadline``), whatever the request.

:func:`network_transport` gives the connection pool a network backend whose streams apply
the current watch, so a trickle of headers is cut as surely as a trickle of body. Reads of a
response body must happen inside :func:`scope` of that response's watch: a blob download can
feed an upload in the same thread, and each side keeps its own deadline.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import suppress
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, Final, Literal, NamedTuple

import httpcore
import httpx

from digestgate.oci.registry.urls import check_redirect

#: Writes are cut into pieces this large, each bounded anew: a socket ``send`` loop resets
#: its timeout on every partial send.
WRITE_PIECE: Final = 64 * 1024

#: Where a response's watch is kept (``httpx.Response.extensions``).
WATCH: Final = "digestgate.watch"

Expiry = Literal["request", "overall"]


class Watch:
    """The deadline of one request (see the module docstring for the rule)."""

    def __init__(
        self,
        limit: float,
        min_rate: float,
        overall_at: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.min_rate = min_rate
        self.overall_at = overall_at
        self._clock = clock
        self._window = 0
        self.streamed = False
        """True once body bytes moved (the slow part was the transfer, not the answer)."""
        self.expired: Expiry | None = None
        self.deadline_at = self._cap(clock() + limit)

    def _cap(self, at: float) -> float:
        return at if self.overall_at is None else min(at, self.overall_at)

    def remaining(self, *, slack: float = 0.0) -> float:
        """Seconds left; at or below ``slack`` the watch records which deadline passed.

        ``slack`` lets a socket timeout that fired a hair before the deadline it was set
        to count as that deadline.
        """
        now = self._clock()
        left = self.deadline_at - now
        if left <= slack and self.expired is None:
            overall = self.overall_at is not None and now + slack >= self.overall_at
            self.expired = "overall" if overall else "request"
        return left

    def progress(self, n: int) -> None:
        """``n`` more body bytes moved; a full window of them earns another ``limit``."""
        self.streamed = True
        self._window += n
        if self._window >= max(1.0, self.min_rate * self.limit):
            self.restart()

    def restart(self) -> None:
        """A new phase (the request body was sent; the answer is awaited): ``limit`` again."""
        self._window = 0
        if self.expired is None:
            self.deadline_at = self._cap(self._clock() + self.limit)

    def check(self) -> None:
        """Raise :class:`httpx.ReadTimeout` once the watch has run out."""
        if self.remaining() <= 0:
            raise httpx.ReadTimeout("the request's deadline passed")


_local = threading.local()


def _stack() -> list[Watch]:
    stack: list[Watch] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = []
        _local.stack = stack
    return stack


class scope:
    """Make ``watch`` bound this thread's socket operations until the block ends."""

    __slots__ = ("_stack", "_watch")

    def __init__(self, watch: Watch) -> None:
        self._watch = watch
        self._stack: list[Watch] = []

    def __enter__(self) -> None:
        self._stack = _stack()
        self._stack.append(self._watch)

    def __exit__(self, *_exc: object) -> None:
        self._stack.pop()


def _bound(timeout: float | None, error: type[Exception]) -> float | None:
    """The current watch's time left, capped by the socket timeout; raise when none is left."""
    stack = _stack()
    if not stack:
        return timeout
    left = stack[-1].remaining()
    if left <= 0:
        raise error("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


def scoped_body(watch: Watch, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """A request body: each chunk is pulled outside the watch (it may come from another
    request) and counted as progress once written; the last one restarts the clock."""
    for chunk in chunks:
        yield chunk
        watch.progress(len(chunk))
    watch.restart()


def scoped_read(watch: Watch, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """A response body read under ``watch``, checked between chunks too (any transport)."""
    while True:
        with scope(watch):
            chunk = next(chunks, None)
        if chunk is None:
            return
        watch.progress(len(chunk))
        watch.check()
        yield chunk


def _socket_of(stream: httpcore.NetworkStream) -> socket.socket | None:
    """The socket (plain or TLS) under httpcore 1.0.9's own stream, else None."""
    kind = type(stream)
    if (
        httpcore.__version__ != "1.0.9"
        or kind.__name__ != "SyncStream"
        or kind.__module__ != "httpcore._backends.sync"
    ):
        return None
    sock = stream.get_extra_info("socket")
    return sock if isinstance(sock, socket.socket) else None


class _Stream(httpcore.NetworkStream):
    """A connection whose every operation is bounded by the current watch.

    On httpcore's own socket stream, reads and writes go to the socket here, as that stream
    does them (timeout set before each call, a partial send continued, socket errors
    mapped to httpcore's), without its generator context manager per operation.
    """

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner
        self._sock = _socket_of(inner)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        bounded = _bound(timeout, httpcore.ReadTimeout)
        sock = self._sock
        if sock is None:
            return self._inner.read(max_bytes, bounded)
        try:
            sock.settimeout(bounded)
            return sock.recv(max_bytes)
        except OSError as exc:
            kind = httpcore.ReadTimeout if isinstance(exc, socket.timeout) else httpcore.ReadError
            raise kind(exc) from exc

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        for start in range(0, len(buffer), WRITE_PIECE):
            piece = buffer[start : start + WRITE_PIECE]
            bounded = _bound(timeout, httpcore.WriteTimeout)
            if self._sock is None:
                self._inner.write(piece, bounded)
            else:
                self._send(self._sock, piece, bounded)

    @staticmethod
    def _send(sock: socket.socket, piece: bytes, timeout: float | None) -> None:
        try:
            while piece:
                sock.settimeout(timeout)
                piece = piece[sock.send(piece) :]
        except OSError as exc:
            kind = httpcore.WriteTimeout if isinstance(exc, socket.timeout) else httpcore.WriteError
            raise kind(exc) from exc

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bound(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, bounded))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bound(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_tcp(host, port, bounded, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        bounded = _bound(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_unix_socket(path, bounded, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


#: httpcore's exceptions and the httpx ones they stand for, most specific first.
_ERRORS: Final[tuple[tuple[type[Exception], type[httpx.TransportError]], ...]] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


def _translated(exc: Exception) -> httpx.TransportError | None:
    """The httpx exception an httpcore one stands for (None: raise ``exc`` as it is)."""
    for source, target in _ERRORS:
        if isinstance(exc, source):
            return target(str(exc))
    return None


class _Body(httpx.SyncByteStream):
    """A response body. One that is empty by its headers is taken to its end when closed
    unread: the connection then goes back to the pool instead of being dropped (h11 holds a
    connection until the end of the message is seen, which for an empty body needs no read)."""

    def __init__(self, stream: Iterable[bytes], empty: bool) -> None:
        self._stream = stream
        self._empty = empty

    def __iter__(self) -> Iterator[bytes]:
        self._empty = False
        try:
            yield from self._stream
        except Exception as exc:
            translated = _translated(exc)
            if translated is None:
                raise
            raise translated from exc

    def close(self) -> None:
        if self._empty:
            self._empty = False
            with suppress(Exception):
                # No socket read: h11 ends a zero-length body from the headers alone.
                for _ in self._stream:
                    break
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


def _empty_body(method: bytes, status: int, headers: list[tuple[bytes, bytes]]) -> bool:
    if method == b"HEAD" or status in (204, 304):
        return True
    lengths = [value.strip() for name, value in headers if name.lower() == b"content-length"]
    return lengths == [b"0"]


class _Pool(httpcore.ConnectionPool):
    """httpcore's pool, its bookkeeping done in linear time.

    httpcore 1.0.9 recounts all connections for each connection it looks at (n * n
    ``is_idle`` calls per request and per response closed) and lists every available and
    idle connection for each queued request. This makes the same decisions in the same
    order, on the same checks of each connection (closed, expired: an idle socket the server
    closed is still found and dropped), stopping at the first connection that fits.
    """

    def _assign_requests_to_connections(self) -> list[httpcore.ConnectionInterface]:
        closing: list[httpcore.ConnectionInterface] = []
        connections = self._connections
        for connection in list(connections):
            if connection.is_closed():
                connections.remove(connection)
            elif connection.has_expired() or (
                # httpcore counts all connections here, idle or not: so does this.
                connection.is_idle() and len(connections) > self._max_keepalive_connections
            ):
                connections.remove(connection)
                closing.append(connection)
        for pool_request in [request for request in self._requests if request.is_queued()]:
            origin = pool_request.request.url.origin
            fits = (c for c in connections if c.can_handle_request(origin) and c.is_available())
            reused = next(fits, None)
            if reused is not None:
                pool_request.assign_to_connection(reused)
                continue
            if len(connections) >= self._max_connections:
                idle = next((c for c in connections if c.is_idle()), None)
                if idle is None:
                    continue
                connections.remove(idle)
                closing.append(idle)
            connection = self.create_connection(origin)
            connections.append(connection)
            pool_request.assign_to_connection(connection)
        return closing


#: The linear-time pool where its bookkeeping is the one it was written against.
_POOL: Final = _Pool if httpcore.__version__ == "1.0.9" else httpcore.ConnectionPool


class _PoolTransport(httpx.BaseTransport):
    """HTTP/1.1 over an httpcore connection pool whose sockets obey the current watch."""

    def __init__(self, ssl_context: ssl.SSLContext | None) -> None:
        self._pool = _POOL(
            ssl_context=ssl_context,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_Backend(),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        url = request.url
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            answer = self._pool.handle_request(core)
        except Exception as exc:
            translated = _translated(exc)
            if translated is None:
                raise
            raise translated from exc
        assert isinstance(answer.stream, Iterable)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(answer.stream, _empty_body(core.method, answer.status, answer.headers)),
            extensions=answer.extensions,
        )

    def close(self) -> None:
        self._pool.close()


def network_transport(ssl_context: ssl.SSLContext | None) -> httpx.BaseTransport:
    """The transport for real connections: every socket operation obeys the current watch.

    ``ssl_context`` verifies HTTPS; None (a plain-HTTP registry's client) leaves httpcore's
    default, verifying context for any https URL that reaches it.
    """
    return _PoolTransport(ssl_context)


class Route(NamedTuple):
    """A client and the transport under it, on which requests are sent directly."""

    client: httpx.Client
    transport: httpx.BaseTransport

    @classmethod
    def of(cls, transport: httpx.BaseTransport, timeout: float, headers: dict[str, str]) -> Route:
        """A client on ``transport`` that never follows redirects, reads no environment and
        keeps no cookie: nothing a registry or token service sets is ever sent back."""
        client = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(timeout),
            headers=headers,
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            follow_redirects=False,
            trust_env=False,
        )
        return cls(client, transport)


def send_direct(
    route: Route,
    method: str,
    url: httpx.URL,
    headers: Mapping[str, str],
    content: bytes | Iterable[bytes] | None,
) -> httpx.Response:
    """``client.send(client.build_request(...), stream=True)`` on the client's transport.

    The same request (the client's headers merged with ``headers``, its timeout) and the
    same failures, less the per-request work of what these requests never use: the cookie
    jar (kept empty), event hooks, auth flows, redirect bookkeeping and elapsed time.
    """
    client = route.client
    if client.is_closed:
        raise RuntimeError("Cannot send a request, as the client has been closed.")
    merged = httpx.Headers(client.headers)
    merged.update(headers)
    timeout = client.timeout.as_dict()
    request = httpx.Request(
        method, url, headers=merged, content=content, extensions={"timeout": timeout}
    )
    try:
        response = route.transport.handle_request(request)
    except httpx.RequestError as exc:
        exc.request = request
        raise
    response.request = request
    try:
        check_redirect(response)
    except BaseException:
        response.close()
        raise
    return response
