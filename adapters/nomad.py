"""Deployments on HashiCorp Nomad: the job a deployment becomes, and the calls that run it.

The platform it follows runs every workload as a Nomad job: one Nomad namespace per VO, the job's
meta carrying owner/title/description, a docker task for the user's container, and prestart tasks
that mount the user's storage and download a dataset. This adapter does the same, with two changes:

- the job is built from data (`KINDS`, `SIDECARS`: one template per kind and per sidecar), checked
  before it leaves (an error names the field, the rule and the value), and sent as the JSON job the
  HTTP API takes (`POST /v1/jobs`) rather than rendered from HCL text;
- the dataset sidecar fails when the download fails (`set -euo pipefail`, and an empty download is
  a failure too), so the allocation fails instead of starting the user's task on no data (the
  upstream script always exits 0). Values reach the script through its environment, never pasted
  into it, and the script holds no `${`, which Nomad would interpolate.

Units: `cpu` is MHz (Nomad's `Resources.CPU`, not `Cores`), `memory_mb` MiB (`Resources.MemoryMB`),
`disk_mb` MiB (the group's `EphemeralDisk.SizeMB`), `gpu` a count of `nvidia/gpu` devices.

The calls go through python-nomad (`nomad.Nomad`); its exceptions never leave this module:
`NomadUnavailable` (no answer, a 5xx, an answer that is not Nomad's) and `NomadRejected` (a 4xx,
with Nomad's plain-text message). Where `token` is None, python-nomad reads `NOMAD_TOKEN`.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import nomad
import nomad.api.exceptions as nomad_errors
import requests

T = TypeVar("T")

DATASET_DIR = "/alloc/data/dataset"
"""Where the dataset sidecar writes (`/alloc` is the allocation directory every task of it shares)."""
STORAGE_DIR = "/alloc/storage"
"""Where the storage sidecar mounts the user's storage."""

KINDS: dict[str, dict[str, Any]] = {
    # kind -> the job fields it sets, and whether it serves ports (`endpoints`) or runs a command
    "module": {"job": {"Type": "service", "Priority": 50}, "serves": True,
               "group": {"RestartPolicy": {"Attempts": 3, "Interval": 1800_000_000_000,
                                           "Delay": 15_000_000_000, "Mode": "fail"}}},
    "tool": {"job": {"Type": "service", "Priority": 50}, "serves": True,
             "group": {"RestartPolicy": {"Attempts": 3, "Interval": 1800_000_000_000,
                                         "Delay": 15_000_000_000, "Mode": "fail"}}},
    # try-me: a short demo; the lowest priority, so it is the first preempted; never rescheduled
    "try-me": {"job": {"Type": "service", "Priority": 25}, "serves": True,
               "group": {"RestartPolicy": {"Attempts": 0, "Mode": "fail"},
                         "ReschedulePolicy": {"Attempts": 0, "Unlimited": False}}},
    # batch: runs its command to the end; a failed run is not restarted in place
    "batch": {"job": {"Type": "batch", "Priority": 40}, "serves": False,
              "group": {"RestartPolicy": {"Attempts": 0, "Mode": "fail"},
                        "ReschedulePolicy": {"Attempts": 1, "Interval": 86400_000_000_000, "Unlimited": False}}},
}

DATASET_SCRIPT = """\
set -euo pipefail
mkdir -p "$DATASET_DIR"
echo "downloading dataset $DATASET_DOI into $DATASET_DIR" >&2
datahugger "$DATASET_DOI" "$DATASET_DIR"
if [ -z "$(ls -A "$DATASET_DIR")" ]; then
  echo "dataset $DATASET_DOI: the download wrote nothing" >&2
  exit 1
fi
"""
"""The dataset sidecar's script: any failed step fails the task (and so the allocation)."""

