"""The stand-in module API the local executor runs for an image it has no runtime for.

A module on the platform serves DEEPaaS's V2 API from its container. The local executor has no
container runtime, so by default it runs this small server instead (`python -m
ai4kg.workloads.demo_api`, listening on $PORT): DEEPaaS's routes, the module's name and title
from the environment the executor sets, and a `predict` that really computes something (summary
statistics of the numbers posted), so that a deployment can be tried end to end on one machine.

    GET  /                         {"versions": [...]}
    GET  /v2/models/               {"models": [{"id", "name", "deployment", ...}]}
    GET  /v2/models/{id}/          the model
    POST /v2/models/{id}/predict/  {"data": [numbers]} -> {"predictions": {"count", "mean", "min", "max"}}
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 1024 * 1024


def _model() -> dict[str, Any]:
    module = os.environ.get("AI4KG_MODULE") or "demo"
    return {"id": module, "name": module, "title": os.environ.get("AI4KG_TITLE") or module,
            "deployment": os.environ.get("AI4KG_DEPLOYMENT", ""), "served_by": "ai4kg stand-in module API",
            "links": [{"rel": "predict", "href": f"/v2/models/{module}/predict/"}]}


class Handler(BaseHTTPRequestHandler):
    server_version = "ai4kg-demo-api"

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        model = _model()
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "":
            self._answer(200, {"versions": [{"id": "v2", "links": [{"rel": "self", "href": "/v2/"}]}]})
        elif path == "/v2/models":
            self._answer(200, {"models": [model]})
        elif path == f"/v2/models/{model['id']}":
            self._answer(200, model)
        else:
            self._answer(404, {"message": f"no route {self.path}"})

    def do_POST(self) -> None:  # noqa: N802
        model = _model()
        if self.path.split("?", 1)[0].rstrip("/") != f"/v2/models/{model['id']}/predict":
            self._answer(404, {"message": f"no route {self.path}"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._answer(413, {"message": f"the body is over {MAX_BODY} bytes"})
            return
        try:
            data = json.loads(self.rfile.read(length) or b"null")["data"]
            numbers = [float(x) for x in data]
            if not numbers:
                raise ValueError("no numbers")
        except (ValueError, TypeError, KeyError) as exc:
            self._answer(422, {"message": f'post {{"data": [numbers...]}}: {exc}'})
            return
        self._answer(200, {"predictions": {"count": len(numbers), "mean": statistics.fmean(numbers),
                                           "min": min(numbers), "max": max(numbers)}, "model": model["id"]})

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # serve_forever ends, the socket is closed


def main() -> None:
    port = int(os.environ.get("PORT", "5000"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"stand-in API of {_model()['id']} on http://127.0.0.1:{port}/", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
