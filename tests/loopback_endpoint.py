"""A SPARQL endpoint on loopback for tests of SERVICE: it answers one fixed solution, counts the
requests it gets, and can hold every call until the test releases it (`held=True`), so that a
query runs exactly as long as a test wants, on any machine."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = b'{"head":{"vars":["s"]},"results":{"bindings":[{"s":{"type":"uri","value":"http://x/s"}}]}}'


class LoopbackEndpoint:
    def __init__(self, held: bool = False) -> None:
        self.requests: list[str] = []
        self.release = threading.Event()
        """Set it to let held calls answer."""
        self.holding = threading.Semaphore(0)
        """Released once per call that arrives (a test waits on it to know a call is inside)."""
        if not held:
            self.release.set()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._answer()

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("content-length") or 0))
                self._answer()

            def _answer(self) -> None:
                endpoint.requests.append(self.path)
                endpoint.holding.release()
                endpoint.release.wait(120)
                self.send_response(200)
                self.send_header("content-type", "application/sparql-results+json")
                self.send_header("content-length", str(len(ANSWER)))
                self.end_headers()
                self.wfile.write(ANSWER)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sparql"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
