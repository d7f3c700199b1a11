"""The gate and verify commands against hostile evidence, releases, policies and stores.

Real keys, real DSSE envelopes in dir: stores, real OCI layouts (and an in-process HTTP
transport for a registry that is down). Every case asserts the exit code and the finding ids.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from digestgate.cli import options as cli_options
from digestgate.digest import Digest
from digestgate.evidence.dsse import sign_envelope
from digestgate.evidence.keys import generate_keypair, load_signer
from digestgate.evidence.model import PAYLOAD_TYPE
from digestgate.oci.layout import LayoutStore
from digestgate.policy import load_policy
from digestgate.samples import sample_image
from digestgate.timeutil import utcnow
from tests.conftest import CliResult, run_cli
from tests.unit.gatekit import POLICY, lane, provenance, release_json, vsa

HOUR = timedelta(hours=1)
KEYS = ("build", "build2", "tests", "gate", "stranger")


class World:
    """A release of two images in OCI layouts, keys, a policy and a complete evidence set."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.now = utcnow()
        self.when = self.now - HOUR
        self.keys: dict[str, Path] = {}
        self.keyids: dict[str, str] = {}
        for name in KEYS:
            pair = generate_keypair()
            (root / f"{name}.key").write_bytes(pair.private_pem)
            (root / f"{name}.pub").write_bytes(pair.public_pem)
            self.keys[name] = root / f"{name}.key"
            self.keyids[name] = pair.keyid
        self.digests: dict[str, Digest] = {}
        for name in ("backend", "frontend"):
            store = LayoutStore.open(str(root / "images" / name), create=True)
            self.digests[name] = sample_image(store, {"app": name.encode()}).digest
        self.policy = root / "policy.yaml"
        self.write_policy()
        self.release = root / "release.json"
        self.write_release()
        self.evidence = root / "evidence"
        self.evidence.mkdir()
        self.report = root / "report.json"
        self.files: dict[str, Path] = {}
        b, f = self.digests["backend"], self.digests["frontend"]
        both = {"backend": b, "frontend": f}
        self.put("prov-backend", provenance({"backend": b}, finished=self.when), "build")
        self.put("prov-frontend", provenance({"frontend": f}, finished=self.when), "build")
        self.put("fast-check", lane("fast-check", both, finished=self.when), "tests")
        self.put("e2e", lane("e2e", both, finished=self.when), "tests")

    def write_policy(self, text: str | None = None) -> None:
        body = text or POLICY.replace(
            "registry.example.org/org/*/backend", "oci:**/images/backend"
        ).replace("registry.example.org/org/*/frontend", "oci:**/images/frontend")
        self.policy.write_text(body.replace("keys/", "").replace(".pub", ".pub"))

    def image(self, name: str, digest: Digest | None = None) -> str:
        return f"oci:{self.root / 'images' / name}@{digest or self.digests[name]}"

    def write_release(self, images: Mapping[str, str] | None = None, **source: str) -> None:
        default = {n: self.image(n) for n in ("backend", "frontend")}
        self.release.write_bytes(release_json(images or default, **source))

    def sign(self, statement: Mapping[str, Any], *signers: str) -> bytes:
        payload = json.dumps(statement).encode()
        loaded = [load_signer(str(self.keys[s]), {}) for s in signers]
        return sign_envelope(payload, PAYLOAD_TYPE, loaded)

    def put(self, name: str, statement: Mapping[str, Any], *signers: str) -> Path:
        return self.put_raw(name, self.sign(statement, *signers))

    def put_raw(self, name: str, raw: bytes) -> Path:
        path = self.evidence / f"{name}.json"
        path.write_bytes(raw)
        self.files[name] = path
        return path

    def gate(self, *extra: str, env: Mapping[str, str | None] | None = None) -> CliResult:
        return run_cli(
            "gate",
            "--release",
            str(self.release),
            "--policy",
            str(self.policy),
            "--evidence",
            f"dir:{self.evidence}",
            "--report",
            str(self.report),
            *extra,
            env=env,
        )

    def ids(self) -> dict[str, set[str]]:
        doc = json.loads(self.report.read_text())
        result = {n: {f["id"] for f in a["findings"]} for n, a in doc["artifacts"].items()}
        result["*"] = {f["id"] for f in doc["findings"]}
        return {k: v for k, v in result.items() if v}


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def blocked(world: World, expected: Mapping[str, set[str]], *extra: str) -> None:
    result = world.gate("--offline", *extra)
    assert result.code == 1, result.stderr
    assert "gate: FAILED" in result.stdout
    assert world.ids() == dict(expected)


