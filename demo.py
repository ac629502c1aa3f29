"""The demo catalog: a few modules written for ai4kg, loaded by `ai4kg serve --demo` into an empty store,
and the provenance of one of them (a CI build, the training job and its MLflow run) as fragments."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from .catalog import FileReport, ImportOptions, import_files
from .graph.store import KnowledgeGraph


def demo_files() -> list[Path]:
    folder = resources.files("ai4kg").joinpath("demo")
    return sorted(Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".yml"))


def demo_fragments() -> list[tuple[Any, str]]:
    folder = resources.files("ai4kg").joinpath("demo/provenance")
    return [(fragment, f"demo:{entry.name}") for entry in sorted(folder.iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".json") for fragment in json.loads(entry.read_text("utf-8"))]


def load_demo_catalog(graph: KnowledgeGraph) -> list[FileReport]:
    reports = import_files(graph, demo_files(), ImportOptions(license="CC-BY-4.0"))
    from .provenance.ingest import Provenance

    outcomes = Provenance(graph).ingest(demo_fragments())
    failed = [o.as_dict() for o in outcomes if o.status not in ("created", "updated", "unchanged")]
    if failed:  # the demo's own data: a failure here is a bug, not bad input
        raise RuntimeError(f"demo provenance fragments were refused: {failed}")
    return reports