SIDECARS: dict[str, dict[str, Any]] = {
    "dataset": {"Name": "dataset-download", "Driver": "docker",
                "Lifecycle": {"Hook": "prestart", "Sidecar": False},
                "Config": {"image": "ghcr.io/ai4os/docker-zenodo:latest", "command": "bash",
                           "args": ["-c", DATASET_SCRIPT]},
                "Env": {"DATASET_DIR": DATASET_DIR},
                "Resources": {"CPU": 500, "MemoryMB": 512}},
    # rclone mounts the storage (an rclone remote:path; its credentials are the secret store's job)
    "storage": {"Name": "storage-mount", "Driver": "docker",
                "Lifecycle": {"Hook": "prestart", "Sidecar": True},
                "Config": {"image": "rclone/rclone:1.68", "privileged": True, "devices": [{"host_path": "/dev/fuse"}],
                           "args": ["mount", "", STORAGE_DIR, "--allow-non-empty", "--vfs-cache-mode", "full"]},
                "Resources": {"CPU": 250, "MemoryMB": 256}},
}

IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
NAMESPACE = re.compile(r"^[A-Za-z0-9-]{1,128}$")   # Nomad's rule for namespace names
LABEL = re.compile(r"^[A-Za-z0-9_]{1,64}$")        # a port label: also the name of NOMAD_PORT_<label>
DOI = re.compile(r"^10\.\d{4,9}/\S+$")
STORAGE = re.compile(r"^[A-Za-z0-9_-]+:\S*$")        # an rclone remote:path


class NomadUnavailable(Exception):
    """The Nomad server cannot be reached, failed (5xx), or did not answer as Nomad does."""


