"""Multi-platform images: platform names, index children, release and policy fields, and the
gate's per-platform lane rule (lane.platform-missing, artifact.platform-mismatch)."""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digestgate.digest import Digest
from digestgate.errors import ConfigError, ExitCode
from digestgate.evidence.model import VerifiedEvidence
from digestgate.oci import media
from digestgate.oci.manifest import Descriptor, ImageIndex, Platform, build_index, parse_manifest
from digestgate.platforms import (
    PlatformError,
    PlatformImage,
    index_platforms,
    parse_platform,
)
from digestgate.release import Release, dump_release, parse_release
from digestgate.rules.decision import Decision, RegistryCheck
from digestgate.rules.evaluate import evaluate
from tests.unit.gatekit import (
    BACKEND,
    FRONTEND,
    NOW,
    POLICY,
    REGISTRY,
    REVISION,
    RUN,
    ids_by_artifact,
    lane,
    policy,
    provenance,
    verified,
)

HOUR = timedelta(hours=1)
AMD64 = Digest.of(b"backend linux/amd64 manifest")
ARM64 = Digest.of(b"backend linux/arm64 manifest")
PLATFORMS = [
    {"platform": "linux/amd64", "digest": str(AMD64)},
    {"platform": "linux/arm64", "digest": str(ARM64)},
]


def release_doc(platforms: Any = PLATFORMS, media_type: str = media.OCI_INDEX) -> dict[str, Any]:
    backend: dict[str, Any] = {"image": f"{REGISTRY}/backend@{BACKEND}", "mediaType": media_type}
    if platforms is not None:
        backend["platforms"] = platforms
    return {
        "apiVersion": "digestgate/v1",
        "kind": "Release",
        "source": {
            "repository": "https://git.example.org/org/app",
            "revision": REVISION,
            "ref": "refs/heads/main",
            "runId": RUN,
        },
        "artifacts": {
            "backend": backend,
            "frontend": {
                "image": f"{REGISTRY}/frontend@{FRONTEND}",
                "mediaType": media.OCI_MANIFEST,
            },
        },
    }


def load(doc: dict[str, Any]) -> Release:
    loaded = parse_release(json.dumps(doc).encode())
    assert isinstance(loaded, Release)
    return loaded


# --- platform names and index children -----------------------------------------------


@pytest.mark.parametrize("text", ["linux/amd64", "linux/arm/v7", "windows/amd64", "linux/arm64/v8"])
def test_platform_names_accepted(text: str) -> None:
    assert parse_platform(text) == text


@pytest.mark.parametrize(
    "text", ["linux", "Linux/amd64", "linux/amd64/v8/x", "linux//amd64", " linux/amd64", "", 7]
)
def test_malformed_platform_names_refused(text: object) -> None:
    with pytest.raises(PlatformError, match="invalid platform"):
        parse_platform(text)


@given(st.text(max_size=40))
def test_platform_parser_never_crashes(text: str) -> None:
    with contextlib.suppress(PlatformError):
        assert parse_platform(text) == text


def index_of(*entries: Descriptor) -> ImageIndex:
    manifest = parse_manifest(build_index(list(entries)), media.OCI_INDEX)
    assert isinstance(manifest, ImageIndex)
    return manifest


def child(digest: Digest, platform: Platform | None, **annotations: str) -> Descriptor:
    return Descriptor(media.OCI_MANIFEST, digest, 500, annotations, platform=platform)


ATTESTATION = {"vnd.docker.reference.type": "attestation-manifest"}


def test_index_children_skip_attestation_manifests_and_later_duplicates() -> None:
    index = index_of(
        child(AMD64, Platform("amd64", "linux")),
        child(ARM64, Platform("arm64", "linux", "v8")),
        child(Digest.of(b"att"), Platform("unknown", "unknown"), **ATTESTATION),
        child(Digest.of(b"later"), Platform("amd64", "linux")),  # never pulled: first wins
    )
    assert index_platforms(index) == (
        PlatformImage("linux/amd64", AMD64),
        PlatformImage("linux/arm64/v8", ARM64),
    )


def test_a_child_with_a_real_platform_is_never_hidden_by_an_attestation_annotation() -> None:
    # Nodes pull by platform, not by annotation: an annotated linux/amd64 child listed first
    # is what an amd64 node runs, so the gate must hold lanes to it, not skip it.
    hidden = Digest.of(b"runnable, annotated as an attestation")
    index = index_of(
        child(hidden, Platform("amd64", "linux"), **ATTESTATION),
        child(AMD64, Platform("amd64", "linux")),
        child(Digest.of(b"s390x"), Platform("s390x", "linux"), **ATTESTATION),
    )
    assert index_platforms(index) == (
        PlatformImage("linux/amd64", hidden),
        PlatformImage("linux/s390x", Digest.of(b"s390x")),
    )


