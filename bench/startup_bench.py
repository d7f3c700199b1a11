"""Time the commands a deploy script runs most: ``digestgate --version`` and
``digestgate gate --help``, next to the interpreter's own start (the floor) and to
``skopeo --version`` (a peer written in Go), as separate processes.

    .venv/bin/python bench/startup_bench.py [--runs 30]

Each figure is the median and the best of ``--runs`` cold processes (the page cache is
warm after the first). Targets: ``--version`` <= 60 ms median, ``gate --help`` <= 100 ms.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def _times(argv: list[str], runs: int) -> list[float]:
    subprocess.run(argv, capture_output=True, check=True)  # warm the page cache
    out: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    digestgate = str(VENV_BIN / "digestgate")
    rows: list[tuple[str, list[str]]] = [
        ("python -c pass (floor)", [sys.executable, "-c", "pass"]),
        ("digestgate --version", [digestgate, "--version"]),
        ("digestgate gate --help", [digestgate, "gate", "--help"]),
        ("digestgate promote --help", [digestgate, "promote", "--help"]),
    ]
    skopeo = shutil.which("skopeo")
    if skopeo:
        rows.append(("skopeo --version (peer)", [skopeo, "--version"]))
    print(f"{'command':<28} {'median':>9} {'best':>9}   ({args.runs} runs each)")
    for label, argv in rows:
        times = _times(argv, args.runs)
        median, best = statistics.median(times) * 1000, min(times) * 1000
        print(f"{label:<28} {median:7.1f} ms {best:7.1f} ms")


if __name__ == "__main__":
    main()
