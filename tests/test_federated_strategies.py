"""The Flower App's strategies, privacy and recorder, checked offline in the Flower environment.

flwr cannot be imported here (the platform's environment pins newer fastapi/starlette/protobuf),
so each check runs tests/flower/strategy_checks.py with the Flower environment's python
(`flower_python`, from conftest) and must exit 0; its JSON is shown when it does not.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "flower" / "strategy_checks.py"
CHECKS = ["dp-noise", "metric-privacy", "switches", "fedavgopt", "divergence", "strategies", "recorder"]


def run_check(python: Path, check: str) -> tuple[int, dict | None, str]:
    done = subprocess.run([str(python), str(SCRIPT), check, "--json"], capture_output=True, text=True,
                          timeout=600, cwd=SCRIPT.parents[2])
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    result = json.loads(lines[-1]) if lines else None
    return done.returncode, result, done.stderr[-3000:]


@pytest.mark.parametrize("check", CHECKS)
def test_strategy_check(flower_python: Path, check: str) -> None:
    code, result, stderr = run_check(flower_python, check)
    shown = json.dumps(result, indent=2) if result is not None else f"(no JSON printed)\n{stderr}"
    assert code == 0, f"check {check} failed (exit {code}):\n{shown}"
    assert result is not None and result["check"] == check and result["ok"] is True, shown
