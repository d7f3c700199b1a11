"""Small, deterministic sample images for the demo and the benchmarks.

Builds a real OCI image (a gzipped tar layer with a few files and an image config) entirely
in memory and writes it through the :class:`~digestgate.oci.store.ImageStore` interface, so
the same code fills an OCI layout directory or a registry repository.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Mapping, Sequence

from digestgate.digest import Digest
from digestgate.jsonutil import dumps_canonical
from digestgate.oci import media
from digestgate.oci.manifest import Descriptor, Platform, build_index
from digestgate.oci.store import ImageStore

LINUX_AMD64 = Platform("amd64", "linux")
LINUX_ARM64 = Platform("arm64", "linux")


def _layer(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(files[name]))
    return gzip.compress(buffer.getvalue(), mtime=0)


def _put(store: ImageStore, media_type: str, data: bytes) -> Descriptor:
    descriptor = Descriptor(media_type, Digest.of(data), len(data))
    if not store.has_blob(descriptor.digest):
        store.put_blob(descriptor, [data])
    return descriptor


def sample_image(
    store: ImageStore,
    files: Mapping[str, bytes],
    *,
    platform: Platform = LINUX_AMD64,
    labels: Mapping[str, str] | None = None,
    tag: str | None = None,
) -> Descriptor:
    """Write a one-layer image holding ``files``; return the manifest's descriptor."""
    layer = _layer(files)
    diff_id = Digest.of(gzip.decompress(layer))
    config = {
        "architecture": platform.architecture,
        "os": platform.os,
        "config": {"Labels": dict(labels or {}), "Cmd": ["/bin/app"]},
        "rootfs": {"type": "layers", "diff_ids": [str(diff_id)]},
    }
    config_desc = _put(store, media.OCI_CONFIG, dumps_canonical(config))
    layer_desc = _put(store, media.OCI_LAYER_TAR_GZIP, layer)
    manifest = dumps_canonical(
        {
            "schemaVersion": 2,
            "mediaType": media.OCI_MANIFEST,
            "config": config_desc.to_json(),
            "layers": [layer_desc.to_json()],
        }
    )
    return store.put_manifest(manifest, media.OCI_MANIFEST, tag=tag)


def sample_index(
    store: ImageStore,
    files: Mapping[str, bytes],
    *,
    platforms: Sequence[Platform] = (LINUX_AMD64, LINUX_ARM64),
    tag: str | None = None,
) -> Descriptor:
    """Write a multi-platform image (one child per platform); return the index's descriptor."""
    children = []
    for platform in platforms:
        child = sample_image(
            store, {**files, "platform": str(platform).encode()}, platform=platform
        )
        children.append(Descriptor(child.media_type, child.digest, child.size, platform=platform))
    return store.put_manifest(build_index(children), media.OCI_INDEX, tag=tag)
