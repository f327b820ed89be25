"""Shared helpers for the backend tests (no tests here; imported by tests/test_backend_*.py).

* `BackendThread`: the real FastAPI app served by uvicorn on a free loopback port, in a thread of
  the test process, so tests can reach `app.state.backend` (job runner, fetcher counters).
* `FileServer`: a stdlib HTTP server on loopback serving given bytes under `/data/upload/...` and
  requiring `Authorization: Token <t>` like Label Studio does. It stands in for Label Studio's file
  serving only in the protocol suite, so that suite runs without the 25 s Label Studio start; the
  same download paths run against a real Label Studio in test_backend_labelstudio.py.
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
import uvicorn

from backend.api.app import create_app
from backend.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TASVEER_SHARED") or REPO.parent / "shared")
SCENES = SHARED / "data" / "intel-scenes" / "train"
PROTOCOL = SHARED / "protocol" / "label-studio-1.23.2-requests.json"
CLASSES = ["buildings", "forest", "glacier", "mountain", "sea", "street"]
CONFIG = (
    '<View><Image name="image" value="$image"/><Choices name="choice" toName="image">'
    + "".join(f'<Choice value="{c}"/>' for c in CLASSES)
    + "</Choices></View>"
)


def free_port() -> int:
    from sync.netutil import free_port as _free_port

    return _free_port()


def protocol_requests() -> dict:
    return json.loads(PROTOCOL.read_text())


def scene_files(per_class: int, offset: int = 0, classes=CLASSES) -> list[tuple[str, Path]]:
    """(label, path) pairs: the `per_class` files after `offset` of each class, sorted by name."""
    out = []
    for label in classes:
        files = sorted((SCENES / label).glob("*.jpg"))[offset : offset + per_class]
        out += [(label, f) for f in files]
    return out


class BackendThread:
    def __init__(self, settings: Settings):
        self.port = free_port()
        self.app = create_app(settings)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def service(self):
        """The app's `backend.service.Backend` (job runner, fetcher counters, serving)."""
        return self.app.state.backend

    def start(self) -> BackendThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("backend thread did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class FileServer:
    """Serves {path: bytes}; answers 401 without the right token, 404 for unknown paths."""

    def __init__(self, files: dict[str, bytes], token: str | None, delay: float = 0.0):
        self.files = dict(files)
        self.auth_headers: list[str | None] = []
        self.token = token
        self.delay = delay
        self.hits: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                with lock:
                    outer.hits.append(self.path)
                    outer.auth_headers.append(self.headers.get("Authorization"))
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    time.sleep(outer.delay)
                    if outer.token is not None and self.headers.get("Authorization") != f"Token {outer.token}":
                        self.send_response(401)
                        self.end_headers()
                        return
                    body = outer.files.get(self.path)
                    if body is None:
                        self.send_response(404)
                        self.end_headers()
                        return
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a download timeout under test)
                finally:
                    with lock:
                        outer.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_for(predicate, timeout: float = 120.0, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def post_json(url: str, body, timeout: float = 30.0, **kwargs) -> requests.Response:
    return requests.post(url, json=body, timeout=timeout, **kwargs)
