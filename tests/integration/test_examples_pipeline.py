"""The example release pipeline, exercised end to end against a real registry.

The workflow file itself is run (tests/integration/actions_sim.py): its digestgate steps,
through the composite action's real script and the real ``digestgate`` executable, in job
order, with a simulated Actions environment. The image builds push small images (a
two-platform index for the backend, one manifest for the frontend) with skopeo and answer
build-push-action's ``metadata`` output, so the workflow's own metadata and capture steps
run unchanged; the test runners write passing JUnit files where their steps say.

A clean run promotes both images by digest. The same run with the frontend rebuilt after
validation (pushed again and re-captured into the release the gate reads) is blocked at the
gate and nothing reaches production.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import run_cli
from tests.fixtures import images
from tests.fixtures.registry import Registry
from tests.fixtures.skopeo import (
    SkopeoError,
    inspect_digest,
    list_tags,
    push_layout,
)
from tests.integration.actions_expr import ExpressionError, condition, substitute
from tests.integration.actions_sim import (
    EXAMPLES,
    GITEA_PROMOTE,
    ROOT,
    Run,
    Simulation,
    buildx_metadata,
    release_repository_inputs,
)

SHA = "5e0c1f7a9b3d2c4e6f8a0b1c2d3e4f5a6b7c8d9e"
NAMES = ("backend", "frontend")
ROLES = ("build", "tests", "gate")

#: The github context of a push to main, per platform. Gitea reports no workflow ref
#: (its context has no workflow_ref; GITHUB_WORKFLOW is the file name).
GITHUB_CONTEXT = {
    "github": {
        "server_url": "https://github.com",
        "api_url": "https://api.github.com",
        "repository": "example-org/app",
        "repository_owner": "example-org",
        "workflow": "release",
        "workflow_ref": "example-org/app/.github/workflows/release.yml@refs/heads/main",
    },
    "gitea": {
        "server_url": "https://gitea.example.org",
        "api_url": "https://gitea.example.org/api/v1",
        "repository": "example-org/app",
        "repository_owner": "example-org",
        "workflow": "release.yml",
    },
}
PLATFORM_ENV = {
    "github": {"CI": "true", "GITHUB_ACTIONS": "true"},
    "gitea": {"CI": "true", "GITHUB_ACTIONS": "true", "GITEA_ACTIONS": "true"},
}


def digestgate_bin() -> Path:
    """The digestgate executable installed next to the running Python (the worktree venv)."""
    path = Path(sys.executable).parent / "digestgate"
    assert path.is_file(), f"no digestgate executable at {path}; run scripts/test once"
    return path


class Images:
    """The simulated image builds: one layout per build, pushed with skopeo by tag."""

    def __init__(self, registry: Registry, work: Path) -> None:
        self.registry = registry
        self.work = work
        self.seeds = {"backend": 101, "frontend": 202}
        self.builds = 0

    def build(self, context: str, tags: list[str]) -> dict[str, Any]:
        """build-push-action with push: true -> the buildx metadata it outputs."""
        self.builds += 1
        layout = self.work / f"layout-{self.builds}-{context}"
        seed = self.seeds[context]
        info: images.ManifestInfo
        if context == "backend":
            info = images.make_index(layout, seed=seed, layers=1, layer_size=512)
        else:
            info = images.make_image(layout, seed=seed, layers=1, layer_size=512)
        for tag in tags:
            host, _, rest = tag.partition("/")
            assert host == self.registry.host, f"build pushes to {host}, not the test registry"
            repository, _, name = rest.rpartition(":")
            push_layout(layout, info.digest, self.registry, repository, tag=name)
        config = info.config.digest if isinstance(info, images.ImageInfo) else None
        return buildx_metadata(info.digest, info.media_type, info.size, tags, config)

    def pull(self, image: str) -> str:
        """A service image as the runner pulls it: by digest, bytes hashing to it."""
        repository, _, digest = image.partition("@")
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"service {image} not by digest"
        assert repository.startswith(self.registry.host + "/"), image
        pulled = inspect_digest(self.registry, image.removeprefix(self.registry.host + "/"))
        assert pulled == digest, f"service {image} serves {pulled}"
        return f"service pulled by digest: {image}"


def gitea_value(policy_text: str, pattern: str) -> str:
    """A Gitea value the example policy gives in a comment."""
    match = re.search(pattern, policy_text)
    assert match, f"examples/policy.yaml has no Gitea comment matching {pattern}"
    return match.group(1)


def make_repository(
    tmp_path: Path, flavour: str, registry: Registry, repo: str
) -> tuple[Path, dict[str, str]]:
    """The application repository checkout sees, and the role secrets.

    The policy is examples/policy.yaml with its registry host replaced by the test registry
    (and, for Gitea, the Gitea values its comments give): what a user does in set-up step 3.
    """
    checkout = tmp_path / "repository"
    keys_dir = checkout / ".digestgate" / "keys"
    keys_dir.mkdir(parents=True)
    (tmp_path / "keys").mkdir()
    secrets = {"GITHUB_TOKEN": "ghs_simulatedjobtoken0000", "REGISTRY_TOKEN": "simulated-token"}
    for role in ROLES:
        result = run_cli("keygen", "--out", str(tmp_path / "keys" / role))
        assert result.code == 0, result.stderr
        (keys_dir / f"{role}.pub").write_bytes((tmp_path / "keys" / f"{role}.pub").read_bytes())
        pem = (tmp_path / "keys" / f"{role}.key").read_text(encoding="utf-8")
        secrets[f"DIGESTGATE_{role.upper()}_KEY"] = pem
    text = (ROOT / "examples/policy.yaml").read_text(encoding="utf-8")
    policy = yaml.safe_load(text)
    for name in NAMES:
        policy["artifacts"][name]["repository"] = f"{registry.host}/{repo}/*/{name}"
        policy["artifacts"][name]["evidence"] = [f"{registry.host}/{repo}/staging/{name}"]
    if flavour == "gitea":
        policy["source"]["repository"] = gitea_value(text, r"repository: \S+ # Gitea: (\S+)")
        policy["provenance"]["builder"] = gitea_value(text, r'#\s*Gitea:\s*"([^"]+)"')
    (checkout / ".digestgate" / "policy.yaml").write_text(yaml.safe_dump(policy))
    return checkout, secrets


def simulate(
    flavour: str,
    registry: Registry,
    repo: str,
    tmp_path: Path,
    *,
    rebuild: bool = False,
    edit: Callable[[str], str] | None = None,
) -> tuple[Run, Images]:
    """Run the example workflow of ``flavour``; optionally rebuild the frontend before gate,
    or run the workflow text as ``edit`` changes it."""
    checkout, secrets = make_repository(tmp_path, flavour, registry, repo)
    workflow = EXAMPLES[flavour]
    if edit is not None:
        workflow = tmp_path / "edited-release.yml"
        workflow.write_text(edit(EXAMPLES[flavour].read_text(encoding="utf-8")))
    builds = Images(registry, tmp_path / "layouts")
    variables = {
        "STAGING_NAMESPACE": f"{registry.host}/{repo}/staging",
        "PRODUCTION_NAMESPACE": f"{registry.host}/{repo}/production",
        "PLAYWRIGHT_IMAGE_DIGEST": "sha256:" + "ab" * 32,
        "REGISTRY": registry.host,
        "REGISTRY_USERNAME": "release-bot",
    }
    github = {
        **GITHUB_CONTEXT[flavour],
        "sha": SHA,
        "ref": "refs/heads/main",
        "ref_name": "main",
        "ref_type": "branch",
        "event_name": "push",
        "run_id": "9100200300",
        "run_number": "17",
        "run_attempt": "1",
        "actor": "release-bot",
    }

    def rebuild_frontend(run: Run) -> str:
        # The mistake digestgate exists to catch: after validation, the frontend is built
        # again (the staging tag moves) and the new digest is captured into the release.
        builds.seeds["frontend"] += 1
        tags = [f"{variables['STAGING_NAMESPACE']}/frontend:{SHA}"]
        metadata_file = tmp_path / "rebuilt-frontend.json"
        metadata_file.write_text(json.dumps(builds.build("frontend", tags)))
        release = run.artifacts.path("release") / "release.json"
        command = ["capture", "frontend", "--metadata-file", str(metadata_file)]
        proc = subprocess.run(
            [str(digestgate_bin()), *command, "--release", str(release), "--replace"],
            env=run.base_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        return f"frontend rebuilt and re-captured with --replace: {proc.stdout.strip()}"

    sim = Simulation(
        workflow=workflow,
        work=tmp_path / "run",
        github=github,
        platform_env=PLATFORM_ENV[flavour],
        secrets=secrets,
        vars=variables,
        repository=checkout,
        dg_bin=digestgate_bin(),
        build=builds.build,
        pull=builds.pull,
        before_job={"gate": rebuild_frontend} if rebuild else {},
    )
    started = time.monotonic()
    run = Run(sim).execute()
    print(run.report())
    print(f"({time.monotonic() - started:.1f} s)")
    if flavour == "gitea" and run.jobs["gate"].result == "success":
        run.jobs.update(promote_from_release_repository(run, sim, tmp_path).jobs)
    return run, builds


def promote_from_release_repository(app: Run, sim: Simulation, tmp_path: Path) -> Run:
    """Gitea/Forgejo: a release manager starts the release repository's promote workflow
    with the values the application's gate job printed (its release.json)."""
    release = json.loads((app.artifacts.path("release") / "release.json").read_text())
    inputs = release_repository_inputs(release)
    summary = app.jobs["gate"].summary.read_text(encoding="utf-8")
    for name in NAMES:  # what the gate job showed the release manager
        assert f'"image": "{inputs[name]}"' in summary
    github = {
        **sim.github,
        "repository": "example-org/app-release",
        "workflow": "promote.yml",
        "event_name": "workflow_dispatch",
        "run_id": "9100200999",
        "run_number": "3",
    }
    variables = {
        **sim.vars,
        "SOURCE_REPOSITORY": f"{sim.github['server_url']}/{sim.github['repository']}",
    }
    release_sim = Simulation(
        workflow=GITEA_PROMOTE,
        work=tmp_path / "release-run",
        github=github,
        platform_env=sim.platform_env,
        secrets={k: v for k, v in sim.secrets.items() if k != "DIGESTGATE_BUILD_KEY"},
        vars=variables,
        repository=sim.repository,
        dg_bin=sim.dg_bin,
        build=sim.build,
        pull=sim.pull,
        inputs=inputs,
    )
    run = Run(release_sim).execute()
    print(run.report())
    promoted = run.artifacts.path("promoted")
    if promoted.exists():
        shutil.copytree(promoted, app.artifacts.path("promoted"))
    return run


