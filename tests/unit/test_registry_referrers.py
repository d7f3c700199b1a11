"""Referrers: the native API (filters, pagination) versus the tag-schema fallback."""

from __future__ import annotations

import json

import httpx
import pytest

from digestgate.digest import Digest
from digestgate.errors import IncompleteReadError, InternalError, OperationalError
from digestgate.oci import media
from digestgate.oci.manifest import (
    Descriptor,
    ImageIndex,
    build_artifact_manifest,
    build_index,
    parse_manifest,
)
from tests.unit.registry_fake import FakeRegistry, image, sha

PROV = media.evidence_artifact_type("provenance")
TEST = media.evidence_artifact_type("test-result")


def _subject(fake: FakeRegistry) -> Descriptor:
    raw, _ = image()
    fake.add_manifest("app", raw, media.OCI_MANIFEST, tag="v1")
    return Descriptor(media.OCI_MANIFEST, Digest.of(raw), len(raw))


def _referrer(subject: Descriptor, artifact_type: str, n: int) -> bytes:
    envelope = f'{{"payload":"{n}"}}'.encode()
    layer = Descriptor(media.DSSE_ENVELOPE, Digest.of(envelope), len(envelope))
    return build_artifact_manifest(
        artifact_type=artifact_type,
        layers=[layer],
        subject=subject,
        annotations={"n": str(n)},
    )


@pytest.mark.parametrize("filters_applied", [True, False])
def test_native_api_with_pagination_and_filter(filters_applied: bool) -> None:
    fake = FakeRegistry(referrers_api=True, referrers_page=2, filters_applied=filters_applied)
    subject = _subject(fake)
    with fake.client() as client:
        repo = client.repository("app")
        written = [
            repo.put_referrer(
                _referrer(subject, PROV if n % 2 else TEST, n), media.OCI_MANIFEST, subject
            )
            for n in range(5)
        ]
        everything = repo.referrers(subject.digest)
        provenance = repo.referrers(subject.digest, PROV)
        assert client.referrers_mode == "api"
    assert {d.digest for d in everything} == {d.digest for d in written}
    assert {d.annotations["n"] for d in provenance} == {"1", "3"}
    assert all(d.artifact_type == PROV for d in provenance)
    # OCI-Subject came back: no fallback tag was written.
    assert not any(ref.startswith("sha256-") for (_, ref) in fake.manifests)
    assert fake.count("GET", "/referrers/") >= 3  # pages followed
    # The filter is asked of the registry too, not only applied to what comes back.
    assert fake.count("GET", f"/referrers/{subject.digest}?artifactType=") >= 1


def test_fallback_when_api_is_missing() -> None:
    fake = FakeRegistry()
    subject = _subject(fake)
    with fake.client() as client:
        repo = client.repository("app")
        assert repo.referrers(subject.digest) == []
        assert client.referrers_mode == "tag-schema"
        first = repo.put_referrer(_referrer(subject, PROV, 1), media.OCI_MANIFEST, subject)
        second = repo.put_referrer(_referrer(subject, TEST, 2), media.OCI_MANIFEST, subject)
        again = repo.put_referrer(_referrer(subject, TEST, 2), media.OCI_MANIFEST, subject)
        found = repo.referrers(subject.digest)
        only_tests = repo.referrers(subject.digest, TEST)
    assert again == second
    assert [d.digest for d in found] == [first.digest, second.digest]
    assert [d.digest for d in only_tests] == [second.digest]
    assert found[0].artifact_type == PROV and found[0].annotations == {"n": "1"}
    assert ("app", subject.digest.tag_form) in fake.manifests
    # The API was probed once per client, not on every call.
    assert fake.count("GET", "/referrers/") == 1


def test_oci_subject_naming_another_digest_still_writes_the_fallback_index() -> None:
    fake = FakeRegistry()
    subject = _subject(fake)
    elsewhere = sha(b"another subject")

    def wrong_subject(request: httpx.Request) -> httpx.Response | None:
        if request.method == "PUT" and "/manifests/sha256:" in request.url.path:
            fake.add_manifest("app", request.read(), request.headers["content-type"])
            return httpx.Response(201, headers={"OCI-Subject": elsewhere})
        return None

    fake.faults.append(wrong_subject)
    with fake.client() as client:
        repo = client.repository("app")
        written = repo.put_referrer(_referrer(subject, PROV, 1), media.OCI_MANIFEST, subject)
        assert [d.digest for d in repo.referrers(subject.digest)] == [written.digest]
    assert ("app", subject.digest.tag_form) in fake.manifests


