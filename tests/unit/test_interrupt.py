"""SIGTERM stops transfers between chunks and leaves no partial file; killed writers' temp
files are swept when a layout is next opened for writing, and live writers' are not."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from digestgate import interrupt
from digestgate.oci.layout import LayoutStore
from digestgate.oci.layoutdir import STALE_TEMP_AGE
from digestgate.promotion.copy import copy_image
from digestgate.samples import sample_image


@pytest.fixture(autouse=True)
def _no_leftover_request() -> Iterator[None]:
    interrupt.reset()
    yield
    interrupt.reset()


def test_a_stop_request_abandons_the_copy_and_removes_the_partial_blob(tmp_path: Path) -> None:
    source = LayoutStore.open(str(tmp_path / "src"), create=True)
    big = os.urandom(5 * 1024 * 1024)  # five 1 MiB chunks
    image = sample_image(source, {"big": big})
    target = LayoutStore.open(str(tmp_path / "dst"), create=True)
    original = LayoutStore.open_blob
    chunks_seen = [0]

    def slow_open(self: LayoutStore, descriptor: object, *, hashed: bool = True) -> object:
        context = original(self, descriptor, hashed=hashed)  # type: ignore[arg-type]

        class Wrapped:
            def __enter__(self) -> Iterator[bytes]:
                stream = context.__enter__()

                def gen() -> Iterator[bytes]:
                    for chunk in stream:
                        chunks_seen[0] += 1
                        if chunks_seen[0] == 2:
                            interrupt._requested.set()  # SIGTERM arrives mid-blob
                        yield chunk

                return gen()

            def __exit__(self, *exc: object) -> object:
                return context.__exit__(*exc)  # type: ignore[arg-type]

        return Wrapped()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LayoutStore, "open_blob", slow_open)
        with pytest.raises(interrupt.Interrupted):
            copy_image(source, target, image, concurrency=1)
    leftovers = [p for p in (tmp_path / "dst").rglob(".tmp-*")]
    assert leftovers == []
    assert target.get_tag("latest") is None


def test_stale_temp_files_are_swept_but_a_live_writers_file_survives(tmp_path: Path) -> None:
    layout = LayoutStore.open(str(tmp_path / "l"), create=True)
    blobs = tmp_path / "l" / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    old = time.time() - STALE_TEMP_AGE - 5
    dead = blobs / ".tmp-deadbeef-0001"
    dead.write_bytes(b"x" * 1000)
    os.utime(dead, (old, old))
    fresh = blobs / ".tmp-cafe-0002"
    fresh.write_bytes(b"y")
    live = blobs / ".tmp-feed-0003"
    live.write_bytes(b"z" * 1000)
    os.utime(live, (old, old))
    fd = os.open(live, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a concurrent promotion is still writing it
    try:
        del layout
        LayoutStore.open(str(tmp_path / "l"), create=True)
        assert not dead.exists()
        assert fresh.exists() and live.exists()
    finally:
        os.close(fd)
    LayoutStore.open(str(tmp_path / "l"), create=False)  # reading never sweeps
    assert live.exists()
    LayoutStore.open(str(tmp_path / "l"), create=True)  # its writer is gone now
    assert not live.exists()
