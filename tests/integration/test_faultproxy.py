"""The fault proxy fixture does what it says, seen by a plain HTTP client (not digestgate's)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.faultproxy import (
    TAG_WRITE,
    CutRequest,
    CutResponse,
    FaultProxy,
    Hang,
    Reset,
    Status,
    Trickle,
    WrongBody,
    all_kinds,
)
from tests.fixtures.registry import Registry

pytestmark = pytest.mark.registry

DATA = bytes(range(256)) * 40  # 10 KiB


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def proxy(registry: Registry) -> Iterator[FaultProxy]:
    with FaultProxy(registry.host) as p:
        yield p


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        yield client


def _push(client: httpx.Client, host: str, repo: str, data: bytes) -> httpx.Response:
    """A monolithic upload (POST, then PUT with the body) through ``host``."""
    start = client.post(f"http://{host}/v2/{repo}/blobs/uploads/")
    assert start.status_code == 202
    location = httpx.URL(start.headers["location"])
    assert location.port == int(host.rpartition(":")[2])  # the registry's URL names the proxy
    return client.put(
        location.copy_merge_params({"digest": _digest(data)}),
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )


def _present(registry: Registry, repo: str, data: bytes) -> bool:
    url = f"{registry.url}/v2/{repo}/blobs/{_digest(data)}"
    return httpx.head(url, trust_env=False).status_code == 200


def test_forwards_uploads_and_downloads(
    proxy: FaultProxy, http: httpx.Client, registry: Registry, repo: str
) -> None:
    assert _push(http, proxy.host, repo, DATA).status_code == 201
    got = http.get(f"http://{proxy.host}/v2/{repo}/blobs/{_digest(DATA)}")
    assert got.status_code == 200 and got.content == DATA
    head = http.head(f"http://{proxy.host}/v2/{repo}/blobs/{_digest(DATA)}")
    assert head.status_code == 200 and head.headers["content-length"] == str(len(DATA))
    put = next(s for s in proxy.seen if s.method == "PUT")
    assert put.up_bytes == len(DATA) and put.status == 201 and put.fault is None
    assert _present(registry, repo, DATA)


def test_status_with_retry_after_is_answered_by_the_proxy(
    proxy: FaultProxy, http: httpx.Client, registry: Registry, repo: str
) -> None:
    proxy.add(Status(429, retry_after="3"), method="PUT")
    answer = _push(http, proxy.host, repo, DATA)
    assert answer.status_code == 429 and answer.headers["retry-after"] == "3"
    assert "TOOMANYREQUESTS" in answer.text
    assert not _present(registry, repo, DATA)  # never forwarded
    assert _push(http, proxy.host, repo, DATA).status_code == 201  # times=1: next one passes
    assert proxy.faults() == ["status-429-retry-3"]


@pytest.mark.parametrize("when", ["before-body", "after-body"])
def test_reset_before_forwarding_leaves_the_registry_untouched(
    when: str, proxy: FaultProxy, http: httpx.Client, registry: Registry, repo: str
) -> None:
    proxy.add(Reset(when), method="PUT")  # type: ignore[arg-type]
    with pytest.raises(httpx.TransportError):
        _push(http, proxy.host, repo, DATA)
    assert not _present(registry, repo, DATA)


def test_reset_after_forward_loses_only_the_answer(
    proxy: FaultProxy, http: httpx.Client, registry: Registry, repo: str
) -> None:
    proxy.add(Reset("after-forward"), method="PUT")
    with pytest.raises(httpx.TransportError):
        _push(http, proxy.host, repo, DATA)
    assert _present(registry, repo, DATA)  # the registry applied the request


def test_cut_request_body_reaches_the_registry_in_part(
    proxy: FaultProxy, http: httpx.Client, registry: Registry, repo: str
) -> None:
    proxy.add(CutRequest(1000), method="PUT")
    with pytest.raises(httpx.TransportError):
        _push(http, proxy.host, repo, DATA)
    put = next(s for s in proxy.seen if s.method == "PUT")
    assert put.up_bytes == 1000
    assert not _present(registry, repo, DATA)


def test_cut_response_body_breaks_the_read(
    proxy: FaultProxy, http: httpx.Client, registry: Registry, repo: str
) -> None:
    assert _push(http, registry.host, repo, DATA).status_code == 201
    proxy.add(CutResponse(1000), method="GET")
    received = bytearray()
    with (
        pytest.raises(httpx.TransportError),
        http.stream("GET", f"http://{proxy.host}/v2/{repo}/blobs/{_digest(DATA)}") as answer,
    ):
        assert answer.headers["content-length"] == str(len(DATA))
        for chunk in answer.iter_bytes():
            received.extend(chunk)
    assert bytes(received) == DATA[:1000]


def test_wrong_body_has_the_right_length_and_other_bytes(
    proxy: FaultProxy, http: httpx.Client, registry: Registry, repo: str
) -> None:
    assert _push(http, registry.host, repo, DATA).status_code == 201
    proxy.add(WrongBody(), method="GET")
    got = http.get(f"http://{proxy.host}/v2/{repo}/blobs/{_digest(DATA)}").content
    assert len(got) == len(DATA) and got != DATA
    assert sum(a != b for a, b in zip(got, DATA, strict=True)) == 1


def test_trickle_slows_the_body_and_optionally_the_headers(
    proxy: FaultProxy, http: httpx.Client, registry: Registry, repo: str
) -> None:
    small = b"x" * 100
    assert _push(http, registry.host, repo, small).status_code == 201
    url = f"http://{proxy.host}/v2/{repo}/blobs/{_digest(small)}"
    proxy.add(Trickle(rate=400), method="GET")
    began = time.monotonic()
    assert http.get(url).content == small
    assert time.monotonic() - began >= 0.2  # 100 bytes at 400 B/s
    proxy.add(Trickle(rate=400, headers=True), method="GET")
    began = time.monotonic()
    with http.stream("GET", url) as answer:
        headers_after = time.monotonic() - began
        assert answer.read() == small
    assert headers_after >= 0.3  # ~200 header bytes at 400 B/s


def test_hang_answers_nothing(proxy: FaultProxy, registry: Registry, repo: str) -> None:
    proxy.add(Hang(seconds=2.0), method="GET")
    began = time.monotonic()
    with (
        httpx.Client(timeout=0.3, trust_env=False) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        client.get(f"http://{proxy.host}/v2/")
    assert time.monotonic() - began < 1.5


def test_hold_blocks_matching_requests_until_released(
    proxy: FaultProxy, registry: Registry, repo: str
) -> None:
    gate = proxy.hold(method="PUT", path=TAG_WRITE, times=2)
    results: list[int] = []

    def tag_write(tag: str) -> None:
        with httpx.Client(timeout=10.0, trust_env=False) as client:
            # The manifest is invalid: the registry's answer (400) does not matter here.
            answer = client.put(
                f"http://{proxy.host}/v2/{repo}/manifests/{tag}",
                content=b"{}",
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
            )
            results.append(answer.status_code)

    threads = [threading.Thread(target=tag_write, args=(t,)) for t in ("a", "b")]
    for thread in threads:
        thread.start()
    assert gate.wait(2, timeout=10)
    time.sleep(0.2)
    assert results == []  # both still held
    # A write by digest is no tag write: it passes while the tag writes wait.
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        by_digest = client.put(
            f"http://{proxy.host}/v2/{repo}/manifests/{_digest(b'{}')}", content=b"{}"
        )
    assert by_digest.status_code >= 400
    gate.release()
    for thread in threads:
        thread.join(timeout=10)
    assert len(results) == 2


def test_random_schedule_is_a_function_of_the_seed(registry: Registry, repo: str) -> None:
    def run(seed: int) -> list[str]:
        with (
            FaultProxy(registry.host) as p,
            httpx.Client(timeout=5.0, trust_env=False) as client,
        ):
            p.random(seed, 0.5, [Status(500), Status(502), Status(503)], method="GET")
            for i in range(20):
                client.get(f"http://{p.host}/v2/{repo}/manifests/t{i % 4}")
            return [s.fault or "-" for s in p.seen]

    assert run(7) == run(7)
    assert run(7) != run(8)
    assert len(all_kinds()) >= 10
