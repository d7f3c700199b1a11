"""``digestgate drift promoted.json``: check that promoted tags still point to their digests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from digestgate.cli.options import registry_options
from digestgate.cli.output import console


@click.command("drift")
@click.argument("promoted", type=click.Path(dir_okay=False, path_type=Path))
@registry_options
@click.pass_context
def command(ctx: click.Context, promoted: Path, store_options: Any) -> None:
    """Check every tag recorded in PROMOTED (a promoted.json written by `promote`).

    Each tag is resolved at its target and the manifest hashed. Prints one line per moved
    or missing tag (`REPOSITORY:TAG expected DIGEST now DIGEST|missing`) on stdout.
    Exit 0: no drift; 1: a tag moved; 2: not a promotion record; 3: a target unreachable.
    """
    from digestgate.errors import BlockedError, ConfigError
    from digestgate.oci.open import Stores
    from digestgate.promotion.drift import drift
    from digestgate.release import Promotion, load_release

    out = console(ctx)
    record = load_release(promoted)
    if not isinstance(record, Promotion):
        raise ConfigError(
            f"{promoted} is a {record.kind}, not a Promotion",
            hint="drift reads the promoted.json that `digestgate promote --out` writes",
        )
    with Stores(store_options) as stores:
        states = drift(promotion=record, stores=stores)
    drifted = [s for s in states if s.drifted]
    for state in drifted:
        now = str(state.now) if state.now is not None else "missing"
        out.out(f"{state.repository}:{state.tag} expected {state.expected} now {now}")
    if drifted:
        raise BlockedError(
            f"{len(drifted)} of {len(states)} promoted tag(s) drifted",
            hint="a tag was moved or deleted after the promotion; deploy by digest, or "
            "promote again",
        )
    out.info(f"no drift: {len(states)} promoted tag(s) point to their digests")
