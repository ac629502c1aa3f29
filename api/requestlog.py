"""A log line for every request that may change something, whether or not its client waited.

uvicorn's access log writes its line when the response starts, and skips it when the client has
gone: a PUT whose client gave up is still committed, and would leave no trace. This middleware
logs each PUT, POST, DELETE and PATCH when the application is done with it, to the logger
`ai4kg.requests`: method, path, status (500 when the application failed, "-" when it answered
nothing), caller (the identity's subject, or anonymous) and duration. Reads are left to the
access log.
"""

from __future__ import annotations

import logging
import sys
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOGGER = "ai4kg.requests"
WRITE_METHODS = frozenset({"PUT", "POST", "DELETE", "PATCH"})

log = logging.getLogger(LOGGER)


def ensure_handler() -> None:
    """Send the lines to stderr when nobody configured logging: uvicorn configures only its own
    loggers, and an INFO line of an unconfigured logger is dropped. A host that configures
    logging (a handler on this logger or on the root) decides for itself."""
    if log.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # a root handler configured later would print every line twice


class RequestLog:
    """ASGI middleware, the outermost of the app's own: it sees the answers of the others too
    (Authentication's 401, BodyLimits' 413); the caller is the identity Authentication set."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status: int | None = None

        async def watched_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)  # uvicorn drops it silently when the client has gone

        try:
            await self.app(scope, receive, watched_send)
        except Exception:
            status = status or 500  # what Starlette's error middleware answers
            raise
        finally:
            identity = scope.get("state", {}).get("identity")
            caller = _printable(identity.subject) if identity is not None else "anonymous"
            # the path as the request line had it (percent-encoded): a decoded one may hold a line break
            raw_path = scope.get("raw_path")
            path = raw_path.decode("latin-1") if raw_path else _printable(scope["path"])
            elapsed_ms = (time.perf_counter() - began) * 1000
            log.info("%s %s %s caller=%s %.1fms", scope["method"], path, status or "-", caller, elapsed_ms,
                     extra={"method": scope["method"], "path": path, "status": status, "caller": caller,
                            "duration_ms": round(elapsed_ms, 1)})


def _printable(text: str) -> str:
    """`text` with control characters escaped (\\n, \\x1b ...): one request, one log line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
