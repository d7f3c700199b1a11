"""``digestgate gate``: decide whether a release may be promoted, and record the decision."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from digestgate.cli.options import evidence_option, policy_option, registry_options, release_option
from digestgate.cli.output import console
from digestgate.oci.options import StoreOptions


@click.command("gate")
@release_option("release.json (or a promoted.json) to evaluate.")
@policy_option("policy.yaml: keys, sources, lanes, freshness.")
@evidence_option(
    "Evidence store: dir:PATH or attached (repeatable; reads merge all stores; "
    "VSAs are written to the first)."
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the JSON report here.",
)
@click.option(
    "--vsa-key",
    metavar="KEYREF",
    help="Sign a VSA per artifact with this key (file:PATH, PATH, env:VAR or a signer URI).",
)
@click.option("--offline", is_flag=True, help="Do not confirm the images in their registry.")
@click.option(
    "--width",
    type=click.IntRange(40, 1000),
    default=100,
    show_default=True,
    help="Width of the verdict table.",
)
@registry_options
@click.pass_context
def command(
    ctx: click.Context,
    release_path: Path,
    policy_path: Path,
    evidence_specs: tuple[str, ...],
    report_path: Path | None,
    vsa_key: str | None,
    offline: bool,
    width: int,
    store_options: StoreOptions,
) -> int:
    """Evaluate every requirement for every artifact of the release.

    Prints a verdict table (stderr) and a one-line verdict (stdout); writes --report,
    a Markdown summary to $GITHUB_STEP_SUMMARY and annotations under GitHub Actions.
    Unless --offline, each digest is fetched where the release says and its bytes hashed.
    Exit 0 passed, 1 blocked, 2 bad input, 3 could not decide. Under a policy with
    enforcement: warn, a blocked release is reported loudly and exits 0; its VSAs say FAILED.
    """
    from digestgate.cli.gatesummary import publish_decision
    from digestgate.cli.options import check_output_file
    from digestgate.evidence.store.open import open_evidence_store
    from digestgate.gating.gate import gate
    from digestgate.oci.open import Stores
    from digestgate.policy import load_policy
    from digestgate.release import load_release
    from digestgate.report.table import render_table, verdict_line
    from digestgate.timeutil import utcnow

    check_output_file(report_path, "--report")
    out = console(ctx)
    policy = load_policy(policy_path)
    release = load_release(release_path)
    signer: Any = None
    if vsa_key:
        from digestgate.evidence.keys import load_signer

        signer = load_signer(vsa_key, os.environ)
    with Stores(store_options) as stores:
        evidence_stores = [open_evidence_store(spec, stores) for spec in evidence_specs]
        result = gate(
            policy=policy,
            release=release,
            evidence_stores=evidence_stores,
            now=utcnow(),
            images=None if offline else stores,
            vsa_signer=signer,
            vsa_store=evidence_stores[0],
            policy_uri=str(policy_path),
        )
    if signer is not None:
        out.detail(f"signed {len(result.written)} VSA(s) into {evidence_specs[0]}")
    decision = result.decision
    warn = result.enforcement == "warn"
    if not out.quiet:
        click.echo(render_table(decision, width=width, color=out.color), err=True, nl=False)
    if warn:  # even under --quiet: a gate that does not enforce must never look like a pass
        from digestgate.report.enforcement import warn_banner, warn_verdict_suffix

        click.echo(warn_banner(decision), err=True)
    publish_decision(decision, report_path, result.enforcement)
    out.out(verdict_line(decision) + (warn_verdict_suffix() if warn else ""))
    return 0 if decision.passed or warn else 1
