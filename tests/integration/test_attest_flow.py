"""keygen -> capture x2 -> attest provenance -> three lanes, on a layout and a registry.

The envelopes are read back from the dir: store and the attached store, verified with the
public key, and their statements checked: names, digests, lanes, results.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from digestgate.evidence.dsse import verify_envelope
from digestgate.evidence.keys import load_public_key
from digestgate.evidence.model import (
    PROVENANCE,
    TEST_RESULT,
    VerifiedEvidence,
    read_provenance,
    read_test_result,
)
from digestgate.evidence.store.base import SubjectLocation
from digestgate.evidence.store.open import open_evidence_store, read_all
from digestgate.oci.open import Stores
from digestgate.reference import parse_location
from digestgate.release import Release, load_release
from tests.conftest import run_cli
from tests.fixtures import images
from tests.fixtures.registry import Registry
from tests.fixtures.skopeo import push_layout

REVISION = "a" * 40
SOURCE = [
    "--source-repo",
    "https://git.example.org/org/app",
    "--revision",
    REVISION,
    "--ref",
    "refs/heads/main",
    "--run-id",
    "4242",
]
JUNIT = Path(__file__).parent.parent / "data" / "junit"


def _ok(*args: str) -> str:
    result = run_cli(*args)
    assert result.code == 0, result.stderr
    return result.stdout


def _flow(tmp_path: Path, backend: str, frontend: str, evidence: list[str]) -> tuple[Release, str]:
    """Run the whole evidence sequence through the CLI; return the release and what
    ``attest provenance`` said on stderr."""
    keys = tmp_path / "keys"
    keys.mkdir()
    _ok("keygen", "--out", str(keys / "build"))
    _ok("keygen", "--out", str(keys / "tests"), "--kind", "ecdsa-p256")
    release = str(tmp_path / "release.json")
    out = _ok("capture", "backend", backend, "--release", release, *SOURCE)
    assert out.startswith("backend ") and "@sha256:" in out
    _ok("capture", "frontend", frontend, "--release", release)
    stores = [arg for spec in evidence for arg in ("--evidence", spec)]
    result = run_cli(
        "attest",
        "provenance",
        "--release",
        release,
        "--key",
        str(keys / "build.key"),
        "--event",
        "push",
        *stores,
    )
    assert result.code == 0, result.stderr
    out = result.stdout
    named = sorted(line.split()[1] for line in out.splitlines())
    assert [n.split(",")[0] for n in named] == ["backend", "frontend"]
    # backend is an index: its provenance names each recorded child beside it, as lanes do
    children = [
        f"backend@{p.platform}" for p in load_release(release).artifacts["backend"].platforms or ()
    ]
    assert children and named[0].split(",")[1:] == children
    for name in ("backend", "frontend"):
        _ok(
            "attest",
            "test-result",
            "--release",
            release,
            "--lane",
            "fast-check",
            "--artifact",
            name,
            "--junit",
            str(JUNIT / "pytest-pass.xml"),
            "--key",
            str(keys / "tests.key"),
            *stores,
        )
    for lane, report in (("integration", "jest-junit-pass.xml"), ("e2e", "pytest-pass.xml")):
        _ok(
            "attest",
            "test-result",
            "--release",
            release,
            "--lane",
            lane,
            "--junit",
            str(JUNIT / report),
            "--key",
            str(keys / "tests.key"),
            *stores,
        )
    loaded = load_release(release)
    assert isinstance(loaded, Release)
    return loaded, result.stderr


def _read_back(tmp_path: Path, release: Release, spec: str) -> list[VerifiedEvidence]:
    trusted = {
        "build": load_public_key(tmp_path / "keys" / "build.pub"),
        "tests": load_public_key(tmp_path / "keys" / "tests.pub"),
    }
    subjects = []
    for name, artifact in release.artifacts.items():
        assert artifact.location is not None
        subjects.append(SubjectLocation(name, artifact.location))
    with Stores() as stores:
        envelopes, problems = read_all([open_evidence_store(spec, stores)], subjects)
    assert problems == []
    verified = []
    for envelope in envelopes:
        result = verify_envelope(envelope.raw, trusted, origin=envelope.origin)
        assert isinstance(result, VerifiedEvidence), result
        verified.append(result)
    return verified


def _check(release: Release, evidence: list[VerifiedEvidence]) -> None:
    digests = {n: a.digest for n, a in release.artifacts.items()}
    provenance = [e for e in evidence if e.statement.predicate_type == PROVENANCE]
    # provenance names each artifact and, for an index, each recorded child beside it
    children = {
        f"{n}@{p.platform}": p.digest
        for n, a in release.artifacts.items()
        for p in a.platforms or ()
    }
    assert sorted((s.name, s.digest) for e in provenance for s in e.statement.subjects) == sorted(
        {**digests, **children}.items()
    )
    for item in provenance:
        assert item.signers == frozenset({"build"})
        info = read_provenance(item.statement)
        assert (info.revision, info.event, info.run_id) == (REVISION, "push", "4242")
    lanes = {}
    for item in evidence:
        if item.statement.predicate_type != TEST_RESULT:
            continue
        assert item.signers == frozenset({"tests"})
        lane = read_test_result(item.statement)
        names = tuple(sorted(s.name for s in item.statement.subjects))
        lanes[(lane.lane, names)] = lane.result
        for subject in item.statement.subjects:
            assert subject.digest == digests[subject.name]
    assert lanes == {
        ("fast-check", ("backend",)): "PASSED",
        ("fast-check", ("frontend",)): "PASSED",
        ("integration", ("backend", "frontend")): "PASSED",
        ("e2e", ("backend", "frontend")): "PASSED",
    }


def test_flow_on_layouts(tmp_path: Path) -> None:
    backend = images.make_index(tmp_path / "backend", tag="main", seed=1)
    frontend = images.make_image(tmp_path / "frontend", tag="main", seed=2)
    release, _ = _flow(
        tmp_path,
        f"oci:{tmp_path / 'backend'}@{backend.digest}",
        f"oci:{tmp_path / 'frontend'}@{frontend.digest}",
        [f"dir:{tmp_path / 'evidence'}", "attached"],
    )
    assert str(release.artifacts["backend"].digest) == backend.digest
    assert str(release.artifacts["frontend"].digest) == frontend.digest
    for spec in (f"dir:{tmp_path / 'evidence'}", "attached"):
        evidence = _read_back(tmp_path, release, spec)
        assert len(evidence) == 6
        _check(release, evidence)


@pytest.mark.registry
@pytest.mark.skopeo
def test_flow_on_a_registry(registry: Registry, repo: str, tmp_path: Path) -> None:
    backend = images.make_index(tmp_path / "b", tag="main", seed=3)
    frontend = images.make_image(tmp_path / "f", tag="main", seed=4)
    push_layout(tmp_path / "b", "main", registry, f"{repo}/backend", tag="main")
    push_layout(tmp_path / "f", "main", registry, f"{repo}/frontend", tag="main")
    release, said = _flow(
        tmp_path,
        registry.ref(f"{repo}/backend", backend.digest),
        registry.ref(f"{repo}/frontend", frontend.digest),
        [f"dir:{tmp_path / 'evidence'}", "attached"],
    )
    assert f"{repo}/backend: tag-schema" in said  # the registry has no Referrers API
    location = release.artifacts["backend"].location
    assert location == parse_location(registry.ref(f"{repo}/backend", backend.digest))
    for spec in (f"dir:{tmp_path / 'evidence'}", "attached"):
        evidence = _read_back(tmp_path, release, spec)
        assert len(evidence) == 6
        _check(release, evidence)


def test_attest_refuses_a_revision_other_than_the_release(tmp_path: Path) -> None:
    image = images.make_image(tmp_path / "img", tag="main", seed=5)
    _ok("keygen", "--out", str(tmp_path / "k"))
    release = str(tmp_path / "release.json")
    _ok("capture", "app", f"oci:{tmp_path / 'img'}@{image.digest}", "--release", release, *SOURCE)
    result = run_cli(
        "attest",
        "provenance",
        "--release",
        release,
        "--key",
        str(tmp_path / "k.key"),
        "--evidence",
        f"dir:{tmp_path / 'ev'}",
        "--event",
        "push",
        "--revision",
        "b" * 40,
    )
    assert result.code == 2
    assert "captured from" in result.stderr


def test_failed_junit_is_signed_as_failed_and_empty_junit_is_refused(tmp_path: Path) -> None:
    image = images.make_image(tmp_path / "img", tag="main", seed=6)
    _ok("keygen", "--out", str(tmp_path / "k"))
    release = str(tmp_path / "release.json")
    _ok("capture", "app", f"oci:{tmp_path / 'img'}@{image.digest}", "--release", release, *SOURCE)
    common = [
        "--release",
        release,
        "--lane",
        "unit",
        "--key",
        str(tmp_path / "k.key"),
        "--evidence",
        f"dir:{tmp_path / 'ev'}",
    ]
    failed = run_cli("attest", "test-result", *common, "--junit", str(JUNIT / "pytest-mixed.xml"))
    assert failed.code == 0
    assert "lane unit: FAILED" in failed.stderr
    (written,) = (tmp_path / "ev").iterdir()
    public = {"k": load_public_key(tmp_path / "k.pub")}
    verified = verify_envelope(written.read_bytes(), public, origin=str(written))
    assert isinstance(verified, VerifiedEvidence), verified
    signed = read_test_result(verified.statement)
    assert (signed.lane, signed.result) == ("unit", "FAILED")
    assert [(s.name, str(s.digest)) for s in verified.statement.subjects] == [("app", image.digest)]
    empty = tmp_path / "empty.xml"
    empty.write_text("<testsuites></testsuites>")
    refused = run_cli("attest", "test-result", *common, "--junit", str(empty))
    assert refused.code == 2
    neither = run_cli("attest", "test-result", *common)
    assert neither.code == 2
    assert list((tmp_path / "ev").iterdir()) == [written]  # the refused runs signed nothing
