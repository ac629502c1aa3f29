"""The embedded workload manager: deployments as real processes on this machine.

Each job gets a directory (DATA/local-executor/jobs/ID) and a runner process
(`local_runner.py`) in a session of its own, which outlives a restart of the server; the lock the
runner holds says whether the job is alive, its status file how it ended. So after a crash the
executor finds its jobs again instead of starting them twice.

What runs: a batch job's own command. A module, tool or try-me runs the command of its image in
`runtimes` (image repository -> command; `*` for any other). There is no container runtime here,
so by default every image runs the platform's stand-in module API (workloads/demo_api.py, which
answers DEEPaaS's routes for the module); an operator maps real images to real commands with
AI4KG_LOCAL_RUNTIMES. Each endpoint gets a free port on the loopback interface, given to the
process as PORT_<label> (and PORT for the first); GPUs as CUDA_VISIBLE_DEVICES.

Resources: the datacenter's capacity (cores, memory, GPUs, disk) is what placement and the quotas
count against; a job's memory is also a hard limit (RLIMIT_AS). Datasets by DOI and storage mounts
and mail notifications need the sidecars only Nomad runs: the local executor refuses such a job
(JobRefused).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..workloads.executor import Health, Job, JobRefused, Observed, Resources
from .local_runner import write_json

DEFAULT_DATACENTER = "local"
STOP_GRACE_S = 10.0
"""How long a stopped job has to end after SIGTERM before it gets SIGKILL."""


def machine_capacity() -> Resources:
    """This machine: its cores, its memory (MiB), no GPUs unless configured, its data disk's free space."""
    try:
        memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError, AttributeError):
        memory_mb = 4096
    return Resources(cpu=os.cpu_count() or 1, memory_mb=int(memory_mb), gpu=0,
                     disk_mb=shutil.disk_usage(Path.home()).free // (1024 * 1024))


def default_runtimes() -> dict[str, list[str]]:
    return {"*": [sys.executable, "-m", "ai4kg.workloads.demo_api"]}


class LocalExecutor:
    name = "local"

    def __init__(self, state_dir: Path, capacity: dict[str, Resources] | None = None,
                 runtimes: dict[str, list[str]] | None = None, host: str = "127.0.0.1"):
        self.jobs_dir = state_dir / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.datacenters = dict(capacity or {DEFAULT_DATACENTER: machine_capacity()})
        self.runtimes = dict(runtimes or default_runtimes())
        self.host = host
        self._children: dict[str, subprocess.Popen] = {}
        """runners this process started, reaped when they end (the others belong to init)"""
        self._lock = threading.Lock()

    # -- the Executor protocol -----------------------------------------------------------------------
    def capacity(self) -> dict[str, Resources | None]:
        return dict(self.datacenters)

    def probe(self) -> list[Health]:
        """A datacenter here is healthy when its job directory takes a write."""
        found = []
        for name in sorted(self.datacenters):
            started = time.perf_counter()
            try:
                write_json(self.jobs_dir / f".probe-{name}.json", {"at": time.time()})
                found.append(Health(name, "healthy", time.perf_counter() - started))
            except OSError as exc:
                found.append(Health(name, "down", time.perf_counter() - started, str(exc)))
        return found

    def start(self, job: Job) -> None:
        if job.datasets or job.storage or job.notify:
            raise JobRefused("the local executor downloads no datasets, mounts no storage and sends no mail "
                             "(those sidecars run on Nomad): leave datasets, storage and notify out")
        if job.datacenter not in self.datacenters:
            raise JobRefused(f"no datacenter {job.datacenter!r} here")
        directory = self.jobs_dir / job.identifier
        with self._lock:
            if directory.exists() and (self._alive(directory) or (directory / "status.json").exists()):
                return  # a replayed start: the job runs, or ran
            (directory / "work").mkdir(parents=True, exist_ok=True)
            command = job.command or self._runtime(job.image)
            ports = {label: _free_port(self.host) for label in job.endpoints}
            gpus = self._free_gpus(job)
            write_json(directory / "limits.json", {"memory_mb": job.resources.memory_mb})
            write_json(directory / "job.json", {
                "identifier": job.identifier, "vo": job.vo, "kind": job.kind, "datacenter": job.datacenter,
                "command": command, "ports": ports, "gpus": gpus, "resources": job.resources.__dict__,
                "urls": {label: f"http://{self.host}:{port}/" for label, port in ports.items()}})
            environment = {**os.environ, "AI4KG_DEPLOYMENT": job.identifier, "AI4KG_MODULE": job.module,
                           "AI4KG_TITLE": job.title, "CUDA_VISIBLE_DEVICES": ",".join(map(str, gpus)),
                           **{f"PORT_{label}": str(port) for label, port in ports.items()}}
            if ports:
                environment["PORT"] = str(next(iter(ports.values())))
            with open(directory / "output.log", "ab") as output:
                runner = subprocess.Popen([sys.executable, "-m", "ai4kg.adapters.local_runner", str(directory), "--",
                                           *command], stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                                          env=environment, start_new_session=True)
            self._children[job.identifier] = runner
            deadline = time.monotonic() + 10
            while not (directory / "runner.json").exists() and runner.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)

    def stop(self, identifier: str, vo: str) -> bool:
        directory = self.jobs_dir / identifier
        if not directory.exists():
            return False
        (directory / "stop-requested").touch()
        pid = self._runner_pid(directory)
        if pid is not None and self._alive(directory):
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_S
            while self._alive(directory) and time.monotonic() < deadline:
                time.sleep(0.05)
            if self._alive(directory):
                _signal_group(pid, signal.SIGKILL)
                while self._alive(directory) and time.monotonic() < deadline + 5:
                    time.sleep(0.05)
        runner = self._children.get(identifier)
        if runner is not None:  # ours: collect it (its lock goes a moment before the process does)
            try:
                runner.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._reap()
        return True

    def observe(self) -> dict[str, Observed]:
        self._reap()
        found = {}
        for directory in sorted(self.jobs_dir.iterdir()):
            if not directory.is_dir() or not (directory / "job.json").exists():
                continue
            job = json.loads((directory / "job.json").read_text("utf-8"))
            found[job["identifier"]] = self._observe(directory, job)
        return found

    # -- helpers ------------------------------------------------------------------------------------
    def _observe(self, directory: Path, job: dict) -> Observed:
        identifier, datacenter, vo = job["identifier"], job["datacenter"], job["vo"]
        if self._alive(directory):
            urls = job["urls"]
            answering = all(_accepts(self.host, port) for port in job["ports"].values())
            return Observed(identifier, "running" if answering else "starting", datacenter, vo,
                            urls if answering else {}, "")
        status = _read_json(directory / "status.json")
        if (directory / "stop-requested").exists():
            return Observed(identifier, "stopped", datacenter, vo, {}, "stopped on request")
        if status is None:
            if not (directory / "runner.json").exists() and identifier in self._children \
                    and self._children[identifier].poll() is None:
                return Observed(identifier, "starting", datacenter, vo, {}, "")
            return Observed(identifier, "failed", datacenter, vo, {}, "the job's runner ended without a word "
                                                                       "(killed, or the machine restarted)")
        if status.get("exit_code") == 0:
            return Observed(identifier, "completed", datacenter, vo, {}, "the process exited with status 0")
        if status.get("signal"):
            return Observed(identifier, "failed", datacenter, vo, {}, f"the process was killed by signal {status['signal']}")
        return Observed(identifier, "failed", datacenter, vo, {},
                        status.get("error") or f"the process exited with status {status.get('exit_code')}")

    def _runtime(self, image: str) -> list[str]:
        repository = image.rsplit("@", 1)[0]
        repository = repository.rsplit(":", 1)[0] if ":" in repository.rsplit("/", 1)[-1] else repository
        command = self.runtimes.get(repository) or self.runtimes.get("*")
        if not command:
            raise JobRefused(f"no local runtime for the image {image} (see AI4KG_LOCAL_RUNTIMES)")
        return list(command)

    def _free_gpus(self, job: Job) -> list[int]:
        """GPU indices of the job's datacenter not given to another live job (placement has
        checked that enough are free)."""
        if not job.resources.gpu:
            return []
        taken: set[int] = set()
        for directory in self.jobs_dir.iterdir():
            spec = _read_json(directory / "job.json") if directory.is_dir() else None
            if spec and spec["datacenter"] == job.datacenter and self._alive(directory):
                taken.update(spec.get("gpus", []))
        total = self.datacenters[job.datacenter].gpu
        free = [index for index in range(total) if index not in taken]
        return free[:job.resources.gpu]

    @staticmethod
    def _alive(directory: Path) -> bool:
        """Whether a runner holds the job's lock (taken and given back at once when none does)."""
        path = directory / "lock"
        if not path.exists():
            return False
        with open(path, "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(lock, fcntl.LOCK_UN)
            return False

    @staticmethod
    def _runner_pid(directory: Path) -> int | None:
        runner = _read_json(directory / "runner.json")
        return runner.get("pid") if runner else None

    def _reap(self) -> None:
        for identifier, runner in list(self._children.items()):
            if runner.poll() is not None:
                del self._children[identifier]


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text("utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _signal_group(pid: int, number: int) -> None:
    """Signal the runner's session (the runner and its command)."""
    try:
        os.killpg(pid, number)
    except (ProcessLookupError, PermissionError):
        pass
