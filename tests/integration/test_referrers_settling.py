"""Deferred referrers-index checks on the real registry (``Stores.settling``).

Inside the scope a fallback-index write returns without its settle pause; the scope's end
waits once and checks every write. The check must still catch a writer that dropped our
entries, and a scope left by an error must not claim anything.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from digestgate.digest import Digest
from digestgate.oci import media
from digestgate.oci.manifest import Descriptor, build_index
from digestgate.oci.open import Stores
from digestgate.oci.registry import referrers
from digestgate.oci.registry.repository import RegistryRepository
from digestgate.reference import parse_location
from tests.fixtures import images
from tests.fixtures.registry import Registry
from tests.integration.test_registry_real import _push_envelope, _push_image, _referrer

pytestmark = pytest.mark.registry


def staged(
    stores: Stores, registry: Registry, repo: str, tmp_path: Path, seed: int
) -> tuple[RegistryRepository, Descriptor]:
    store = stores.open(parse_location(f"{registry.host}/{repo}"))
    assert isinstance(store, RegistryRepository)
    image = images.make_image(tmp_path / "l", seed=seed)
    subject = _push_image(store, tmp_path / "l", image)
    for n in (1, 2, 3):
        _push_envelope(store, n)
    return store, subject


def listed(store: RegistryRepository, subject_digest: Digest) -> set[Digest]:
    return {d.digest for d in referrers.read_fallback(store, subject_digest)}


def test_a_write_inside_the_scope_returns_at_once_and_is_checked_at_its_end(
    registry: Registry, repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[float] = []
    missing = referrers._missing

    def counting(*args: object, **kwargs: object) -> bool:
        checks.append(time.monotonic())
        return missing(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(referrers, "_missing", counting)
    monkeypatch.setattr(referrers, "SETTLE_MIN", 0.3)
    with Stores() as stores:
        store, subject = staged(stores, registry, repo, tmp_path, 41)
        with stores.settling(4):
            written = time.monotonic()
            store.put_referrers(subject, [(_referrer(subject, 1), media.OCI_MANIFEST)])
            returned = time.monotonic()
            assert checks == []  # not checked yet: the pause is not spent here
        assert returned - written < 0.3
        assert len(checks) == 1 and checks[0] - written >= 0.3  # its own pause, at the end
        assert listed(store, subject.digest) == {Digest.of(_referrer(subject, 1))}


def test_entries_another_writer_dropped_before_the_check_are_written_again(
    registry: Registry, repo: str, tmp_path: Path
) -> None:
    with Stores() as stores:
        store, subject = staged(stores, registry, repo, tmp_path, 42)
        ours = Digest.of(_referrer(subject, 2))
        with stores.settling(4):
            store.put_referrers(subject, [(_referrer(subject, 2), media.OCI_MANIFEST)])
            assert listed(store, subject.digest) == {ours}
            # A writer that read the index before our write now writes back its old copy.
            empty = build_index([])
            store.put_raw_manifest(
                subject.digest.tag_form, empty, media.OCI_INDEX, Digest.of(empty)
            )
            assert listed(store, subject.digest) == set()
        assert listed(store, subject.digest) == {ours}


def test_a_scope_left_by_an_error_runs_no_check_and_leaves_writes_undeferred(
    registry: Registry, repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(referrers, "_recheck", lambda *a, **k: calls.append("check"))
    with Stores() as stores:
        store, subject = staged(stores, registry, repo, tmp_path, 43)
        with pytest.raises(RuntimeError), stores.settling(4):
            store.put_referrers(subject, [(_referrer(subject, 3), media.OCI_MANIFEST)])
            raise RuntimeError("the copy failed")
        assert calls == [] and store.client.settling is None
        # After the scope a write waits for its own check again.
        store.put_referrers(subject, [(_referrer(subject, 1), media.OCI_MANIFEST)])
        assert calls == []
        assert Digest.of(_referrer(subject, 1)) in listed(store, subject.digest)
