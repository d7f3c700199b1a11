"""Run examples/act/run.py (act on this host) and read what act recorded.

act's ``--json`` log has one record a line: ``jobID`` and ``stepID`` (a step's ``id:`` or
its index; composite steps add the action's step id), ``raw_output`` lines of what a step
printed, ``command: set-output`` (``name``, ``arg``) for every step output, ``command:
summary`` (``content``) for what a step appended to ``$GITHUB_STEP_SUMMARY``, ``jobResult``
when a job ends, and, with ``--verbose``, ``Skipping job '<name>' due to '<if>'``.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fixtures.registry import require_command

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "examples/act/run.py"
DIGEST_LINE = re.compile(r"sha256:[0-9a-f]{64}")
#: One run of the pipeline; act's own install steps add most of it (measured ~2.5 min).
TIMEOUT = 900


@dataclass
class ActRun:
    """One finished act run: its exit code, work directory and JSON log records."""

    code: int
    work: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    output: str = ""

    @property
    def artifacts(self) -> Path:
        """The host directory standing in for the run's workflow artifacts."""
        return self.work / "artifacts"

    @property
    def policy(self) -> Path:
        """The policy the run's gate, promote and verify used."""
        return self.work / "config" / "policy.yaml"

    def jobs(self) -> dict[str, str]:
        """``jobID -> success|failure|skipped`` (skipped jobs only in the verbose log)."""
        return {r["jobID"]: r["jobResult"] for r in self.records if "jobResult" in r}

    def skipped(self) -> set[str]:
        """Jobs act skipped (their ``if:`` was false), from the verbose log."""
        return {
            str(r["jobID"])
            for r in self.records
            if str(r.get("msg", "")).startswith("Skipping job ")
        }

    def step_records(self, job: str, step: str) -> list[dict[str, Any]]:
        """Records of one step (by its ``id:`` or index), composite sub-steps included."""
        return [
            r
            for r in self.records
            if r.get("jobID") == job and (r.get("stepID") or [None])[0] == step
        ]

    def printed(self, job: str, step: str) -> list[str]:
        """What a step printed, line by line."""
        return [
            str(r["msg"]).rstrip("\n") for r in self.step_records(job, step) if r.get("raw_output")
        ]

    def messages(self, job: str, step: str) -> str:
        """Every message act logged for a step, ``::error::`` annotations included."""
        return "\n".join(str(r.get("msg", "")) for r in self.step_records(job, step))

    def printed_digest(self, job: str, step: str) -> str:
        """The one ``sha256:<hex>`` line a build step printed."""
        found = [line for line in self.printed(job, step) if DIGEST_LINE.fullmatch(line)]
        assert len(found) == 1, f"{job}/{step} printed {found!r}"
        return found[0]

    def outputs(self, job: str, step: str) -> dict[str, str]:
        """The step's outputs as act recorded them (last value wins)."""
        return {
            str(r["name"]): str(r["arg"])
            for r in self.step_records(job, step)
            if r.get("command") == "set-output"
        }

    def summary(self, job: str) -> str:
        """Everything the job's steps wrote to ``$GITHUB_STEP_SUMMARY`` (once per text)."""
        texts = [
            str(r["content"])
            for r in self.records
            if r.get("jobID") == job and r.get("command") == "summary"
        ]
        return "\n".join(dict.fromkeys(texts))


def act_pipeline(
    registry_host: str,
    namespace: str,
    work: Path,
    run_id: str,
    *,
    rebuild: bool = False,
    workflow: Path | None = None,
    event: str = "push",
    inputs: dict[str, str] | None = None,
    repository: str | None = None,
    production: str | None = None,
    keys_from: Path | None = None,
) -> ActRun:
    """Run a workflow under act (examples/act/run.py); return what act recorded.

    Defaults: examples/act/release.yml on push, with new keys. ``keys_from`` reuses the
    keys, policy and secrets of an earlier run's work directory.
    """
    require_command("act")
    require_command("skopeo")
    command = [
        sys.executable,
        str(RUNNER),
        "--registry", registry_host,
        "--namespace", namespace,
        "--work", str(work),
        "--run-id", run_id,
        "--event", event,
        "--verbose",
        *(["--rebuild-after-lanes"] if rebuild else []),
        *(["--workflow", str(workflow)] if workflow else []),
        *[f"--input={k}={v}" for k, v in (inputs or {}).items()],
        *(["--repository", repository] if repository else []),
        *(["--production-namespace", production] if production else []),
        *(["--keys-from", str(keys_from)] if keys_from else []),
    ]  # fmt: skip
    proc = subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT, check=False, cwd=ROOT
    )
    records = []
    log = work / "act.jsonl"
    for line in log.read_text(encoding="utf-8").splitlines() if log.exists() else []:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    run = ActRun(proc.returncode, work, records, proc.stdout + proc.stderr)
    # The run's own report, for anyone reading a failure.
    print("\n".join(run.output.splitlines()[-60:]))
    return run


GITEA_PROMOTE = ROOT / "examples/gitea/release-repository/.gitea/workflows/promote.yml"

#: What act cannot run in the Gitea/Forgejo release repository's promote workflow, and what
#: stands in for it: (pattern, replacement, how many times it must occur).
RELEASE_REPOSITORY_STAND_INS: tuple[tuple[str, str, int], ...] = (
    # act resolves no https:// action URLs (Gitea's runner does); digestgate is this checkout.
    (r"https://github\.com/digestgate/digestgate@v0\.1\.0", "./", 3),
    # checkout: act copies the working tree instead of fetching the action.
    (r"uses: https://github\.com/actions/checkout@", "uses: actions/checkout@", 1),
    # The local registry needs no login.
    (r"      - uses: https://github\.com/docker/login-action@.*\n(?:        .*\n)+", "", 1),
    # upload-artifact: a host directory (vars.ARTIFACTS), as in examples/act/release.yml.
    (
        r"      - uses: https://github\.com/actions/upload-artifact@.*\n(?:        .*\n)+",
        "      - name: Upload promoted release\n"
        "        env:\n"
        "          ARTIFACT: ${{ vars.ARTIFACTS }}/promoted\n"
        '        run: mkdir "$ARTIFACT" && cp promoted.json "$ARTIFACT/"\n',
        1,
    ),
    # The release repository's policy: the run's policy, a host path (keys made per run).
    (r"policy: \.digestgate/policy\.yaml", "policy: ${{ vars.POLICY }}", 1),
)


def _literal(text: str, _match: re.Match[str]) -> str:
    return text


def release_repository_workflow(dest: Path) -> Path:
    """The Gitea release repository's promote workflow, with act's stand-ins, at ``dest``.

    Everything else (workflow_dispatch inputs, expressions, `args`, the runner label, the
    action steps and their order) is the shipped file's; a stand-in that no longer matches
    fails here instead of silently running something else.
    """
    text = GITEA_PROMOTE.read_text(encoding="utf-8")
    for pattern, replacement, count in RELEASE_REPOSITORY_STAND_INS:
        # A function, so that the replacement's ${{ }} and $ are taken literally.
        text, found = re.subn(pattern, functools.partial(_literal, replacement), text)
        assert found == count, f"{pattern!r}: {found} matches in {GITEA_PROMOTE}, not {count}"
    assert "https://" not in "".join(re.findall(r"uses: .*", text)), text
    dest.write_text(text, encoding="utf-8")
    return dest