class NomadRejected(Exception):
    """The Nomad server refused the request (4xx): `status` and Nomad's `message`."""

    def __init__(self, address: str, status: int, message: str):
        super().__init__(f"the Nomad server at {address} refused the request with HTTP {status}: {message}")
        self.address, self.status, self.message = address, status, message


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment, as the control plane asks for it (units: see the module's docstring)."""

    identifier: str
    """the Nomad job ID"""
    kind: str
    """module | tool | try-me (Nomad service jobs) or batch (a Nomad batch job)"""
    vo: str
    """the VO, which is the Nomad namespace unless `job_spec` is given another"""
    owner: str
    image: str
    title: str = ""
    description: str = ""
    command: list[str] | None = None
    """the container's command and arguments; required for batch, optional otherwise"""
    cpu: int = 1000
    """MHz"""
    memory_mb: int = 2000
    gpu: int = 0
    gpu_model: str | None = None
    """when set (and gpu > 0), only GPUs of this model (Nomad's `${device.model}`)"""
    disk_mb: int = 1000
    datacenters: list[str] = field(default_factory=lambda: ["*"])
    endpoints: dict[str, int] = field(default_factory=dict)
    """port label -> the container's port, for the service kinds"""
    dataset_doi: str | None = None
    storage: str | None = None
    """an rclone remote:path, mounted at STORAGE_DIR"""


def _invalid(name: str, rule: str, value: Any) -> ValueError:
    return ValueError(f"deployment field {name!r} {rule}: {value!r}")


def _check(spec: DeploymentSpec, namespace: str) -> None:
    if not IDENTIFIER.match(spec.identifier):
        raise _invalid("identifier", "must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit",
                       spec.identifier)
    if spec.kind not in KINDS:
        raise _invalid("kind", f"must be one of {', '.join(KINDS)}", spec.kind)
    if not NAMESPACE.match(namespace):
        raise _invalid("vo", "must be a Nomad namespace name (letters, digits and '-'), or be given one", namespace)
    if not spec.owner:
        raise _invalid("owner", "is required", spec.owner)
    if not spec.image or any(c.isspace() for c in spec.image):
        raise _invalid("image", "must be a container image reference", spec.image)
    for name in ("cpu", "memory_mb", "disk_mb"):
        if not isinstance(getattr(spec, name), int) or getattr(spec, name) <= 0:
            raise _invalid(name, "must be a positive integer", getattr(spec, name))
    if not isinstance(spec.gpu, int) or spec.gpu < 0:
        raise _invalid("gpu", "must be a count of GPUs (0 or more)", spec.gpu)
    if not spec.datacenters or not all(isinstance(d, str) and d for d in spec.datacenters):
        raise _invalid("datacenters", "must name at least one datacenter ('*' for any)", spec.datacenters)
    if spec.command is not None and (not spec.command or not all(isinstance(a, str) for a in spec.command)):
        raise _invalid("command", "must be a non-empty list of strings", spec.command)
    if spec.kind == "batch":
        if spec.command is None:
            raise _invalid("command", "is required for a batch job", spec.command)
        if spec.endpoints:
            raise _invalid("endpoints", "are for service kinds; a batch job serves nothing", spec.endpoints)
    for label, port in spec.endpoints.items():
        if not LABEL.match(label):
            raise _invalid("endpoints", "labels must be 1-64 letters, digits or '_'", label)
        if not isinstance(port, int) or not 0 < port < 65536:
            raise _invalid("endpoints", "ports must be 1-65535", port)
    if spec.dataset_doi is not None and not DOI.match(spec.dataset_doi):
        raise _invalid("dataset_doi", "must be a DOI (10.<registrant>/<suffix>)", spec.dataset_doi)
    if spec.storage is not None and not STORAGE.match(spec.storage):
        raise _invalid("storage", "must be an rclone remote:path", spec.storage)


def job_spec(spec: DeploymentSpec, namespace: str | None = None) -> dict[str, Any]:
    """The Nomad job for `spec`, as `POST /v1/jobs` takes it (`{"Job": {...}}`), in `namespace`
    (default: the VO). Raises ValueError naming the field, the rule and the value."""
    namespace = spec.vo if namespace is None else namespace
    _check(spec, namespace)
    kind = KINDS[spec.kind]
    resources: dict[str, Any] = {"CPU": spec.cpu, "MemoryMB": spec.memory_mb}
    if spec.gpu:
        constraints = [{"LTarget": "${device.vendor}", "Operand": "=", "RTarget": "nvidia"}]
        if spec.gpu_model:
            constraints.append({"LTarget": "${device.model}", "Operand": "=", "RTarget": spec.gpu_model})
        resources["Devices"] = [{"Name": "nvidia/gpu", "Count": spec.gpu, "Constraints": constraints}]
    config: dict[str, Any] = {"image": spec.image}
    if spec.command:
        config["command"], config["args"] = spec.command[0], list(spec.command[1:])
    if kind["serves"] and spec.endpoints:
        config["ports"] = list(spec.endpoints)
    main = {"Name": "main", "Driver": "docker", "Config": config, "Resources": resources,
            "Env": {"DATASET_DIR": DATASET_DIR, "STORAGE_DIR": STORAGE_DIR}}
    tasks = [main]
    if spec.dataset_doi:
        sidecar = copy.deepcopy(SIDECARS["dataset"])
        sidecar["Env"]["DATASET_DOI"] = spec.dataset_doi
        tasks.append(sidecar)
    if spec.storage:
        sidecar = copy.deepcopy(SIDECARS["storage"])
        sidecar["Config"]["args"][1] = spec.storage
        tasks.append(sidecar)
    group: dict[str, Any] = {"Name": "usergroup", "Count": 1, "Tasks": tasks,
                             "EphemeralDisk": {"SizeMB": spec.disk_mb}, **copy.deepcopy(kind["group"])}
    if kind["serves"] and spec.endpoints:
        group["Networks"] = [{"DynamicPorts": [{"Label": label, "To": port} for label, port in spec.endpoints.items()]}]
    job = {"ID": spec.identifier, "Name": spec.identifier, "Namespace": namespace, **kind["job"],
           "Datacenters": list(spec.datacenters),
           "Meta": {"owner": spec.owner, "title": spec.title, "description": spec.description,
                    "ai4kg.kind": spec.kind},
           "TaskGroups": [group]}
    return {"Job": job}


class NomadWorkloads:
    """Jobs on one Nomad cluster, through its HTTP API (python-nomad)."""

    def __init__(self, address: str, token: str | None = None, client: nomad.Nomad | None = None,
                 timeout: int = 10, namespaces: dict[str, str] | None = None):
        """`address`: the server's base URL (http://host:4646). `namespaces`: VO -> Nomad namespace
        where they differ (a VO such as vo.example.eu is no valid namespace name)."""
        self.address = address.rstrip("/")
        self.namespaces = dict(namespaces or {})
        self._nomad = client or nomad.Nomad(address=self.address, token=token, timeout=timeout,
                                            verify=self.address.startswith("https:"))

    def _call(self, what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except nomad_errors.BaseNomadException as exc:
            response = exc.nomad_resp
            if isinstance(response, requests.Response):
                message = (response.text or response.reason or "").strip()[:500]
                if 400 <= response.status_code < 500:
                    raise NomadRejected(self.address, response.status_code, message) from None
                raise NomadUnavailable(f"the Nomad server at {self.address} failed to {what}: "
                                       f"HTTP {response.status_code}: {message}") from None
            raise NomadUnavailable(f"the Nomad server at {self.address} does not answer ({what}): "
                                   f"{type(response).__name__}: {response}") from None
        except (requests.RequestException, ValueError) as exc:  # ValueError: a body that is no JSON
            raise NomadUnavailable(f"the Nomad server at {self.address} did not answer as Nomad does ({what}): "
                                   f"{type(exc).__name__}: {exc}") from None

    def namespace(self, vo: str) -> str:
        return self.namespaces.get(vo, vo)

    def register(self, spec: DeploymentSpec) -> str:
        """Register (or update) the job for `spec`: the ID of the evaluation Nomad starts."""
        job = job_spec(spec, self.namespace(spec.vo))
        answer = self._call(f"register job {spec.identifier}", lambda: self._nomad.jobs.register_job(job))
        return answer["EvalID"]

    def stop(self, job_id: str, namespace: str, purge: bool = False) -> bool:
        """Stop the job (and forget it, with `purge`): False when it is not there."""
        try:
            self._call(f"stop job {job_id}",
                       lambda: self._nomad.job.deregister_job(job_id, namespace=namespace, purge=purge or None))
        except NomadRejected as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def job(self, job_id: str, namespace: str) -> dict[str, Any] | None:
        """The job as Nomad has it, or None when it is not there."""
        try:
            return self._call(f"read job {job_id}", lambda: self._nomad.job.get_job(job_id, namespace=namespace))
        except NomadRejected as exc:
            if exc.status == 404:
                return None
            raise

    def status(self, job_id: str, namespace: str) -> str | None:
        """Nomad's status of the job (pending, running, dead), or None when it is not there."""
        job = self.job(job_id, namespace)
        return None if job is None else job.get("Status")

    def allocations(self, job_id: str, namespace: str) -> list[dict[str, Any]]:
        """The job's allocations (Nomad's stubs); none when the job is not there."""
        try:
            return self._call(f"list the allocations of job {job_id}",
                              lambda: self._nomad.job.get_allocations(job_id, namespace=namespace))
        except NomadRejected as exc:
            if exc.status == 404:
                return []
            raise

    def endpoints(self, job_id: str, namespace: str) -> dict[str, str]:
        """host:port per port label, from the job's running allocation (the newest); none when no
        allocation runs."""
        running = [a for a in self.allocations(job_id, namespace) if a.get("ClientStatus") == "running"]
        if not running:
            return {}
        newest = max(running, key=lambda a: a.get("CreateIndex", 0))
        allocation = self._call(f"read allocation {newest['ID']}",
                                lambda: self._nomad.allocation.get_allocation(newest["ID"]))
        shared = (allocation.get("AllocatedResources") or {}).get("Shared") or {}
        found: dict[str, str] = {}
        for port in shared.get("Ports") or []:        # Nomad >= 1.0
            found[port["Label"]] = f"{port.get('HostIP')}:{port['Value']}"
        for network in shared.get("Networks") or []:  # older servers: the group network's ports
            for port in (network.get("DynamicPorts") or []) + (network.get("ReservedPorts") or []):
                found.setdefault(port["Label"], f"{network.get('IP')}:{port['Value']}")
        return found

    def jobs(self, namespace: str = "*") -> list[dict[str, Any]]:
        """The job stubs (with their meta) in `namespace`, or in every namespace the token may list."""
        return self._call("list jobs", lambda: self._nomad.jobs.get_jobs(namespace=namespace, meta=True))
