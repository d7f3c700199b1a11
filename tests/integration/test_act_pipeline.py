"""The act variant of the release pipeline (examples/act/release.yml), under a real runner.

nektos/act runs the workflow on this host (examples/act/run.py): jobs, ``needs``, job and
step outputs, ``if:``, secrets from ``--secret-file``, and digestgate's composite action
(``uses: ./``) are act's, not ours. What happened is observed from outside digestgate:
skopeo reads the registry (digests hashed from the served bytes), act's JSON log gives the
job results, what each step printed, the step outputs and the step summaries.

A clean run promotes exactly the built digests. A second run, in which a job rebuilds the
frontend after the lanes and re-captures it into the release, ends with the gate job
failing, promote skipped, and production byte-identical to before.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.registry import Registry
from tests.fixtures.skopeo import SkopeoError, inspect_digest, inspect_raw, list_tags
from tests.integration.act_run import ROOT, ActRun, act_pipeline, release_repository_workflow
from tests.integration.actions_sim import release_repository_inputs

pytestmark = [pytest.mark.registry, pytest.mark.skopeo, pytest.mark.slow]

NAMES = ("backend", "frontend")
JOBS = ("build", "fast-check", "integration", "e2e", "rebuild-frontend", "gate", "promote")


@dataclass(frozen=True)
class Pipeline:
    """The registry namespace shared by the runs, and the first (clean) run."""

    registry: Registry
    namespace: str
    sha: str
    clean: ActRun

    def staging(self, name: str, ref: str) -> str:
        return f"{self.namespace}/staging/{name}{ref}"

    def production(self, name: str, ref: str = "") -> str:
        return f"{self.namespace}/production/{name}{ref}"


@pytest.fixture(scope="module")
def pipeline(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    namespace = f"act/app-{secrets.token_hex(3)}"
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    work = tmp_path_factory.mktemp("act-clean")
    yield Pipeline(registry, namespace, sha, act_pipeline(registry.host, namespace, work, "7001"))


def production_state(pipeline: Pipeline) -> dict[str, dict[str, bytes]]:
    """Every production tag and the manifest bytes it serves (skopeo)."""
    state = {}
    for name in NAMES:
        repo = pipeline.production(name)
        state[name] = {
            tag: inspect_raw(pipeline.registry, f"{repo}:{tag}")
            for tag in list_tags(pipeline.registry, repo)
        }
    return state


def test_act_runs_the_pipeline_and_promotes_the_built_digests(pipeline: Pipeline) -> None:
    run = pipeline.clean
    assert run.code == 0, run.output[-4000:]
    assert run.jobs() == dict.fromkeys((*JOBS, "verify"), "success")

    registry = pipeline.registry
    built = {name: run.printed_digest("build", f"build-{name}") for name in NAMES}
    for name, digest in built.items():
        # What the build step pushed is what the staging tag serves (skopeo, hashed)...
        assert inspect_digest(registry, pipeline.staging(name, f":{pipeline.sha}")) == digest
        # ...and what capture output: the build job's outputs carried it to the lanes,
        # which pulled both images by digest (their suites ran against those bytes)...
        assert run.outputs("build", f"capture-{name}")["digest"] == digest
        # ...and exactly those bytes are in production, under the ref's tag.
        assert inspect_digest(registry, pipeline.production(name, f"@{digest}")) == digest
        assert inspect_digest(registry, pipeline.production(name, ":main")) == digest
        # The verify job got the digests only through `needs.build.outputs`.
        summary = run.summary("verify")
        assert f"- {name}: {registry.host}/{pipeline.production(name)}@{digest}" in summary

    promoted = json.loads((run.artifacts / "promoted" / "promoted.json").read_text())
    assert promoted["kind"] == "Promotion"
    assert {n: a["image"] for n, a in promoted["artifacts"].items()} == {
        name: f"{registry.host}/{pipeline.production(name)}@{built[name]}" for name in NAMES
    }
    assert run.outputs("promote", "promote")["verdict"] == "PASSED"

    gate = run.summary("gate")
    assert "digestgate gate: PASSED" in gate
    assert "| Artifact | Digest | Requirement | Verdict | Reason |" in gate
    for name, digest in built.items():
        assert f"| {name} | `{digest[:19]}` | lane:integration | PASSED |" in gate
    report = json.loads((run.artifacts / "gate-1" / "gate-report.json").read_text())
    assert report["verdict"] == "PASSED"


def test_act_blocks_a_frontend_rebuilt_after_the_lanes(
    pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert pipeline.clean.code == 0, "the clean run must promote first"
    before = production_state(pipeline)
    assert all(before[name] for name in NAMES), before

    work = tmp_path_factory.mktemp("act-rebuild")
    run = act_pipeline(pipeline.registry.host, pipeline.namespace, work, "7002", rebuild=True)
    assert run.code != 0
    assert run.jobs() == {
        **dict.fromkeys(
            ("build", "fast-check", "integration", "e2e", "rebuild-frontend"), "success"
        ),
        "gate": "failure",
        "promote": "skipped",
        "verify": "skipped",
    }
    assert run.skipped() == {"promote", "verify"}  # their `if:` was false

    validated = run.printed_digest("build", "build-frontend")
    rebuilt = run.printed_digest("rebuild-frontend", "rebuild")
    assert rebuilt != validated
    staging = pipeline.staging("frontend", f":{pipeline.sha}")
    assert inspect_digest(pipeline.registry, staging) == rebuilt  # the tag moved

    report = json.loads((run.artifacts / "gate-1" / "gate-report.json").read_text())
    frontend = report["artifacts"]["frontend"]
    assert (report["verdict"], frontend["digest"], frontend["verdict"]) == (
        "FAILED",
        rebuilt,
        "FAILED",
    )
    assert "provenance.missing" in {f["id"] for f in frontend["findings"]}
    summary = run.summary("gate")
    assert "digestgate gate: FAILED" in summary
    assert "`provenance.missing` (frontend)" in summary
    assert run.outputs("gate", "2")["verdict"] == "FAILED"

    assert not (run.artifacts / "promoted").exists()
    assert production_state(pipeline) == before


# --- Gitea/Forgejo: the release repository's promote workflow, under act ----------------------


def promotion_inputs(run: ActRun) -> dict[str, str]:
    """The inputs a release manager reads off the gate job's summary (its release.json)."""
    summary = run.summary("gate")
    block = summary.split("```json\n", 1)[1].split("```", 1)[0]
    return release_repository_inputs(json.loads(block))


