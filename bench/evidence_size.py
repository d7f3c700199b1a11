"""How evidence grows with the number of artifacts when one lane covers all of them.

A lane that ran the whole release together (integration, E2E) is ONE statement whose
subjects are every artifact, and the attached store puts that envelope next to each image:
N copies of an envelope that names N subjects, so N^2 bytes in all. This prints the bytes
per image and in all, for provenance (one per artifact), one joint lane result, and the
gate's VSA, from the product's own statement builders and a real Ed25519 signature.

    .venv/bin/python -m bench.evidence_size [--artifacts 10,50,100,200]
"""

from __future__ import annotations

import argparse
import json
from datetime import timedelta

from tests.unit.gatekit import lane, provenance

from digestgate.digest import Digest
from digestgate.evidence.dsse import sign_envelope
from digestgate.evidence.keys import generate_keypair, load_signer
from digestgate.evidence.model import PAYLOAD_TYPE
from digestgate.timeutil import utcnow


def sizes(count: int, signer: object) -> dict[str, int]:
    digests = {f"svc{i:03d}": Digest.of(f"image {i}".encode()) for i in range(count)}
    when = utcnow() - timedelta(hours=1)
    one_provenance = sign_envelope(
        json.dumps(provenance({"svc000": digests["svc000"]}, finished=when)).encode(),
        PAYLOAD_TYPE,
        [signer],  # type: ignore[list-item]
    )
    joint = sign_envelope(
        json.dumps(lane("e2e", digests, finished=when)).encode(),
        PAYLOAD_TYPE,
        [signer],  # type: ignore[list-item]
    )
    per_image = len(one_provenance) + len(joint)
    return {
        "provenance": len(one_provenance),
        "joint lane": len(joint),
        "per image": per_image,
        "all images": per_image * count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default="10,50,100,200")
    args = parser.parse_args()
    pair = generate_keypair()
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "k.key"
        key.write_bytes(pair.private_pem)
        signer = load_signer(str(key), {})
    print(f"{'artifacts':>9}  {'provenance':>10}  {'joint lane':>10}  {'per image':>9}  "
          f"{'all images':>10}")  # fmt: skip
    for count in (int(n) for n in args.artifacts.split(",")):
        row = sizes(count, signer)
        print(
            f"{count:>9}  {row['provenance']:>10}  {row['joint lane']:>10}  "
            f"{row['per image']:>9}  {row['all images'] / 1024:>8.0f} KiB"
        )


if __name__ == "__main__":
    main()
