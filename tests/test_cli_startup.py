"""The command line starts light (issue 17): its help, and its commands' help, import no mapping
engine, SHACL, SPARQL parser, JSON-LD processor, HTTP client or server, GraphQL, Flower or MLflow;
a command imports what it needs when it runs. `ai4kg validate` imports no server, GraphQL,
JSON-LD, Flower or MLflow either.

What is imported is read from `python -X importtime` in a fresh process: a behaviour, not a
timing (the CPU times are in bench/cli_bench.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import MODULES

HEAVY = ("morph_kgc", "pandas", "pyld", "pyshacl", "strawberry", "flwr", "mlflow", "rdflib", "requests", "fastapi",
         "uvicorn")
"""Packages `ai4kg --help` must not import (each costs 0.05-0.7 CPU-s to import)."""
ALSO_LIGHT = ("httpx", "jsonschema", "starlette", "pydantic", "yaml")
"""Lighter, but only some commands need them: not at start either."""
NOT_FOR_VALIDATE = ("pyld", "strawberry", "flwr", "mlflow", "requests", "fastapi", "uvicorn", "httpx", "starlette")
"""What a validation has no use for: it reads a file, checks its schema, maps it and runs SHACL."""

_IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \| *(\S+)", re.MULTILINE)


def imported_packages(tmp_path: Path, *args: str) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """The top-level packages `python -m ai4kg ARGS` imports, and the finished process."""
    env = {**os.environ, "AI4KG_DATA": str(tmp_path / "data")}
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    finished = subprocess.run([sys.executable, "-X", "importtime", "-m", "ai4kg", *args], capture_output=True,
                              text=True, timeout=120, cwd=tmp_path, env=env)
    modules = _IMPORTED.findall(finished.stderr)
    assert "ai4kg.cli" in modules, finished.stderr[-2000:]
    return {name.split(".", 1)[0] for name in modules}, finished


@pytest.mark.parametrize("args", [("--help",), ("validate", "--help"), ("import", "--help"), ("export", "--help"),
                                  ("deploy", "--help"), ("federation", "--help"), ("provenance", "--help"),
                                  ("serve", "--help")], ids=" ".join)
def test_help_imports_no_heavy_package(tmp_path: Path, args: tuple[str, ...]) -> None:
    packages, finished = imported_packages(tmp_path, *args)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "Usage: " in finished.stdout
    loaded = sorted(set(HEAVY + ALSO_LIGHT) & packages)
    assert not loaded, f"`ai4kg {' '.join(args)}` imports {loaded}: import them in the command that needs them"


def test_help_still_lists_every_command(tmp_path: Path) -> None:
    _, finished = imported_packages(tmp_path, "--help")
    for command in ("validate", "import", "query", "ask", "export", "stats", "search", "migrate", "fair", "provenance",
                    "apikey", "deploy", "federation", "serve"):
        assert re.search(rf"^\s+{command}\s", finished.stdout, re.MULTILINE), (command, finished.stdout)
    _, export = imported_packages(tmp_path, "export", "--help")
    assert "mldcat-ap" in export.stdout and "fair4ml" in export.stdout  # the views are named without loading pyld


def test_validate_imports_only_what_a_validation_needs(tmp_path: Path) -> None:
    packages, finished = imported_packages(tmp_path, "validate", str(MODULES / "ai4os-yolo-torch__ai4-metadata.yml"))
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "valid: " in finished.stderr
    assert {"jsonschema", "pyshacl"} <= packages  # the schema and the shapes are checked
    loaded = sorted(set(NOT_FOR_VALIDATE) & packages)
    assert not loaded, f"`ai4kg validate` imports {loaded}"
