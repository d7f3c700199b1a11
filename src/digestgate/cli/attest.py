"""``digestgate attest provenance|test-result``: sign evidence for a release's digests."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from digestgate.cli.options import evidence_option, registry_options, release_option
from digestgate.cli.output import Console, console
from digestgate.evidence.store.base import EvidenceStore
from digestgate.oci.options import StoreOptions

F = TypeVar("F", bound=Callable[..., Any])

_release = release_option("The release file written by `digestgate capture`.")
_key = click.option(
    "--key",
    "keyref",
    required=True,
    help="Signing key: file:PATH, a path, env:VAR (PEM in a variable) or a signer URI.",
)
_evidence = evidence_option("Where to write: dir:PATH or attached (repeatable; written to each).")
_artifact = click.option(
    "--artifact",
    "artifacts",
    multiple=True,
    metavar="NAME",
    help="Artifact(s) covered (repeatable; default: every artifact of the release).",
)
_run_id = click.option("--run-id", help="CI run id (default: CI, then release).")


def _source(func: F) -> F:
    """The build-context options shared by the attest commands."""
    for option in (
        _run_id,
        click.option("--ref", help="Source ref, e.g. refs/heads/main (default: CI, then release)."),
        click.option("--revision", help="Source commit id (default: CI, then release)."),
        click.option("--source-repo", help="Source repository URL (default: CI, then release)."),
    ):
        func = option(func)
    return func


@click.group("attest")
def command() -> None:
    """Sign provenance or a lane result bound to the release's digests."""


def _report(out: Console, results: Sequence[object], stores: Sequence[EvidenceStore]) -> None:
    from digestgate.attesting.attest import Attestation
    from digestgate.evidence.store.attached import AttachedStore

    for store in stores:
        if isinstance(store, AttachedStore) and store.modes:  # Referrers API or tag schema
            out.info(f"evidence store: {store.describe()}")
    for item in results:
        assert isinstance(item, Attestation)
        out.out(f"{item.predicate} {','.join(item.subjects)} {item.envelope_digest}")
        for place in item.written:
            out.detail(f"  written to {place}")


@command.command("provenance")
@_release
@_key
@_evidence
@_artifact
@_source
@click.option("--event", "event_name", help="Triggering event, e.g. push (default: from CI).")
@click.option("--workflow", "workflow_path", help="Workflow file path (default: from CI).")
@click.option("--builder-id", help="builder.id URI (default: the CI workflow identity).")
@click.option(
    "--started-on",
    type=click.DateTime(["%Y-%m-%dT%H:%M:%SZ"]),
    help="Build start time, UTC (YYYY-MM-DDTHH:MM:SSZ).",
)
@registry_options
@click.pass_context
def provenance(
    ctx: click.Context,
    release_path: Path,
    keyref: str,
    evidence_specs: tuple[str, ...],
    artifacts: tuple[str, ...],
    source_repo: str | None,
    revision: str | None,
    ref: str | None,
    run_id: str | None,
    event_name: str | None,
    workflow_path: str | None,
    builder_id: str | None,
    started_on: datetime | None,
    store_options: StoreOptions,
) -> None:
    """Sign SLSA provenance (one statement per artifact) from the CI environment or flags."""
    from datetime import UTC

    from digestgate.attesting.attest import (
        SourceFlags,
        attest_provenance,
        build_context,
        load_release_for_attest,
        select_subjects,
    )
    from digestgate.evidence.keys import load_signer
    from digestgate.evidence.store.open import open_evidence_store
    from digestgate.oci.open import Stores
    from digestgate.timeutil import utcnow

    release = load_release_for_attest(release_path)
    subjects = select_subjects(release, artifacts)
    flags = SourceFlags(
        source_repo, revision, ref, run_id, event_name, workflow_path, builder_id, None
    )
    context = build_context(release, flags, os.environ)
    signer = load_signer(keyref, os.environ)
    with Stores(store_options) as stores:
        targets = [open_evidence_store(spec, stores) for spec in evidence_specs]
        results = attest_provenance(
            release=release,
            subjects=subjects,
            context=context,
            signer=signer,
            stores=targets,
            started_on=started_on.replace(tzinfo=UTC) if started_on else None,
            now=utcnow(),
        )
    _report(console(ctx), results, targets)


@command.command("test-result")
@_release
@click.option("--lane", required=True, help="Lane name, e.g. fast-check, integration, e2e.")
@_artifact
@click.option(
    "--junit",
    "junit",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="JUnit XML report(s); the result is PASSED only if tests ran and none failed.",
)
@click.option(
    "--result",
    type=click.Choice(["PASSED", "WARNED", "FAILED"]),
    help="The lane result, when there is no JUnit report.",
)
@click.option("--url", help="Link to the lane's run (default: the CI run URL).")
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    metavar="OS/ARCH[/VARIANT]|all",
    help="Platform(s) of a multi-platform image the lane ran (repeatable; 'all': every one). "
    "Without it, the result names only the index and counts for no platform.",
)
@_key
@_evidence
@_run_id
@registry_options
@click.pass_context
def test_result(
    ctx: click.Context,
    release_path: Path,
    lane: str,
    artifacts: tuple[str, ...],
    junit: tuple[Path, ...],
    result: str | None,
    url: str | None,
    platforms: tuple[str, ...],
    keyref: str,
    evidence_specs: tuple[str, ...],
    run_id: str | None,
    store_options: StoreOptions,
) -> None:
    """Sign ONE lane result covering the named artifacts (default: all of the release)."""
    from digestgate.attesting.attest import (
        SourceFlags,
        attest_test_result,
        build_context,
        load_release_for_attest,
        read_lane_outcome,
        select_subjects,
    )
    from digestgate.attesting.platforms import platform_subjects
    from digestgate.evidence.keys import load_signer
    from digestgate.evidence.store.open import open_evidence_store
    from digestgate.oci.open import Stores
    from digestgate.timeutil import utcnow

    release = load_release_for_attest(release_path)
    subjects = select_subjects(release, artifacts)
    platform_subjects(release, subjects, platforms)  # refused before any key is read
    report = read_lane_outcome(junit, result)
    context = build_context(release, SourceFlags(run_id=run_id), os.environ)
    signer = load_signer(keyref, os.environ)
    with Stores(store_options) as stores:
        targets = [open_evidence_store(spec, stores) for spec in evidence_specs]
        item = attest_test_result(
            release=release,
            subjects=subjects,
            context=context,
            lane=lane,
            report=report,
            url=url,
            signer=signer,
            stores=targets,
            now=utcnow(),
            platforms=platforms,
        )
    out = console(ctx)
    _report(out, [item], targets)
    counts = report.counts
    detail = f" ({counts.tests} tests, {counts.failures + counts.errors} failed)" if counts else ""
    out.info(f"lane {lane}: {report.result}{detail}")
