"""What ``gate``, ``promote`` and ``verify`` leave for CI: report, step summary, annotations."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

from digestgate.atomicfile import write_atomic
from digestgate.cli.ghoutput import append_runner_file
from digestgate.errors import StorageError

if TYPE_CHECKING:
    from digestgate.policy.stages import Enforcement
    from digestgate.rules.decision import Decision


def write_report(path: Path | None, text: str) -> None:
    """Write the JSON report atomically, only once there is a decision to report."""
    if path is None:
        return
    try:
        write_atomic(path, text.encode())
    except OSError as exc:
        raise StorageError(
            f"cannot write report {path}: {exc.strerror or exc}",
            hint="check that the report's directory exists and is writable",
        ) from exc


def append_step_summary(
    markdown: Callable[[], str], environ: Mapping[str, str] | None = None
) -> None:
    """Append Markdown to ``$GITHUB_STEP_SUMMARY`` when the variable is set (specs 9.2);
    ``markdown`` is rendered only then."""
    env = os.environ if environ is None else environ
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    append_runner_file(Path(target), markdown(), "GITHUB_STEP_SUMMARY")


def print_annotations(lines: Iterable[str], environ: Mapping[str, str] | None = None) -> None:
    """Print workflow-command annotations on stdout when running in GitHub-style Actions."""
    env = os.environ if environ is None else environ
    if env.get("GITHUB_ACTIONS") != "true":
        return
    for line in lines:
        click.echo(line)


def publish_decision(
    decision: Decision, report_path: Path | None, enforcement: Enforcement = "enforce"
) -> None:
    """Everything a gate decision leaves behind: the JSON report (when asked for), the step
    summary and the annotations; shared by ``gate`` and ``promote`` (which always enforces).
    Under ``enforcement: warn`` each says so (:mod:`digestgate.report.enforcement`)."""
    from digestgate.report import enforcement as warn
    from digestgate.report.annotations import render_annotations
    from digestgate.report.markdown import render_markdown

    write_report(report_path, warn.render_json_report(decision, enforcement))
    if enforcement == "warn":
        append_step_summary(lambda: warn.warn_markdown(decision) + render_markdown(decision))
        print_annotations(warn.warn_annotations(decision))
        return
    append_step_summary(lambda: render_markdown(decision))
    print_annotations(render_annotations(decision))
