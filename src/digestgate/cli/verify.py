"""``digestgate verify IMAGE@DIGEST``: the deploy-side check of a gate VSA."""

from __future__ import annotations

from pathlib import Path

import click

from digestgate.cli.options import evidence_option, policy_option, registry_options
from digestgate.cli.output import console
from digestgate.oci.options import StoreOptions


@click.command("verify")
@click.argument("image")
@policy_option("The policy.yaml this deployment trusts: its gate keys, gate.maxAge and deny.")
@evidence_option("Evidence store: dir:PATH or attached (repeatable).")
@click.option(
    "--policy-digest",
    "pins",
    multiple=True,
    metavar="DIGEST",
    help="Accept only VSAs issued under this policy digest (repeatable, for a rotation). "
    "The --policy file's own digest must be one of them. Default: the --policy file's digest.",
)
@click.option(
    "--deny",
    "deny",
    multiple=True,
    metavar="DIGEST",
    help="An image digest that never passes here (repeatable; added to the policy's deny).",
)
@registry_options
@click.pass_context
def command(
    ctx: click.Context,
    image: str,
    policy_path: Path,
    evidence_specs: tuple[str, ...],
    pins: tuple[str, ...],
    deny: tuple[str, ...],
    store_options: StoreOptions,
) -> int:
    """Pass only with a PASSED VSA for IMAGE's digest, signed by a gate.signers key,
    issued under a pinned policy digest and younger than gate.maxAge. A tag is refused,
    and so is an image from a repository the policy does not name.
    Exit 0 passed, 1 failed, 2 bad input, 3 could not read the evidence.
    """
    from digestgate.cli.gatesummary import print_annotations
    from digestgate.digest import Digest
    from digestgate.evidence.store.open import open_evidence_store
    from digestgate.gating.verify import accepted_digests, pinned_location, verify
    from digestgate.oci.open import Stores
    from digestgate.policy import load_policy
    from digestgate.report.annotations import annotation
    from digestgate.report.table import render_verify, verify_line
    from digestgate.timeutil import utcnow

    out = console(ctx)
    location = pinned_location(image)
    denied = frozenset(Digest.parse(d.strip()) for d in deny)
    policy = load_policy(policy_path)
    accepted = accepted_digests(policy, pins)
    with Stores(store_options) as stores:
        evidence_stores = [open_evidence_store(spec, stores) for spec in evidence_specs]
        decision = verify(
            image=location,
            policy=policy,
            evidence_stores=evidence_stores,
            now=utcnow(),
            accepted=accepted,
            deny=denied,
        )
    if not out.quiet:
        click.echo(render_verify(decision, color=out.color), err=True, nl=False)
    print_annotations(annotation(f, command="verify") for f in decision.findings)
    out.out(verify_line(decision))
    return 0 if decision.passed else 1
