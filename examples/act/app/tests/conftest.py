"""Stand-in runtime for the integration and E2E lanes: the images, by digest, running.

There is no container engine under act on this machine, so "running an image" means: pull
it by digest with skopeo (``BACKEND_IMAGE`` / ``FRONTEND_IMAGE``, REPO@sha256:..., from
the build job's outputs), unpack its layers, and start what it holds: the backend's
``app/server.py`` with this Python, the frontend's static files with a file server.
The tests only talk HTTP to them, as they would to service containers.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

DIGEST_REF = re.compile(r"[^@\s]+@sha256:[0-9a-f]{64}")


def pull(image: str, into: Path) -> Path:
    """Unpack ``image`` (REPO@DIGEST; this host's platform of an index) under ``into``."""
    assert DIGEST_REF.fullmatch(image), f"not an image by digest: {image!r}"
    layout = into / "layout"
    plain = image.startswith(("127.", "localhost:"))  # the local registry serves plain HTTP
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--quiet",
            f"--src-tls-verify={str(not plain).lower()}",
            f"docker://{image}",
            f"oci:{layout}:pulled",
        ],
        check=True,
        timeout=120,
    )
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads(_blob(layout, index["manifests"][0]["digest"]).read_bytes())
    rootfs = into / "rootfs"
    rootfs.mkdir()
    for entry in manifest["layers"]:
        with tarfile.open(_blob(layout, entry["digest"])) as tar:
            tar.extractall(rootfs, filter="data")
    return rootfs


def _blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.removeprefix("sha256:")


@pytest.fixture(scope="session")
def backend_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The backend image's server, started from its unpacked files."""
    rootfs = pull(os.environ["BACKEND_IMAGE"], tmp_path_factory.mktemp("backend"))
    process = subprocess.Popen(
        [sys.executable, str(rootfs / "app" / "server.py"), "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("listening on "), f"backend did not start: {line!r}"
        yield line.removeprefix("listening on ")
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def frontend_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The frontend image's static files, served over HTTP."""
    rootfs = pull(os.environ["FRONTEND_IMAGE"], tmp_path_factory.mktemp("frontend"))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(rootfs / "app"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
