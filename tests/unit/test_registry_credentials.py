"""Credentials: environment, Docker config auths, credHelpers and credsStore helpers."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from digestgate.errors import AuthError, ConfigError
from digestgate.oci.registry.credentials import lookup_credentials, normalize_host


def _config(tmp_path: Path, doc: dict[str, object]) -> str:
    (tmp_path / "config.json").write_text(json.dumps(doc))
    return str(tmp_path)


def _helper(bin_dir: Path, name: str, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


#: What `docker login reg.example` leaves in config.json when a credsStore keeps the secret.
LOGGED_IN: dict[str, object] = {"reg.example": {}}


@pytest.fixture
def helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


@pytest.mark.parametrize(
    ("key", "host"),
    [
        ("https://reg.example:5000/v1/", "reg.example:5000"),
        ("http://Reg.Example", "reg.example"),
        ("reg.example/", "reg.example"),
        ("https://index.docker.io/v1/", "docker.io"),
    ],
)
def test_normalize_host(key: str, host: str) -> None:
    assert normalize_host(key) == host


def test_auths_base64_with_normalised_key(tmp_path: Path) -> None:
    auth = base64.b64encode(b"bob:pa:ss").decode()
    cfg = _config(tmp_path, {"auths": {"https://reg.example/v1/": {"auth": auth}}})
    creds = lookup_credentials("reg.example", docker_config=cfg, environ={})
    assert creds is not None
    assert (creds.username, creds.password) == ("bob", "pa:ss")
    assert "pa:ss" not in repr(creds)


def test_auths_identity_token_and_username_password(tmp_path: Path) -> None:
    cfg = _config(
        tmp_path,
        {
            "auths": {
                "a.example": {"identitytoken": "refresh-xyz"},
                "b.example": {"username": "u", "password": "p"},
            }
        },
    )
    a = lookup_credentials("a.example", docker_config=cfg, environ={})
    b = lookup_credentials("b.example", docker_config=cfg, environ={})
    assert a is not None and a.identity_token == "refresh-xyz"
    assert b is not None and (b.username, b.password) == ("u", "p")
    assert lookup_credentials("c.example", docker_config=cfg, environ={}) is None


def test_environment_wins_over_config(tmp_path: Path) -> None:
    cfg = _config(tmp_path, {"auths": {"reg.example": {"username": "u", "password": "p"}}})
    env = {
        "DIGESTGATE_REGISTRY_HOST": "reg.example",
        "DIGESTGATE_REGISTRY_USERNAME": "ci",
        "DIGESTGATE_REGISTRY_PASSWORD": "pw",
    }
    creds = lookup_credentials("reg.example", docker_config=cfg, environ=env)
    assert creds is not None and (creds.username, creds.password) == ("ci", "pw")
    assert creds.source == "DIGESTGATE_REGISTRY_HOST=reg.example"


def test_docker_config_env_variable(tmp_path: Path) -> None:
    _config(tmp_path, {"auths": {"reg.example": {"username": "u", "password": "p"}}})
    creds = lookup_credentials("reg.example", environ={"DOCKER_CONFIG": str(tmp_path)})
    assert creds is not None and creds.username == "u"


def test_cred_helper_per_host_receives_server_url(tmp_path: Path, helpers: Path) -> None:
    seen = tmp_path / "stdin.txt"
    _helper(
        helpers,
        "fake",
        f'cat > {seen}\necho \'{{"ServerURL":"x","Username":"hu","Secret":"hs"}}\'\n',
    )
    cfg = _config(tmp_path, {"credHelpers": {"reg.example": "fake"}, "credsStore": "nothing"})
    creds = lookup_credentials("reg.example", docker_config=cfg, environ={})
    assert creds is not None and (creds.username, creds.password) == ("hu", "hs")
    assert seen.read_text() == "reg.example"


def test_creds_store_not_found_means_anonymous(tmp_path: Path, helpers: Path) -> None:
    _helper(helpers, "store", 'echo "credentials not found in native keychain"\nexit 1\n')
    cfg = _config(tmp_path, {"auths": LOGGED_IN, "credsStore": "store"})
    assert lookup_credentials("reg.example", docker_config=cfg, environ={}) is None


def test_creds_store_identity_token(tmp_path: Path, helpers: Path) -> None:
    _helper(helpers, "store", 'echo \'{"Username":"<token>","Secret":"idtok"}\'\n')
    cfg = _config(tmp_path, {"auths": LOGGED_IN, "credsStore": "store"})
    creds = lookup_credentials("reg.example", docker_config=cfg, environ={})
    assert creds is not None and creds.identity_token == "idtok"


def test_failing_helper_is_an_auth_error_without_its_output(tmp_path: Path, helpers: Path) -> None:
    _helper(helpers, "broken", "echo 'leaked-secret-text'\nexit 3\n")
    cfg = _config(tmp_path, {"auths": LOGGED_IN, "credsStore": "broken"})
    with pytest.raises(AuthError) as info:
        lookup_credentials("reg.example", docker_config=cfg, environ={})
    assert "leaked-secret-text" not in str(info.value)
    assert info.value.exit_code == 3


def test_missing_helper_is_anonymous(tmp_path: Path, helpers: Path) -> None:
    cfg = _config(tmp_path, {"auths": LOGGED_IN, "credsStore": "not-installed-anywhere"})
    assert lookup_credentials("reg.example", docker_config=cfg, environ={}) is None


def test_invalid_config_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(ConfigError):
        lookup_credentials("reg.example", docker_config=str(tmp_path), environ={})
    cfg = _config(tmp_path, {"auths": {"reg.example": {"auth": "!!notbase64"}}})
    with pytest.raises(ConfigError) as info:
        lookup_credentials("reg.example", docker_config=cfg, environ={})
    assert "notbase64" not in str(info.value)
