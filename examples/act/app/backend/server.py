"""The example backend: a small JSON API over HTTP (standard library only).

``python3 server.py [PORT]`` listens on 127.0.0.1 (port 0: any free port) and prints
``listening on http://127.0.0.1:PORT`` once it accepts connections.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_VERSION = 3


def respond(path: str) -> tuple[int, dict[str, Any]]:
    """Status and JSON body for a GET of ``path``."""
    if path == "/health":
        return 200, {"status": "ok"}
    if path == "/api/version":
        return 200, {"api": API_VERSION}
    if path == "/api/greeting":
        return 200, {"message": "hello from the backend"}
    return 404, {"error": f"no route {path}"}


class Handler(BaseHTTPRequestHandler):
    """GET only; every answer is JSON."""

    def do_GET(self) -> None:
        status, body = respond(self.path)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test lanes report through JUnit."""


def main() -> None:
    """Serve until killed."""
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
