"""Deferred referrers-index checks on the real registry (``settling.deferred_checks``).

Inside the scope a fallback-index write returns without its settle pause; the scope's end
waits once and checks every write. The check must still catch a writer that dropped our
entries, and a scope left by an error must not claim anything.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from digestgate.digest import Digest
from digestgate.errors import OperationalError
from digestgate.oci import media
from digestgate.oci.manifest import Descriptor, build_index
from digestgate.oci.open import Stores
from digestgate.oci.registry import referrers
from digestgate.oci.registry.repository import RegistryRepository
from digestgate.oci.registry.settling import current, deferred_checks
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
        with deferred_checks(4):
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
        with deferred_checks(4):
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
        with pytest.raises(RuntimeError), deferred_checks(4):
            store.put_referrers(subject, [(_referrer(subject, 3), media.OCI_MANIFEST)])
            raise RuntimeError("the copy failed")
        assert calls == [] and current() is None
        # After the scope a write waits for its own check again.
        store.put_referrers(subject, [(_referrer(subject, 1), media.OCI_MANIFEST)])
        assert calls == []
        assert Digest.of(_referrer(subject, 1)) in listed(store, subject.digest)


def test_nested_and_concurrent_scopes_each_run_their_own_checks(
    registry: Registry, repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    missing = referrers._missing

    def noting(repo_: RegistryRepository, subject: Digest, *args: object) -> bool:
        checked.append(threading.current_thread().name)
        return missing(repo_, subject, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(referrers, "_missing", noting)
    with Stores() as stores:  # one Stores for both promotions, as an API caller may share it
        store, subject = staged(stores, registry, repo, tmp_path, 44)

        def promotion(n: int) -> list[str]:
            with deferred_checks(2):
                store.put_referrers(subject, [(_referrer(subject, n), media.OCI_MANIFEST)])
                return list(checked)  # read before the scope's end checks

        with deferred_checks(2):
            store.put_referrers(subject, [(_referrer(subject, 1), media.OCI_MANIFEST)])
            assert promotion(2) == [] and len(checked) == 1  # the inner scope checked its own
            with ThreadPoolExecutor(2) as pool:  # two more promotions side by side
                list(pool.map(promotion, (3, 1)))
            assert len(checked) == 3
        assert len(checked) == 4  # the outer write, checked when its scope ended
        assert {Digest.of(_referrer(subject, n)) for n in (1, 2, 3)} <= listed(
            store, subject.digest
        )


def test_a_deferred_check_that_cannot_record_raises_at_the_end_of_the_scope(
    registry: Registry, repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Stores() as stores:
        store, subject = staged(stores, registry, repo, tmp_path, 45)
        with pytest.raises(OperationalError, match="could not record"), deferred_checks(2):
            store.put_referrers(subject, [(_referrer(subject, 1), media.OCI_MANIFEST)])
            # From here on every check finds the entry gone (a writer that keeps
            # replacing the index), and a write attempt is not retried forever.
            monkeypatch.setattr(referrers, "_missing", lambda *a, **k: True)
            monkeypatch.setattr(referrers, "WRITE_ATTEMPTS", 1)
