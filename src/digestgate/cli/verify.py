"""``digestgate verify IMAGE@DIGEST``: the deploy-side check of a gate VSA."""

from __future__ import annotations

from pathlib import Path

import click

from digestgate.cli.options import evidence_option, policy_option, registry_options
from digestgate.cli.output import console
from digestgate.oci.open import StoreOptions


@click.command("verify")
@click.argument("image")
@policy_option("The policy.yaml this deployment pins (its digest must match the VSA's).")
@evidence_option("Evidence store: dir:PATH or attached (repeatable).")
@registry_options
@click.pass_context
def command(
    ctx: click.Context,
    image: str,
    policy_path: Path,
    evidence_specs: tuple[str, ...],
    store_options: StoreOptions,
) -> int:
    """Pass only with a PASSED VSA for IMAGE's digest, signed by a gate.signers key,
    issued under exactly this policy and younger than gate.maxAge. A tag is refused.
    Exit 0 passed, 1 failed, 2 bad input, 3 could not read the evidence.
    """
    from digestgate.cli.gatesummary import print_annotations
    from digestgate.decide import collect_evidence, envelope_verifier, load_trusted_keys
    from digestgate.errors import UsageError
    from digestgate.evidence.store.base import SubjectLocation
    from digestgate.evidence.store.open import open_evidence_store
    from digestgate.gate.verify import gate_rule, verify_digest
    from digestgate.oci.open import Stores
    from digestgate.policy import load_policy
    from digestgate.reference import ARTIFACT_NAME_RE, parse_location
    from digestgate.report.annotations import annotation
    from digestgate.report.table import render_verify, verify_line
    from digestgate.timeutil import utcnow

    out = console(ctx)
    location = parse_location(image)
    if location.digest is None:
        raise UsageError(
            f"{image[:200]} is not pinned by digest",
            hint="verify IMAGE@sha256:<digest>; `digestgate resolve` prints it (a tag can move)",
        )
    policy, trusted = load_trusted_keys(load_policy(policy_path))
    gate_rule(policy)
    last = location.name.rsplit("/", 1)[-1]
    name = last if ARTIFACT_NAME_RE.fullmatch(last) else "image"
    with Stores(store_options) as stores:
        evidence_stores = [open_evidence_store(spec, stores) for spec in evidence_specs]
        evidence, problems = collect_evidence(
            evidence_stores, [SubjectLocation(name, location)], envelope_verifier(trusted)
        )
    decision = verify_digest(policy, location.digest, evidence, problems, utcnow())
    if not out.quiet:
        click.echo(render_verify(decision, color=out.color), err=True, nl=False)
    print_annotations(annotation(f, command="verify") for f in decision.findings)
    out.out(verify_line(decision))
    return 0 if decision.passed else 1
