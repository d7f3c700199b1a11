"""Wall-clock deadlines: per request (headers in time, then a minimum rate) and overall."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from digestgate.digest import Digest
from digestgate.errors import ExitCode
from digestgate.oci import media
from digestgate.oci.manifest import Descriptor
from digestgate.oci.options import StoreOptions
from digestgate.oci.registry.errors import BrokenBodyError, DeadlineError, TransientError
from digestgate.oci.registry.wallclock import Watch
from tests.unit.registry_fake import FakeRegistry, image


class Clock:
    """A fake monotonic clock that only moves when told (or when something sleeps)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _options(fake: FakeRegistry, **kw: float | int | None) -> StoreOptions:
    values: dict[str, object] = {"timeout": 5.0, "retries": 2, "backoff": 0.5, **kw}
    return StoreOptions(transport=httpx.MockTransport(fake.handle), **values)  # type: ignore[arg-type]


# -- the rule --------------------------------------------------------------------------------


def test_watch_gives_the_answer_limit_seconds() -> None:
    clock = Clock()
    watch = Watch(5.0, 1000.0, None, clock)
    clock.now += 4.9
    assert watch.remaining() > 0 and watch.expired is None
    clock.now += 0.2
    assert watch.remaining() < 0 and watch.expired == "request"


def test_watch_extends_only_for_a_full_window_of_bytes() -> None:
    clock = Clock()
    watch = Watch(5.0, 100.0, None, clock)  # 500 bytes per 5 s window
    for _ in range(4):
        clock.now += 4.0
        watch.progress(499)  # one byte short of the window, then the rest
        watch.progress(1)
    assert watch.remaining() == pytest.approx(5.0)
    clock.now += 4.0
    watch.progress(400)  # not enough: the deadline stays
    clock.now += 1.1
    assert watch.remaining() < 0 and watch.expired == "request"


def test_watch_never_runs_past_the_overall_deadline() -> None:
    clock = Clock()
    watch = Watch(30.0, 0.0, clock.now + 2.0, clock)
    watch.progress(10**9)
    clock.now += 2.5
    assert watch.remaining() < 0 and watch.expired == "overall"


# -- through the client ----------------------------------------------------------------------


def _trickled(fake: FakeRegistry, clock: Clock, raw: bytes, seconds_per_byte: float) -> None:
    """Serve every manifest GET one byte at a time, the clock moving between bytes."""

    def slow(request: httpx.Request) -> httpx.Response | None:
        if request.method != "GET" or "/manifests/" not in request.url.path:
            return None

        def body() -> Iterator[bytes]:
            for i in range(len(raw)):
                clock.now += seconds_per_byte
                yield raw[i : i + 1]

        return httpx.Response(200, headers={"Content-Type": media.OCI_MANIFEST}, content=body())

    fake.faults.append(slow)


def test_a_trickled_manifest_is_cut_off_and_named() -> None:
    fake = FakeRegistry()
    raw, _ = image()
    fake.add_manifest("app", raw, media.OCI_MANIFEST, tag="v1")
    clock = Clock()
    _trickled(fake, clock, raw, seconds_per_byte=0.5)  # 2 bytes per second
    client = fake.client(options=_options(fake), clock=clock, sleep=clock.sleep)
    with client, pytest.raises(BrokenBodyError) as caught:
        client.repository("app").resolve("v1")
    message = caught.value.message
    assert message.startswith("GET https://registry.test/v2/app/manifests/v1: slower than")
    assert "for 5 s" in message and caught.value.exit_code == ExitCode.OPERATIONAL
    assert fake.count("GET", "/manifests/v1") == 3  # the request and the read, retried together
    assert clock.now - 1000.0 < 3 * 6 + 5  # three bounded attempts and two pauses


def test_a_steady_slow_body_above_the_minimum_rate_completes() -> None:
    fake = FakeRegistry()
    raw, _ = image()
    fake.add_manifest("app", raw, media.OCI_MANIFEST, tag="v1")
    clock = Clock()
    _trickled(fake, clock, raw, seconds_per_byte=0.01)  # 100 bytes/s, for several windows
    options = _options(fake, timeout=1.0, min_rate=50.0)
    with fake.client(options=options, clock=clock, sleep=clock.sleep) as client:
        assert client.repository("app").resolve("v1").digest == Digest.of(raw)
    assert clock.now - 1000.0 > 3.0  # longer than the timeout: the rate kept it going


def test_overall_deadline_stops_retries_and_names_the_request() -> None:
    fake = FakeRegistry()
    clock = Clock()

    def slow_503(request: httpx.Request) -> httpx.Response:
        clock.now += 4.0
        return httpx.Response(503)

    fake.faults.append(slow_503)
    options = _options(fake, retries=10, deadline=10.0)
    client = fake.client(options=options, clock=clock, sleep=clock.sleep)
    with client, pytest.raises(DeadlineError) as caught:
        client.repository("app").resolve("v1")
    assert "the deadline of 10 s for registry work passed" in caught.value.message
    assert "GET https://registry.test/v2/app/manifests/v1" in caught.value.message
    assert "--deadline" in (caught.value.hint or "")
    assert caught.value.exit_code == ExitCode.OPERATIONAL
    assert len(fake.requests) <= 3


def test_a_retry_after_past_the_deadline_is_not_waited_for() -> None:
    fake = FakeRegistry()
    clock = Clock()
    fake.faults.append(lambda _r: httpx.Response(429, headers={"Retry-After": "20"}))
    options = _options(fake, deadline=10.0)
    client = fake.client(options=options, clock=clock, sleep=clock.sleep)
    with client, pytest.raises(DeadlineError) as caught:
        client.repository("app").resolve("v1")
    assert "while waiting 20.0 s to retry GET" in caught.value.message
    assert clock.now == 1000.0  # it did not sleep at all


def test_a_slow_blob_download_is_cut_off() -> None:
    fake = FakeRegistry()
    data = b"z" * 64
    descriptor = Descriptor(media.OCI_LAYER_TAR, Digest.of(data), len(data))
    clock = Clock()

    def trickle(request: httpx.Request) -> httpx.Response:
        def body() -> Iterator[bytes]:
            for i in range(len(data)):
                clock.now += 1.0
                yield data[i : i + 1]

        return httpx.Response(200, headers={"Content-Length": str(len(data))}, content=body())

    fake.faults.append(trickle)
    client = fake.client(options=_options(fake, retries=1), clock=clock, sleep=clock.sleep)
    repo = client.repository("app")
    with client, pytest.raises(TransientError) as caught, repo.open_blob(descriptor) as chunks:
        b"".join(chunks)
    assert f"GET https://registry.test/v2/app/blobs/{descriptor.digest}" in caught.value.message
    assert "slower than 16 KiB/s for 5 s" in caught.value.message
