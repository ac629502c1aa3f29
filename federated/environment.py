"""The Flower environment: a virtual environment of its own, built from a lock file with uv.

Flower 1.42 pins fastapi, starlette, uvicorn, rich, packaging and protobuf to releases older than
the platform's, so the two cannot share one environment. The platform never imports flwr: it runs
Flower's programs (flower-superlink, flwr) from this environment as processes, and the Flower App
(federated/flower-app/, the server and client code) runs inside it.

The environment is built once per lock file (its digest names the folder) under the user's cache
directory, or where AI4KG_FLOWER_ENV says, by `uv sync --frozen` from federated/flower-app/uv.lock:
the same versions everywhere, nothing resolved at run time.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import platformdirs

PROGRAMS = ("flower-superlink", "flower-supernode", "flwr")


class FlowerUnavailable(RuntimeError):
    """The Flower environment could not be built (no uv, no package index, a broken lock)."""


def app_directory() -> Path:
    """The Flower App the platform submits: its pyproject.toml, lock file and ai4kg_flower package."""
    return Path(str(resources.files("ai4kg").joinpath("federated/flower-app")))


def lock_digest() -> str:
    return hashlib.sha256((app_directory() / "uv.lock").read_bytes()).hexdigest()


def default_location() -> Path:
    return Path(platformdirs.user_cache_dir("ai4kg")) / f"flower-{lock_digest()[:16]}"


def ensure(location: Path | None = None) -> Path:
    """The `bin` folder of a Flower environment built from the lock file, building it if needed.
    Safe to call from several processes at once (a lock file beside the environment)."""
    location = location or default_location()
    stamp = location / "ai4kg-lock.sha256"
    digest = lock_digest()
    if _ready(location, stamp, digest):
        return location / "bin"
    location.parent.mkdir(parents=True, exist_ok=True)
    with open(location.parent / f".{location.name}.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if _ready(location, stamp, digest):
            return location / "bin"
        command = [sys.executable, "-m", "uv", "sync", "--frozen", "--no-install-project", "--no-dev",
                   "--project", str(app_directory()), "--python", sys.executable]
        environment = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(location), "UV_NO_PROGRESS": "1"}
        done = subprocess.run(command, env=environment, capture_output=True, text=True)
        if done.returncode != 0:
            raise FlowerUnavailable(f"building the Flower environment in {location} failed "
                                    f"({' '.join(command)}):\n{done.stderr.strip()[-2000:]}")
        stamp.write_text(digest, "utf-8")
    return location / "bin"


def _ready(location: Path, stamp: Path, digest: str) -> bool:
    return stamp.exists() and stamp.read_text("utf-8") == digest and all(
        (location / "bin" / program).exists() for program in PROGRAMS)


def process_environment(home: Path, bin_directory: Path) -> dict[str, str]:
    """The environment every Flower process gets: its own FLWR_HOME (state, installed apps, the
    CLI's connections), no telemetry, no update check, no package installs at run time (the app's
    dependencies are in the environment already), the environment's programs first on PATH."""
    home.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "FLWR_HOME": str(home), "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1",
            "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
            "PATH": f"{bin_directory}{os.pathsep}{os.environ.get('PATH', '')}", "VIRTUAL_ENV": str(bin_directory.parent)}
