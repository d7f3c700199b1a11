"""``digestgate capture NAME [SOURCE] --release FILE``: record an artifact by digest."""

from __future__ import annotations

import os
from pathlib import Path

import click

from digestgate.cli.options import registry_options
from digestgate.cli.output import console
from digestgate.oci.options import StoreOptions


@click.command("capture")
@click.argument("name")
@click.argument("source", required=False)
@click.option(
    "--release",
    "release_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Release file to create or update (release.json).",
)
@click.option(
    "--metadata-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="docker buildx --metadata-file / build-push-action `metadata` JSON, instead of SOURCE.",
)
@click.option("--image", help="With --metadata-file: which pushed name to record (default first).")
@click.option("--allow-tag", is_flag=True, help="Resolve a tag SOURCE by fetching its manifest.")
@click.option("--replace", is_flag=True, help="Replace NAME when it records another image.")
@click.option(
    "--offline",
    is_flag=True,
    help="With --metadata-file: do not ask the registry; trust the file's descriptor.",
)
@click.option("--source-repo", help="Source repository URL (default: from the CI environment).")
@click.option("--revision", help="Source commit id (default: from the CI environment).")
@click.option("--ref", help="Source ref, e.g. refs/heads/main (default: from CI).")
@click.option("--run-id", help="CI run id (default: from the CI environment).")
@registry_options
@click.pass_context
def command(
    ctx: click.Context,
    name: str,
    source: str | None,
    release_path: Path,
    metadata_file: Path | None,
    image: str | None,
    allow_tag: bool,
    replace: bool,
    offline: bool,
    source_repo: str | None,
    revision: str | None,
    ref: str | None,
    run_id: str | None,
    store_options: StoreOptions,
) -> None:
    """Record artifact NAME at SOURCE (IMAGE@sha256:... or oci:DIR@sha256:...) in the release.

    The digest is confirmed by fetching and hashing the manifest. A tag SOURCE needs
    --allow-tag (inside CI too, with a warning: the tag may have moved since the push).
    Source fields come from the flags, else the CI environment, else the existing release.
    Prints `NAME IMAGE@DIGEST`; appends NAME-digest and NAME-image to $GITHUB_OUTPUT when set.
    """
    from digestgate.capturing.capture import CaptureRequest, capture
    from digestgate.cli.ghoutput import append_outputs
    from digestgate.oci.open import Stores

    out = console(ctx)
    request = CaptureRequest(
        name=name,
        release_path=release_path,
        source_ref=source,
        metadata_file=metadata_file,
        image=image,
        allow_tag=allow_tag,
        replace=replace,
        offline=offline,
        source_flags={
            "repository": source_repo,
            "revision": revision,
            "ref": ref,
            "runId": run_id,
        },
    )
    with Stores(store_options) as stores:
        result = capture(request=request, stores=stores, environ=os.environ)
    for warning in result.warnings:
        out.warn(warning)
    if not result.changed:
        out.info(f"{name} already recorded in {release_path}; unchanged")
    out.out(f"{name} {result.location}")
    append_outputs(result.outputs)
