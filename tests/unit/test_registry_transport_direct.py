"""Requests go to the client's transport directly: the wire request, the failures and the
URLs are exactly those of ``httpx.Client.send``, and no cookie is ever kept or sent."""

from __future__ import annotations

import random

import httpx
import pytest

from digestgate.errors import RegistryError
from digestgate.oci.options import StoreOptions
from digestgate.oci.registry.transport import USER_AGENT, Transport
from digestgate.oci.registry.urls import path_joiner
from digestgate.oci.registry.wallclock import Route, send_direct

BASES = (
    "http://127.0.0.1:5000",
    "https://registry.example",
    "https://registry.example:8443",
    "http://[::1]:5000",
    "https://registry-1.docker.io",
    "https://user@registry.example",
    "https://registry.example/",
    "https://registry.example/prefix",
    "https://registry.example?x=1",
    "https://registry.example#frag",
)
PATHS = (
    "/v2/",
    "/v2/app/manifests/v1",
    "/v2/org/app/blobs/sha256:" + "ab" * 32,
    "/v2/a.b/c_d/e-f/manifests/1.0-rc_1",
    "/v2/app/blobs/uploads/",
    "/v2/app/tags/list",
    "/",
    "v2/",
    "",
    "//evil.example/v2/",
    "/v2/../x",
    "/v2/./x",
    "/v2/.x/y",
    "/v2//x",
    "/v2/a%2Fb",
    "/v2/a b",
    "/v2/a?b=c",
    "/v2/a#b",
    "/v2/ä",
    "/v2/a@b",
    "https://other.example/v2/",
    "/v2/app/manifests/sha256:x/",
)


def _same(left: httpx.URL, right: httpx.URL) -> bool:
    return str(left) == str(right) and left == right and left.raw_path == right.raw_path


@pytest.mark.parametrize("base", BASES)
def test_registry_urls_are_what_joining_gives(base: str) -> None:
    url = httpx.URL(base)
    join = path_joiner(url)
    for path in PATHS:
        assert _same(join(path), url.join(path)), (base, path)
    rng = random.Random(7)
    alphabet = "abcXYZ019._-~:/@%?#+=!$&'()*,; \\\u00e4"
    for _ in range(3000):
        path = "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
        for candidate in (path, "/" + path):
            try:
                expected = url.join(candidate)
            except httpx.InvalidURL:
                with pytest.raises(httpx.InvalidURL):
                    join(candidate)
                continue
            assert _same(join(candidate), expected), (base, candidate)


def _recorded() -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return httpx.Response(200, headers={"Set-Cookie": "session=abc; Path=/"}, content=b"ok")

    return seen, httpx.MockTransport(handle)


@pytest.mark.parametrize(
    ("method", "headers", "content"),
    [
        ("GET", {}, None),
        ("HEAD", {"Accept": "application/json"}, None),
        ("PUT", {"Content-Type": "x/y", "user-agent": "other"}, b"body"),
        ("POST", {"Authorization": "Bearer t"}, None),
        ("PATCH", {"Content-Range": "0-3"}, [b"ab", b"cd"]),
        ("DELETE", {"ACCEPT-ENCODING": "identity", "Connection": "close"}, b""),
    ],
)
def test_a_direct_request_is_the_one_the_client_would_send(
    method: str, headers: dict[str, str], content: bytes | list[bytes] | None
) -> None:
    seen, mock = _recorded()
    route = Route.of(mock, 7.5, {"User-Agent": USER_AGENT})
    url = httpx.URL("https://registry.example/v2/app/blobs/uploads/x?_state=s")
    body = iter(content) if isinstance(content, list) else content
    direct = send_direct(route, method, url, headers, body)
    body = iter(content) if isinstance(content, list) else content
    request = route.client.build_request(method, url, headers=headers, content=body)
    classic = route.client.send(request, stream=True)
    mine, theirs = seen
    assert mine.method == theirs.method and mine.url == theirs.url
    assert mine.headers.raw == theirs.headers.raw
    assert mine.extensions == theirs.extensions
    assert mine.content == theirs.content
    assert direct.request is mine and direct.status_code == classic.status_code
    assert direct.read() == classic.read() == b"ok"


def test_no_cookie_is_kept_or_sent() -> None:
    seen, mock = _recorded()
    transport = Transport("registry.test", StoreOptions(transport=mock), lambda: None)
    url = transport.url("/v2/")
    for _ in range(2):
        transport.send("GET", url, scopes=()).close()
    transport.client.get(url).close()
    assert [r.headers.get("cookie") for r in seen] == [None, None, None]
    assert not transport.client.cookies


def test_a_closed_client_refuses_as_httpx_does() -> None:
    _, mock = _recorded()
    route = Route.of(mock, 1.0, {})
    route.client.close()
    with pytest.raises(RuntimeError, match="client has been closed"):
        send_direct(route, "GET", httpx.URL("https://r.example/"), {}, None)


def test_a_transport_failure_names_its_request() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    route = Route.of(httpx.MockTransport(handle), 1.0, {})
    with pytest.raises(httpx.ConnectError) as caught:
        send_direct(route, "GET", httpx.URL("https://r.example/v2/"), {}, None)
    assert caught.value.request.url == "https://r.example/v2/"


