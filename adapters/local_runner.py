"""Runs one local job's process and outlives the server: `python -m ai4kg.adapters.local_runner JOBDIR -- CMD...`

The local executor (local.py) starts this runner in a session of its own, so a deployment keeps
running while `ai4kg serve` restarts. The runner

- holds an exclusive lock on JOBDIR/lock for as long as it lives: a second runner of the same job
  exits at once (so a start replayed after a crash never runs a job twice), and the executor knows
  the job is alive while the lock is held;
- writes its pid to JOBDIR/runner.json, then starts the command with the memory limit of
  JOBDIR/limits.json (RLIMIT_AS) and, on Linux, a death signal: the command dies with the runner;
- passes SIGTERM and SIGINT on to the command, and when the command ends writes
  JOBDIR/status.json (exit code or signal, when) in one rename.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import resource
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ALREADY_RUNNING = 75
"""Exit status of a runner whose job another runner already holds (EX_TEMPFAIL)."""


def write_json(path: Path, data: dict) -> None:
    """Write in one rename, so a reader never sees half a file."""
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps(data), "utf-8")
    os.replace(scratch, path)


def _limits(memory_mb: int | None):  # type: ignore[no-untyped-def]
    def apply() -> None:
        if memory_mb:
            size = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (size, size))
        if sys.platform.startswith("linux"):
            PR_SET_PDEATHSIG = 1
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    return apply


def _take(lock: object, patience_s: float = 2.0) -> bool:
    """The job's lock, waiting a little: the executor's liveness check holds it for an instant."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # type: ignore[arg-type]
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m ai4kg.adapters.local_runner JOBDIR -- COMMAND [ARG...]", file=sys.stderr)
        return 2
    job_dir, command = Path(argv[0]), argv[2:]
    lock = open(job_dir / "lock", "a+")  # not inherited by the command (Python's files are close-on-exec)
    if not _take(lock):
        return ALREADY_RUNNING
    if (job_dir / "status.json").exists():  # this job ran and ended: never run it again
        return ALREADY_RUNNING
    limits = json.loads((job_dir / "limits.json").read_text("utf-8")) if (job_dir / "limits.json").exists() else {}
    write_json(job_dir / "runner.json", {"pid": os.getpid()})
    try:
        child = subprocess.Popen(command, cwd=job_dir / "work", preexec_fn=_limits(limits.get("memory_mb")))
    except OSError as exc:
        write_json(job_dir / "status.json", {"exit_code": 127, "signal": None, "error": str(exc),
                                             "ended_at": _now()})
        return 127

    def forward(number: int, _frame: object) -> None:
        child.send_signal(number)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = child.wait()
    write_json(job_dir / "status.json", {"exit_code": code if code >= 0 else None,
                                         "signal": -code if code < 0 else None, "ended_at": _now()})
    return 0


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
