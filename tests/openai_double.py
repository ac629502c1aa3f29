"""A loopback stand-in for the OpenAI chat-completions API (tests only), for assistant/model.py.

Written from OpenAI's public API reference (platform.openai.com/docs/api-reference):
- `POST /v1/chat/completions` with {"model", "messages": [{"role", "content"}...], "temperature",
  "stream", ...}; a missing model or empty messages is 400 `invalid_request_error`;
- non-streaming answer: a `chat.completion` object {id, object, created, model, choices: [{index,
  message: {role: "assistant", content}, logprobs, finish_reason: "stop"}], usage: {prompt_tokens,
  completion_tokens, total_tokens}};
- streaming answer (`"stream": true`): `text/event-stream`, one `data: {chunk}` event per
  `chat.completion.chunk` object (the first delta {role: "assistant", content: ""}, then content
  pieces, then an empty delta with finish_reason "stop"), then `data: [DONE]`;
- `GET /v1/models`: {"object": "list", "data": [{id, object: "model", created, owned_by}]};
- authentication: `Authorization: Bearer KEY`; none or a wrong one is 401 with the error object
  {"error": {"message", "type", "param", "code"}} that every error has (the key masked in it, as
  OpenAI does), an unknown path 404.

A test scripts the answers: `replies` (texts consumed in order, or a callable(request_json) -> text),
`delay` (seconds before answering: timeouts), `chunk_delay` (seconds between streamed chunks),
`fail` ((status, message): an OpenAI error answer), `raw` (bytes answered as a 200 application/json
body: malformed replies). It records every request body (`requests`), the Authorization headers
(`authorizations`) and the content deltas of each streamed answer (`deltas`).

What it simplifies: one choice (n is ignored), tokens are whitespace-separated words, usage counts
words, no rate limits, no tools, no logprobs.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

ROLES = {"system", "developer", "user", "assistant", "tool"}


class OpenAIDouble:
    """The script, the records, and the server on 127.0.0.1 (`url`, e.g. http://127.0.0.1:PORT/v1)."""

    def __init__(self, replies: list[str] | Callable[[dict[str, Any]], str] | None = None, *,
                 key: str | None = None, model: str = "double-model") -> None:
        self.replies: list[str] | Callable[[dict[str, Any]], str] = replies if replies is not None else []
        self.key = key
        self.model = model
        self.delay = 0.0
        self.chunk_delay = 0.0
        self.fail: tuple[int, str] | None = None
        self.raw: bytes | None = None
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []
        self.deltas: list[list[str]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "OpenAIDouble":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()  # delayed answers stop waiting
        self._server.shutdown()
        self._server.server_close()

    def wait(self, seconds: float) -> None:
        if seconds > 0:
            self._closing.wait(seconds)

    # --- the endpoints -----------------------------------------------------------------------------

    def refusal(self, authorization: str | None) -> tuple[int, dict[str, Any]] | None:
        """401 as OpenAI answers it when a key is expected and the request has none or another."""
        if self.key is None:
            return None
        if not authorization or not authorization.startswith("Bearer "):
            return 401, error("You didn't provide an API key. You need to provide your API key in an Authorization "
                              "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                              "invalid_request_error", None)
        given = authorization[len("Bearer "):]
        if given != self.key:
            masked = given[:3] + "*" * max(len(given) - 7, 0) + given[-4:] if len(given) > 8 else "*" * len(given)
            return 401, error(f"Incorrect API key provided: {masked}.", "invalid_request_error", "invalid_api_key")
        return None

    def completion(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | str:
        """The reply text for a valid request, or (status, error object)."""
        if not isinstance(body.get("model"), str) or not body["model"]:
            return 400, error("you must provide a model parameter", "invalid_request_error", None, "model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return 400, error("'messages' must be a non-empty array", "invalid_request_error", None, "messages")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ROLES or "content" not in message:
                return 400, error(f"Invalid value for 'messages[{i}]'", "invalid_request_error", None, f"messages[{i}]")
        if "stream" in body and not isinstance(body["stream"], bool):
            return 400, error("Invalid type for 'stream': expected a boolean", "invalid_request_error", None, "stream")
        with self._lock:
            if callable(self.replies):
                return self.replies(body)
            if not self.replies:
                return 500, error("the test's script has no reply left", "server_error", None)
            return self.replies.pop(0)

    def completion_object(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        prompt = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        return {"id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion", "created": int(time.time()),
                "model": body["model"], "system_fingerprint": "fp_double",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": len(text.split()),
                          "total_tokens": prompt + len(text.split())}}

    def chunks(self, body: dict[str, Any], text: str) -> list[dict[str, Any]]:
        """The chunk objects of a streamed answer; the content pieces are recorded in `deltas`."""
        pieces = re.findall(r"\s*\S+", text) + ([text[len(text.rstrip()):]] if text != text.rstrip() else [])
        self.deltas.append(pieces)
        head = {"id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body["model"], "system_fingerprint": "fp_double"}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

        return ([chunk({"role": "assistant", "content": ""})] + [chunk({"content": p}) for p in pieces]
                + [chunk({}, "stop")])


def error(message: str, kind: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _handler(api: OpenAIDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            refused = api.refusal(self.headers.get("Authorization"))
            if refused:
                return self._json(*refused)
            if self.path.rstrip("/") == "/v1/models":
                return self._json(200, {"object": "list", "data": [
                    {"id": api.model, "object": "model", "created": 1700000000, "owned_by": "double"}]})
            self._json(404, error(f"Invalid URL (GET {self.path})", "invalid_request_error", None))

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            authorization = self.headers.get("Authorization")
            api.authorizations.append(authorization)
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            api.requests.append(body)
            refused = api.refusal(authorization)
            if refused:
                return self._json(*refused)
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self._json(404, error(f"Invalid URL (POST {self.path})", "invalid_request_error", None))
            if not isinstance(body, dict):
                return self._json(400, error("We could not parse the JSON body of your request.",
                                             "invalid_request_error", None))
            api.wait(api.delay)
            if api.fail:
                status, message = api.fail
                return self._json(status, error(message, "server_error" if status >= 500 else "invalid_request_error",
                                                None))
            if api.raw is not None:
                return self._send(200, "application/json", api.raw)
            answer = api.completion(body)
            if not isinstance(answer, str):
                return self._json(*answer)
            if body.get("stream") is True:
                return self._stream(api.chunks(body, answer))
            self._json(200, api.completion_object(body, answer))

        def _stream(self, chunks: list[dict[str, Any]]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for i, event in enumerate([json.dumps(c) for c in chunks] + ["[DONE]"]):
                    if i:
                        api.wait(api.chunk_delay)
                    data = f"data: {event}\n\n".encode()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (its deadline)
                self.close_connection = True

        def _json(self, status: int, body: dict[str, Any]) -> None:
            self._send(status, "application/json", json.dumps(body).encode())

        def _send(self, status: int, kind: str, data: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client timed out before the answer
                self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    return Handler
