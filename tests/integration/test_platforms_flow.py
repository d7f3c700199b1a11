"""A two-platform backend through the CLI on OCI layouts: capture records the children,
lanes say which platforms they ran, the gate blocks a platform no lane ran, and ``verify``
passes a child digest exactly when the gate validated its platform."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from digestgate.oci.open import Stores
from digestgate.reference import parse_location
from digestgate.samples import sample_image, sample_index
from tests.conftest import CliResult, run_cli

REVISION = "a" * 40
SOURCE = ["--source-repo", "https://git.example.org/org/app", "--revision", REVISION,
          "--ref", "refs/heads/main", "--run-id", "4242"]  # fmt: skip
POLICY = """\
apiVersion: digestgate/v1
kind: Policy
keys: {{build: keys/build.pub, tests: keys/tests.pub, gate: keys/gate.pub}}
artifacts:
  backend: {{repository: "{prefix}*/backend"}}
  frontend: {{repository: "{prefix}*/frontend"}}
source: {{repository: "https://git.example.org/org/app", refs: ["refs/heads/main"]}}
provenance: {{signers: [build]}}
lanes:
  fast-check: {{signers: [tests]{fast}}}
  e2e: {{signers: [tests], together: true}}
gate: {{signers: [gate]}}
"""


def ok(*args: str, expect: int = 0) -> CliResult:
    result = run_cli(*args)
    assert result.code == expect, result.stderr
    return result


class Flow:
    def __init__(self, tmp_path: Path, fast: str = "") -> None:
        self.dir = tmp_path
        prefix = f"oci:{tmp_path}/staging/"
        policy = POLICY.format(prefix=f"oci:{tmp_path}/", fast=fast)
        (tmp_path / "policy.yaml").write_text(policy)
        for role in ("build", "tests", "gate"):
            ok("keygen", "--out", str(tmp_path / "keys" / role))
        with Stores() as stores:
            backend = stores.open(parse_location(f"{prefix}backend"), create=True)
            index = sample_index(backend, {"app": b"backend"}, tag="main")
            frontend = stores.open(parse_location(f"{prefix}frontend"), create=True)
            image = sample_image(frontend, {"app": b"frontend"}, tag="main")
        self.backend = f"{prefix}backend@{index.digest}"
        self.release = str(tmp_path / "release.json")
        ok("capture", "backend", self.backend, "--release", self.release, *SOURCE)
        ok("capture", "frontend", f"{prefix}frontend@{image.digest}", "--release", self.release)
        self.children = {
            p["platform"]: f"{prefix}backend@{p['digest']}"
            for p in json.loads(Path(self.release).read_text())["artifacts"]["backend"]["platforms"]
        }
        ok("attest", "provenance", "--release", self.release, "--event", "push",
           "--key", self.key("build"), "--evidence", self.evidence)  # fmt: skip

    @property
    def evidence(self) -> str:
        return f"dir:{self.dir / 'evidence'}"

    def key(self, role: str) -> str:
        return str(self.dir / "keys" / f"{role}.key")

    def lane(self, name: str, *extra: str, expect: int = 0) -> CliResult:
        return ok("attest", "test-result", "--release", self.release, "--lane", name,
                  "--result", "PASSED", "--key", self.key("tests"), "--evidence", self.evidence,
                  *extra, expect=expect)  # fmt: skip

    def gate(self, *extra: str, expect: int) -> set[str]:
        report = self.dir / "report.json"
        ok("gate", "--release", self.release, "--policy", str(self.dir / "policy.yaml"),
           "--evidence", self.evidence, "--report", str(report), *extra, expect=expect)  # fmt: skip
        data = json.loads(report.read_text())
        return {f["id"] for a in data["artifacts"].values() for f in a["findings"]}

    def verify(self, image: str) -> int:
        return run_cli("verify", image, "--policy", str(self.dir / "policy.yaml"),
                       "--evidence", self.evidence).code  # fmt: skip


def test_capture_records_each_child_by_platform(tmp_path: Path) -> None:
    flow = Flow(tmp_path)
    assert sorted(flow.children) == ["linux/amd64", "linux/arm64"]
    assert all("@sha256:" in image for image in flow.children.values())


def test_a_platform_no_lane_ran_blocks_until_it_ran(tmp_path: Path) -> None:
    flow = Flow(tmp_path)
    flow.lane("fast-check", "--artifact", "backend", "--platform", "linux/amd64")
    flow.lane("fast-check", "--artifact", "frontend")
    out = flow.lane("e2e", "--platform", "all").stdout
    assert "backend@linux/amd64" in out and "backend@linux/arm64" in out
    assert flow.gate("--offline", expect=1) == {"lane.platform-missing"}
    flow.lane("fast-check", "--artifact", "backend", "--platform", "linux/arm64")
    assert flow.gate("--vsa-key", flow.key("gate"), expect=0) == set()
    report = json.loads((tmp_path / "report.json").read_text())["artifacts"]
    assert [p["platform"] for p in report["backend"]["platforms"]] == sorted(flow.children)
    assert "platforms" not in report["frontend"]
    # the node pulls a child: each validated child verifies, like the index
    assert flow.verify(flow.backend) == 0
    assert {p: flow.verify(image) for p, image in flow.children.items()} == {
        "linux/amd64": 0,
        "linux/arm64": 0,
    }


def test_a_child_whose_platform_was_not_validated_does_not_verify(tmp_path: Path) -> None:
    flow = Flow(tmp_path, fast=", platforms: [linux/amd64]")
    flow.lane("fast-check", "--artifact", "backend", "--platform", "linux/amd64")
    flow.lane("fast-check", "--artifact", "frontend")
    flow.lane("e2e", "--platform", "linux/amd64", "--platform", "linux/arm64")
    assert flow.gate("--vsa-key", flow.key("gate"), expect=0) == set()
    assert flow.verify(flow.backend) == 0
    assert flow.verify(flow.children["linux/amd64"]) == 0
    assert flow.verify(flow.children["linux/arm64"]) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--platform", "linux/s390x"], "offers no linux/s390x"),
        (["--platform", "Linux/AMD64"], "invalid platform"),
        (["--platform", "all", "--platform", "linux/amd64"], "give it alone"),
        (["--artifact", "frontend", "--platform", "linux/amd64"], "multi-platform images"),
    ],
)
def test_bad_platform_flags_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    flow = Flow(tmp_path)
    result = flow.lane("fast-check", *args, expect=2)
    assert message in result.stderr
    assert not list((tmp_path / "evidence").glob("test-result-*"))  # nothing was signed


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (lambda ps: [ps[0], ps[0]], "lists platform 'linux/amd64' twice"),
        (lambda ps: [{**ps[0], "platform": "linux/AMD64"}], "invalid platform 'linux/AMD64'"),
    ],
)
def test_a_hostile_platforms_record_is_exit_2_naming_the_field(
    tmp_path: Path, entries: Any, message: str
) -> None:
    flow = Flow(tmp_path)
    doc = json.loads(Path(flow.release).read_text())
    backend = doc["artifacts"]["backend"]
    backend["platforms"] = entries(backend["platforms"])
    Path(flow.release).write_text(json.dumps(doc))
    for args in (
        ("gate", "--release", flow.release, "--policy", str(tmp_path / "policy.yaml"),
         "--evidence", flow.evidence),
        ("attest", "test-result", "--release", flow.release, "--lane", "e2e", "--result",
         "PASSED", "--key", flow.key("tests"), "--evidence", flow.evidence),
    ):  # fmt: skip
        result = run_cli(*args)
        assert result.code == 2, result.stderr
        assert "artifacts.backend.platforms" in result.stderr and message in result.stderr
        assert "Traceback" not in result.stderr


def edit_backend(flow: Flow, change: Any) -> None:
    """Edit the unsigned release.json after provenance was signed (as an attacker could)."""
    doc = json.loads(Path(flow.release).read_text())
    change(doc["artifacts"]["backend"], doc["artifacts"]["frontend"])
    Path(flow.release).write_text(json.dumps(doc))


def test_offline_an_honest_two_platform_release_passes_and_verifies(tmp_path: Path) -> None:
    flow = Flow(tmp_path)
    flow.lane("fast-check", "--artifact", "backend", "--platform", "all")
    flow.lane("fast-check", "--artifact", "frontend")
    flow.lane("e2e", "--platform", "all")
    assert flow.gate("--offline", "--vsa-key", flow.key("gate"), expect=0) == set()
    assert flow.verify(flow.backend) == 0
    assert all(flow.verify(image) == 0 for image in flow.children.values())


def test_offline_a_release_edited_to_drop_a_platform_does_not_pass(tmp_path: Path) -> None:
    flow = Flow(tmp_path)
    edit_backend(flow, lambda backend, _: backend.update(platforms=backend["platforms"][:1]))
    flow.lane("fast-check", "--artifact", "backend", "--platform", "linux/amd64")
    flow.lane("fast-check", "--artifact", "frontend")
    flow.lane("e2e", "--platform", "all")  # all the edited record offers: amd64 only
    found = flow.gate("--offline", "--vsa-key", flow.key("gate"), expect=1)
    assert found == {"artifact.platform-mismatch", "lane.platform-missing"}
    assert flow.verify(flow.backend) == 1
    assert flow.verify(flow.children["linux/arm64"]) == 1


def test_offline_a_release_edited_to_call_the_index_a_single_image_does_not_pass(
    tmp_path: Path,
) -> None:
    flow = Flow(tmp_path)

    def single(backend: dict[str, Any], frontend: dict[str, Any]) -> None:
        backend["mediaType"] = frontend["mediaType"]
        del backend["platforms"]

    edit_backend(flow, single)
    flow.lane("fast-check", "--artifact", "backend")
    flow.lane("fast-check", "--artifact", "frontend")
    flow.lane("e2e")
    found = flow.gate("--offline", "--vsa-key", flow.key("gate"), expect=1)
    assert "artifact.platform-mismatch" in found
    assert flow.verify(flow.backend) == 1


def promoted(tmp_path: Path) -> Flow:
    """The two-platform release, validated and promoted; ``flow.release`` is promoted.json."""
    flow = Flow(tmp_path)
    flow.lane("fast-check", "--artifact", "backend", "--platform", "all")
    flow.lane("fast-check", "--artifact", "frontend")
    flow.lane("e2e", "--platform", "all")
    record = str(tmp_path / "promoted.json")
    ok("promote", "--release", flow.release, "--policy", str(tmp_path / "policy.yaml"),
       "--evidence", flow.evidence, "--to", f"oci:{tmp_path}/production",
       "--vsa-key", flow.key("gate"), "--out", record)  # fmt: skip
    flow.release = record
    return flow


def test_offline_a_promotion_record_of_a_two_platform_release_passes(tmp_path: Path) -> None:
    # promoted.json names no media type: its platforms and the signed provenance decide.
    assert promoted(tmp_path).gate("--offline", expect=0) == set()


@pytest.mark.parametrize("edit", ["drop-platforms", "drop-one"])
def test_offline_an_edited_promotion_record_does_not_pass(tmp_path: Path, edit: str) -> None:
    flow = promoted(tmp_path)

    def change(backend: dict[str, Any], _: dict[str, Any]) -> None:
        if edit == "drop-platforms":  # now reads as a single image
            del backend["platforms"]
        else:
            backend["platforms"] = backend["platforms"][:1]

    edit_backend(flow, change)
    assert "artifact.platform-mismatch" in flow.gate("--offline", expect=1)
