"""Shared fixtures. Real data comes from ../shared/ (beside the checkout); the product never reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai4kg.config import Settings
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


@pytest.fixture
def disk_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")
