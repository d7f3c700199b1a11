"""Every shipped workflow, read by act's own parser: schema, expressions and job graph.

act cannot run the GitHub and Gitea examples here (remote actions, `services:`,
`container:`), but its parser reads them as a runner does: ``act --validate --strict``
checks every key against the Actions schema and parses every ``${{ }}`` expression, and
``act --list`` orders the jobs by ``needs`` into stages. The stages must be the ones the
simulator (actions_sim) derives, so both agree on the graph the examples describe.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.registry import require_command
from tests.integration.actions_sim import EXAMPLES, GITEA_PROMOTE, ROOT, jobs, load, needs_of

WORKFLOWS = [*EXAMPLES.values(), GITEA_PROMOTE, ROOT / "examples/act/release.yml"]


def act(*args: str) -> subprocess.CompletedProcess[str]:
    """Run act in the repository root (no jobs run: parsing only)."""
    binary = require_command("act")
    return subprocess.run(
        [binary, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def stages(workflow: dict[Any, Any]) -> dict[str, int]:
    """Stage of every job: 0 without needs, else one after its latest need."""
    all_jobs = jobs(workflow)
    found: dict[str, int] = {}

    def stage(name: str) -> int:
        if name not in found:
            needs = needs_of(all_jobs[name])
            found[name] = 1 + max(map(stage, needs)) if needs else 0
        return found[name]

    for name in all_jobs:
        stage(name)
    return found


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: str(p.relative_to(ROOT)))
def test_act_accepts_the_workflow_in_strict_mode(workflow: Path) -> None:
    result = act("--validate", "--strict", "--workflows", str(workflow))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "not valid" not in result.stdout + result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: str(p.relative_to(ROOT)))
def test_act_orders_the_jobs_as_the_needs_say(workflow: Path) -> None:
    events = "workflow_dispatch" if workflow == GITEA_PROMOTE else "push"
    result = act(events, "--list", "--workflows", str(workflow))
    assert result.returncode == 0, result.stdout + result.stderr
    listed = {}
    for line in result.stdout.splitlines()[1:]:  # after the header
        stage, job = line.split()[:2]
        listed[job] = int(stage)
    assert listed == stages(load(workflow))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("if: ${{ !cancelled() }}", "if: ${{ !cancelled( }}"),  # an expression that cannot parse
        ("    runs-on: ubuntu-latest", "    runs_on: ubuntu-latest"),  # an unknown key
    ],
)
def test_act_refuses_a_broken_copy(old: str, new: str, tmp_path: Path) -> None:
    # The check above has teeth: the same file with one mistake is refused.
    text = EXAMPLES["gitea"].read_text(encoding="utf-8")
    assert old in text
    broken = tmp_path / "release.yml"
    broken.write_text(text.replace(old, new, 1), encoding="utf-8")
    result = act("--validate", "--strict", "--workflows", str(broken))
    assert result.returncode == 1
    assert "workflow is not valid" in result.stdout + result.stderr
