"""Policies, releases and evidence directories around the real Sigstore bundles in
tests/data/sigstore (see SOURCES.md there)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from digestgate.evidence.dsse import sign_envelope
from digestgate.evidence.keys import generate_keypair, load_signer
from digestgate.evidence.model import PAYLOAD_TYPE
from digestgate.evidence.store.dirstore import DirStore
from digestgate.gating.gate import GateRun, run_gate
from digestgate.policy import Policy, load_policy
from digestgate.release import Release, parse_release
from tests.unit.gatekit import lane, release_json

DATA = Path(__file__).resolve().parent.parent / "data" / "sigstore"
TRUSTED_ROOT = DATA / "trusted_root.json"

# The reusable-workflow bundle (cli/cli test data): a GitHub provenance statement for one
# wheel, signed through the public-good instance on 2024-05-21 by the reusable workflow
# bdehamer/workflows/.github/workflows/attest.yml called from malancas/attest-demo.
REUSABLE = DATA / "reusable-workflow-attestation.sigstore.json"
WHEEL = "github_provenance_demo-0.0.0-py3-none-any.whl"
WHEEL_DIGEST = "sha256:07e4b8c0e3580b3e4a1eb62c70f1ffb86004d3d94f50767cb404fa7a639b4d05"
SOURCE = "https://github.com/malancas/attest-demo"
REVISION = "8304c42402aa3a569882687e0642c359e5a74ac2"
RUN = "9182555064"
ISSUER = "https://token.actions.githubusercontent.com"
SIGNER = "https://github.com/bdehamer/workflows/.github/workflows/attest.yml@refs/heads/main"
SIGNED = datetime(2024, 5, 21, 22, 56, 17, tzinfo=UTC)
NOW = datetime(2024, 5, 22, 12, 0, 0, tzinfo=UTC)


def policy_text(
    *,
    identity: str = SIGNER,
    repository: str = SOURCE,
    ref: str = "refs/heads/*",
    source: str = SOURCE,
    extra_keys: str = "",
    trusted_root: Path = TRUSTED_ROOT,
    artifact_repository: str = "oci:**/wheel",
) -> str:
    return f"""\
apiVersion: digestgate/v1
kind: Policy
keys:
  build:
    sigstore:
      issuer: {ISSUER}
      identity: "{identity}"
      repository: {repository}
      ref: "{ref}"
      trustedRoot: {trusted_root}
  tests: keys/tests.pub
{extra_keys}artifacts:
  {WHEEL}: {{repository: "{artifact_repository}"}}
source:
  repository: {source}
  refs: ["refs/heads/main"]
  events: ["push", "workflow_dispatch"]
provenance:
  signers: [build]
  builder: "https://github.com/bdehamer/workflows/.github/workflows/*@refs/heads/main"
lanes:
  fast-check: {{signers: [tests]}}
maxAge: 36500d
"""


@dataclass
class Setup:
    root: Path
    evidence: Path
    tests_key: Path

    def policy(self, text: str | None = None) -> Policy:
        path = self.root / "policy.yaml"
        path.write_text(text if text is not None else policy_text(), encoding="utf-8")
        return load_policy(path)

    def release(
        self, *, digest: str = WHEEL_DIGEST, run: str = RUN, image: str | None = None
    ) -> Release:
        images = {WHEEL: image or f"oci:{self.root}/wheel@{digest}"}
        rel = parse_release(release_json(images, repository=SOURCE, revision=REVISION, runId=run))
        assert isinstance(rel, Release)
        return rel

    def add_lane(self, *, revision: str = REVISION, run: str = RUN) -> None:
        """A key-signed fast-check result for the wheel (the lane role uses a key)."""
        from digestgate.digest import Digest

        statement = lane(
            "fast-check", {WHEEL: Digest.parse(WHEEL_DIGEST)}, revision=revision, run=run
        )
        statement["predicate"]["digestgate_finishedOn"] = "2024-05-21T23:30:00Z"
        payload = json.dumps(statement).encode()
        signer = load_signer(str(self.tests_key), {})
        (self.evidence / "lane.json").write_bytes(sign_envelope(payload, PAYLOAD_TYPE, [signer]))

    def add_bundle(self, source: Path = REUSABLE, name: str | None = None) -> Path:
        target = self.evidence / (name or source.name)
        shutil.copyfile(source, target)
        return target

    def gate(self, policy: Policy | None = None, release: Release | None = None) -> GateRun:
        return run_gate(
            policy or self.policy(),
            release or self.release(),
            [DirStore(self.evidence)],
            now=NOW,
            images=None,
        )


def setup(tmp_path: Path) -> Setup:
    keys = tmp_path / "keys"
    keys.mkdir()
    pair = generate_keypair()
    (keys / "tests.pub").write_bytes(pair.public_pem)
    private = tmp_path / "tests.key"
    private.write_bytes(pair.private_pem)
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    return Setup(tmp_path, evidence, private)
