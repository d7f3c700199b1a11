"""Run examples/act/run.py (act on this host) and read what act recorded.

act's ``--json`` log has one record a line: ``jobID`` and ``stepID`` (a step's ``id:`` or
its index; composite steps add the action's step id), ``raw_output`` lines of what a step
printed, ``command: set-output`` (``name``, ``arg``) for every step output, ``command:
summary`` (``content``) for what a step appended to ``$GITHUB_STEP_SUMMARY``, ``jobResult``
when a job ends, and, with ``--verbose``, ``Skipping job '<name>' due to '<if>'``.
"""

from __future__ import annotations

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
    registry_host: str, namespace: str, work: Path, run_id: str, *, rebuild: bool = False
) -> ActRun:
    """Run the act pipeline against ``registry_host``; return what it recorded."""
    require_command("act")
    require_command("skopeo")
    command = [
        sys.executable,
        str(RUNNER),
        "--registry", registry_host,
        "--namespace", namespace,
        "--work", str(work),
        "--run-id", run_id,
        "--verbose",
        *(["--rebuild-after-lanes"] if rebuild else []),
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
