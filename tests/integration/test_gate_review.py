"""Adversarial cases for gate and verify found in review: each asserts exit code and finding."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digestgate.digest import Digest
from tests.integration.test_gate_adversarial import World, blocked, both, verify
from tests.unit.gatekit import lane, provenance, release_json, vsa


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_provenance_time_beyond_the_calendar_is_malformed_not_a_crash(world: World) -> None:
    doc = provenance({"backend": world.digests["backend"]}, finished=world.when)
    doc["predicate"]["runDetails"]["metadata"]["finishedOn"] = "9999-12-31T23:59:59-23:59"
    world.put("prov-backend", doc, "build")
    result = world.gate("--offline")
    assert result.code == 1, result.stderr
    assert "evidence.malformed" in world.ids()["backend"]


def test_promotion_time_beyond_the_calendar_is_a_config_error(world: World) -> None:
    doc = {
        "apiVersion": "digestgate/v1",
        "kind": "Promotion",
        "source": json.loads(world.release.read_text())["source"],
        "policy": {"digest": str(Digest.of(b"p"))},
        "time": "0001-01-01T00:00:00+23:59",
        "artifacts": {},
    }
    world.release.write_text(json.dumps(doc))
    result = world.gate("--offline")
    assert result.code == 2, result.stderr
    assert "time" in result.stderr


def test_verify_refuses_a_promotion_record(world: World) -> None:
    doc = vsa(
        world.digests["backend"],
        policy_digest=Digest.of(world.policy.read_bytes()),
        time=world.when,
    )
    doc["predicate"]["digestgate_kind"] = "promotion"
    world.put("vsa", doc, "gate")
    result = verify(world)
    assert result.code == 1, result.stderr
    assert "vsa.missing" in result.stderr


def test_evidence_file_with_a_non_utf8_name(world: World) -> None:
    world.files["e2e"].rename(os.fsdecode(os.fsencode(world.evidence) + b"/e2e-\xff.json"))
    result = world.gate("--offline", "--vsa-key", str(world.keys["gate"]))
    assert result.code == 0, result.stderr
    origins = [
        e["origin"]
        for e in json.loads(world.report.read_text())["artifacts"]["backend"]["evidence"]
    ]
    assert any(o.endswith("e2e-\\xff.json") for o in origins)


def test_promoted_image_and_source_with_different_digests(world: World) -> None:
    b, f = world.digests["backend"], world.digests["frontend"]
    doc = {
        "apiVersion": "digestgate/v1",
        "kind": "Promotion",
        "source": json.loads(world.release.read_text())["source"],
        "policy": {"digest": str(Digest.of(b"p"))},
        "time": "2026-01-01T00:00:00Z",
        "artifacts": {
            "backend": {
                "image": world.image("backend"),
                "from": world.image("backend", f),
                "tags": [],
            },
            "frontend": {
                "image": world.image("frontend"),
                "from": world.image("frontend", b),
                "tags": [],
            },
        },
    }
    world.release.write_text(json.dumps(doc))
    result = world.gate("--offline")
    assert result.code == 2, result.stderr
    assert "from" in result.stderr


def test_future_failed_result_newer_than_passed(world: World) -> None:
    world.put(
        "fast-check-2",
        lane(
            "fast-check", both(world), result="FAILED", finished=world.now + timedelta(minutes=30)
        ),
        "tests",
    )
    blocked(world, {n: {"evidence.future-time", "lane.failed"} for n in ("backend", "frontend")})


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=12)
    | st.sampled_from(
        ["sha256:" + "a" * 64, "digestgate/v1", "Release", "Promotion", "r.io/a/b:t",
         "0001-01-01T00:00:00+23:59", "refs/heads/main", "a1" * 20]
    ),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(
        st.sampled_from(
            ["apiVersion", "kind", "source", "artifacts", "image", "from", "tags", "tag",
             "previous", "policy", "digest", "time", "revision", "runId", "size", "backend"]
        ),
        inner,
        max_size=5,
    ),
    max_leaves=20,
)  # fmt: skip


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(tmp_path_factory.mktemp("world"))


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(["source", "artifacts", "apiVersion", "kind", "time"]), value=_JSON)
def test_hostile_release_files_never_crash(shared_world: World, field: str, value: object) -> None:
    doc = json.loads(release_json({n: shared_world.image(n) for n in ("backend", "frontend")}))
    doc[field] = value
    shared_world.release.write_text(json.dumps(doc))
    result = shared_world.gate("--offline")
    assert result.code in (1, 2), result.stderr
