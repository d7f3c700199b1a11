"""`promote` carries a Sigstore bundle to the target as a bundle referrer, and the gate reads
it back from there with the attached store (OCI layouts; SYNTHETIC bundles under a
self-made trust root, since the image digests are made here)."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest

from digestgate.digest import Digest
from digestgate.evidence.dsse import sign_envelope
from digestgate.evidence.keys import generate_keypair, load_signer
from digestgate.evidence.model import PAYLOAD_TYPE
from digestgate.oci.layout import LayoutStore
from digestgate.samples import sample_image
from digestgate.timeutil import utcnow
from tests.conftest import run_cli
from tests.unit.gatekit import lane, provenance

if os.environ.get("CI") != "true":
    pytest.importorskip("sigstore", reason="needs the Sigstore extra (requirements-sigstore.txt)")

from tests.unit.gatekit import release_json
from tests.unit.sigstore_synthetic import Facts, SyntheticSigstore

REPO = "https://github.com/org/app"
BUILD = "https://github.com/org/app/.github/workflows/build.yml@refs/heads/main"
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def _policy(prod: Path) -> str:
    return f"""\
apiVersion: digestgate/v1
kind: Policy
keys:
  build:
    sigstore:
      issuer: https://token.actions.githubusercontent.com
      identity: "{BUILD}"
      repository: {REPO}
      trustedRoot: trusted_root.json
  tests: keys/tests.pub
  gate: keys/gate.pub
artifacts:
  backend:
    repository: "oci:**/backend"
    evidence: ["oci:{prod}/backend"]
source:
  repository: {REPO}
  refs: ["refs/heads/main"]
provenance:
  signers: [build]
lanes:
  fast-check: {{signers: [tests]}}
gate:
  signers: [gate]
"""


def test_a_promoted_bundle_is_attached_as_a_bundle_and_gates_again(tmp_path: Path) -> None:
    staging = LayoutStore.open(str(tmp_path / "staging" / "backend"), create=True)
    digest: Digest = sample_image(staging, {"app": b"backend"}).digest
    prod = tmp_path / "prod"
    now = utcnow()
    instance = SyntheticSigstore(now - timedelta(hours=1))
    (tmp_path / "trusted_root.json").write_bytes(instance.trusted_root())
    keys = tmp_path / "keys"
    keys.mkdir()
    tests_pair, gate_pair = generate_keypair(), generate_keypair()
    (keys / "tests.pub").write_bytes(tests_pair.public_pem)
    (keys / "gate.pub").write_bytes(gate_pair.public_pem)
    (tmp_path / "tests.key").write_bytes(tests_pair.private_pem)
    (tmp_path / "gate.key").write_bytes(gate_pair.private_pem)
    (tmp_path / "policy.yaml").write_text(_policy(prod), encoding="utf-8")
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    statement = provenance(
        {"backend": digest}, repo=REPO, builder=BUILD, finished=now - timedelta(hours=1)
    )
    (evidence / "build.sigstore.json").write_bytes(instance.bundle(statement, facts=Facts()))
    fast = json.dumps(lane("fast-check", {"backend": digest}, finished=now)).encode()
    signer = load_signer(str(tmp_path / "tests.key"), {})
    (evidence / "fast.json").write_bytes(sign_envelope(fast, PAYLOAD_TYPE, [signer]))
    release = tmp_path / "release.json"
    release.write_bytes(
        release_json({"backend": f"oci:{tmp_path}/staging/backend@{digest}"}, repository=REPO)
    )
    promoted = tmp_path / "promoted.json"
    result = run_cli(
        "promote",
        "--release", str(release),
        "--policy", str(tmp_path / "policy.yaml"),
        "--evidence", f"dir:{evidence}",
        "--to", f"oci:{prod}",
        "--vsa-key", str(tmp_path / "gate.key"),
        "--out", str(promoted),
    )  # fmt: skip
    assert result.code == 0, result.stderr
    index = json.loads((prod / "backend" / "index.json").read_text(encoding="utf-8"))
    types = [m.get("artifactType") for m in index["manifests"]]
    assert BUNDLE_TYPE in types

    again = run_cli(
        "gate",
        "--release", str(promoted),
        "--policy", str(tmp_path / "policy.yaml"),
        "--evidence", "attached",
        "--report", str(tmp_path / "report.json"),
    )  # fmt: skip
    assert again.code == 0, again.stderr
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["verdict"] == "PASSED"
