"""What ``gate`` and ``verify`` leave for CI: report file, step summary, annotations."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import click

from digestgate.atomicfile import write_atomic
from digestgate.errors import StorageError


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


def append_step_summary(markdown: str, environ: Mapping[str, str] | None = None) -> None:
    """Append Markdown to ``$GITHUB_STEP_SUMMARY`` when the variable is set (specs 9.2)."""
    env = os.environ if environ is None else environ
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    try:
        with Path(target).open("a", encoding="utf-8") as handle:
            handle.write(markdown)
    except OSError as exc:
        raise StorageError(
            f"cannot append to GITHUB_STEP_SUMMARY ({target}): {exc.strerror or exc}",
            hint="the runner sets this file; unset the variable outside CI",
        ) from exc


def print_annotations(lines: Iterable[str], environ: Mapping[str, str] | None = None) -> None:
    """Print workflow-command annotations on stdout when running in GitHub-style Actions."""
    env = os.environ if environ is None else environ
    if env.get("GITHUB_ACTIONS") != "true":
        return
    for line in lines:
        click.echo(line)
