"""Deadlines against the real registry behind the fault proxy: a trickle cannot stall a run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from digestgate.digest import Digest
from digestgate.errors import DigestgateError
from digestgate.oci import media
from digestgate.oci.manifest import Descriptor
from digestgate.oci.options import StoreOptions
from digestgate.oci.registry.client import RegistryClient
from digestgate.oci.registry.errors import TransientError
from tests.conftest import CliResult, run_cli
from tests.fixtures.faultproxy import BY_DIGEST, FaultProxy, Hang, Trickle
from tests.fixtures.registry import Registry
from tests.unit.registry_fake import image

pytestmark = pytest.mark.registry

T = TypeVar("T")


def bounded(seconds: float, call: Callable[[], T]) -> T | BaseException:
    """Run ``call`` in a thread; fail the test when it is still running after ``seconds``."""
    outcome: list[T | BaseException] = []

    def target() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still running after {seconds:g} s: nothing bounds the request")
    return outcome[0]


def stage(registry: Registry, repo: str, layer: bytes) -> tuple[bytes, Descriptor]:
    """An image pushed straight to the registry (not through the proxy); its layer."""
    raw, blobs = image(layer)
    with RegistryClient(registry.host, StoreOptions(), environ={}) as client:
        target = client.repository(repo)
        for digest, data in blobs.items():
            target.put_blob(
                Descriptor(media.OCI_LAYER_TAR, Digest.parse(digest), len(data)), [data]
            )
        target.put_manifest(raw, media.OCI_MANIFEST, tag="v1")
    return raw, Descriptor(media.OCI_LAYER_TAR, Digest.of(layer), len(layer))


@pytest.fixture
def proxy(registry: Registry) -> Iterator[FaultProxy]:
    with FaultProxy(registry.host) as p:
        yield p


def _client(proxy: FaultProxy, **options: float) -> RegistryClient:
    values: dict[str, float] = {"timeout": 1.0, "retries": 1, "backoff": 0.01, **options}
    return RegistryClient(proxy.host, StoreOptions(**values), environ={})  # type: ignore[arg-type]


def test_headers_at_two_bytes_per_second_are_cut_at_the_timeout(
    proxy: FaultProxy, registry: Registry, repo: str
) -> None:
    stage(registry, repo, b"layer for the header trickle")
    proxy.add(Trickle(rate=2, headers=True), method="GET", path="/manifests/v1", times=None)
    began = time.monotonic()
    with _client(proxy) as client:
        outcome = bounded(20, lambda: client.repository(repo).resolve("v1"))
    assert isinstance(outcome, TransientError), outcome
    assert outcome.message == (
        f"GET http://{proxy.host}/v2/{repo}/manifests/v1: no answer within 1 s"
    )
    assert outcome.exit_code == 3
    assert time.monotonic() - began < 4  # two attempts of 1 s, not 2 bytes/s for minutes
    assert proxy.count("GET", "/manifests/v1") == 2


def test_a_blob_at_two_bytes_per_second_is_cut_and_named(
    proxy: FaultProxy, registry: Registry, repo: str
) -> None:
    _, layer = stage(registry, repo, b"a" * 4096)
    proxy.add(Trickle(rate=2), method="GET", path=BY_DIGEST, times=None)
    with _client(proxy) as client:
        store = client.repository(repo)

        def read() -> bytes:
            with store.open_blob(layer) as chunks:
                return b"".join(chunks)

        outcome = bounded(20, read)
    assert isinstance(outcome, DigestgateError), outcome
    assert outcome.message.startswith(f"GET http://{proxy.host}/v2/{repo}/blobs/{layer.digest}")
    assert outcome.message.endswith("slower than 16 KiB/s for 1 s")
    assert outcome.exit_code == 3


def test_a_slow_but_steady_blob_above_the_minimum_rate_completes(
    proxy: FaultProxy, registry: Registry, repo: str
) -> None:
    data = bytes(range(256)) * 256  # 64 KiB
    _, layer = stage(registry, repo, data)
    proxy.add(Trickle(rate=48 * 1024), method="GET", path=BY_DIGEST, times=None)
    began = time.monotonic()
    with _client(proxy) as client, client.repository(repo).open_blob(layer) as chunks:
        assert b"".join(chunks) == data
    assert time.monotonic() - began > 1.0  # longer than the 1 s timeout, yet allowed
    assert proxy.count("GET", BY_DIGEST) == 1  # in one answer: nothing was cut and resumed


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_the_overall_deadline_ends_a_command_that_hangs(
    how: str, proxy: FaultProxy, registry: Registry, repo: str
) -> None:
    stage(registry, repo, b"layer for the hang")
    proxy.add(Hang(), method="GET", path="/manifests/v1", times=None)
    args = ["resolve", proxy.ref(repo, "v1"), "--registry-timeout", "30"]
    env: dict[str, str | None] = {}
    if how == "flag":
        args += ["--deadline", "2"]
    else:
        env["DIGESTGATE_DEADLINE"] = "2"
    began = time.monotonic()
    result = bounded(20, lambda: run_cli(*args, env=env))
    assert isinstance(result, CliResult), result
    assert result.code == 3
    first = result.stderr.splitlines()[0]
    assert first == (
        "digestgate: error: the deadline of 2 s for registry work passed during "
        f"GET http://{proxy.host}/v2/{repo}/manifests/v1"
    )
    assert "--deadline (DIGESTGATE_DEADLINE)" in result.stderr
    assert 2.0 <= time.monotonic() - began < 5.0
