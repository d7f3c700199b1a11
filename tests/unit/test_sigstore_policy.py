"""Sigstore identities in policy.yaml: parsing, the digest over trusted roots, one identity
one role, and how subject names map to artifacts (docs/sigstore.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from digestgate.errors import ConfigError
from digestgate.evidence.keys import generate_keypair
from digestgate.policy import load_policy
from digestgate.policy.sigstore import SigstoreIdentity, identities, subject_artifact
from digestgate.policy.trust import policy_digest
from tests.unit.gatekit import policy as fake_policy
from tests.unit.sigstorekit import SIGNER, SOURCE, TRUSTED_ROOT, policy_text


def write(tmp_path: Path, text: str) -> Path:
    keys = tmp_path / "keys"
    keys.mkdir(exist_ok=True)
    if not (keys / "tests.pub").exists():
        (keys / "tests.pub").write_bytes(generate_keypair().public_pem)
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_identity_loads_with_its_trusted_root(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, policy_text()))
    found = identities(policy.keys)
    assert list(found) == ["build"]
    identity = found["build"]
    assert isinstance(identity, SigstoreIdentity)
    assert identity.keyid.startswith("sigstore:")
    assert identity.trusted_root_bytes == TRUSTED_ROOT.read_bytes()
    assert policy.key_identity("build") == identity.keyid


def test_the_digest_covers_the_trusted_root_bytes(tmp_path: Path) -> None:
    root = tmp_path / "root.json"
    shutil.copyfile(TRUSTED_ROOT, root)
    first = load_policy(write(tmp_path, policy_text(trusted_root=root))).digest
    root.write_bytes(TRUSTED_ROOT.read_bytes() + b"\n")
    second = load_policy(write(tmp_path, policy_text(trusted_root=root))).digest
    assert first != second


def test_a_key_only_policy_keeps_its_digest() -> None:
    raw = b"apiVersion: digestgate/v1\n"
    roots = {"build": b"spki"}
    assert policy_digest(raw, roots) == policy_digest(raw, roots, sigstore={})
    assert policy_digest(raw, roots) != policy_digest(raw, roots, sigstore={"x": b"{}"})


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("      issuer: https://token", "      issuer: http://token", "must be an https:// URL"),
        ("      ref:", "      colour: blue\n      ref:", "unknown field 'colour'"),
        ("      repository: https://github.com/malancas/attest-demo\n", "", "needs 'repository'"),
        ('      identity: "', '      identity: "[', "invalid pattern"),
    ],
)
def test_mistakes_are_exit_2_with_the_line(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    text = policy_text()
    assert old in text
    with pytest.raises(ConfigError) as caught:
        load_policy(write(tmp_path, text.replace(old, new, 1)))
    assert message in caught.value.message
    assert caught.value.message.startswith(str(tmp_path / "policy.yaml") + ":")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read trusted root"),
        (b"not json", "not valid JSON"),
        (b'{"mediaType": "application/json"}', "mediaType"),
    ],
)
def test_a_bad_trusted_root_is_exit_2(tmp_path: Path, content: bytes | None, message: str) -> None:
    root = tmp_path / "root.json"
    if content is not None:
        root.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_policy(write(tmp_path, policy_text(trusted_root=root)))
    assert message in caught.value.message
    assert caught.value.exit_code == 2


def _two_identities(tests_identity: str) -> str:
    extra = f"""\
  tester:
    sigstore:
      issuer: https://token.actions.githubusercontent.com
      identity: "{tests_identity}"
      repository: https://github.com/malancas/attest-demo
      trustedRoot: {TRUSTED_ROOT}
"""
    return policy_text(extra_keys=extra).replace(
        "fast-check: {signers: [tests]}", "fast-check: {signers: [tester]}"
    )


def test_an_identity_that_could_match_in_two_roles_is_exit_2(tmp_path: Path) -> None:
    overlapping = "https://github.com/bdehamer/workflows/.github/workflows/*"
    with pytest.raises(ConfigError) as caught:
        load_policy(write(tmp_path, _two_identities(overlapping)))
    assert "could match the same certificate" in caught.value.message
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("pattern", "clash"),
    [("https://github.com/bdehamer/workflows/**", True), (SIGNER.replace("attest", "ship"), False)],
)
def test_a_stage_record_signer_a_build_certificate_could_match_is_exit_2(
    tmp_path: Path, pattern: str, clash: bool
) -> None:
    """requires.signers signs what lets a release skip a stage: the build workflow's
    certificate must not be able to match it (one identity, one role, for stages too)."""
    extra = f"""\
  promoter:
    sigstore:
      issuer: https://token.actions.githubusercontent.com
      identity: "{pattern}"
      repository: {SOURCE}
      trustedRoot: {TRUSTED_ROOT}
"""
    text = policy_text(extra_keys=extra)
    text += "stage: production\nrequires: {stage: staging, signers: [promoter]}\n"
    if not clash:
        assert load_policy(write(tmp_path, text)).stage.requires is not None
        return
    with pytest.raises(ConfigError) as caught:
        load_policy(write(tmp_path, text))
    assert "'promoter' (requires.signers)" in caught.value.message
    assert "could match the same certificate" in caught.value.message
    assert caught.value.exit_code == 2


def test_distinct_workflows_may_hold_distinct_roles(tmp_path: Path) -> None:
    distinct = SIGNER.replace("attest.yml", "test.yml")
    policy = load_policy(write(tmp_path, _two_identities(distinct)))
    assert sorted(identities(policy.keys)) == ["build", "tester"]


def test_subject_names_map_to_artifacts_by_repository() -> None:
    artifacts = fake_policy().artifacts  # backend / frontend: registry.example.org/org/*/NAME
    assert subject_artifact(artifacts, "backend") == "backend"
    assert subject_artifact(artifacts, "registry.example.org/org/staging/backend") == "backend"
    assert subject_artifact(artifacts, "registry.example.org/org/staging/frontend:v1") == (
        "frontend"
    )
    assert subject_artifact(artifacts, "registry.example.org/org/x/backend@sha256:ab") == "backend"
    assert subject_artifact(artifacts, "ghcr.io/org/backend") is None
    assert subject_artifact(artifacts, "registry.example.org/org/staging/other") is None