def passed(world: World, expected: Mapping[str, set[str]] | None = None) -> None:
    result = world.gate("--offline")
    assert result.code == 0, result.stderr
    assert result.stdout.startswith("gate: PASSED")
    assert world.ids() == dict(expected or {})


# --- the happy path, VSAs and verify --------------------------------------------------------


def test_complete_release_passes_signs_vsas_and_verifies(world: World, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    result = world.gate(
        "--vsa-key",
        f"file:{world.keys['gate']}",
        env={"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ACTIONS": "true"},
    )
    assert result.code == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("gate: PASSED (2 artifact(s)")
    assert "::error" not in result.stdout
    assert "lane:e2e" in result.stderr
    doc = json.loads(world.report.read_text())
    assert doc["verdict"] == "PASSED" and doc["schemaVersion"] == 1
    assert len(doc["artifacts"]["backend"]["evidence"]) == 3
    assert summary.read_text().startswith("### ✅ digestgate gate: PASSED")
    assert len(list(world.evidence.glob("vsa-*.json"))) == 2
    for name in ("backend", "frontend"):
        ok = run_cli(
            "verify", world.image(name), "--policy", str(world.policy),
            "--evidence", f"dir:{world.evidence}",
        )  # fmt: skip
        assert ok.code == 0, ok.stderr
        assert ok.stdout.strip() == f"verify: PASSED {world.digests[name]}"


def test_failed_gate_signs_failed_vsas_that_verify_refuses(world: World) -> None:
    world.files["e2e"].unlink()
    result = world.gate("--offline", "--vsa-key", str(world.keys["gate"]))
    assert result.code == 1
    signed = [
        json.loads(base64.b64decode(json.loads(path.read_bytes())["payload"]))["predicate"]
        for path in world.evidence.glob("vsa-*.json")
    ]
    assert sorted(
        (p["resourceUri"], p["verificationResult"], p["digestgate_findings"]) for p in signed
    ) == [(world.image(n), "FAILED", ["lane.missing"]) for n in ("backend", "frontend")]
    refused = run_cli(
        "verify", world.image("backend"), "--policy", str(world.policy),
        "--evidence", f"dir:{world.evidence}",
    )  # fmt: skip
    assert refused.code == 1
    assert "vsa.missing" in refused.stderr and "records a FAILED gate decision" in refused.stderr


def test_vsa_key_outside_gate_signers_is_refused_before_signing(world: World) -> None:
    result = world.gate("--offline", "--vsa-key", str(world.keys["build"]))
    assert result.code == 2
    assert "gate.signers" in result.stderr
    assert not list((world.root / "evidence").glob("vsa-*.json"))


def test_annotations_and_summary_on_failure(world: World, tmp_path: Path) -> None:
    world.files["fast-check"].unlink()
    summary = tmp_path / "summary.md"
    result = world.gate(
        "--offline", env={"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ACTIONS": "true"}
    )
    assert result.code == 1
    errors = [ln for ln in result.stdout.splitlines() if ln.startswith("::error ")]
    assert len(errors) == 2
    assert all("lane.missing" in ln for ln in errors)
    assert "**FAILED**" in summary.read_text()


# --- release and reference cases ---------------------------------------------------------------


def test_tag_only_reference(world: World) -> None:
    world.write_release(
        {
            "backend": f"oci:{world.root / 'images' / 'backend'}:latest",
            "frontend": world.image("frontend"),
        }
    )
    blocked(world, {"backend": {"reference.not-digest"}, "frontend": {"lane.not-together"}})


def test_uppercase_digest(world: World) -> None:
    upper = "sha256:" + world.digests["backend"].hex.upper()
    world.write_release(
        {
            "backend": f"oci:{world.root / 'images' / 'backend'}@{upper}",
            "frontend": world.image("frontend"),
        }
    )
    blocked(world, {"backend": {"reference.invalid"}, "frontend": {"lane.not-together"}})


def test_missing_artifact(world: World) -> None:
    world.write_release({"backend": world.image("backend")})
    blocked(world, {"*": {"release.missing-artifact"}, "backend": {"lane.not-together"}})


def test_extra_artifact(world: World) -> None:
    images = {n: world.image(n) for n in ("backend", "frontend")}
    world.write_release({**images, "worker": world.image("backend")})
    expected = {"lane.not-together"}
    blocked(
        world,
        {"*": {"release.unexpected-artifact"}, "backend": expected, "frontend": expected},
    )


def test_artifact_from_another_repository(world: World) -> None:
    store = LayoutStore.open(str(world.root / "elsewhere" / "backend2"), create=True)
    sample_image(store, {"app": b"backend"})
    world.write_release(
        {
            "backend": f"oci:{world.root / 'elsewhere' / 'backend2'}@{world.digests['backend']}",
            "frontend": world.image("frontend"),
        }
    )
    blocked(world, {"backend": {"artifact.wrong-repository"}})


def test_denied_digest(world: World) -> None:
    world.write_policy(
        world.policy.read_text().replace("deny: []", f'deny: ["{world.digests["frontend"]}"]')
    )
    blocked(world, {"frontend": {"artifact.denied"}})


def test_swapped_digests(world: World) -> None:
    world.write_release(
        {
            "backend": world.image("backend", world.digests["frontend"]),
            "frontend": world.image("frontend", world.digests["backend"]),
        }
    )
    per = {"evidence.name-mismatch", "provenance.missing", "lane.missing"}
    blocked(world, {"backend": per, "frontend": per})


# --- provenance -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "finding"),
    [
        ({"event": "pull_request"}, "provenance.source-mismatch"),
        ({"ref": "refs/heads/pr-branch"}, "provenance.source-mismatch"),
        ({"repo": "https://git.example.org/fork/app"}, "provenance.source-mismatch"),
        ({"revision": "c3" * 20}, "provenance.source-mismatch"),
        ({"run": "1"}, "provenance.source-mismatch"),
        (
            {"builder": "https://evil.example/build.yml@refs/heads/main"},
            "provenance.builder-mismatch",
        ),
    ],
    ids=["pr-event", "branch", "repository", "revision", "run", "builder"],
)
def test_provenance_source(world: World, change: dict[str, Any], finding: str) -> None:
    doc = provenance({"backend": world.digests["backend"]}, finished=world.when, **change)
    world.put("prov-backend", doc, "build")
    blocked(world, {"backend": {finding}})


