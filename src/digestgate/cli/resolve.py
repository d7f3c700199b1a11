"""``digestgate resolve REF``: print ``NAME@sha256:...`` computed from the manifest bytes."""

from __future__ import annotations

import click

from digestgate.cli.options import registry_options
from digestgate.cli.output import console
from digestgate.oci.open import Stores
from digestgate.oci.options import StoreOptions
from digestgate.reference import parse_location


@click.command("resolve")
@click.argument("ref")
@registry_options
@click.pass_context
def command(ctx: click.Context, ref: str, store_options: StoreOptions) -> None:
    """Fetch REF's manifest, hash its exact bytes and print NAME@DIGEST.

    REF is HOST[:PORT]/REPO[:TAG][@DIGEST] or oci:DIR[:TAG][@DIGEST]. With a digest, the
    manifest is fetched by digest and must hash to it.
    """
    location = parse_location(ref)
    reference = location.digest or location.tag or "latest"
    with Stores(store_options) as stores:
        descriptor = stores.open(location).resolve(reference)
    console(ctx).detail(f"{descriptor.media_type}, {descriptor.size} bytes")
    console(ctx).out(f"{location.name}@{descriptor.digest}")
