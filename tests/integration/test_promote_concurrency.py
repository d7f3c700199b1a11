"""Promotions that overlap, re-runs, and what a promotion record may claim.

Two real ``digestgate promote`` processes of different releases to the same target and
tags, made to overlap by holding the target's index lock until both wait on it. Whatever
the interleaving, a run that exits 0 has left every tag where its ``promoted.json`` says,
and an immutable tag, once created, never moves.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from digestgate.digest import Digest
from digestgate.oci.layout import LayoutStore
from digestgate.samples import sample_image
from tests.conftest import CliResult, run_cli
from tests.integration.test_gate_adversarial import World
from tests.unit.gatekit import lane, provenance

NAMES = ("backend", "frontend")


def with_immutable_v_tags(world: World) -> None:
    text = world.policy.read_text().replace("oci:**/images/", "oci:**/")
    world.policy.write_text(text + 'promotion:\n  immutableTags: ["v*"]\n')


def second_release(world: World, label: str) -> tuple[Path, Path, dict[str, Digest]]:
    """Another build of both images in the same staging layouts, with its own evidence."""
    digests = {}
    for name in NAMES:
        store = LayoutStore.open(str(world.root / "images" / name), create=False)
        digests[name] = sample_image(store, {"app": f"{name} {label}".encode()}).digest
    release = world.root / f"release-{label}.json"
    evidence = world.root / f"evidence-{label}"
    evidence.mkdir()
    images = {n: f"oci:{world.root / 'images' / n}@{d}" for n, d in digests.items()}
    from tests.unit.gatekit import release_json

    release.write_bytes(release_json(images))
    statements = [
        (f"p-{n}", provenance({n: d}, finished=world.when), "build") for n, d in digests.items()
    ]
    statements += [
        ("fc", lane("fast-check", digests, finished=world.when), "tests"),
        ("e2e", lane("e2e", digests, finished=world.when), "tests"),
    ]
    for name, statement, signer in statements:
        (evidence / f"{name}.json").write_bytes(world.sign(statement, signer))
    return release, evidence, digests


def promote_args(world: World, release: Path, evidence: Path, out: Path, *tags: str) -> list[str]:
    return [
        "promote", "--release", str(release), "--policy", str(world.policy),
        "--evidence", f"dir:{evidence}", "--to", f"oci:{world.root / 'production'}",
        "--vsa-key", str(world.keys["gate"]), "--out", str(out),
        *(arg for tag in tags for arg in ("--tag", tag)),
    ]  # fmt: skip


def final_tags(world: World, tags: tuple[str, ...]) -> dict[tuple[str, str], Digest | None]:
    result = {}
    for name in NAMES:
        store = LayoutStore.open(str(world.root / "production" / name), create=False)
        for tag in tags:
            found = store.get_tag(tag)
            result[name, tag] = found.digest if found else None
    return result


@contextmanager
def held(paths: list[Path]) -> Iterator[None]:
    """Hold the index locks of these layouts (as a writer would) until the block ends."""
    fds = []
    try:
        for path in paths:
            fd = os.open(path / ".index.json.lock", os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            fds.append(fd)
        yield
    finally:
        for fd in fds:
            os.close(fd)


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    with_immutable_v_tags(w)
    return w


def test_concurrent_promotions_never_leave_a_false_record(world: World) -> None:
    tags = ("latest", "v1")
    runs = [("a", world.release, world.evidence, world.digests)]
    runs += [("b", *second_release(world, "b"))]
    outcomes: dict[str, int] = {}
    for trial in range(16):
        production = world.root / "production"
        if production.exists():
            import shutil

            shutil.rmtree(production)
        for name in NAMES:  # the targets exist, so their locks can be held
            LayoutStore.open(str(production / name), create=True)
        with held([production / n for n in NAMES]):
            procs = []
            for label, release, evidence, _ in runs:
                out = world.root / f"promoted-{label}.json"
                out.unlink(missing_ok=True)
                args = promote_args(world, release, evidence, out, *tags)
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "digestgate", *args],
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                )
            time.sleep(1.2 if trial % 2 else 0.6)  # both wait on the lock (gate done)
        codes = [proc.wait(timeout=120) for proc in procs]
        final = final_tags(world, tags)
        for (label, _, _, digests), proc, code in zip(runs, procs, codes, strict=True):
            stderr = proc.stderr.read() if proc.stderr else ""
            assert code in (0, 1, 3), stderr
            outcomes[f"{label}:{code}"] = outcomes.get(f"{label}:{code}", 0) + 1
            record = world.root / f"promoted-{label}.json"
            if code == 0:
                doc = json.loads(record.read_text())
                for name in NAMES:
                    for tag in doc["artifacts"][name]["tags"]:
                        assert final[name, tag["tag"]] == digests[name], (trial, label, stderr)
            else:
                assert not record.exists(), stderr
        # v1 is immutable: both artifacts' v1 belong to one release, never a mix.
        owners = {label for label, _, _, d in runs for n in NAMES if final[n, "v1"] == d[n]}
        assert len(owners) <= 1 or final[NAMES[0], "v1"] is None, final
    assert outcomes.get("a:0", 0) + outcomes.get("b:0", 0) >= 1, outcomes
    print("outcomes over 16 trials:", outcomes)


def test_a_rerun_after_success_keeps_the_rollback_target(world: World) -> None:
    old = {}
    for name in NAMES:
        store = LayoutStore.open(str(world.root / "production" / name), create=True)
        old[name] = sample_image(store, {"app": f"{name} last week".encode()}, tag="latest").digest
    out = world.root / "promoted.json"
    args = promote_args(world, world.release, world.evidence, out, "latest")
    for attempt in range(2):
        result: CliResult = run_cli(*args)
        assert result.code == 0, (attempt, result.stderr)
        doc = json.loads(out.read_text())
        for name in NAMES:
            assert doc["artifacts"][name]["tags"] == [{"tag": "latest", "previous": str(old[name])}]


def test_out_never_overwrites_a_file_that_is_not_a_promotion_record(world: World) -> None:
    before = world.release.read_bytes()
    result = run_cli(*promote_args(world, world.release, world.evidence, world.release, "v1"))
    assert result.code == 2, result.stderr
    assert "is a Release, not a promotion record" in result.stderr
    assert world.release.read_bytes() == before
    assert not (world.root / "production").exists()
