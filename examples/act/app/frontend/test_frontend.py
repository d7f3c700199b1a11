"""Source checks of the example frontend (the fast-check lane; not part of the image)."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

HERE = Path(__file__).parent


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.scripts.append(str(values["src"]))
        if values.get("id"):
            self.ids.append(str(values["id"]))


def test_page_loads_its_script_and_has_the_greeting() -> None:
    page = _Scripts()
    page.feed((HERE / "index.html").read_text(encoding="utf-8"))
    assert page.scripts == ["app.js"]
    assert "greeting" in page.ids
    assert (HERE / "app.js").is_file()


def test_config_names_an_api_version() -> None:
    config = json.loads((HERE / "config.json").read_text(encoding="utf-8"))
    assert isinstance(config["api"], int)
    assert config["backend"].startswith("/")
