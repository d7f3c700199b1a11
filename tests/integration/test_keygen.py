"""`digestgate keygen` end to end: loadable keys, file modes, overwrite rules, passwords."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import click
import pytest

from digestgate.cli import main as cli_main
from digestgate.evidence.keys import load_public_key, load_signer
from tests.conftest import run_cli

PASSWORD = "s3cret-for-tests"


@click.command(name="probe-sign")
@click.argument("keyref")
def command(keyref: str) -> None:
    """Load a signer the way signing commands do (exercises the CLI error boundary)."""
    signer = load_signer(keyref, os.environ)
    click.echo(signer.public_key.keyid)


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> None:
    commands = dict(cli_main.COMMANDS)
    commands["probe-sign"] = (__name__, "Load a signer.")
    monkeypatch.setattr(cli_main, "COMMANDS", commands)


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa-p256"])
@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_keygen_writes_loadable_keys(tmp_path: Path, kind: str, encrypted: bool) -> None:
    prefix = tmp_path / "build"
    env = {"DIGESTGATE_KEY_PASSWORD": PASSWORD} if encrypted else {}
    result = run_cli("keygen", "--out", str(prefix), "--kind", kind, env=env)
    assert result.code == 0, result.stderr
    keyid = result.stdout.strip()
    key_file, pub_file = tmp_path / "build.key", tmp_path / "build.pub"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert (b"ENCRYPTED PRIVATE KEY" in key_file.read_bytes()) is encrypted
    assert load_public_key(pub_file).keyid == keyid
    assert load_public_key(pub_file).algorithm == kind
    assert load_signer(f"file:{key_file}", env).public_key.keyid == keyid
    assert PASSWORD not in result.stdout + result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build.key", "build.pub"]


def test_keygen_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    prefix = str(tmp_path / "k")
    first = run_cli("keygen", "--out", prefix)
    assert first.code == 0
    before = (tmp_path / "k.key").read_bytes()
    again = run_cli("keygen", "--out", prefix)
    assert again.code == 2
    assert "already exists" in again.stderr and "--force" in again.stderr
    assert (tmp_path / "k.key").read_bytes() == before
    forced = run_cli("keygen", "--out", prefix, "--force")
    assert forced.code == 0
    assert forced.stdout.strip() != first.stdout.strip()
    assert load_public_key(tmp_path / "k.pub").keyid == forced.stdout.strip()
    assert stat.S_IMODE((tmp_path / "k.key").stat().st_mode) == 0o600


def test_keygen_refuses_when_only_the_public_key_exists(tmp_path: Path) -> None:
    (tmp_path / "k.pub").write_text("old")
    result = run_cli("keygen", "--out", str(tmp_path / "k"))
    assert result.code == 2
    assert not (tmp_path / "k.key").exists()


def test_keygen_creates_a_private_directory_for_the_keys(tmp_path: Path) -> None:
    result = run_cli("keygen", "--out", str(tmp_path / "keys" / "build"))
    assert result.code == 0, result.stderr
    assert (tmp_path / "keys" / "build.key").is_file()
    assert (tmp_path / "keys").stat().st_mode & 0o777 == 0o700


def test_keygen_where_no_directory_can_be_made(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = run_cli("keygen", "--out", str(tmp_path / "file" / "k"))
    assert result.code == 2
    assert "cannot create directory" in result.stderr


@pytest.mark.usefixtures("probe")
def test_wrong_password_is_a_configuration_error(tmp_path: Path) -> None:
    prefix = str(tmp_path / "k")
    assert run_cli("keygen", "--out", prefix, env={"DIGESTGATE_KEY_PASSWORD": PASSWORD}).code == 0
    good = run_cli("probe-sign", prefix + ".key", env={"DIGESTGATE_KEY_PASSWORD": PASSWORD})
    assert good.code == 0, good.stderr
    wrong = run_cli("probe-sign", prefix + ".key", env={"DIGESTGATE_KEY_PASSWORD": "not-it-42"})
    assert wrong.code == 2
    assert "cannot decrypt" in wrong.stderr
    assert "not-it-42" not in wrong.stderr
    assert "hint:" in wrong.stderr
    missing = run_cli("probe-sign", prefix + ".key")
    assert missing.code == 2
    assert "DIGESTGATE_KEY_PASSWORD" in missing.stderr


def test_no_private_key_is_left_when_the_public_key_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / "k.pub").mkdir()  # a directory where the public key should go
    result = run_cli("keygen", "--out", str(tmp_path / "k"), "--force")
    assert result.code in (2, 3)
    assert not (tmp_path / "k.key").exists()
