"""The demo catalog: a few modules written for ai4kg, loaded by `ai4kg serve --demo` into an empty store."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .catalog import FileReport, ImportOptions, import_files
from .graph.store import KnowledgeGraph


def demo_files() -> list[Path]:
    folder = resources.files("ai4kg").joinpath("demo")
    return sorted(Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".yml"))


def load_demo_catalog(graph: KnowledgeGraph) -> list[FileReport]:
    return import_files(graph, demo_files(), ImportOptions(license="CC-BY-4.0"))
