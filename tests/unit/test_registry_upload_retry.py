"""Uploads survive transient failures: retried, resumed where the registry says, never resent
blindly, with Retry-After honoured and the source read again from its start."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator

import httpx
import pytest

from digestgate.digest import Digest
from digestgate.errors import DigestgateError, ExitCode
from digestgate.oci import media
from digestgate.oci.manifest import Descriptor
from digestgate.oci.options import StoreOptions
from digestgate.oci.registry.errors import TransientError
from digestgate.oci.registry.upload import _received
from tests.unit.registry_fake import FakeRegistry, sha

DATA = bytes(range(256)) * 40  # 10240 bytes: ten chunks of 1024
CHUNK = 1024

Fault = Callable[[httpx.Request], httpx.Response | None]


def _blob(data: bytes = DATA) -> Descriptor:
    return Descriptor(media.OCI_LAYER_TAR, Digest.of(data), len(data))


def _nth(method: str, n: int, action: Callable[[httpx.Request], httpx.Response]) -> Fault:
    """Apply ``action`` to the ``n``-th request of ``method`` (1-based) only."""
    seen = [0]

    def fault(request: httpx.Request) -> httpx.Response | None:
        if request.method != method:
            return None
        seen[0] += 1
        return action(request) if seen[0] == n else None

    return fault


def _patch_bytes(fake: FakeRegistry) -> int:
    return sum(int(r.headers["content-length"]) for r in fake.requests if r.method == "PATCH")


def _upload(fake: FakeRegistry, **kw: object) -> list[float]:
    delays: list[float] = []
    with fake.client(chunk_threshold=0, chunk_size=CHUNK, sleep=delays.append, **kw) as client:
        client.repository("app").put_blob(_blob(), [DATA])
    assert fake.blobs["app"][sha(DATA)] == DATA
    return delays


def _applied_then_lost(
    fake: FakeRegistry, keep: int | None = None
) -> Callable[..., httpx.Response]:
    """The registry stores the chunk (or its first ``keep`` bytes); the answer is lost."""

    def action(request: httpx.Request) -> httpx.Response:
        body = request.read()
        uuid = request.url.path.rsplit("/", 1)[1]
        fake.uploads[uuid].extend(body if keep is None else body[:keep])
        raise httpx.ReadError("connection reset by peer", request=request)

    return action


def test_a_503_on_a_chunk_resumes_without_resending_anything() -> None:
    fake = FakeRegistry()
    fake.faults.append(_nth("PATCH", 4, lambda r: (r.read(), httpx.Response(503))[1]))
    _upload(fake)
    assert _patch_bytes(fake) == len(DATA) + CHUNK  # the refused chunk, sent once more
    assert fake.count("POST", "/blobs/uploads/") == 1  # the same session, resumed
    methods = [r.method for r in fake.requests if r.method in ("PATCH", "GET", "HEAD")]
    assert methods[3:6] == ["PATCH", "HEAD", "GET"]  # failed, looked for, asked: then resend


def test_a_chunk_applied_but_unanswered_is_not_sent_again() -> None:
    fake = FakeRegistry()
    fake.faults.append(_nth("PATCH", 4, _applied_then_lost(fake)))
    _upload(fake)
    assert _patch_bytes(fake) == len(DATA)  # every byte exactly once
    ranges = [r.headers["content-range"] for r in fake.requests if r.method == "PATCH"]
    assert ranges[3:5] == ["3072-4095", "4096-5119"]


def test_a_chunk_stored_in_part_resumes_mid_chunk() -> None:
    fake = FakeRegistry()
    fake.faults.append(_nth("PATCH", 4, _applied_then_lost(fake, keep=100)))
    _upload(fake)
    ranges = [r.headers["content-range"] for r in fake.requests if r.method == "PATCH"]
    assert ranges[4] == "3172-4195"  # from the first byte the registry lacks


def test_a_lost_session_starts_over() -> None:
    fake = FakeRegistry()

    def lose_session(request: httpx.Request) -> httpx.Response:
        request.read()
        fake.uploads.clear()
        raise httpx.ReadError("connection reset by peer", request=request)

    fake.faults.append(_nth("PATCH", 4, lose_session))
    _upload(fake)
    assert fake.count("POST", "/blobs/uploads/") == 2
    assert _patch_bytes(fake) == len(DATA) + 4 * CHUNK  # three stored and the failed one


def test_a_416_is_answered_by_asking_the_session() -> None:
    fake = FakeRegistry()
    fake.faults.append(_nth("PATCH", 2, lambda r: (r.read(), httpx.Response(416))[1]))
    _upload(fake)
    assert fake.count("GET", "/blobs/uploads/") == 1
    assert fake.count("POST", "/blobs/uploads/") == 1


def test_retry_after_is_honoured_on_uploads() -> None:
    fake = FakeRegistry()
    busy = httpx.Response(429, headers={"Retry-After": "7"})
    fake.faults.append(_nth("PATCH", 2, lambda r: (r.read(), busy)[1]))
    fake.faults.append(
        _nth("PUT", 1, lambda r: (r.read(), httpx.Response(503, headers={"Retry-After": "2"}))[1])
    )
    assert _upload(fake) == [7.0, 2.0]


@pytest.mark.parametrize(
    "fault",
    [
        lambda r: httpx.Response(503) if r.method == "POST" else None,
        lambda r: (
            (_ for _ in ()).throw(httpx.ConnectError("refused", request=r))
            if r.method == "POST"
            else None
        ),
    ],
    ids=["503", "connect-error"],
)
def test_a_failing_session_start_is_retried_within_one_budget(fault: Fault) -> None:
    fake = FakeRegistry()
    fake.faults.append(fault)
    with (
        fake.client(chunk_threshold=0, chunk_size=CHUNK) as client,
        pytest.raises(TransientError) as caught,
    ):
        client.repository("app").put_blob(_blob(), [DATA])
    assert caught.value.exit_code == ExitCode.OPERATIONAL
    assert fake.count("POST", "/blobs/uploads/") == 4  # 1 + 3 retries, not 4 x 4


def test_progress_between_failures_restores_the_budget() -> None:
    fake = FakeRegistry()
    count = [0]

    def every_other_chunk(request: httpx.Request) -> httpx.Response | None:
        if request.method != "PATCH":
            return None
        count[0] += 1
        return (request.read(), httpx.Response(503))[1] if count[0] % 2 == 0 else None

    fake.faults.append(every_other_chunk)
    # One retry per failure: enough only because each failure follows progress.
    options = StoreOptions(transport=httpx.MockTransport(fake.handle), retries=1, backoff=0.0)
    _upload(fake, options=options)
    assert fake.count("POST", "/blobs/uploads/") == 1


def test_a_failing_source_ends_the_upload_as_it_is() -> None:
    fake = FakeRegistry()
    opened = [0]

    class Source:
        def __iter__(self) -> Iterator[bytes]:
            opened[0] += 1
            yield DATA[:100]
            raise TransientError("GET source: the answer broke off", hint="source side")

    with (
        fake.client(chunk_threshold=0, chunk_size=CHUNK) as client,
        pytest.raises(TransientError) as caught,
    ):
        client.repository("app").put_blob(_blob(), Source())
    assert caught.value.message == "GET source: the answer broke off"
    assert opened == [1]  # the source's own retries were spent: no second upload round
    assert fake.count("DELETE") == 1 and fake.uploads == {}


@pytest.mark.parametrize(
    ("header", "confirmed", "held"),
    [
        ("0-1023", 0, 1024),
        ("bytes=0-1023", 0, 1024),
        ("0-0", 0, 0),
        ("0-0", 1, 1),
        ("0--1", 0, 0),
        (None, 0, None),
        ("1-5", 0, None),
        ("0-x", 0, None),
    ],
)
def test_session_range_is_read_strictly(
    header: str | None, confirmed: int, held: int | None
) -> None:
    assert _received(header, confirmed) == held


@pytest.mark.parametrize("threshold", [10**9, 0], ids=["monolithic", "chunked"])
def test_an_abandoned_source_read_is_closed_before_the_next_attempt(threshold: int) -> None:
    # A source stream left to the garbage collector may close its connection at any moment,
    # even while this thread holds the connection pool's lock (a deadlock). The upload closes
    # every read of the source itself. The generator below sits in a reference cycle and the
    # collector is off: only an explicit close can end it.
    fake = FakeRegistry()
    events: list[str] = []

    class Source:
        def __iter__(self) -> Iterator[bytes]:
            holder: list[object] = []
            generator = self._read(holder)
            holder.append(generator)  # a cycle: refcounting alone never frees it
            return generator

        def _read(self, holder: list[object]) -> Iterator[bytes]:
            events.append("open")
            try:
                yield from (DATA[i : i + 256] for i in range(0, len(DATA), 256))
            finally:
                events.append("close")

    def half_then_reset(request: httpx.Request) -> httpx.Response:
        stream = request.stream
        assert isinstance(stream, httpx.SyncByteStream)
        next(iter(stream))
        raise httpx.WriteError("connection reset by peer", request=request)

    method = "PUT" if threshold else "PATCH"
    fake.faults.append(_nth(method, 1, half_then_reset))
    at_retry: list[list[str]] = []

    def note_sessions(request: httpx.Request) -> None:
        if request.method == "POST":
            at_retry.append(list(events))

    fake.faults.insert(0, note_sessions)

    class Unread(httpx.BaseTransport):
        """Hands requests over unread (MockTransport reads every body first)."""

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            return fake.handle(request)

    options = StoreOptions(transport=Unread(), retries=3, backoff=0.0)
    gc.disable()
    try:
        with fake.client(options=options, chunk_threshold=threshold, chunk_size=CHUNK) as client:
            client.repository("app").put_blob(_blob(), Source())
    finally:
        gc.enable()
    assert fake.blobs["app"][sha(DATA)] == DATA
    assert events.count("open") == events.count("close")
    if threshold:  # monolithic: a new session, started only once the old read was closed
        assert at_retry[1] == ["open", "close"]


class _Streaming(httpx.BaseTransport):
    """Hands a request body to the fake registry chunk by chunk, as a socket would, counting
    the bytes of each blob upload that left before the body ended or broke off."""

    def __init__(self, fake: FakeRegistry) -> None:
        self.fake = fake
        self.sent: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = bytearray()
        try:
            for chunk in request.stream:  # type: ignore[union-attr]
                body.extend(chunk)
        finally:
            if request.method == "PUT" and "/blobs/uploads/" in request.url.path:
                self.sent.append(len(body))
        whole = httpx.Request(
            request.method, request.url, headers=request.headers, content=bytes(body)
        )
        return self.fake.handle(whole)


@pytest.mark.parametrize("pieces", [1, 3, 10])
def test_a_monolithic_upload_holds_its_last_bytes_until_the_digest_is_checked(pieces: int) -> None:
    """Bytes that do not hash to the digest never reach a registry in full: the last chunk
    waits for the check, so even a registry that verified nothing could not commit them."""
    fake = FakeRegistry()
    transport = _Streaming(fake)
    options = StoreOptions(transport=transport, retries=0, backoff=0.0)
    other = bytes(len(DATA))  # the right size, other bytes
    step = -(-len(other) // pieces)
    source = [other[i : i + step] for i in range(0, len(other), step)]
    client = fake.client(options=options, chunk_threshold=1 << 30)
    with client, pytest.raises(DigestgateError, match="sha256"):
        client.repository("app").put_blob(_blob(), source)
    assert transport.sent and max(transport.sent) < len(DATA), transport.sent
    assert fake.blobs.get("app", {}) == {}
