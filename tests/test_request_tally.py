"""What a piece of work costs in Label Studio requests when another thread shares its client
(lsclient/tally.py): a training and the refresh beside it use one client per project, and each
reports its own requests (tests/test_scale_labelstudio.py bounds them). Real HTTP through the
client's real transport, to a local HTTP server standing in for Label Studio: what is counted is
the transport's sending, which does not depend on what answers."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from lsclient.tally import counting
from lsclient.transport import RetryingTransport


class Answer(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/fail-once" and not getattr(self.server, "failed", False):
            self.server.failed = True  # type: ignore[attr-defined]
            self.send_response(503)
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_a_scope_counts_its_own_requests_not_another_threads(server):
    transport = RetryingTransport(httpx.HTTPTransport(), waits=(0.05,))
    client = httpx.Client(transport=transport, base_url=server)
    stop = threading.Event()
    theirs = []

    def neighbour():  # the refresh beside a training: same client, its own thread
        with counting() as tally:
            theirs.append(tally)
            while not stop.is_set():
                client.get("/other")
                time.sleep(0.002)

    beside = threading.Thread(target=neighbour)
    beside.start()
    try:
        with counting() as outer:
            for _ in range(5):
                client.get("/mine")
            with counting() as inner:
                client.get("/fail-once")  # a 503 retried: two requests sent
            with ThreadPoolExecutor(max_workers=3) as pool:  # as lsclient's patch_notes starts them
                for done in [pool.submit(copy_context().run, client.get, "/mine") for _ in range(4)]:
                    done.result()
                pool.submit(client.get, "/pool-without-context").result()  # not this scope's
    finally:
        stop.set()
        beside.join()
    assert inner.sent == 2
    assert outer.sent == 5 + 2 + 4
    assert theirs[0].sent > 0  # the neighbour sent meanwhile, in its own count
    client.get("/after")
    assert outer.sent == 11  # closed scopes count no more
