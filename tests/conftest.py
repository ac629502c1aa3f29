"""Shared fixtures. Real data comes from ../shared/ (beside the checkout); the product never reads it."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from ai4kg.__main__ import without_script_directory

# `uv run pytest` starts pytest's console script, whose directory (the environment's bin/) comes
# first on sys.path, where jsonpath-rw (which mlcroissant needs) installs a jsonpath.py script that
# hides the jsonpath module morph-kgc imports. The `ai4kg` command does the same before it starts.
without_script_directory()

from ai4kg.config import Settings  # noqa: E402
from ai4kg.graph.store import KnowledgeGraph

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MODULES = SHARED / "ai4eosc" / "modules"

INVALID_MODULE_FILES = {
    # file -> the field its error names (invalid on purpose of their authors, or by accident)
    "seeds-classification__ai4-metadata.yml": "line 42",          # 'libraries' given twice
    "socib-rip-currents-detection__ai4-metadata.yml": "metadata_version",  # 1.0.1 is no ai4-metadata version
    "zooprocess-multiple-classifier__metadata.json": "line 6",     # trailing comma: not JSON
}


def module_files() -> list[Path]:
    files = sorted(MODULES.iterdir())
    assert len(files) >= 40, f"expected the real module files in {MODULES}"
    return files


def valid_module_files() -> list[Path]:
    return [p for p in module_files() if p.name not in INVALID_MODULE_FILES]


@pytest.fixture
def graph() -> KnowledgeGraph:
    with KnowledgeGraph(Settings.in_memory()) as kg:
        yield kg


@pytest.fixture(scope="module")
def real() -> KnowledgeGraph:
    """An in-memory store holding every valid real module of ../shared/ai4eosc/modules."""
    from ai4kg.catalog import import_files

    with KnowledgeGraph(Settings.in_memory()) as graph:
        reports = import_files(graph, valid_module_files())
        assert {r.status for r in reports} <= {"imported", "skipped"}
        yield graph


@pytest.fixture
def disk_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def oxigraph_server() -> str:
    """A real Oxigraph server (the `oxigraph` package's binary) on loopback, in memory."""
    import shutil
    import subprocess
    import sys
    import time
    import urllib.request

    binary = shutil.which("oxigraph") or str(Path(sys.executable).parent / "oxigraph")
    port = _free_port()
    process = subprocess.Popen([binary, "serve", "--bind", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/query?query=ASK%7B%7D", timeout=1)
            break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, "oxigraph serve did not start"
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module", params=["embedded", "oxigraph-server"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """Run a module's tests on the embedded store and on a real Oxigraph server (emptied first)."""
    if request.param == "embedded":
        return None
    import urllib.request

    url = request.getfixturevalue("oxigraph_server")
    urllib.request.urlopen(urllib.request.Request(f"{url}/update", data=b"DROP ALL",
                                                  headers={"content-type": "application/sparql-update"}))
    return url


@contextlib.contextmanager
def serving(app: Any, lifespan: bool = False) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port, in a thread: its base URL. `lifespan`:
    the app's control loop (which moves deployments along) runs too."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="on" if lifespan else "off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + (30 if lifespan else 10)
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15 if lifespan else 5)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[str]:
    """A real MLflow tracking server (`mlflow server`, one worker, SQLite) on loopback: its base URL.

    Starting it is mostly importing mlflow, twice (the command, then its uvicorn worker): job
    execution (a runner and a pool of huey consumers) is switched off, and where the environment
    forbids bytecode caches (PYTHONDONTWRITEBYTECODE) the server keeps its own in pytest's cache
    directory, so that only the first run compiles mlflow's sources."""
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    directory = tmp_path_factory.mktemp("mlflow")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
        env["PYTHONPYCACHEPREFIX"] = str(cache.mkdir("mlflow-server-pycache") if cache else directory / "pycache")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(directory / "server.log", "wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server",
         "--backend-store-uri", f"sqlite:///{directory / 'mlflow.db'}",
         "--artifacts-destination", str(directory / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=directory, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    started = time.monotonic()
    try:
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                waited = time.monotonic() - started
                tail = (directory / "server.log").read_text(errors="replace")[-2000:]
                assert process.poll() is None, f"mlflow server exited with {process.returncode}:\n{tail}"
                assert waited < 60, f"mlflow server did not answer {url}/health within 60 s:\n{tail}"
                time.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):  # the command and its uvicorn worker: one session
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.fixture(scope="session")
def flower_bin() -> Path:
    """The `bin` folder of the Flower environment (built from federated/flower-app/uv.lock with uv
    the first time, about a minute; then found in the user's cache)."""
    from ai4kg.federated.environment import ensure

    return ensure()


@pytest.fixture(scope="session")
def flower_python(flower_bin: Path) -> Path:
    """The Flower environment's python, to run checks that import flwr (the platform never does)."""
    return flower_bin / "python"


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A real, headless Chromium (Debian's), driven by Playwright; one per test session."""
    from playwright.sync_api import sync_playwright

    import browser

    with sync_playwright() as playwright:
        launched = browser.launch(playwright)
        yield launched
        launched.close()


def module_yaml(name: str, title: str, description: str = "A module.", **fields: Any) -> bytes:
    """An ai4-metadata 2.0 file of a small PyTorch image module named `name`, for tests that need a
    module of their own (`fields` replace or add top-level fields)."""
    import yaml

    return yaml.safe_dump({
        "metadata_version": "2.0.0", "title": title, "summary": f"{title}, a module written for the tests.",
        "description": description, "dates": {"created": "2024-01-02", "updated": "2024-02-03"},
        "links": {"source_code": f"https://github.com/example/{name}", "docker_image": f"example/{name}"},
        "tags": ["deep learning"], "tasks": ["Computer Vision"], "categories": ["AI4 pre trained"],
        "libraries": ["PyTorch"], "data-type": ["Image"], **fields}).encode()
