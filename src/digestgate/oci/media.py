"""Media types (OCI image-spec 1.1 media-types.md; Docker manifest v2 schema 2)."""

from typing import Final

OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"

OCI_CONFIG: Final = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR_GZIP: Final = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR: Final = "application/vnd.oci.image.layer.v1.tar"
OCI_EMPTY: Final = "application/vnd.oci.empty.v1+json"

#: ``{}``: the OCI empty descriptor's content, size 2 (image-spec manifest.md "Guidance for an
#: Empty Descriptor").
EMPTY_JSON: Final = b"{}"
EMPTY_DIGEST: Final = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

DSSE_ENVELOPE: Final = "application/vnd.dsse.envelope.v1+json"
#: A Sigstore bundle v0.3 stored as an OCI artifact: the referrer's ``artifactType`` and its
#: one layer's media type (as ``gh attestation`` / ``actions/attest`` and cosign v3 push it).
SIGSTORE_BUNDLE: Final = "application/vnd.dev.sigstore.bundle.v0.3+json"

IMAGE_MANIFESTS: Final = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
IMAGE_INDEXES: Final = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFESTS: Final = IMAGE_MANIFESTS | IMAGE_INDEXES

#: Sent on every manifest GET/HEAD: all four, so the registry never converts (specs 5.2).
MANIFEST_ACCEPT: Final = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST])


def evidence_artifact_type(predicate: str) -> str:
    """``application/vnd.in-toto.<predicate>+dsse`` (in-toto envelope.md storage type)."""
    return f"application/vnd.in-toto.{predicate}+dsse"