def test_index_child_without_platform_or_nested_index_is_refused() -> None:
    with pytest.raises(PlatformError, match="without a platform"):
        index_platforms(index_of(child(AMD64, None)))
    # Annotated as an attestation, a child without a platform is still one any node pulls.
    with pytest.raises(PlatformError, match="without a platform"):
        index_platforms(
            index_of(child(AMD64, Platform("amd64", "linux")), child(ARM64, None, **ATTESTATION))
        )
    nested = Descriptor(media.OCI_INDEX, AMD64, 10, platform=Platform("amd64", "linux"))
    with pytest.raises(PlatformError, match="only image manifests"):
        index_platforms(index_of(nested))


# --- release.json ------------------------------------------------------------------------


def test_release_platforms_round_trip() -> None:
    release = load(release_doc())
    backend = release.artifacts["backend"]
    assert backend.platforms == (
        PlatformImage("linux/amd64", AMD64),
        PlatformImage("linux/arm64", ARM64),
    )
    assert release.artifacts["frontend"].platforms is None
    assert json.loads(dump_release(release))["artifacts"]["backend"]["platforms"] == PLATFORMS


@pytest.mark.parametrize(
    ("platforms", "media_type", "message"),
    [
        ([PLATFORMS[0], PLATFORMS[0]], media.OCI_INDEX, "lists platform 'linux/amd64' twice"),
        (
            [PLATFORMS[0], {"platform": "linux/arm64", "digest": str(AMD64)}],
            media.OCI_INDEX,
            "for two platforms",
        ),
        ([{"platform": "Linux/AMD64", "digest": str(AMD64)}], media.OCI_INDEX, "invalid platform"),
        ([{"platform": "linux/amd64", "digest": "sha256:abc"}], media.OCI_INDEX, "digest"),
        ([{"platform": "linux/amd64"}], media.OCI_INDEX, "must be a digest string"),
        ([{**PLATFORMS[0], "extra": 1}], media.OCI_INDEX, "unknown field 'extra'"),
        (["linux/amd64"], media.OCI_INDEX, "must be an object"),
        ([], media.OCI_INDEX, "non-empty list"),
        ({"linux/amd64": str(AMD64)}, media.OCI_INDEX, "non-empty list"),
        (PLATFORMS, media.OCI_MANIFEST, "only an image index has platforms"),
        ([{"platform": "linux/amd64", "digest": str(BACKEND)}], media.OCI_INDEX, "own digest"),
    ],
)
def test_hostile_release_platforms_are_config_errors(
    platforms: Any, media_type: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load(release_doc(platforms, media_type))
    assert info.value.exit_code == ExitCode.USAGE
    assert "artifacts.backend.platforms" in info.value.message


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(_JSON)
def test_any_platforms_value_loads_or_is_a_config_error(value: Any) -> None:
    try:
        release = load(release_doc(value))
    except ConfigError as exc:
        assert exc.exit_code == ExitCode.USAGE
        return
    assert value is None or release.artifacts["backend"].platforms is not None


# --- policy ------------------------------------------------------------------------------


def lanes_policy(top: str = "", fast: str = "", e2e: str = "") -> str:
    text = POLICY.replace(
        "  fast-check: {signers: [tests]}", f"  fast-check: {{signers: [tests]{fast}}}"
    ).replace(
        "  e2e: {signers: [tests], together: true}",
        f"  e2e: {{signers: [tests], together: true{e2e}}}",
    )
    return text + top


def test_policy_platforms_per_lane_and_release_wide_default() -> None:
    default = policy()
    assert {str(lane.platforms) for lane in default.lanes.values()} == {"all"}
    pol = policy(lanes_policy(top="platforms: any\n", fast=", platforms: [linux/amd64]"))
    assert str(pol.lanes["e2e"].platforms) == "any"
    assert pol.lanes["fast-check"].platforms.listed == ("linux/amd64",)


@pytest.mark.parametrize(
    ("top", "fast", "message"),
    [
        ("platforms: some\n", "", "platforms must be all, any or a list"),
        ("", ", platforms: []", "non-empty list"),
        ("", ", platforms: [linux]", "invalid platform"),
        ("", ", platforms: [linux/amd64, linux/amd64]", "twice"),
        ("", ", platforms: {os: linux}", "must be all, any"),
    ],
)
def test_bad_policy_platforms_are_config_errors(top: str, fast: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        policy(lanes_policy(top=top, fast=fast))
    assert info.value.exit_code == ExitCode.USAGE
    assert "policy.yaml:" in info.value.message


# --- the gate ----------------------------------------------------------------------------

BOTH = {"backend": BACKEND, "frontend": FRONTEND}
ON_AMD64 = {"backend@linux/amd64": AMD64}
ON_ARM64 = {"backend@linux/arm64": ARM64}


def children(platforms: Any) -> dict[str, Digest]:
    """The child subjects an honest provenance names for a ``platforms`` record."""
    return {f"backend@{p['platform']}": Digest.parse(p["digest"]) for p in platforms or []}


def evidence(
    fast: list[dict[str, Any]], e2e: list[dict[str, Any]], built: dict[str, Digest]
) -> list[VerifiedEvidence]:
    base = [
        verified(provenance({"backend": BACKEND, **built})),
        verified(provenance({"frontend": FRONTEND})),
        verified(lane("fast-check", {"frontend": FRONTEND}), ["tests"]),
    ]
    return base + [verified(doc, ["tests"]) for doc in [*fast, *e2e]]


def decide(
    fast: list[dict[str, Any]],
    e2e: list[dict[str, Any]],
    *,
    text: str = POLICY,
    platforms: Any = PLATFORMS,
    registry: dict[str, RegistryCheck] | None = None,
    built: Any = None,
    media_type: str = media.OCI_INDEX,
) -> Decision:
    """``built``: the children the signed provenance names (default: the release's record)."""
    named = children(platforms) if built is None else built
    release = load(release_doc(platforms, media_type))
    return evaluate(policy(text), release, evidence(fast, e2e, named), [], NOW, registry)


def fast(*extra: dict[str, Digest], **kw: Any) -> dict[str, Any]:
    subjects: dict[str, Digest] = {"backend": BACKEND}
    for item in extra:
        subjects.update(item)
    return lane("fast-check", subjects, **kw)


def e2e(*extra: dict[str, Digest]) -> dict[str, Any]:
    subjects = dict(BOTH)
    for item in extra:
        subjects.update(item)
    return lane("e2e", subjects)


def test_results_naming_only_the_index_count_for_no_platform() -> None:
    decision = decide([fast()], [e2e()])
    assert not decision.passed
    assert ids_by_artifact(decision) == {"backend": {"lane.platform-missing"}}
    messages = [f.message for f in decision.artifacts["backend"].findings]
    assert any("linux/amd64" in m for m in messages)
    # the FAILED VSA still names both children, so verifying either reports the failure
    assert len(decision.artifacts["backend"].platforms) == 2
    assert decision.artifacts["frontend"].passed  # single-platform images are unaffected


def test_a_lane_that_ran_one_platform_is_missing_the_other() -> None:
    decision = decide([fast(ON_AMD64)], [e2e(ON_AMD64, ON_ARM64)])
    assert ids_by_artifact(decision) == {"backend": {"lane.platform-missing"}}
    (missing,) = decision.artifacts["backend"].findings
    assert missing.requirement == "lane:fast-check"
    assert "linux/arm64" in missing.message and "fast-check" in missing.message


def test_every_lane_on_every_platform_passes_and_names_the_children() -> None:
    decision = decide([fast(ON_AMD64), fast(ON_ARM64)], [e2e(ON_AMD64, ON_ARM64)])
    assert decision.passed, ids_by_artifact(decision)
    assert decision.artifacts["backend"].platforms == (
        PlatformImage("linux/amd64", AMD64),
        PlatformImage("linux/arm64", ARM64),
    )


def test_any_lets_an_index_result_count_for_every_platform() -> None:
    decision = decide([fast()], [e2e()], text=lanes_policy(top="platforms: any\n"))
    assert decision.passed, ids_by_artifact(decision)
    assert len(decision.artifacts["backend"].platforms) == 2


def test_a_listed_platform_subset_limits_what_is_validated() -> None:
    text = lanes_policy(fast=", platforms: [linux/amd64]", e2e=", platforms: any")
    decision = decide([fast(ON_AMD64)], [e2e()], text=text)
    assert decision.passed, ids_by_artifact(decision)
    # only amd64 was required by every lane: the arm64 child gets no PASSED VSA subject
    assert decision.artifacts["backend"].platforms == (PlatformImage("linux/amd64", AMD64),)


def test_a_required_platform_the_index_lacks_is_a_mismatch() -> None:
    text = lanes_policy(fast=", platforms: [linux/amd64, linux/s390x]")
    decision = decide([fast(ON_AMD64)], [e2e(ON_AMD64, ON_ARM64)], text=text)
    assert ids_by_artifact(decision) == {"backend": {"artifact.platform-mismatch"}}
    assert "linux/s390x" in decision.artifacts["backend"].findings[0].message


def test_a_newer_failed_result_for_one_platform_blocks() -> None:
    older = fast(ON_AMD64, ON_ARM64, finished=NOW - 2 * HOUR)
    newer_failed = fast(ON_ARM64, result="FAILED")
    decision = decide([older, newer_failed], [e2e(ON_AMD64, ON_ARM64)])
    assert ids_by_artifact(decision) == {"backend": {"lane.failed"}}
    assert "linux/arm64" in decision.artifacts["backend"].findings[0].message


def test_a_newer_failed_index_only_result_still_blocks() -> None:
    older = fast(ON_AMD64, ON_ARM64, finished=NOW - 2 * HOUR)
    decision = decide([older, fast(result="FAILED")], [e2e(ON_AMD64, ON_ARM64)])
    assert "lane.failed" in ids_by_artifact(decision)["backend"]


def test_a_child_named_with_another_digest_does_not_count() -> None:
    wrong = {"backend@linux/arm64": Digest.of(b"some other image")}
    decision = decide([fast(ON_AMD64, wrong)], [e2e(ON_AMD64, ON_ARM64)])
    assert ids_by_artifact(decision) == {"backend": {"lane.platform-missing"}}


def test_online_the_index_bytes_decide_the_platforms() -> None:
    served = (PlatformImage("linux/amd64", AMD64), PlatformImage("linux/arm64", ARM64))
    ok = {"backend": RegistryCheck("ok", platforms=served), "frontend": RegistryCheck("ok")}
    good = ([fast(ON_AMD64), fast(ON_ARM64)], [e2e(ON_AMD64, ON_ARM64)])
    assert decide(*good, registry=ok).passed
    # the release file dropped its platforms: the served index still requires both
    decision = decide([fast()], [e2e()], platforms=None, registry=ok)
    assert ids_by_artifact(decision) == {"backend": {"lane.platform-missing"}}
    # the release file claims fewer platforms than the index offers
    decision = decide(*good, platforms=PLATFORMS[:1], registry=ok)
    assert ids_by_artifact(decision) == {"backend": {"artifact.platform-mismatch"}}
    # a served index the gate cannot decide per platform
    broken = {**ok, "backend": RegistryCheck("ok", platform_problem="a child without platform")}
    assert ids_by_artifact(decide(*good, registry=broken)) == {
        "backend": {"artifact.platform-mismatch"}
    }


def test_offline_an_index_without_recorded_platforms_is_refused() -> None:
    decision = decide([fast()], [e2e()], platforms=None)
    assert ids_by_artifact(decision) == {"backend": {"artifact.platform-mismatch"}}


def test_an_index_with_one_platform_is_a_single_platform_image() -> None:
    one = PLATFORMS[:1]
    decision = decide([fast()], [e2e()], platforms=one)
    assert decision.passed, ids_by_artifact(decision)
    assert decision.artifacts["backend"].platforms == (PlatformImage("linux/amd64", AMD64),)
    text = lanes_policy(fast=", platforms: [linux/amd64, linux/arm64]")
    decision = decide([fast()], [e2e()], platforms=one, text=text)
    assert ids_by_artifact(decision) == {"backend": {"artifact.platform-mismatch"}}


# --- offline, the signed provenance decides the platforms ---------------------------------

BOTH_CHILDREN = children(PLATFORMS)
ALL_RAN = ([fast(ON_AMD64), fast(ON_ARM64)], [e2e(ON_AMD64, ON_ARM64)])


def test_offline_a_release_that_drops_a_platform_is_blocked() -> None:
    # release.json edited to forget linux/arm64; the build's signed provenance names both
    decision = decide(
        [fast(ON_AMD64)], [e2e(ON_AMD64)], platforms=PLATFORMS[:1], built=BOTH_CHILDREN
    )
    assert not decision.passed
    found = ids_by_artifact(decision)["backend"]
    assert found == {"artifact.platform-mismatch", "lane.platform-missing"}
    # the signed set is what the gate holds the lanes to, and what a FAILED VSA names
    assert [p.platform for p in decision.artifacts["backend"].platforms] == [
        "linux/amd64",
        "linux/arm64",
    ]


def test_offline_a_release_that_calls_an_index_a_single_image_is_blocked() -> None:
    # release.json edited: a single-manifest media type and no platforms; lanes named the index
    decision = decide(
        [fast()], [e2e()], platforms=None, media_type=media.OCI_MANIFEST, built=BOTH_CHILDREN
    )
    assert not decision.passed
    assert "artifact.platform-mismatch" in ids_by_artifact(decision)["backend"]
    messages = " ".join(f.message for f in decision.artifacts["backend"].findings)
    assert "single image" in messages and "linux/arm64" in messages


def test_offline_an_honest_two_platform_release_passes_when_both_ran() -> None:
    decision = decide(*ALL_RAN, built=BOTH_CHILDREN)
    assert decision.passed, ids_by_artifact(decision)
    assert len(decision.artifacts["backend"].platforms) == 2


@pytest.mark.parametrize(
    ("record", "built", "media_type"),
    [
        # the provenance names a child digest the release does not record
        (PLATFORMS, {**BOTH_CHILDREN, "backend@linux/arm64": Digest.of(b"other")}, None),
        # the provenance names a platform the release does not record
        (PLATFORMS[:1], BOTH_CHILDREN, None),
        # the release records a platform the provenance does not name
        (PLATFORMS, children(PLATFORMS[:1]), None),
        # the release records no platforms for an index the provenance names children of
        (None, BOTH_CHILDREN, None),
        # the release records platforms; the provenance names none (fail closed)
        (PLATFORMS, {}, None),
        # the release calls it a single image; the provenance names children
        (None, BOTH_CHILDREN, media.OCI_MANIFEST),
    ],
)
def test_offline_provenance_children_that_disagree_with_the_release_block(
    record: Any, built: dict[str, Digest], media_type: str | None
) -> None:
    decision = decide(
        *ALL_RAN, platforms=record, built=built, media_type=media_type or media.OCI_INDEX
    )
    assert not decision.passed
    assert "artifact.platform-mismatch" in ids_by_artifact(decision)["backend"]


def test_offline_a_provenance_naming_an_unreadable_child_blocks() -> None:
    bad = {**BOTH_CHILDREN, "backend@Linux/ARM64": ARM64}
    decision = decide(*ALL_RAN, built=bad)
    assert "artifact.platform-mismatch" in ids_by_artifact(decision)["backend"]


def test_online_provenance_children_must_match_the_served_index() -> None:
    served = (PlatformImage("linux/amd64", AMD64), PlatformImage("linux/arm64", ARM64))
    ok = {"backend": RegistryCheck("ok", platforms=served), "frontend": RegistryCheck("ok")}
    assert decide(*ALL_RAN, registry=ok, built=BOTH_CHILDREN).passed
    other = {**BOTH_CHILDREN, "backend@linux/arm64": Digest.of(b"other")}
    decision = decide(*ALL_RAN, registry=ok, built=other)
    assert ids_by_artifact(decision) == {"backend": {"artifact.platform-mismatch"}}
    single = {"backend": RegistryCheck("ok"), "frontend": RegistryCheck("ok")}
    decision = decide(*ALL_RAN, platforms=None, registry=single, built=BOTH_CHILDREN)
    assert "artifact.platform-mismatch" in ids_by_artifact(decision)["backend"]


def test_offline_without_counted_provenance_the_record_is_not_trusted() -> None:
    ran = [
        verified(doc, ["tests"])
        for doc in [fast(ON_AMD64), fast(ON_ARM64), e2e(ON_AMD64, ON_ARM64)]
    ]
    others = [
        e
        for e in evidence([], [], BOTH_CHILDREN)
        if "backend" not in {s.name for s in e.statement.subjects}
    ]
    decision = evaluate(policy(POLICY), load(release_doc()), others + ran, [], NOW, None)
    found = ids_by_artifact(decision)["backend"]
    assert {"provenance.missing", "artifact.platform-mismatch"} <= found


@pytest.mark.parametrize("online", [False, True])
def test_counted_provenance_statements_that_disagree_on_the_children_block(online: bool) -> None:
    # One statement names both children, a second one (same build, signed again) names none:
    # neither may decide alone which platforms the index offers.
    release = load(release_doc(PLATFORMS, media.OCI_INDEX))
    again = verified(provenance({"backend": BACKEND}, finished=NOW - timedelta(minutes=30)))
    served = (PlatformImage("linux/amd64", AMD64), PlatformImage("linux/arm64", ARM64))
    registry = (
        {"backend": RegistryCheck("ok", platforms=served), "frontend": RegistryCheck("ok")}
        if online
        else None
    )
    decision = evaluate(
        policy(POLICY), release, [*evidence(*ALL_RAN, BOTH_CHILDREN), again], [], NOW, registry
    )
    assert not decision.passed
    messages = " ".join(f.message for f in decision.artifacts["backend"].findings)
    assert "name different platforms" in messages
