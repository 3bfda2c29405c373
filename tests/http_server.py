"""A local HTTP server on 127.0.0.1 for the download tests: it serves given bytes and misbehaves on demand."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Server(ThreadingHTTPServer):
    """Serves ``files`` (path -> bytes); ``mode`` picks a misbehaviour; ``requests`` logs (path, Range)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.mode = "ok"  # ok | corrupt | die_half | ignore_range | refuse_range
        self.requests: list[tuple[str, str | None]] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _Handler(BaseHTTPRequestHandler):
    timeout = 5
    server: Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        srv = self.server
        wanted = self.headers.get("Range")
        srv.requests.append((self.path, wanted))
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        if srv.mode == "corrupt":
            body = bytes(b ^ 0xFF for b in body)
        if wanted and srv.mode == "refuse_range":
            self.send_error(416)
            return
        start = 0
        if wanted and srv.mode != "ignore_range":
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if srv.mode == "die_half":
            self.wfile.write(payload[: len(payload) // 2])
            self.close_connection = True
            return
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)
