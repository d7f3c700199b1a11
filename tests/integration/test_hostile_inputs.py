"""Every file reader, through the real CLI, against hostile JSON, YAML, XML and special files.

Readers: evidence files in a dir: store; referrer manifests, envelope layers and image
manifests in an OCI layout and in a registry; the registry's fallback index; release.json
and promoted.json (gate and drift); the policy; a linted workflow; buildx metadata
(capture); the tag plan (promote); the Docker config (resolve); JUnit reports (attest).

Each run must end in an allowed exit code (1/2/3, or 0 where a mutation leaves a valid
document), never 4, with at most a one-line ``digestgate: error:``; each run has a hard
deadline, so a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.hostile_docs import mutations, named
from tests.integration.hostile_lab import Lab, Reader, check_handled

_NAMES = (
    "evidence-file", "layout-referrer", "layout-envelope", "layout-manifest", "registry-index",
    "registry-referrer", "registry-envelope", "registry-manifest", "release", "promoted",
    "drift", "policy", "workflow", "metadata", "tag-plan", "docker-config", "junit",
)  # fmt: skip
_PATHS = ("release", "policy", "metadata", "tag-plan", "docker-config", "junit")


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lab:
    return Lab(tmp_path, monkeypatch)


def _reader(lab: Lab, name: str) -> Reader:
    return lab.readers()[name]


@pytest.mark.parametrize("name", _NAMES)
def test_named_hostile_documents_are_refused_cleanly(lab: Lab, name: str) -> None:
    reader = _reader(lab, name)
    assert reader.feed(reader.valid).code in reader.codes  # the base document is accepted
    for payload, data in named(reader.kind, reader.valid).items():
        result = reader.feed(data)
        try:
            check_handled(result, reader.codes)
        except AssertionError as exc:
            raise AssertionError(f"{name} / {payload}: {exc}") from None


@pytest.mark.parametrize("name", _NAMES)
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_generated_hostile_documents_are_refused_cleanly(
    lab: Lab, name: str, data: st.DataObject
) -> None:
    reader = _reader(lab, name)
    document = data.draw(mutations(reader.kind, reader.valid), label="document")
    check_handled(reader.feed(document), reader.codes)


@pytest.mark.parametrize("name", _PATHS)
@pytest.mark.parametrize("special", ["fifo", "directory", "device"])
def test_special_files_are_refused_without_hanging(lab: Lab, name: str, special: str) -> None:
    reader = _reader(lab, name)
    assert reader.path is not None
    reader.place(reader.valid)
    reader.path.unlink()
    if special == "fifo":
        os.mkfifo(reader.path)
        kind = "a FIFO (named pipe)"
    elif special == "directory":
        reader.path.mkdir()
        kind = "a directory"
    else:
        # /dev/null, not /dev/zero: a reader that regressed to read() without a cap would
        # fill memory from /dev/zero before the deadline fires.
        reader.path.symlink_to("/dev/null")
        kind = "a character device"
    result = reader.command()
    check_handled(result, frozenset({2}))
    assert f"is {kind}, not a regular file" in result.stderr or (
        special == "directory" and "is a directory" in result.stderr
    ), result.stderr


@pytest.mark.parametrize("which", ["private", "public"])
def test_key_files_that_are_fifos_are_refused_without_hanging(lab: Lab, which: str) -> None:
    w = lab.world
    fifo = lab.root / "key-fifo"
    os.mkfifo(fifo)
    if which == "private":  # --key names it
        result = lab.cli(
            "attest", "test-result", "--release", str(w.release), "--lane", "e2e",
            "--result", "PASSED", "--key", f"file:{fifo}", "--evidence", f"dir:{lab.root}/o",
        )  # fmt: skip
        what = "private key file"
    else:  # the policy names it as a trusted key
        w.write_policy(w.policy.read_text().replace("tests.pub", "key-fifo"))
        result = lab.gate(w.release, w.policy, f"dir:{w.evidence}", "--offline")
        what = "public key file"
    check_handled(result, frozenset({2}))
    assert f"{what} {fifo} is a FIFO (named pipe), not a regular file" in result.stderr


def test_drift_refuses_a_record_whose_target_is_not_pinned(lab: Lab) -> None:
    reader = _reader(lab, "drift")
    doc = json.loads(reader.valid)
    doc["artifacts"]["frontend"]["image"] = "registry.example.org/org/prod/frontend:v1"
    result = reader.feed(json.dumps(doc).encode())
    check_handled(result, frozenset({2}))
    assert (
        "digestgate: error: promoted artifact frontend: "
        "'registry.example.org/org/prod/frontend:v1' is not pinned by digest"
    ) in result.stderr


def test_a_policy_key_path_with_a_nul_is_a_config_error(lab: Lab) -> None:
    w = lab.world
    w.write_policy(w.policy.read_text().replace("tests.pub", '"tests\\0.pub"'))
    result = lab.gate(w.release, w.policy, f"dir:{w.evidence}", "--offline")
    check_handled(result, frozenset({2}))
    assert "contains a NUL character" in result.stderr


def test_a_fifo_planted_in_an_oci_layout_does_not_hang(lab: Lab) -> None:
    blob = lab.layout / "blobs" / "sha256" / lab.world.digests["backend"].hex
    blob.unlink()
    os.mkfifo(blob)
    result = lab.cli("resolve", lab.world.image("backend"))  # opens the manifest blob
    check_handled(result, frozenset({3}))
    assert f"digestgate: error: {blob} is not a regular file" in result.stderr