@pytest.mark.parametrize("location", ["https://h:port/x", "http://[::1/x", "/v2/\x00x"])
def test_an_unreadable_redirect_fails_as_the_client_did(location: str) -> None:
    closed: list[bool] = []

    class Stream(httpx.SyncByteStream):
        def __iter__(self):  # type: ignore[no-untyped-def]
            yield b""

        def close(self) -> None:
            closed.append(True)

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": location}, stream=Stream())

    route = Route.of(httpx.MockTransport(handle), 1.0, {})
    url = httpx.URL("https://r.example/v2/app/blobs/sha256:aa")
    with pytest.raises(Exception) as classic:
        route.client.send(route.client.build_request("GET", url), stream=True)
    closed.clear()
    with pytest.raises(Exception) as direct:
        send_direct(route, "GET", url, {}, None)
    assert type(direct.value) is type(classic.value)
    assert str(direct.value) == str(classic.value)
    assert closed == [True]


def test_an_unreadable_redirect_is_retried_then_unreachable() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "https://h:port/x"})

    options = StoreOptions(transport=httpx.MockTransport(handle), retries=1, backoff=0.0)
    transport = Transport("registry.test", options, lambda: None, sleep=lambda _s: None)
    with pytest.raises(RegistryError, match="cannot reach registry"):
        transport.send("GET", transport.url("/v2/x"), scopes=(), follow_redirects=True)
    assert transport.sent == 2


class _Conn:
    """A connection in a fixed state that records which checks the pool made."""

    def __init__(self, rng: random.Random, name: str) -> None:
        self.name = name
        self.origin = rng.choice("ab")
        self.closed = rng.random() < 0.1
        self.expired = rng.random() < 0.15
        self.idle = rng.random() < 0.6
        self.available = self.idle and rng.random() < 0.9
        self.expiry_checked = 0

    def is_closed(self) -> bool:
        return self.closed

    def has_expired(self) -> bool:
        self.expiry_checked += 1
        return self.expired

    def is_idle(self) -> bool:
        return self.idle

    def is_available(self) -> bool:
        return self.available

    def can_handle_request(self, origin: str) -> bool:
        return origin == self.origin


class _Wanted:
    def __init__(self, origin: str, queued: bool) -> None:
        self.request = type("R", (), {"url": type("U", (), {"origin": origin})()})()
        self.queued = queued
        self.connection: _Conn | None = None

    def is_queued(self) -> bool:
        return self.queued

    def assign_to_connection(self, connection: _Conn) -> None:
        self.connection = connection
        self.queued = False


def _pool_run(cls: type, seed: int) -> list[object]:
    rng = random.Random(seed)
    pool = cls(max_connections=rng.randrange(1, 8), max_keepalive_connections=rng.randrange(9))
    made = iter(range(100))
    pool.create_connection = lambda origin: _Conn(random.Random(seed), f"new{next(made)}{origin}")
    pool._connections = [_Conn(rng, f"c{n}") for n in range(rng.randrange(12))]
    pool._requests = [
        _Wanted(rng.choice("ab"), rng.random() < 0.7) for _ in range(rng.randrange(6))
    ]
    before = list(pool._connections)
    closing = pool._assign_requests_to_connections()
    return [
        [c.name for c in pool._connections],
        [c.name for c in closing],
        [(r.connection.name if r.connection else None, r.queued) for r in pool._requests],
        [c.expiry_checked for c in before],
    ]


def test_the_pool_decides_as_httpcore_does() -> None:
    """Same connections kept, closed and handed out, and every connection's expiry (a socket
    the server closed) checked as often, as httpcore's own bookkeeping."""
    import httpcore

    from digestgate.oci.registry import wallclock

    assert wallclock._POOL is wallclock._Pool, "written against httpcore 1.0.9"
    for seed in range(3000):
        assert _pool_run(wallclock._Pool, seed) == _pool_run(httpcore.ConnectionPool, seed), seed


@pytest.mark.parametrize("direct", [True, False])
def test_connections_use_their_socket_with_httpcores_errors(direct: bool) -> None:
    """Reads and writes go to the socket itself, failing as httpcore's stream does (the same
    steps through httpcore's stream give the same results)."""
    import socket

    import httpcore

    from digestgate.oci.registry import wallclock

    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        stream = wallclock._Backend().connect_tcp("127.0.0.1", port, timeout=5.0)
        assert isinstance(stream, wallclock._Stream) and stream._sock is not None
        if not direct:
            stream._sock = None
        peer, _ = server.accept()
        with peer:
            stream.write(b"x" * (3 * wallclock.WRITE_PIECE + 5), timeout=5.0)
            got = b""
            while len(got) < 3 * wallclock.WRITE_PIECE + 5:
                got += peer.recv(1 << 20)
            assert got == b"x" * (3 * wallclock.WRITE_PIECE + 5)
            stream.write(b"", timeout=5.0)
            peer.sendall(b"answer")
            assert stream.read(100, timeout=5.0) == b"answer"
            with pytest.raises(httpcore.ReadTimeout):
                stream.read(100, timeout=0.01)
            peer.shutdown(socket.SHUT_RDWR)
        assert stream.read(100, timeout=5.0) == b""
        stream.close()
        with pytest.raises(httpcore.ReadError):
            stream.read(100, timeout=1.0)
        with pytest.raises(httpcore.WriteError):
            stream.write(b"late", timeout=1.0)