def test_referrer_naming_another_subject_is_refused_before_writing() -> None:
    fake = FakeRegistry()
    subject = _subject(fake)
    other, _ = image(b"other image")
    other_subject = Descriptor(media.OCI_MANIFEST, Digest.of(other), len(other))
    with fake.client() as client, pytest.raises(InternalError):
        client.repository("app").put_referrer(
            _referrer(other_subject, PROV, 1), media.OCI_MANIFEST, subject
        )
    assert fake.count("PUT") == 0


def test_a_listing_over_the_referrer_cap_is_incomplete(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("digestgate.oci.registry.referrers.MAX_REFERRERS", 2)
    fake = FakeRegistry()
    subject = _subject(fake)
    manifests = [(_referrer(subject, PROV, n), media.OCI_MANIFEST) for n in (1, 2)]
    with fake.client() as client:
        repo = client.repository("app")
        written = repo.put_referrers(subject, manifests)
        assert [d.digest for d in repo.referrers(subject.digest)] == [d.digest for d in written]
        repo.put_referrers(subject, [(_referrer(subject, PROV, 3), media.OCI_MANIFEST)])
        with pytest.raises(IncompleteReadError, match="number more than 2"):
            repo.referrers(subject.digest)


def test_fallback_tag_holding_something_else_is_operational_error() -> None:
    fake = FakeRegistry()
    subject = _subject(fake)
    raw, _ = image(b"another image")
    fake.add_manifest("app", raw, media.OCI_MANIFEST, tag=subject.digest.tag_form)
    with fake.client() as client, pytest.raises(OperationalError):
        client.repository("app").referrers(subject.digest)


def test_lost_fallback_entry_is_rewritten() -> None:
    fake = FakeRegistry()
    subject = _subject(fake)
    tag = subject.digest.tag_form
    clobbered = [False]

    def rival_writer(request: httpx.Request) -> httpx.Response | None:
        # After our first index write, another writer replaces the index with its own.
        if request.method == "PUT" and tag in request.url.path and not clobbered[0]:
            clobbered[0] = True
            rival = _referrer(subject, TEST, 99)
            fake.add_manifest("app", rival, media.OCI_MANIFEST)
            entry = Descriptor(media.OCI_MANIFEST, Digest.of(rival), len(rival), artifact_type=TEST)
            fake.add_manifest("app", build_index([entry]), media.OCI_INDEX, tag=tag)
            request.read()
            return httpx.Response(201, headers={"Location": "/x"})
        return None

    fake.faults.append(rival_writer)
    with fake.client() as client:
        repo = client.repository("app")
        mine = repo.put_referrer(_referrer(subject, PROV, 1), media.OCI_MANIFEST, subject)
        listed = {d.digest for d in repo.referrers(subject.digest)}
    assert mine.digest in listed
    assert Digest.of(_referrer(subject, TEST, 99)) in listed


def test_referrers_api_error_other_than_404_is_surfaced() -> None:
    fake = FakeRegistry()
    subject = _subject(fake)
    fake.faults.append(
        lambda r: (
            httpx.Response(403, json={"errors": [{"code": "DENIED"}]})
            if "/referrers/" in r.url.path
            else None
        )
    )
    with fake.client() as client, pytest.raises(OperationalError):
        client.repository("app").referrers(subject.digest)


def test_fallback_index_is_stored_under_the_subject_tag() -> None:
    fake = FakeRegistry()
    subject = _subject(fake)
    with fake.client() as client:
        repo = client.repository("app")
        written = repo.put_referrer(_referrer(subject, PROV, 1), media.OCI_MANIFEST, subject)
    raw, media_type = fake.manifests[("app", subject.digest.tag_form)]
    assert media_type == media.OCI_INDEX
    index = parse_manifest(raw, media_type)
    assert isinstance(index, ImageIndex)
    [entry] = index.manifests
    assert (entry.digest, entry.size, entry.artifact_type) == (written.digest, written.size, PROV)
    assert entry.annotations == {"n": "1"}


def test_batch_of_referrers_updates_the_fallback_index_once() -> None:
    fake = FakeRegistry()
    subject = _subject(fake)
    tag = subject.digest.tag_form
    index_puts: list[str] = []

    def count(request: httpx.Request) -> httpx.Response | None:
        if request.method == "PUT" and request.url.path.endswith(tag):
            index_puts.append(tag)
        return None

    fake.faults.append(count)
    manifests = [(_referrer(subject, PROV, n), media.OCI_MANIFEST) for n in (1, 2, 3)]
    with fake.client() as client:
        repo = client.repository("app")
        written = repo.put_referrers(subject, manifests)
        listed = {d.digest for d in repo.referrers(subject.digest)}
    assert [d.digest for d in written] == [Digest.of(raw) for raw, _ in manifests]
    assert listed == {d.digest for d in written}
    assert len(index_puts) == 1


# --- registry quirks ------------------------------------------------------------------------


def _listing_without(fake: FakeRegistry, hidden: set[str]) -> None:
    """The registry's Referrers API leaves out ``hidden`` digests (the header still came)."""

    def fault(request: httpx.Request) -> httpx.Response | None:
        if "/referrers/" not in request.url.path or request.method != "GET":
            return None
        answer = fake._referrers(request, "app", request.url.path.rsplit("/", 1)[1])
        doc = json.loads(answer.content)
        doc["manifests"] = [m for m in doc["manifests"] if m["digest"] not in hidden]
        return httpx.Response(200, headers=dict(answer.headers), json=doc)

    fake.faults.append(fault)


def test_an_oci_subject_header_without_the_listing_falls_back_to_the_tag_schema() -> None:
    """The header is not trusted: the listing is read back, and what it lacks goes to the
    fallback index, where every reader (API mode or not) finds it."""
    fake = FakeRegistry(referrers_api=True)
    subject = _subject(fake)
    raw = _referrer(subject, PROV, 1)
    _listing_without(fake, {sha(raw)})
    with fake.client() as client:
        written = client.repository("app").put_referrer(raw, media.OCI_MANIFEST, subject)
    assert ("app", subject.digest.tag_form) in fake.manifests  # the fallback index exists
    with fake.client() as reader:
        listed = reader.repository("app").referrers(subject.digest)
    assert [d.digest for d in listed] == [written.digest]


def test_an_honest_oci_subject_header_writes_no_fallback_index() -> None:
    fake = FakeRegistry(referrers_api=True)
    subject = _subject(fake)
    with fake.client() as client:
        client.repository("app").put_referrer(
            _referrer(subject, PROV, 1), media.OCI_MANIFEST, subject
        )
    assert ("app", subject.digest.tag_form) not in fake.manifests


def test_an_oci_subject_header_from_a_registry_without_the_api_falls_back() -> None:
    fake = FakeRegistry(referrers_api=False)
    subject = _subject(fake)
    raw = _referrer(subject, PROV, 1)

    def claims(request: httpx.Request) -> httpx.Response | None:
        if request.method == "PUT" and request.url.path.endswith(sha(raw)):
            answer = fake._manifests(request, "app", sha(raw))
            return httpx.Response(
                201, headers={**answer.headers, "OCI-Subject": str(subject.digest)}
            )
        return None

    fake.faults.append(claims)
    with fake.client() as client:
        repo = client.repository("app")
        repo.put_referrer(raw, media.OCI_MANIFEST, subject)
        assert [str(d.digest) for d in repo.referrers(subject.digest)] == [sha(raw)]


@pytest.mark.parametrize("api", [True, False])
def test_a_fallback_tag_that_answers_with_the_subject_itself_is_no_index(api: bool) -> None:
    """For an index subject the platform manifests would otherwise read as referrers."""
    fake = FakeRegistry(referrers_api=api)
    child, _ = image(b"child")
    fake.add_manifest("app", child, media.OCI_MANIFEST)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media.OCI_INDEX,
            "manifests": [
                {"mediaType": media.OCI_MANIFEST, "digest": sha(child), "size": len(child)}
            ],
        }
    ).encode()
    fake.add_manifest("app", index, media.OCI_INDEX, tag="v1")
    digest = Digest.of(index)
    fake.add_manifest("app", index, media.OCI_INDEX, tag=digest.tag_form)  # the quirk
    with fake.client() as client:
        assert client.repository("app").referrers(digest) == []
