"""E2E lane (stand-in for the browser suite): load the page the way a browser would."""

from __future__ import annotations

import json
import re
import urllib.request


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        text: str = response.read().decode()
        return text


def test_page_shows_the_backend_greeting(backend_url: str, frontend_url: str) -> None:
    page = fetch(f"{frontend_url}/")
    assert 'id="greeting"' in page
    script = re.search(r'<script src="([^"]+)"', page)
    assert script, "the page loads no script"
    code = fetch(f"{frontend_url}/{script.group(1)}")
    # The script asks the backend for /api/greeting; answer it as the browser would see it.
    assert "/api/greeting" in code
    greeting = json.loads(fetch(f"{backend_url}/api/greeting"))
    assert greeting["message"] == "hello from the backend"


def test_page_config_is_served(frontend_url: str) -> None:
    config = json.loads(fetch(f"{frontend_url}/config.json"))
    assert config["backend"] == "/backend"
