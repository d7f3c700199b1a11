"""Stand-in for docker/build-push-action under act: build an image without a Docker engine.

Packs the files of a build context into one layer (a reproducible gzipped tar: sorted
names, mtime 0, fixed owners), writes an OCI image layout with one image per platform
(an index above them when there are several), pushes it with ``skopeo copy --all
--preserve-digests`` and writes the metadata build-push-action outputs (``docker buildx
build --metadata-file``: ``containerimage.digest`` and ``image.name``), which is what
``digestgate capture --metadata-file`` reads. The same context, platforms and labels always
give the same digest, so ``--no-push`` prints the digest a build will have.

Usage: build_image.py CONTEXT --tag HOST/REPO:TAG [--platform OS/ARCH ...]
                      [--label KEY=VALUE ...] [--metadata-file FILE] [--no-push]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
LOOPBACK = ("127.", "localhost:", "[::1]:")


class Layout:
    """An OCI image layout being written: blobs by digest, one tagged entry in index.json."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')

    def blob(self, media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
        """Store ``data``; return its descriptor."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        (self.root / "blobs" / "sha256" / digest[7:]).write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data), **extra}

    def tag(self, descriptor: dict[str, Any], name: str) -> None:
        """List ``descriptor`` in index.json under ``name`` (what ``oci:DIR:NAME`` selects)."""
        entry = {**descriptor, "annotations": {REF_NAME: name}}
        (self.root / "index.json").write_text(
            json.dumps({"schemaVersion": 2, "manifests": [entry]}, indent=2)
        )


def layer(context: Path) -> tuple[bytes, str]:
    """The context's files under ``app/`` as a gzipped tar, and the tar's digest (diff id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in context.rglob("*") if p.is_file()):
            if "__pycache__" in path.parts or path.name.startswith("test_"):
                continue
            data = path.read_bytes()
            info = tarfile.TarInfo("app/" + path.relative_to(context).as_posix())
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), "sha256:" + hashlib.sha256(tar_bytes).hexdigest()


def build(
    context: Path, platforms: Sequence[str], labels: dict[str, str], out: Path
) -> dict[str, Any]:
    """Write the image into layout ``out`` (tag ``build``); return its top descriptor."""
    layout = Layout(out)
    gz, diff_id = layer(context)
    layer_desc = layout.blob(OCI_LAYER, gz)
    images = []
    for platform in platforms:
        os_name, _, arch = platform.partition("/")
        config = {
            "created": "1970-01-01T00:00:00Z",
            "architecture": arch,
            "os": os_name,
            "config": {"Labels": labels, "Cmd": ["python3", "/app/server.py"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": layout.blob(OCI_CONFIG, json.dumps(config, sort_keys=True).encode()),
            "layers": [layer_desc],
        }
        data = json.dumps(manifest, indent=2).encode()
        images.append(
            layout.blob(OCI_MANIFEST, data, platform={"architecture": arch, "os": os_name})
        )
    if len(images) == 1:
        top = {k: v for k, v in images[0].items() if k != "platform"}
    else:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": images}
        top = layout.blob(OCI_INDEX, json.dumps(index, indent=2).encode())
    layout.tag(top, "build")
    return top


def push(layout: Path, tag: str, digest: str) -> None:
    """``skopeo copy --all --preserve-digests`` to ``tag``; the pushed digest must match."""
    plain = tag.startswith(LOOPBACK)  # a local registry serves plain HTTP
    with tempfile.TemporaryDirectory() as tmp:
        digestfile = Path(tmp) / "digest"
        subprocess.run(
            [
                "skopeo",
                "copy",
                "--quiet",
                "--all",
                "--preserve-digests",
                f"--digestfile={digestfile}",
                f"--dest-tls-verify={str(not plain).lower()}",
                f"oci:{layout}:build",
                f"docker://{tag}",
            ],
            check=True,
            timeout=300,
        )
        pushed = digestfile.read_text().strip()
    if pushed != digest:
        raise SystemExit(f"build_image: skopeo pushed {pushed}, the layout holds {digest}")


def main(argv: Sequence[str] | None = None) -> int:
    """Build, push and write the metadata; print the digest."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("context", type=Path)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--platform", action="append", default=[])
    parser.add_argument("--label", action="append", default=[])
    parser.add_argument("--metadata-file", type=Path)
    parser.add_argument("--no-push", action="store_true")
    args = parser.parse_args(argv)
    labels = dict(item.partition("=")[::2] for item in args.label)
    with tempfile.TemporaryDirectory() as tmp:
        top = build(args.context, args.platform or ["linux/amd64"], labels, Path(tmp))
        if not args.no_push:
            push(Path(tmp), args.tag, top["digest"])
    if args.metadata_file is not None:
        metadata = {
            "containerimage.descriptor": top,
            "containerimage.digest": top["digest"],
            "image.name": args.tag,
        }
        args.metadata_file.parent.mkdir(parents=True, exist_ok=True)
        args.metadata_file.write_text(json.dumps(metadata, indent=2) + "\n")
    print(top["digest"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
