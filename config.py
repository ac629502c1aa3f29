"""Where ai4kg keeps its data and how it names things, from the environment or the command line."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

DEFAULT_BASE_URL = "https://w3id.org/ai4kg/id/"
"""Asset IRIs are minted under this base unless AI4KG_BASE_URL or --base-url says otherwise."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path | None
    """Directory of the on-disk store; None keeps everything in memory (tests, dry runs)."""
    base_url: str = DEFAULT_BASE_URL

    @classmethod
    def from_env(cls, data: str | os.PathLike[str] | None = None, base_url: str | None = None) -> "Settings":
        chosen = data or os.environ.get("AI4KG_DATA") or platformdirs.user_data_dir("ai4kg")
        base = base_url or os.environ.get("AI4KG_BASE_URL") or DEFAULT_BASE_URL
        if not base.endswith(("/", "#")):
            base += "/"
        return cls(data_dir=Path(chosen), base_url=base)

    @classmethod
    def in_memory(cls, base_url: str = DEFAULT_BASE_URL) -> "Settings":
        return cls(data_dir=None, base_url=base_url)
