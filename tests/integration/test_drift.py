"""``digestgate drift`` against the real registry: a tag moved behind digestgate's back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from digestgate.oci.open import Stores
from digestgate.release import Promotion, load_release, save_release
from tests.conftest import run_cli
from tests.fixtures import images
from tests.fixtures.registry import Registry
from tests.fixtures.skopeo import push_layout
from tests.integration.test_promote_registry import do_promote, staged
from tests.unit.test_promote import Keys, make_keys, outcome_for

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]


@pytest.fixture
def promoted(registry: Registry, repo: str, tmp_path: Path) -> Iterator[Path]:
    keys: Keys = make_keys(tmp_path / "keys")
    release = staged(registry, repo, tmp_path, seed=400)
    with Stores() as stores:
        result = do_promote(
            release, outcome_for(keys, release), stores, registry.ref(f"{repo}/prod"), keys
        )
    assert result.promotion is not None
    path = tmp_path / "promoted.json"
    save_release(path, result.promotion)
    yield path


def test_no_drift(promoted: Path) -> None:
    result = run_cli("drift", str(promoted))
    assert result.code == 0, result.stderr
    assert result.stdout == ""
    assert "no drift: 4 promoted tag(s)" in result.stderr


def test_tag_moved_behind_our_back_drifts(
    promoted: Path, registry: Registry, repo: str, tmp_path: Path
) -> None:
    other = images.make_image(tmp_path / "other", tag="x", seed=401)
    moved = push_layout(tmp_path / "other", "x", registry, f"{repo}/prod/backend", tag="latest")
    record = load_release(promoted)
    assert isinstance(record, Promotion)
    expected = record.artifacts["backend"].digest
    result = run_cli("drift", str(promoted))
    assert result.code == 1
    assert result.stdout.splitlines() == [
        f"{registry.host}/{repo}/prod/backend:latest expected {expected} now {moved}"
    ]
    assert "1 of 4 promoted tag(s) drifted" in result.stderr
    assert other.digest == moved


def test_unreachable_registry_is_exit_3(
    promoted: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No backoff between the connection retries: the outcome is the same, only faster.
    monkeypatch.setattr("digestgate.oci.registry.transport.random.uniform", lambda a, b: 0.0)
    text = promoted.read_text().replace(registry.host, "127.0.0.1:9")
    promoted.write_text(text)
    result = run_cli("drift", str(promoted), "--registry-timeout", "2")
    assert result.code == 3, result.stderr


def test_release_file_is_exit_2(tmp_path: Path) -> None:
    release = tmp_path / "release.json"
    release.write_text(
        '{"apiVersion": "digestgate/v1", "kind": "Release", "source": {"repository": '
        '"https://git.example.org/org/app", "revision": "' + "a" * 40 + '", "ref": '
        '"refs/heads/main", "runId": "1"}, "artifacts": {}}'
    )
    result = run_cli("drift", str(release))
    assert result.code == 2
    assert "not a Promotion" in result.stderr