def test_stale_provenance(world: World) -> None:
    old = world.now - timedelta(days=8)
    world.put(
        "prov-backend", provenance({"backend": world.digests["backend"]}, finished=old), "build"
    )
    blocked(world, {"backend": {"provenance.stale"}})


def test_threshold_with_the_same_key_signing_twice(world: World) -> None:
    world.write_policy(world.policy.read_text().replace("threshold: 1", "threshold: 2"))
    doc = provenance({"backend": world.digests["backend"]}, finished=world.when)
    world.put("prov-backend", doc, "build", "build")
    world.put("prov-backend-again", doc, "build")
    world.put(
        "prov-frontend",
        provenance({"frontend": world.digests["frontend"]}, finished=world.when),
        "build",
        "build2",
    )
    blocked(world, {"backend": {"provenance.untrusted-signer"}})


# --- lanes ---------------------------------------------------------------------------------


def both(world: World) -> dict[str, Digest]:
    return dict(world.digests)


def test_failed_lane(world: World) -> None:
    world.put("e2e", lane("e2e", both(world), result="FAILED", finished=world.when), "tests")
    blocked(world, {"backend": {"lane.failed"}, "frontend": {"lane.failed"}})


def test_failed_result_newer_than_passed(world: World) -> None:
    newer = world.when + HOUR / 2
    world.put("e2e-rerun", lane("e2e", both(world), result="FAILED", finished=newer), "tests")
    blocked(world, {"backend": {"lane.failed"}, "frontend": {"lane.failed"}})