def production_tags(registry: Registry, repo: str, name: str) -> list[str]:
    """Tags of the production repository (none when it does not exist)."""
    try:
        return list_tags(registry, f"{repo}/production/{name}")
    except SkopeoError as exc:
        assert "unknown" in exc.stderr.lower() or "not found" in exc.stderr.lower(), exc
        return []


def gate_artifact(run: Run) -> Path:
    """The gate job's artifact: ``gate`` (Gitea, v3) or ``gate-<attempt>`` (GitHub)."""
    found = sorted(run.artifacts.root.glob("gate*"))
    assert len(found) == 1, found
    return found[0]


def digestgate_commands(run: Run) -> dict[str, list[str]]:
    """The action commands each job ran for real, in order."""
    found: dict[str, list[str]] = {}
    for record in run.records():
        if record.how == "action":
            assert record.outcome == "success" or record.job == "gate", record.stderr
            found.setdefault(record.job, []).append(record.command)
    return found


@pytest.mark.registry
@pytest.mark.skopeo
@pytest.mark.parametrize("flavour", sorted(EXAMPLES))
def test_example_pipeline_promotes_the_validated_digests(
    flavour: str, registry: Registry, repo: str, tmp_path: Path
) -> None:
    run, _ = simulate(flavour, registry, repo, tmp_path)
    assert {name: job.result for name, job in run.jobs.items()} == {
        "build": "success",
        "fast-check": "success",
        "integration": "success",
        "e2e": "success",
        "gate": "success",
        "promote": "success",
    }, run.report()
    assert digestgate_commands(run) == {
        "build": ["capture", "capture", "attest-provenance"],
        "fast-check": ["attest-test-result", "attest-test-result"],
        "integration": ["attest-test-result"],
        "e2e": ["attest-test-result"],
        "gate": ["gate"],
        # Gitea/Forgejo: the release repository rebuilds release.json from the inputs.
        "promote": ["promote"] if flavour == "github" else ["capture", "capture", "promote"],
    }
    captured = {name: run.jobs["build"].outputs[f"{name}-digest"] for name in NAMES}
    staging = f"{registry.host}/{repo}/staging"
    assert run.jobs["build"].outputs == {
        **{f"{name}-digest": captured[name] for name in NAMES},
        **{f"{name}-repository": f"{staging}/{name}" for name in NAMES},
    }

    promote = run.jobs["promote"].step("Promote")
    assert (promote.code, promote.outputs["verdict"]) == (0, "PASSED"), promote.stderr
    promoted = json.loads((run.jobs["promote"].workspace / "promoted.json").read_text())
    assert json.loads((run.artifacts.path("promoted") / "promoted.json").read_text()) == promoted
    production = f"{registry.host}/{repo}/production"
    policy = run.jobs["promote"].workspace / ".digestgate" / "policy.yaml"
    for name in NAMES:
        image = promoted["artifacts"][name]["image"]
        assert image == f"{production}/{name}@{captured[name]}"
        # skopeo inspect --raw, hashed: the bytes production serves are the captured ones.
        assert (
            inspect_digest(registry, f"{repo}/production/{name}@{captured[name]}")
            == (captured[name])
        )
        # The ref's tag, applied after the copy, plus the referrers fallback tag of the
        # evidence promote attached (sha256-<hex>, distribution-spec 1.1).
        # The gate's VSA is attached to each child of a multi-platform image too.
        children = [p["digest"] for p in promoted["artifacts"][name].get("platforms", [])]
        fallback = [d.replace(":", "-") for d in (captured[name], *children)]
        assert production_tags(registry, repo, name) == sorted(["main", *fallback])
        assert inspect_digest(registry, f"{repo}/production/{name}:main") == captured[name]
        for digest in (captured[name], *children):  # the index, and what a node pulls
            pulled = f"{production}/{name}@{digest}"
            verified = run_cli("verify", pulled, "--policy", str(policy), "--evidence", "attached")
            assert verified.code == 0, verified.stderr

    gate = run.jobs["gate"]
    assert gate.step("Gate").outputs["verdict"] == "PASSED"
    summary = gate.summary.read_text(encoding="utf-8")
    assert "digestgate gate: PASSED" in summary
    assert "| Artifact | Digest | Requirement | Verdict | Reason |" in summary
    for name in NAMES:
        assert f"| {name} | `" in summary
    report = json.loads((gate_artifact(run) / "gate-report.json").read_text())
    assert report["verdict"] == "PASSED"
    assert {n: a["digest"] for n, a in report["artifacts"].items()} == captured


