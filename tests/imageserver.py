"""A small loopback HTTP server for tests that need odd answers to image downloads (no tests here).

`ImageServer(routes)` serves `routes[path]`, each one of:
* bytes: 200 with those bytes (Content-Type from `types`, image/jpeg by default);
* an int: that status with an empty body (404, 401, 500 ...);
* a callable `(handler) -> None`: writes its own answer (redirects, slow or endless bodies).
Requests are recorded in `.hits` (path, Authorization header). Every image it serves is made by
the test with Pillow (nothing big is committed).
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ImageServer:
    def __init__(self, routes: dict, types: dict | None = None, host: str = "127.0.0.1"):
        self.routes = dict(routes)
        self.types = dict(types or {})
        self.hits: list[tuple[str, str | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.hits.append((self.path, self.headers.get("Authorization")))
                route = outer.routes.get(self.path.split("?")[0], 404)
                try:
                    if callable(route):
                        route(self)
                    elif isinstance(route, int):
                        self.send_response(route)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    else:
                        self.send_response(200)
                        self.send_header("Content-Type", outer.types.get(self.path, "image/jpeg"))
                        self.send_header("Content-Length", str(len(route)))
                        self.end_headers()
                        self.wfile.write(route)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a limit or a timeout under test)

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def redirect_to(location: str):
    def answer(handler):
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


def slow(seconds: float, body: bytes = b""):
    def answer(handler):
        time.sleep(seconds)
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return answer


def endless(total: int, chunk: int = 1 << 20):
    """`total` bytes streamed chunked, made on the fly (never held in memory)."""
    block = b"\xff" * chunk

    def answer(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        sent = 0
        while sent < total:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
            sent += len(block)
        handler.wfile.write(b"0\r\n\r\n")

    return answer
