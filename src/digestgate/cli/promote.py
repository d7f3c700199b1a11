"""``digestgate promote``: run the gate, then copy the release by digest, carry, tag, record."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from digestgate.cli.options import evidence_option, policy_option, registry_options, release_option
from digestgate.cli.output import Console, console
from digestgate.errors import DigestgateError
from digestgate.oci.options import StoreOptions

if TYPE_CHECKING:
    from digestgate.gating.gate import GateResult
    from digestgate.promotion.promote import PromotionResult
    from digestgate.release import Promotion


@click.command("promote")
@release_option("release.json (or a promoted.json) to promote.")
@policy_option("policy.yaml the gate evaluates the release under.")
@evidence_option("Evidence store: dir:PATH or attached (repeatable; reads merge all stores).")
@click.option(
    "--to",
    "target",
    required=True,
    metavar="TARGET",
    help="Registry namespace HOST[:PORT]/NS or oci:DIR; each artifact goes to TARGET/NAME.",
)
@click.option(
    "--vsa-key",
    required=True,
    metavar="KEYREF",
    help="Key that signs the gate's VSAs and the promotion records "
    "(file:PATH, PATH, env:VAR or a signer URI).",
)
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Tag to apply (repeatable).")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the promoted release (promoted.json) here. While tags move, FILE.tagplan "
    "keeps their previous digests, so a re-run after a failure records them.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the gate's JSON report here (as `digestgate gate --report`).",
)
@click.option("--dry-run", is_flag=True, help="Gate, then print the plan; change nothing.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Transfers in flight (artifacts, and blobs within each).",
)
@registry_options
@click.pass_context
def command(
    ctx: click.Context,
    release_path: Path,
    policy_path: Path,
    evidence_specs: tuple[str, ...],
    target: str,
    vsa_key: str,
    tags: tuple[str, ...],
    out_path: Path | None,
    report_path: Path | None,
    dry_run: bool,
    concurrency: int,
    store_options: StoreOptions,
) -> None:
    """Gate the release (always), then promote it to TARGET by digest.

    Every artifact is copied to TARGET/NAME and its digest verified; the verified evidence
    and the gate's VSA are attached to it with a signed promotion record; only then are the
    tags applied. Prints `NAME IMAGE@DIGEST` per artifact on stdout.
    Exit 0 promoted, 1 blocked, 2 bad input, 3 copy or registry failure.
    """
    from digestgate.cli.gatesummary import publish_decision
    from digestgate.cli.options import check_output_file
    from digestgate.cli.progress import StderrProgress
    from digestgate.evidence.keys import load_signer
    from digestgate.evidence.store.open import open_evidence_store
    from digestgate.oci.open import Stores
    from digestgate.policy import load_policy
    from digestgate.promotion.promote import check_target, promote
    from digestgate.promotion.tagplan import TagPlan, plan_path
    from digestgate.promotion.tags import validate_promotion_tag
    from digestgate.release import load_release, save_release
    from digestgate.report.table import render_table
    from digestgate.timeutil import utcnow

    out = console(ctx)
    for tag in tags:  # early, before the gate runs; promote() checks them again
        validate_promotion_tag(tag)
    check_target(target)  # a bad --to is a usage error before any work
    check_output_file(out_path, "--out")
    check_output_file(report_path, "--report")
    policy = load_policy(policy_path)
    release = load_release(release_path)
    # Left behind by a run whose tagging failed, or the record of an earlier successful
    # run: they know what the tags held before this promotion moved them.
    tag_plan = None
    if out_path is not None and not dry_run:
        tag_plan = TagPlan.load(plan_path(out_path), record=existing_record(out_path))
    signer = load_signer(vsa_key, os.environ)
    progress = StderrProgress(label="promoting") if _show_progress(out) else None

    def show_gate(gate: GateResult) -> None:
        publish_decision(gate.decision, report_path)
        if not out.quiet:
            click.echo(render_table(gate.decision, color=out.color), err=True, nl=False)

    with Stores(store_options) as stores:
        evidence_stores = [open_evidence_store(spec, stores) for spec in evidence_specs]
        result = promote(
            release=release,
            policy=policy,
            evidence_stores=evidence_stores,
            target=target,
            tags=tags,
            stores=stores,
            signer=signer,
            now=utcnow(),
            dry_run=dry_run,
            concurrency=concurrency,
            progress=progress,
            info=out.info,
            policy_uri=str(policy_path),
            tag_plan=tag_plan,
            on_gate=show_gate,
        )
    if dry_run:
        for line in render_plan(result):
            out.out(line)
        return
    assert result.promotion is not None
    if out_path is not None:
        save_release(out_path, result.promotion)
        if tag_plan is not None:
            tag_plan.remove()
        out.info(f"wrote {out_path}")
    for name, artifact in sorted(result.promotion.artifacts.items()):
        out.out(f"{name} {artifact.image_text}")


def existing_record(out: Path) -> Promotion | None:
    """The promotion record ``--out`` would overwrite; anything else there is refused."""
    from digestgate.errors import UsageError
    from digestgate.release import Promotion, load_release

    if not out.exists():
        return None
    try:
        record = load_release(out)
    except DigestgateError as exc:
        raise UsageError(
            f"--out {out} exists and is not a promotion record ({exc.message})",
            hint="choose another --out file; digestgate does not overwrite other files",
        ) from None
    if not isinstance(record, Promotion):
        raise UsageError(
            f"--out {out} is a {record.kind}, not a promotion record",
            hint="choose another --out file; digestgate does not overwrite other files",
        )
    return record


def _show_progress(out: Console) -> bool:
    return not out.quiet and sys.stderr.isatty()


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def render_plan(result: PromotionResult) -> list[str]:
    """The dry-run plan, one artifact after another (stdout)."""
    lines: list[str] = []
    for plan in result.plans:
        copy = plan.copy
        lines.append(f"{plan.name}: {plan.source} -> {plan.target}")
        lines.append(
            f"  manifests: {len(copy.manifests_to_put)} to put, "
            f"{len(copy.manifests_present)} already present"
        )
        verb = "to mount (same registry)" if copy.mount_possible else "to copy"
        present = sum(b.size for b in copy.blobs_present)
        lines.append(
            f"  blobs: {len(copy.blobs_to_copy)} {verb} ({_size(copy.bytes_to_copy)}), "
            f"{len(copy.blobs_present)} already present ({_size(present)})"
        )
        for change in plan.tags:
            was = f" (now {change.current})" if change.current is not None else ""
            lines.append(f"  tag {change.tag}: {change.action}{was}")
    return lines