@pytest.mark.registry
@pytest.mark.skopeo
def test_example_pipeline_blocks_a_frontend_rebuilt_after_validation(
    registry: Registry, repo: str, tmp_path: Path
) -> None:
    run, _ = simulate("github", registry, repo, tmp_path, rebuild=True)
    results = {name: job.result for name, job in run.jobs.items()}
    assert results == {
        "build": "success",
        "fast-check": "success",
        "integration": "success",
        "e2e": "success",
        "gate": "failure",
        "promote": "skipped",
    }, run.report()
    validated = run.jobs["build"].outputs["frontend-digest"]
    release = json.loads((run.artifacts.path("release") / "release.json").read_text())
    rebuilt = release["artifacts"]["frontend"]["image"].rpartition("@")[2]
    assert rebuilt != validated
    commands = digestgate_commands(run)
    assert commands["gate"] == ["gate"] and "promote" not in commands  # promote never ran

    gate = run.jobs["gate"].step("Gate")
    assert (gate.code, gate.outputs["verdict"]) == (1, "FAILED"), gate.stderr
    for name in NAMES:
        assert production_tags(registry, repo, name) == []
    report = json.loads((gate_artifact(run) / "gate-report.json").read_text())
    assert report["verdict"] == "FAILED"
    frontend = report["artifacts"]["frontend"]
    assert (frontend["digest"], frontend["verdict"]) == (rebuilt, "FAILED")
    ids = {f["id"] for f in frontend["findings"]}
    assert "provenance.missing" in ids, ids
    assert ids & {"lane.missing", "lane.not-together"}, ids
    summary = run.jobs["gate"].summary.read_text(encoding="utf-8")
    assert "digestgate gate: FAILED" in summary
    assert "`provenance.missing` (frontend)" in summary


