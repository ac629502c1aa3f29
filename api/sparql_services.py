"""SPARQL SERVICE (federated queries): off unless an administrator names the endpoints allowed.

A query with SERVICE makes the server send HTTP requests, on the behalf of whoever sent the query
(anonymous users included): to any address (a way into the server's own network) and for as long
as the remote end holds the call, since Oxigraph's SERVICE client has no timeout. So:

- With Settings.sparql_services empty (the default), a query with SERVICE gets 400 before it runs.
- Otherwise each SERVICE endpoint must be written as an absolute IRI equal to one of the allowed
  endpoints (a variable, a prefixed name or another IRI gets 400), and the call goes through a
  relay on loopback that forwards it with the timeout Settings.sparql_service_timeout and a size
  limit, so a slow endpoint fails the query instead of holding it.
"""

from __future__ import annotations

import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..config import Settings
from ..graph.datasets import service_calls
from .problems import Problem

MAX_SERVICE_RESPONSE_BYTES = 64 * 1024 * 1024
"""The most a remote endpoint's answer may hold before the relay cuts it off (and the query fails)."""
_FORWARDED_HEADERS = ("content-type", "accept")


class FederatedQueries:
    """Checks the SERVICE clauses of queries against the allow-list, and routes allowed ones through
    the relay (started on first use)."""

    def __init__(self, settings: Settings):
        self.allowed: tuple[str, ...] = settings.sparql_services
        self.timeout = settings.sparql_service_timeout
        self._relay: _Relay | None = None
        self._lock = threading.Lock()

    def prepare(self, query: str) -> str:
        """The query to run: as it is without SERVICE; with each allowed endpoint replaced by the
        relay's address for it. A Problem (400) when federated queries are off or an endpoint is not
        allowed: nothing was sent anywhere."""
        calls = service_calls(query)
        if not calls:
            return query
        if not self.allowed:
            raise Problem(400, "Federated queries are off",
                          "SERVICE calls other SPARQL endpoints, which this server does not do on a caller's behalf "
                          "unless its administrator allows those endpoints (AI4KG_SPARQL_SERVICES)",
                          "query", calls[0].endpoint or "SERVICE")
        edits = []
        for call in calls:
            iri = call.endpoint[1:-1] if call.endpoint.startswith("<") else None
            if iri not in self.allowed:
                raise Problem(400, "SERVICE endpoint not allowed",
                              f"a SERVICE endpoint must be written as one of the allowed endpoint IRIs "
                              f"({', '.join(f'<{e}>' for e in self.allowed)}); variables, prefixed names and other "
                              "IRIs are refused", "query", call.endpoint or "SERVICE")
            edits.append((call.start, call.end, f"<{self.relay().address(iri)}>"))
        for start, end, replacement in reversed(edits):
            query = query[:start] + replacement + query[end:]
        return query

    def relay(self) -> "_Relay":
        with self._lock:
            if self._relay is None:
                self._relay = _Relay(self.allowed, self.timeout)
            return self._relay


class _Relay:
    """An HTTP server on loopback that forwards Oxigraph's SERVICE requests to the allowed endpoints,
    each with a deadline. Its paths carry a random secret, so another local user cannot use it."""

    def __init__(self, endpoints: tuple[str, ...], timeout: float):
        self.endpoints, self.timeout = endpoints, timeout
        self.secret = secrets.token_urlsafe(16)
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                relay.forward(self)

            def log_message(self, format: str, *args: Any) -> None:  # the API's own log says what failed
                pass

        # a daemon thread for the life of the process, like the app's (started only when allowed)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="sparql-service-relay", daemon=True)
        self.thread.start()

    def address(self, endpoint: str) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/{self.secret}/{self.endpoints.index(endpoint)}"

    def forward(self, request: BaseHTTPRequestHandler) -> None:
        import httpx

        _, secret, index = (request.path.split("/") + ["", ""])[:3]
        length = int(request.headers.get("content-length") or 0)
        body = request.rfile.read(min(length, MAX_SERVICE_RESPONSE_BYTES))
        if secret != self.secret or not index.isdigit() or int(index) >= len(self.endpoints):
            return _reply(request, 404, b"no such endpoint")
        endpoint = self.endpoints[int(index)]
        headers = {name: request.headers[name] for name in _FORWARDED_HEADERS if request.headers.get(name)}
        deadline = time.monotonic() + self.timeout
        try:
            with httpx.Client(timeout=self.timeout, follow_redirects=False) as client, \
                    client.stream("POST", endpoint, content=body, headers=headers) as response:
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > MAX_SERVICE_RESPONSE_BYTES:
                        return _reply(request, 502, f"{endpoint} answered more than "
                                                    f"{MAX_SERVICE_RESPONSE_BYTES:,} bytes".encode())
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("deadline")
                    chunks.append(chunk)
                _reply(request, response.status_code, b"".join(chunks), response.headers.get("content-type"))
        except httpx.TimeoutException:
            _reply(request, 504, f"{endpoint} did not answer within {self.timeout:g} s "
                                 "(AI4KG_SPARQL_SERVICE_TIMEOUT)".encode())
        except httpx.HTTPError as exc:
            _reply(request, 502, f"{endpoint} could not be reached: {exc}".encode())


def _reply(request: BaseHTTPRequestHandler, status: int, body: bytes, media: str | None = "text/plain") -> None:
    request.send_response(status)
    request.send_header("Content-Type", media or "application/octet-stream")
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)