def release_repository_run(
    pipeline: Pipeline, work: Path, inputs: dict[str, str], target: str
) -> ActRun:
    """examples/gitea/release-repository's promote.yml, started by workflow_dispatch."""
    workflow = release_repository_workflow(work.parent / f"{work.name}-promote.yml")
    return act_pipeline(
        pipeline.registry.host,
        pipeline.namespace,
        work,
        "9100",
        workflow=workflow,
        event="workflow_dispatch",
        inputs=inputs,
        repository="example-org/app-release",
        production=f"{pipeline.registry.host}/{pipeline.namespace}/{target}",
        keys_from=pipeline.clean.work,
    )


def test_act_runs_the_gitea_release_repository_promotion(
    pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert pipeline.clean.code == 0, "the release to promote comes from the clean run"
    inputs = promotion_inputs(pipeline.clean)
    run = release_repository_run(
        pipeline, tmp_path_factory.mktemp("act-gitea"), inputs, "gitea-production"
    )
    assert run.code == 0, run.output[-4000:]
    assert run.jobs() == {"promote": "success"}
    # Re-gated from the evidence attached in staging alone (no artifact was handed over).
    for name in NAMES:
        built = pipeline.clean.printed_digest("build", f"build-{name}")
        assert inputs[name].endswith(f"/staging/{name}@{built}")
        target = f"{pipeline.namespace}/gitea-production/{name}"
        assert inspect_digest(pipeline.registry, f"{target}@{built}") == built
        assert inspect_digest(pipeline.registry, f"{target}:main") == built
    promoted = json.loads((run.artifacts / "promoted" / "promoted.json").read_text())
    assert promoted["source"]["runId"] == inputs["run-id"]


@pytest.mark.parametrize(
    ("case", "refusal"),
    [
        # act does not enforce `required: true`: a missing input arrives empty.
        ("missing backend", "capture needs 'source' or 'metadata-file'"),
        # An input that smuggles a flag, with the backend named by its staging tag.
        ("flag in run-id", "is a tag, not a digest; refused inside CI"),
    ],
)
def test_gitea_release_repository_refuses_bad_inputs(
    case: str, refusal: str, pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert pipeline.clean.code == 0, "the release to promote comes from the clean run"
    inputs = promotion_inputs(pipeline.clean)
    if case == "missing backend":
        del inputs["backend"]
    else:
        inputs["backend"] = (
            f"{pipeline.registry.host}/{pipeline.staging('backend', ':' + pipeline.sha)}"
        )
        inputs["run-id"] += " --allow-tag"
    target = f"refused-{secrets.token_hex(2)}"
    run = release_repository_run(pipeline, tmp_path_factory.mktemp("act-gitea-bad"), inputs, target)
    assert (run.code, run.jobs()) == (1, {"promote": "failure"})
    assert refusal in run.messages("promote", "1"), run.output[-3000:]
    with pytest.raises(SkopeoError):  # nothing was written to the target
        list_tags(pipeline.registry, f"{pipeline.namespace}/{target}/backend")
