"""Attached evidence on real stores: OCI layouts, and the real registry (tag-schema fallback).

A provenance envelope goes to the backend, two lane envelopes (one backend-only, one for
backend and frontend together) are attached, then everything is listed back through a fresh
session: the listing must be exactly what was written, each envelope once.
"""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import pytest

from digestgate.digest import Digest
from digestgate.evidence.store import StoredEnvelope, StoreProblem, SubjectLocation
from digestgate.evidence.store.attached import AttachedStore
from digestgate.jsonutil import dumps_canonical
from digestgate.oci.layout import LayoutStore
from digestgate.oci.open import Stores
from digestgate.reference import parse_location
from tests.fixtures import images
from tests.fixtures.registry import Registry

Subjects = list[SubjectLocation]


def envelope(text: str) -> bytes:
    return dumps_canonical(
        {
            "payload": base64.b64encode(text.encode()).decode(),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"keyid": "k", "sig": "c2ln"}],
        }
    )


def read(subjects: Subjects, stores: Stores | None = None) -> tuple[set[bytes], list[str]]:
    with stores or Stores() as session:
        items = list(AttachedStore(session).read(subjects))
    good = [i.raw for i in items if isinstance(i, StoredEnvelope)]
    assert len(good) == len(set(good)), "an envelope was listed twice"
    return set(good), [i.message for i in items if isinstance(i, StoreProblem)]


def attach_release_evidence(subjects: Subjects) -> dict[str, bytes]:
    """Provenance for the backend, a backend-only lane and a lane covering both."""
    written = {
        "provenance": envelope("provenance backend"),
        "fast-check": envelope("fast-check backend"),
        "integration": envelope("integration backend+frontend"),
    }
    with Stores() as session:
        store = AttachedStore(session)
        store.write(written["provenance"], predicate="provenance", subjects=subjects[:1])
        store.write(written["fast-check"], predicate="test-result", subjects=subjects[:1])
        origins = store.write(written["integration"], predicate="test-result", subjects=subjects)
        assert len(origins) == 2
        # Writing the same envelope again attaches nothing new.
        again = store.write(written["integration"], predicate="test-result", subjects=subjects)
        assert again == origins
    return written


def concurrent_writers(subjects: Subjects, count: int = 2) -> set[bytes]:
    """``count`` sessions attach different envelopes to the same image at the same time."""
    envelopes = [envelope(f"concurrent {i}") for i in range(count)]
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def writer(raw: bytes) -> None:
        try:
            with Stores() as session:
                barrier.wait(timeout=30)
                AttachedStore(session).write(raw, predicate="vsa", subjects=subjects[:1])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(raw,)) for raw in envelopes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    return set(envelopes)


def check_round_trip(subjects: Subjects) -> None:
    written = attach_release_evidence(subjects)
    backend, problems = read(subjects[:1])
    assert problems == []
    assert backend == set(written.values())
    frontend, _ = read(subjects[1:])
    assert frontend == {written["integration"]}
    both, _ = read(subjects)
    assert both == set(written.values())
    assert concurrent_writers(subjects) <= read(subjects[:1])[0]


# --- OCI layouts -------------------------------------------------------------------------


def layout_subjects(tmp_path: Path) -> Subjects:
    backend = images.make_image(tmp_path / "backend", tag="v1", seed=1)
    frontend = images.make_index(tmp_path / "frontend", tag="v1", seed=2)
    return [
        SubjectLocation("backend", parse_location(f"oci:{tmp_path / 'backend'}@{backend.digest}")),
        SubjectLocation(
            "frontend", parse_location(f"oci:{tmp_path / 'frontend'}@{frontend.digest}")
        ),
    ]


def test_attached_on_layouts(tmp_path: Path) -> None:
    check_round_trip(layout_subjects(tmp_path))


def test_layout_referrer_origin_names_the_manifest(tmp_path: Path) -> None:
    subjects = layout_subjects(tmp_path)
    with Stores() as session:
        origins = AttachedStore(session).write(
            envelope("x"), predicate="provenance", subjects=subjects
        )
    for subject, origin in zip(subjects, origins, strict=True):
        repo, _, digest = origin.rpartition("@")
        assert repo == subject.repository
        referrer = Digest.parse(digest)
        layout = LayoutStore.open(subject.repository.removeprefix("oci:"), create=False)
        manifest = layout.get_manifest(referrer)
        assert manifest.subject is not None and manifest.subject.digest == subject.digest


# --- the real registry -------------------------------------------------------------------


def registry_subjects(registry: Registry, repo: str, tmp_path: Path) -> Subjects:
    from tests.fixtures.skopeo import push_layout

    backend = images.make_image(tmp_path / "backend", tag="v1", seed=3)
    frontend = images.make_index(tmp_path / "frontend", tag="v1", seed=4)
    push_layout(tmp_path / "backend", "v1", registry, f"{repo}/backend")
    push_layout(tmp_path / "frontend", "v1", registry, f"{repo}/frontend")
    return [
        SubjectLocation("backend", parse_location(registry.ref(f"{repo}/backend", backend.digest))),
        SubjectLocation(
            "frontend", parse_location(registry.ref(f"{repo}/frontend", frontend.digest))
        ),
    ]


@pytest.mark.registry
@pytest.mark.skopeo
def test_attached_on_the_registry_through_the_tag_fallback(
    registry: Registry, repo: str, tmp_path: Path
) -> None:
    subjects = registry_subjects(registry, repo, tmp_path)
    check_round_trip(subjects)
    with Stores() as session:
        store = AttachedStore(session)
        list(store.read(subjects))
        # The distribution registry has no Referrers API (specs 10): the fallback was used.
        assert "tag-schema" in store.describe()
        backend = session.open(subjects[0].location)
        assert subjects[0].digest.tag_form in backend.list_tags()