@pytest.mark.registry
@pytest.mark.skopeo
def test_example_pipeline_blocks_a_platform_no_lane_ran(
    registry: Registry, repo: str, tmp_path: Path
) -> None:
    """The backend is two-platform; its fast-check ran on linux/amd64 only (the pipeline
    that signs `platforms: all` is the passing run above)."""
    step = "          artifacts: backend\n          junit: reports/backend-junit.xml\n"
    every = "          platforms: all  # every platform of a multi-platform backend ran\n"

    def amd64_only(text: str) -> str:
        assert step + every in text
        return text.replace(step + every, step + "          platforms: linux/amd64\n")

    run, _ = simulate("github", registry, repo, tmp_path, edit=amd64_only)
    results = {name: job.result for name, job in run.jobs.items()}
    assert (results["gate"], results["promote"]) == ("failure", "skipped"), run.report()
    report = json.loads((gate_artifact(run) / "gate-report.json").read_text())
    backend = report["artifacts"]["backend"]
    assert {f["id"] for f in backend["findings"]} == {"lane.platform-missing"}
    (missing,) = backend["findings"]
    assert "fast-check" in missing["message"] and "linux/arm64" in missing["message"]
    assert report["artifacts"]["frontend"]["verdict"] == "PASSED"
    for name in NAMES:
        assert production_tags(registry, repo, name) == []


