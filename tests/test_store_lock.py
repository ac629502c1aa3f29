"""One process per on-disk store: while another process holds the store open, the CLI commands that
need it fail with exit status 2 and a one-paragraph message that names the directory and points
at `ai4kg serve`, never with a Python traceback; commands that need no store keep working.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner, Result

from ai4kg.cli import main
from conftest import MODULES

MODULE = MODULES / "ai4os-demo-app__ai4-metadata.yml"
OTHER = MODULES / "ai4os-llm__ai4-metadata.yml"
_ENV = {"COLUMNS": "10000", "AI4KG_BASE_URL": None, "AI4KG_DATA": None}

HOLDER = """
import sys
from pathlib import Path
from ai4kg.config import Settings
from ai4kg.graph.store import KnowledgeGraph

graph = KnowledgeGraph(Settings(data_dir=Path(sys.argv[1])))
Path(sys.argv[2]).write_text("ready")
sys.stdin.read()  # hold the store until the test closes our stdin (or dies)
graph.close()
"""


def cli(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, env=_ENV)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AI4KG_DATA", "AI4KG_BASE_URL")}
    env["COLUMNS"] = "10000"
    return env


class Holder:
    """A separate process that keeps the store in `data` open."""

    def __init__(self, data: Path):
        self.data = data
        ready = data.parent / f"{data.name}.ready"
        ready.unlink(missing_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(data), str(ready)], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env(), cwd=data.parent)
        deadline = time.monotonic() + 60
        while not ready.exists():
            if self.proc.poll() is not None:
                raise AssertionError(f"the holder exited: {self.proc.stderr.read().decode(errors='replace')}")
            assert time.monotonic() < deadline, "the holder did not open the store in time"
            time.sleep(0.02)

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()  # type: ignore[union-attr]
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        assert self.proc.returncode == 0, self.proc.stderr.read().decode(errors="replace")  # type: ignore[union-attr]


def _store_with_one_module(data: Path) -> None:
    result = cli("--data", data, "import", MODULE)
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data = tmp_path_factory.mktemp("locked") / "data"
    _store_with_one_module(data)
    holder = Holder(data)
    try:
        yield data
    finally:
        holder.release()


def assert_locked_message(result_code: int, stderr: str, stdout: str, data: Path) -> None:
    assert result_code == 2, stderr + stdout
    text = stderr.strip()
    assert "Traceback" not in stderr and "Traceback" not in stdout
    assert text.startswith("error: "), text
    assert len(text.splitlines()) == 1, f"expected one paragraph:\n{text}"
    assert f"the store in {data} is open in another process" in text
    assert "`ai4kg serve`" in text
    assert "--data" in text, "the message should say how to get on"
    assert stdout == ""


LOCKED_COMMANDS = [
    pytest.param(["stats"], id="stats"),
    pytest.param(["stats", "--json"], id="stats-json"),
    pytest.param(["import", str(OTHER)], id="import"),
    pytest.param(["import", "--json", str(OTHER)], id="import-json"),
    pytest.param(["export", "--format", "nq"], id="export"),
    pytest.param(["query", "ASK { ?s ?p ?o }"], id="query"),
    pytest.param(["search", "demo"], id="search"),
]


@pytest.mark.parametrize("args", LOCKED_COMMANDS)
def test_command_on_a_held_store_fails_cleanly(held: Path, args: list[str]) -> None:
    result = cli("--data", held, *args)
    assert_locked_message(result.exit_code, result.stderr, result.stdout, held)


def test_validate_needs_no_store_and_works_while_it_is_held(held: Path) -> None:
    result = cli("--data", held, "validate", "--json", MODULE)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["status"] == "valid"


def test_real_cli_process_on_a_held_store(held: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", "from ai4kg.cli import main; main()", "--data", str(held),
                           "import", str(OTHER)], capture_output=True, text=True, env=_env(), cwd=held.parent,
                          timeout=120)
    assert_locked_message(proc.returncode, proc.stderr, proc.stdout, held)


def test_the_store_opens_again_once_released_and_nothing_was_written(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _store_with_one_module(data)
    holder = Holder(data)
    try:
        refused = cli("--data", data, "import", OTHER)
        assert_locked_message(refused.exit_code, refused.stderr, refused.stdout, data)
    finally:
        holder.release()
    result = cli("--data", data, "stats", "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["assets"] == 1 and figures["search_entries"] == 1
    assert cli("--data", data, "import", OTHER).exit_code == 0
    assert json.loads(cli("--data", data, "stats", "--json").stdout)["assets"] == 2


def test_the_data_directory_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """Issue 14: the store's files were world-readable, the OAI-PMH token key among them (in
    search.sqlite). A new data directory is 0700; one made earlier with looser modes is tightened
    on open, with the files in it."""
    import stat

    from ai4kg.config import Settings
    from ai4kg.credentials import KeyStore
    from ai4kg.graph.store import KnowledgeGraph

    fresh = tmp_path / "fresh"
    KeyStore(fresh).create("k", frozenset())
    with KnowledgeGraph(Settings(data_dir=fresh)) as graph:
        graph.index.log_secret()
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700
    for name in ("search.sqlite", "credentials.sqlite"):
        assert (fresh / name).exists()

    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    (loose / "search.sqlite").touch(mode=0o644)
    loose.chmod(0o755)
    (loose / "search.sqlite").chmod(0o644)
    with KnowledgeGraph(Settings(data_dir=loose)):
        pass
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700
    assert stat.S_IMODE((loose / "search.sqlite").stat().st_mode) == 0o600