def test_equal_finish_times_with_different_results(world: World) -> None:
    world.put("e2e-tie", lane("e2e", both(world), result="FAILED", finished=world.when), "tests")
    blocked(world, {"backend": {"lane.failed"}, "frontend": {"lane.failed"}})


def test_passed_result_older_than_max_age(world: World) -> None:
    old = world.now - timedelta(days=8)
    world.put("e2e", lane("e2e", both(world), finished=old), "tests")
    blocked(world, {"backend": {"lane.stale"}, "frontend": {"lane.stale"}})


def test_finish_time_in_the_future(world: World) -> None:
    future = world.now + HOUR
    world.put("e2e", lane("e2e", both(world), finished=future), "tests")
    per = {"evidence.future-time", "lane.missing"}
    blocked(world, {"backend": per, "frontend": per})


def test_together_lane_covering_only_the_backend(world: World) -> None:
    world.put(
        "e2e", lane("e2e", {"backend": world.digests["backend"]}, finished=world.when), "tests"
    )
    blocked(world, {"backend": {"lane.not-together"}, "frontend": {"lane.missing"}})


def test_together_lane_covering_a_superset(world: World) -> None:
    extra = {**both(world), "worker": Digest.of(b"worker")}
    world.put("e2e", lane("e2e", extra, finished=world.when), "tests")
    per = {"lane.not-together"}
    blocked(world, {"backend": per, "frontend": per})


def test_lane_signed_by_a_provenance_key(world: World) -> None:
    world.put("e2e", lane("e2e", both(world), finished=world.when), "build")
    per = {"lane.untrusted-signer"}
    blocked(world, {"backend": per, "frontend": per})


def test_lane_from_another_revision(world: World) -> None:
    doc = lane("e2e", both(world), revision="c3" * 20, finished=world.when)
    world.put("e2e", doc, "tests")
    per = {"lane.revision-mismatch"}
    blocked(world, {"backend": per, "frontend": per})


# --- envelope-level tampering -------------------------------------------------------------------