# --- the simulator is only as honest as its expressions ------------------------------------

CONTEXT: dict[str, Any] = {
    "github": {"ref": "refs/heads/main", "sha": SHA},
    "needs": {"build": {"result": "success", "outputs": {"backend-digest": "sha256:1"}}},
    "steps": {"capture": {"outputs": {"repository": "r.example/app/backend"}}},
    "vars": {},
}


def test_expressions_substitute_what_the_workflows_use() -> None:
    text = "${{ steps.capture.outputs.repository }}@${{ needs.build.outputs.backend-digest }}"
    assert substitute(text, CONTEXT) == "r.example/app/backend@sha256:1"
    promote_if = (
        "${{ needs.build.result == 'SUCCESS' &&\n"
        "(github.ref == 'refs/heads/main' || startsWith(github.ref, 'refs/tags/v')) }}"
    )
    assert condition(promote_if, CONTEXT, failed=False)
    assert not condition(promote_if, CONTEXT, failed=True)  # implicit success()
    assert condition("${{ !cancelled() }}", CONTEXT, failed=True)
    assert not condition(None, CONTEXT, failed=True)


@pytest.mark.parametrize(
    "text",
    [
        "${{ steps.capture.outputs.digest }}",  # an output nobody wrote
        "${{ needs.gate.outputs.verdict }}",  # a job that is not needed
        "${{ vars.STAGING_NAMESPACE }}",  # a variable that is not set
        "${{ toJSON(github) }}",  # a function the examples do not use
        "${{ github }}",  # an object where a string is needed
        "${{ github.ref == }}",
        "${{ github.ref + 'x' }}",
    ],
)
def test_expressions_fail_loudly_instead_of_becoming_empty(text: str) -> None:
    with pytest.raises(ExpressionError):
        substitute(text, CONTEXT)


def test_a_skipped_job_skips_every_job_after_it(tmp_path: Path) -> None:
    # What act (and GitHub, actions/runner#2205) do: `last` only needs `middle`, which
    # succeeded, yet it is skipped because `optional`, upstream of `middle`, was.
    workflow = tmp_path / "workflow.yml"
    step = [{"run": "echo ran"}]
    workflow.write_text(
        yaml.safe_dump(
            {
                "jobs": {
                    "optional": {"if": "${{ false }}", "runs-on": "x", "steps": step},
                    "middle": {"needs": "optional", "if": "${{ !cancelled() }}", "steps": step},
                    "last": {"needs": "middle", "runs-on": "x", "steps": step},
                    "guarded": {
                        "needs": "middle",
                        "if": "${{ !cancelled() && needs.middle.result == 'success' }}",
                        "steps": step,
                    },
                }
            }
        )
    )
    sim = Simulation(
        workflow=workflow,
        work=tmp_path / "run",
        github={"sha": SHA},
        platform_env={},
        secrets={},
        vars={},
        repository=tmp_path,
        dg_bin=Path("/nonexistent/digestgate"),
        build=lambda context, tags: {},
        pull=lambda image: "",
    )
    results = {name: job.result for name, job in Run(sim).execute().jobs.items()}
    assert results == {
        "optional": "skipped",
        "middle": "success",
        "last": "skipped",
        "guarded": "success",
    }


def test_conditions_refuse_text_around_an_expression() -> None:
    # A runner would read this as a non-empty string: always true.
    with pytest.raises(ExpressionError):
        condition("${{ github.ref == 'refs/heads/main' }} && true", CONTEXT, failed=False)
