"""What the platform asks of a workload manager (the local executor, Nomad), and what it reports.

The deployments service (service.py) never calls a workload manager's own API: it hands a `Job` to
an `Executor` and reads back `Observed` states. Every call must be idempotent by the job's
identifier: the outbox may replay a call after a crash (start a job that already runs, stop one
already gone), and that must change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

Status = Literal["starting", "running", "completed", "failed", "stopped"]


class JobRefused(Exception):
    """The workload manager will never run this job as asked (not: it is down now). The deployment
    fails with this message instead of waiting in the queue."""


@dataclass(frozen=True)
class Resources:
    """CPU cores, memory and disk in MiB, GPUs."""

    cpu: int = 0
    memory_mb: int = 0
    gpu: int = 0
    disk_mb: int = 0

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(self.cpu + other.cpu, self.memory_mb + other.memory_mb, self.gpu + other.gpu,
                         self.disk_mb + other.disk_mb)

    def __sub__(self, other: "Resources") -> "Resources":
        return Resources(self.cpu - other.cpu, self.memory_mb - other.memory_mb, self.gpu - other.gpu,
                         self.disk_mb - other.disk_mb)

    def exceeded_by(self, wanted: "Resources") -> list[str]:
        """The figures of `wanted` that do not fit in these (empty: it fits)."""
        return [f"{name} ({getattr(wanted, name)} > {getattr(self, name)})"
                for name in ("cpu", "memory_mb", "gpu", "disk_mb") if getattr(wanted, name) > getattr(self, name)]


@dataclass(frozen=True)
class Job:
    """A deployment as a workload manager runs it."""

    identifier: str
    kind: str
    vo: str
    owner: str
    image: str
    title: str
    datacenter: str
    resources: Resources
    gpu_model: str | None = None
    description: str = ""
    command: list[str] | None = None
    endpoints: dict[str, int] = field(default_factory=dict)
    datasets: tuple[str, ...] = ()
    storage: str | None = None
    notify: str | None = None
    """an e-mail address to tell when the job ends"""
    module: str = ""
    secrets_from: str | None = None
    """a folder of the platform whose files the job is given as secrets (Nomad: a Nomad Variable of
    the job, rendered into its secrets directory; the local executor's jobs read the folder)"""


@dataclass(frozen=True)
class Observed:
    """A job as the workload manager reports it."""

    identifier: str
    status: Status
    datacenter: str | None = None
    vo: str | None = None
    urls: dict[str, str] = field(default_factory=dict)
    detail: str = ""
    """why it failed or ended, in the workload manager's words"""


@dataclass(frozen=True)
class Health:
    """A datacenter as a probe found it: `healthy`, `slow` (answered after the limit) or `down`."""

    datacenter: str
    status: Literal["healthy", "slow", "down"]
    latency_s: float
    detail: str = ""


class Executor(Protocol):
    name: str
    """`local` or `nomad`: also the name of the workload manager's agent in the graph"""

    def capacity(self) -> dict[str, Resources | None]:
        """Each datacenter and what it has in all (None: unknown, the manager queues what does not fit)."""
        ...

    def probe(self) -> list[Health]:
        """Each datacenter's health, now."""
        ...

    def start(self, job: Job) -> None:
        """Run the job; a job already running under that identifier is left as it is. Raises
        JobRefused when it never will, any other exception when it cannot now."""
        ...

    def stop(self, identifier: str, vo: str) -> bool:
        """Stop the job and free what it holds; False when it is not there (not an error)."""
        ...

    def observe(self) -> dict[str, Observed]:
        """Every job this manager runs or ran for the platform and has not forgotten, by identifier."""
        ...
