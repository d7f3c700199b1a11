"""The policy's trust roots: the digest covers every key by name; one key, one role.

Real keys on disk (``digestgate keygen``'s format), the real loader. The attacks: replace a
``.pub`` file beside an unchanged policy, or swap the contents of two, and the policy's
identity must change.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from digestgate.errors import ConfigError, ExitCode
from digestgate.evidence.keys import generate_keypair, load_public_key
from digestgate.policy import load_policy
from digestgate.policy.trust import DIGEST_DOMAIN
from tests.conftest import run_cli

POLICY = """\
apiVersion: digestgate/v1
kind: Policy
keys: {build: keys/build.pub, tests: keys/tests.pub, gate: keys/gate.pub}
artifacts:
  backend: {repository: "registry.example.org/org/staging/backend"}
source: {repository: "https://git.example.org/org/app", refs: [refs/heads/main]}
provenance: {signers: [build]}
lanes:
  e2e: {signers: [tests]}
gate: {signers: [gate]}
"""


def make(tmp_path: Path, text: str = POLICY) -> Path:
    keys = tmp_path / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    for role in ("build", "tests", "gate", "spare"):
        if not (keys / f"{role}.pub").exists():
            (keys / f"{role}.pub").write_bytes(generate_keypair().public_pem)
    policy = tmp_path / "policy.yaml"
    policy.write_text(text)
    return policy


def config_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.hint
    return caught.value


def frame(data: bytes) -> bytes:
    return len(data).to_bytes(8, "big") + data


def test_digest_is_the_documented_framing_of_policy_bytes_and_keys(tmp_path: Path) -> None:
    policy = make(tmp_path)
    loaded = load_policy(policy)
    # An independent computation from docs/policy.md "The policy digest".
    data = frame(b"digestgate/policy-digest/v1") + frame(policy.read_bytes())
    for name in sorted(("build", "tests", "gate")):
        der = load_public_key(tmp_path / "keys" / f"{name}.pub").spki_der
        data += frame(b"key") + frame(name.encode()) + frame(der)
    assert DIGEST_DOMAIN == b"digestgate/policy-digest/v1"
    assert loaded.digest.hex == hashlib.sha256(data).hexdigest()
    assert loaded.text_digest is not None
    assert loaded.text_digest.hex == hashlib.sha256(policy.read_bytes()).hexdigest()
    assert loaded.key_ids() == {
        name: hashlib.sha256(
            load_public_key(tmp_path / "keys" / f"{name}.pub").spki_der
        ).hexdigest()
        for name in ("build", "gate", "tests")
    }


def test_replacing_a_key_file_makes_a_new_policy(tmp_path: Path) -> None:
    policy = make(tmp_path)
    before = load_policy(policy).digest
    text = policy.read_bytes()
    (tmp_path / "keys" / "build.pub").write_bytes(generate_keypair().public_pem)
    assert policy.read_bytes() == text
    assert load_policy(policy).digest != before


def test_swapping_two_key_files_makes_a_new_policy(tmp_path: Path) -> None:
    policy = make(tmp_path)
    before = load_policy(policy)
    keys = tmp_path / "keys"
    shutil.move(keys / "build.pub", keys / "swap")
    shutil.move(keys / "tests.pub", keys / "build.pub")
    shutil.move(keys / "swap", keys / "tests.pub")
    after = load_policy(policy)
    assert {k.keyid for k in after.keys.values()} == {k.keyid for k in before.keys.values()}
    assert after.digest != before.digest


def test_renaming_a_key_binding_makes_a_new_policy(tmp_path: Path) -> None:
    policy = make(tmp_path)
    before = load_policy(policy).digest
    # Same key material, same text length, other file: the name->key binding is hashed.
    shutil.copy(tmp_path / "keys" / "build.pub", tmp_path / "keys" / "other.pub")
    policy.write_text(POLICY.replace("keys/build.pub", "keys/other.pub"))
    assert load_policy(policy).digest != before


def test_inline_keys_load_like_files(tmp_path: Path) -> None:
    make(tmp_path)
    pem = (tmp_path / "keys" / "gate.pub").read_text()
    inline = "    ".join(pem.splitlines(keepends=True))
    text = POLICY.replace(
        "keys: {build: keys/build.pub, tests: keys/tests.pub, gate: keys/gate.pub}",
        "keys:\n  build: keys/build.pub\n  tests: keys/tests.pub\n  gate: |\n    " + inline,
    )
    policy = tmp_path / "inline.yaml"
    policy.write_text(text)
    loaded = load_policy(policy)
    assert loaded.keys["gate"].origin == "inline"
    assert loaded.keys["gate"].keyid == load_policy(make(tmp_path)).keys["gate"].keyid


def test_an_inline_private_key_is_refused_without_echoing_it(tmp_path: Path) -> None:
    make(tmp_path)
    private = generate_keypair().private_pem.decode()
    inline = "    ".join(private.splitlines(keepends=True))
    policy = tmp_path / "private.yaml"
    text = POLICY.replace(
        "keys: {build: keys/build.pub, tests: keys/tests.pub, gate: keys/gate.pub}",
        "keys:\n  build: keys/build.pub\n  tests: keys/tests.pub\n  gate: |\n    " + inline,
    )
    policy.write_text(text)
    error = config_error(policy)
    assert "is a private key" in error.message
    body = private.splitlines()[1]
    assert body not in error.message and body not in (error.hint or "")


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("provenance: {signers: [build]}", "provenance: {signers: [tests]}", "provenance.signers"),
        ("gate: {signers: [gate]}", "gate: {signers: [tests]}", "gate.signers"),
        ("gate: {signers: [gate]}", "gate: {signers: [build]}", "gate.signers"),
    ],
)
def test_a_key_in_two_roles_is_a_configuration_error(
    tmp_path: Path, old: str, new: str, words: str
) -> None:
    error = config_error(make(tmp_path, POLICY.replace(old, new)))
    assert "signs for two roles" in error.message
    assert words in error.message


def test_the_same_key_material_under_two_names_in_two_roles_is_refused(tmp_path: Path) -> None:
    policy = make(tmp_path)
    shutil.copy(tmp_path / "keys" / "build.pub", tmp_path / "keys" / "gate.pub")
    error = config_error(policy)
    assert "the same key material as 'build'" in error.message
    assert "gate.signers" in error.message


def test_one_key_may_sign_several_lanes(tmp_path: Path) -> None:
    text = POLICY.replace(
        "  e2e: {signers: [tests]}", "  e2e: {signers: [tests]}\n  it: {signers: [tests]}"
    )
    assert set(load_policy(make(tmp_path, text)).lanes) == {"e2e", "it"}


@pytest.mark.parametrize(
    ("evidence", "words"),
    [
        ('["registry.example.org/org/*/backend"]', "is a pattern"),
        ('["registry.example.org/org/staging/backend:v1"]', "names a tag or digest"),
        ('["not a repository"]', "invalid image reference"),
        ("[]", "must not be empty"),
        ("registry.example.org/org/staging/backend", "must be a list"),
    ],
)
def test_evidence_repositories_are_exact(tmp_path: Path, evidence: str, words: str) -> None:
    text = POLICY.replace(
        'repository: "registry.example.org/org/staging/backend"}',
        f'repository: "registry.example.org/org/*/backend", evidence: {evidence}}}',
    )
    error = config_error(make(tmp_path, text))
    assert "artifacts.backend.evidence" in error.message
    assert words in error.message


def test_evidence_repositories_default_to_an_exact_repository_only(tmp_path: Path) -> None:
    exact = load_policy(make(tmp_path))
    assert [str(r) for r in exact.artifacts["backend"].evidence] == [
        "registry.example.org/org/staging/backend"
    ]
    wildcard = POLICY.replace("org/staging/backend", "org/*/backend")
    assert load_policy(make(tmp_path, wildcard)).artifacts["backend"].evidence == ()
    listed = wildcard.replace(
        '/*/backend"}', '/*/backend", evidence: [oci:./staging/backend, r.example/s/b]}'
    )
    assert [str(r) for r in load_policy(make(tmp_path, listed)).artifacts["backend"].evidence] == [
        "oci:staging/backend",
        "r.example/s/b",
    ]


def test_policy_digest_command_prints_what_verify_pins(tmp_path: Path) -> None:
    policy = make(tmp_path)
    result = run_cli("-v", "policy", "digest", "--policy", str(policy))
    assert result.code == 0, result.stderr
    assert result.stdout == f"{load_policy(policy).digest}\n"
    keyid = load_policy(policy).keys["gate"].keyid
    assert f"key gate: {keyid} ({tmp_path / 'keys' / 'gate.pub'})" in result.stderr
    missing = run_cli("policy", "digest", "--policy", str(tmp_path / "absent.yaml"))
    assert missing.code == 2
    assert "cannot read policy file" in missing.stderr
