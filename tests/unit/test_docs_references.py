"""Every test docs/threat-model.md names as proof exists, in the file it names."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = re.compile(r"`((?:unit|integration)/[a-z_]+\.py)((?:::[a-zA-Z0-9_\[\]*]+)?)`")
FOLLOWER = re.compile(r"`::([a-zA-Z0-9_*]+)(?:\[[^\]]*\])?`")


def test_the_threat_model_names_only_tests_that_exist() -> None:
    text = (ROOT / "docs/threat-model.md").read_text(encoding="utf-8")
    checked = 0
    for line in text.splitlines():
        current: Path | None = None
        for match in re.finditer(rf"{REFERENCE.pattern}|{FOLLOWER.pattern}", line):
            if match.group(1):
                current = ROOT / "tests" / match.group(1)
                assert current.is_file(), match.group(1)
                name = match.group(2).removeprefix("::").split("[")[0]
            else:
                assert current is not None, f"{match.group(0)} follows no test file"
                name = match.group(3)
            if name:
                pattern = re.escape(name).replace(r"\*", r"\w*")
                source = current.read_text(encoding="utf-8")
                assert re.search(rf"^def {pattern}\(", source, re.MULTILINE), (current, name)
                checked += 1
    assert checked >= 30
