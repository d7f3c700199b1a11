"""``digestgate doctor`` against the real registry (no Referrers API, chunked uploads and
mounts supported, no tag immutability) and against faked answers for what it cannot show."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from digestgate.oci.options import StoreOptions
from digestgate.oci.registry.doctor import PROBE_TAG, diagnose
from tests.conftest import run_cli
from tests.fixtures.registry import Registry
from tests.unit.registry_fake import REGISTRY, FakeRegistry


def _checks(stdout: str) -> dict[str, dict[str, Any]]:
    return {c["check"]: c for c in json.loads(stdout)}


@pytest.mark.registry
def test_read_only_doctor_writes_nothing_and_reports_the_fallback(registry: Registry) -> None:
    result = run_cli("doctor", f"{registry.host}/doctor/readonly", "--json")
    assert result.code == 0, result.stderr
    checks = _checks(result.stdout)
    assert checks["distribution-api"]["outcome"] == "yes"
    assert checks["referrers-api"]["outcome"] == "no"
    assert "sha256-<hex> tag index" in checks["referrers-api"]["digestgate"]
    for name in ("chunked-upload", "cross-repository-mount", "tag-immutability"):
        assert checks[name]["outcome"] == "skipped"
    tags = httpx.get(f"{registry.url}/v2/doctor/readonly/tags/list")
    assert tags.status_code == 404  # the repository was never created


@pytest.mark.registry
def test_write_probes_find_chunks_mounts_and_movable_tags(registry: Registry) -> None:
    run_cli("doctor", f"{registry.host}/doctor/source", "--write")  # makes the source repo
    result = run_cli(
        "doctor", f"{registry.host}/doctor/app", "--write", "--mount-from", "doctor/source",
        "--json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    checks = _checks(result.stdout)
    assert checks["chunked-upload"]["outcome"] == "yes"
    assert checks["cross-repository-mount"]["outcome"] == "yes"
    assert checks["tag-immutability"]["outcome"] == "no"
    assert "Harbor" in checks["tag-immutability"]["digestgate"]
    tags = httpx.get(f"{registry.url}/v2/doctor/app/tags/list").json()["tags"]
    assert tags == [PROBE_TAG]


@pytest.mark.registry
def test_text_output_says_what_digestgate_does(registry: Registry) -> None:
    result = run_cli("doctor", f"{registry.host}/doctor/text")
    assert result.code == 0
    assert "referrers-api" in result.stdout and "-> evidence is listed" in result.stdout


def test_a_registry_with_the_referrers_api_and_immutable_tags_is_reported() -> None:
    fake = FakeRegistry(referrers_api=True)
    written: set[str] = set()

    def immutable(request: httpx.Request) -> httpx.Response | None:
        if request.method == "PUT" and request.url.path.endswith(f"/manifests/{PROBE_TAG}"):
            if PROBE_TAG in written:
                return httpx.Response(
                    409, json={"errors": [{"code": "DENIED", "message": "tag is immutable"}]}
                )
            written.add(PROBE_TAG)
        return None

    fake.faults.append(immutable)
    options = StoreOptions(transport=httpx.MockTransport(fake.handle), retries=0)
    checks = {c.name: c for c in diagnose(REGISTRY, "app", options=options, write=True)}
    assert checks["referrers-api"].outcome == "yes"
    assert checks["tag-immutability"].outcome == "yes"
    assert "immutable" in checks["tag-immutability"].seen


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["reg.example/app:v1"], "names a tag or digest"),
        (["reg.example/app", "--mount-from", "other"], "--mount-from needs --write"),
        (["not a reference"], ""),
        ([""], ""),
        (["oci:some/dir"], ""),
        (["127.0.0.1:0/app"], "port"),
        (["reg.example/app", "--registry-timeout", "nan"], "--registry-timeout"),
        (["reg.example/app", "--write", "--mount-from", "Not/Valid"], ""),
    ],
)
def test_bad_arguments_are_exit_2(args: list[str], fragment: str) -> None:
    result = run_cli("doctor", *args)
    assert result.code == 2, result.stderr
    assert fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2


def test_an_unreachable_registry_is_reported_not_a_traceback() -> None:
    result = run_cli("doctor", "127.0.0.1:9/app", "--registry-timeout", "1", "--json")
    assert result.code == 3, result.stderr
    assert "cannot reach registry 127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr
