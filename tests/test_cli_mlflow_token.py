"""`ai4kg provenance sync-mlflow` takes the tracking server's bearer token from a file
(`--token-file`) or from AI4KG_MLFLOW_TOKEN, never from the command line, where `ps` and shell
history would show it to others (issue 14). The server here is a loopback stand-in that records the
Authorization header of each request and answers like a tracking server with no experiments."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner, Result

from ai4kg.cli import main


@pytest.fixture
def tracking() -> Iterator[tuple[str, list[str | None]]]:
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("content-length") or 0))
            seen.append(self.headers.get("authorization"))
            body = json.dumps({}).encode()  # experiments/search with no experiment
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def sync(tmp_path: Path, *args: str, token_env: str | None = None) -> Result:
    env = {"COLUMNS": "10000", "AI4KG_BASE_URL": None, "AI4KG_MLFLOW_URL": None, "AI4KG_MLFLOW_TOKEN": token_env}
    return CliRunner().invoke(main, ["--data", str(tmp_path / "data"), "provenance", "sync-mlflow", *args],
                              catch_exceptions=False, env=env)


@pytest.mark.parametrize("given", [["--token", "s3cret-value"], ["--token=s3cret-value"], ["--token"]])
def test_a_token_on_the_command_line_is_refused(tmp_path: Path, tracking: tuple[str, list[str | None]],
                                                 given: list[str]) -> None:
    url, seen = tracking
    result = sync(tmp_path, url, *given)
    assert result.exit_code == 2, result.output
    assert "--token-file" in result.output and "AI4KG_MLFLOW_TOKEN" in result.output, result.output
    assert "s3cret-value" not in result.output  # the secret is not echoed back either
    assert seen == []  # refused before anything is sent


def test_the_token_file_is_read_and_stripped(tmp_path: Path, tracking: tuple[str, list[str | None]]) -> None:
    url, seen = tracking
    token_file = tmp_path / "mlflow-token"
    token_file.write_text("  from-the-file \n")
    result = sync(tmp_path, url, "--token-file", str(token_file), token_env="from-the-environment")
    assert result.exit_code == 0, result.output
    assert seen and set(seen) == {"Bearer from-the-file"}  # the file, named explicitly, wins


def test_the_environment_gives_the_token_without_a_file(tmp_path: Path,
                                                         tracking: tuple[str, list[str | None]]) -> None:
    url, seen = tracking
    assert sync(tmp_path, url, token_env="from-the-environment").exit_code == 0
    assert seen and set(seen) == {"Bearer from-the-environment"}
    seen.clear()
    assert sync(tmp_path, url).exit_code == 0
    assert seen and set(seen) == {None}  # no token: no Authorization header


def test_an_empty_or_missing_token_file_is_named(tmp_path: Path, tracking: tuple[str, list[str | None]]) -> None:
    url, seen = tracking
    empty = tmp_path / "empty"
    empty.write_text(" \n")
    result = sync(tmp_path, url, "--token-file", str(empty))
    assert result.exit_code == 2 and "--token-file" in result.output and "empty" in result.output, result.output
    result = sync(tmp_path, url, "--token-file", str(tmp_path / "absent"))
    assert result.exit_code == 2 and "--token-file" in result.output and "absent" in result.output, result.output
    assert seen == []