def envelope_doc(world: World, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(world.files[name].read_bytes())
    return doc


LANE_GONE = {"backend": {"lane.missing"}, "frontend": {"lane.missing"}}


def test_unsigned_envelope(world: World) -> None:
    doc = envelope_doc(world, "e2e")
    doc["signatures"] = []
    world.put_raw("e2e", json.dumps(doc).encode())
    blocked(world, {"*": {"evidence.unverified"}, **LANE_GONE})


def test_signature_by_an_unknown_key(world: World) -> None:
    world.put("e2e", lane("e2e", both(world), finished=world.when), "stranger")
    blocked(world, {"*": {"evidence.unverified"}, **LANE_GONE})


def test_trusted_keyid_on_a_signature_by_another_key(world: World) -> None:
    world.put("e2e", lane("e2e", both(world), finished=world.when), "stranger")
    doc = envelope_doc(world, "e2e")
    doc["signatures"][0]["keyid"] = world.keyids["tests"]
    world.put_raw("e2e", json.dumps(doc).encode())
    blocked(world, {"*": {"evidence.unverified"}, **LANE_GONE})


def test_payload_changed_after_signing(world: World) -> None:
    doc = envelope_doc(world, "e2e")
    forged = lane("e2e", both(world), finished=world.when + HOUR / 2)
    doc["payload"] = base64.b64encode(json.dumps(forged).encode()).decode()
    world.put_raw("e2e", json.dumps(doc).encode())
    blocked(world, {"*": {"evidence.unverified"}, **LANE_GONE})


def test_payload_type_changed_after_signing(world: World) -> None:
    doc = envelope_doc(world, "e2e")
    doc["payloadType"] = "application/vnd.in-toto.test-result+json"
    world.put_raw("e2e", json.dumps(doc).encode())
    blocked(world, {"*": {"evidence.malformed"}, **LANE_GONE})


@pytest.mark.parametrize(
    "raw",
    [
        b"this is not json",
        b'{"payload": "eyJfdHlwZSI6',
        b"[" * 10_000 + b"]" * 10_000,
        b'{"payload": "\xff\xfe", "payloadType": "x", "signatures": []}',
    ],
    ids=["not-json", "truncated", "nested-10000", "invalid-utf8"],
)
def test_unreadable_evidence_beside_valid_evidence(world: World, raw: bytes) -> None:
    world.put_raw("junk", raw)
    passed(world, {"*": {"evidence.malformed"}})


def test_truncated_real_envelope_does_not_count(world: World) -> None:
    raw = world.files["e2e"].read_bytes()
    world.put_raw("e2e", raw[: len(raw) // 2])
    blocked(world, {"*": {"evidence.malformed"}, **LANE_GONE})


def test_fifty_mebibyte_evidence_file_is_exit_3(world: World) -> None:
    with (world.evidence / "huge.json").open("wb") as handle:
        handle.write(b'{"payload": "')
        handle.write(b"A" * (50 * 1024 * 1024))
        handle.write(b'", "payloadType": "application/vnd.in-toto+json", "signatures": []}')
    result = world.gate("--offline", "--vsa-key", str(world.keys["gate"]))
    assert result.code == 3, result.stderr
    assert "huge.json is 52428880 bytes, over the 16777216-byte limit" in result.stderr
    assert not list(world.evidence.glob("vsa-*.json"))  # could not decide: nothing signed


def test_duplicate_keys_payload_given_twice(world: World) -> None:
    doc = envelope_doc(world, "e2e")
    benign = base64.b64encode(b"{}").decode()
    text = json.dumps(doc)
    text = text.replace('{"payload": ', f'{{"payload": "{benign}", "payload": ', 1)
    world.put_raw("e2e", text.encode())
    blocked(world, {"*": {"evidence.malformed"}, **LANE_GONE})


def test_url_safe_base64_envelope_is_accepted(world: World) -> None:
    doc = envelope_doc(world, "e2e")

    def urlsafe(text: str) -> str:
        return base64.urlsafe_b64encode(base64.b64decode(text)).decode().rstrip("=")

    doc["payload"] = urlsafe(doc["payload"])
    for sig in doc["signatures"]:
        sig["sig"] = urlsafe(sig["sig"])
    world.put_raw("e2e", json.dumps(doc).encode())
    passed(world)


def test_same_envelope_in_two_files_counts_once(world: World) -> None:
    world.put_raw("copy", world.files["e2e"].read_bytes())
    passed(world)


# --- registry checks ---------------------------------------------------------------------------


def test_served_bytes_that_do_not_match_the_digest_are_exit_3(world: World) -> None:
    """A store serving other bytes for the digest is broken: no decision, nothing signed."""
    blob = world.root / "images" / "backend" / "blobs" / "sha256" / world.digests["backend"].hex
    blob.write_bytes(blob.read_bytes() + b" ")
    result = world.gate("--vsa-key", str(world.keys["gate"]))
    assert result.code == 3, result.stderr
    assert "do not hash to it, twice" in result.stderr
    assert not world.report.exists()
    assert not list(world.evidence.glob("vsa-*.json"))


def test_image_not_found(world: World) -> None:
    blob = world.root / "images" / "frontend" / "blobs" / "sha256" / world.digests["frontend"].hex
    blob.unlink()
    result = world.gate()
    assert result.code == 1
    assert world.ids() == {"frontend": {"artifact.not-found"}}


@pytest.fixture
def registry_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    original = cli_options.store_options_from

    def patched(*args: Any, **kwargs: Any) -> Any:
        return dataclasses.replace(
            original(*args, **kwargs), transport=httpx.MockTransport(refuse), retries=0
        )

    monkeypatch.setattr(cli_options, "store_options_from", patched)
    yield


@pytest.mark.usefixtures("registry_down")
def test_registry_down_is_exit_3_and_leaves_no_report(world: World) -> None:
    world.write_release(
        {n: f"registry.example.org/org/staging/{n}@{d}" for n, d in world.digests.items()}
    )
    world.write_policy(POLICY.replace("keys/", ""))
    result = world.gate()
    assert result.code == 3, result.stderr
    assert not world.report.exists()


# --- configuration errors --------------------------------------------------------------------


def test_invalid_policy_is_exit_2_with_position(world: World) -> None:
    world.write_policy(world.policy.read_text().replace("maxAge: 7d", "maxAge: 7 days"))
    result = world.gate("--offline")
    assert result.code == 2
    assert f"{world.policy}:" in result.stderr and "invalid duration" in result.stderr
    assert not world.report.exists()


def test_policy_key_that_cannot_be_loaded_is_exit_2(world: World) -> None:
    (world.root / "tests.pub").write_text("not a key")
    result = world.gate("--offline")
    assert result.code == 2
    assert "key 'tests'" in result.stderr


def test_missing_evidence_directory_is_exit_2(world: World) -> None:
    result = run_cli(
        "gate", "--release", str(world.release), "--policy", str(world.policy),
        "--evidence", f"dir:{world.root / 'nowhere'}", "--offline",
    )  # fmt: skip
    assert result.code == 2


# --- verify ----------------------------------------------------------------------------------


def verify(world: World, *extra: str) -> CliResult:
    return run_cli(
        "verify", world.image("backend"), "--policy", str(world.policy),
        "--evidence", f"dir:{world.evidence}", *extra,
    )  # fmt: skip


def put_vsa(
    world: World, signer: str, *, policy_digest: Digest | None = None, time: datetime | None = None
) -> None:
    loaded = load_policy(world.policy)
    roles = loaded.roles()
    trusted = [
        {"name": n, "keyid": k, **({"role": roles[n]} if n in roles else {})}
        for n, k in loaded.key_ids().items()
    ]
    digest = policy_digest or loaded.digest
    doc = vsa(
        world.digests["backend"], policy_digest=digest, time=time or world.when, trusted=trusted
    )
    world.put("vsa", doc, signer)


def test_verify_without_a_vsa(world: World) -> None:
    result = verify(world)
    assert (result.code, "vsa.missing" in result.stderr) == (1, True)


def test_verify_vsa_under_another_policy(world: World) -> None:
    put_vsa(world, "gate", policy_digest=Digest.of(b"old policy"))
    result = verify(world)
    assert result.code == 1
    assert "vsa.policy-mismatch" in result.stderr


def test_verify_stale_vsa(world: World) -> None:
    put_vsa(world, "gate", time=world.now - timedelta(days=31))
    result = verify(world)
    assert result.code == 1
    assert "vsa.stale" in result.stderr


def test_verify_vsa_signed_by_a_build_key(world: World) -> None:
    put_vsa(world, "build")
    result = verify(world)
    assert result.code == 1
    assert "vsa.missing" in result.stderr and "not by gate.signers" in result.stderr


def test_verify_passes_with_a_handmade_gate_vsa(world: World) -> None:
    put_vsa(world, "gate")
    assert verify(world).code == 0


def test_verify_refuses_a_tag(world: World) -> None:
    result = run_cli(
        "verify", f"oci:{world.root / 'images' / 'backend'}:latest", "--policy",
        str(world.policy), "--evidence", f"dir:{world.evidence}",
    )  # fmt: skip
    assert result.code == 2
    assert "not pinned by digest" in result.stderr


def test_a_repository_the_policy_does_not_allow_is_never_contacted(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # release.json is not signed: naming another registry must not make the gate send it a
    # request (a Basic challenge there would collect the job's registry credentials).
    contacted: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        contacted.append(request.url.host)
        if request.url.host == "registry.example.org":  # the policy's evidence repositories
            return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="x"'})

    original = cli_options.store_options_from

    def patched(*args: Any, **kwargs: Any) -> Any:
        return dataclasses.replace(
            original(*args, **kwargs), transport=httpx.MockTransport(record), retries=0
        )

    monkeypatch.setattr(cli_options, "store_options_from", patched)
    world.write_release(
        {n: f"attacker.example/org/staging/{n}@{d}" for n, d in world.digests.items()}
    )
    world.write_policy(
        POLICY.replace("keys/", "")
        .replace('/backend"}', '/backend", evidence: ["registry.example.org/org/staging/backend"]}')
        .replace(
            '/frontend"}', '/frontend", evidence: ["registry.example.org/org/staging/frontend"]}'
        )
    )
    result = world.gate("--evidence", "attached")
    assert result.code == 1, result.stderr
    assert world.ids() == {
        "backend": {"artifact.wrong-repository"},
        "frontend": {"artifact.wrong-repository"},
    }
    assert "attacker.example" not in contacted
    assert set(contacted) == {"registry.example.org"}  # evidence is read where the policy says
