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

`NomadExecutor` is the platform's `Executor` (workloads/executor.py) over these calls: a `Job`
becomes a `DeploymentSpec` in the VO's namespace, every job the platform manages is read back in one
job list (its meta says it is the platform's), and the datacenters' capacity and health come from
Nomad's node list.
"""

from __future__ import annotations

import copy
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import nomad
import nomad.api.exceptions as nomad_errors
import requests

from ..workloads.executor import Health, Job, JobRefused, Observed, Resources, Status

T = TypeVar("T")
log = logging.getLogger(__name__)

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
    # federated: a federation's Flower SuperLink, a service until its federation ends
    "federated": {"job": {"Type": "service", "Priority": 50}, "serves": True,
                  "group": {"RestartPolicy": {"Attempts": 3, "Interval": 1800_000_000_000,
                                              "Delay": 15_000_000_000, "Mode": "fail"}}},
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
    # after the job ends, a mail to whoever asked for it (the mail sender of ai4os/docker-mail: DEST,
    # SUBJECT and BODY in its environment; Nomad fills in the ${NOMAD_...} values)
    "notification": {"Name": "notify", "Driver": "docker",
                     "Lifecycle": {"Hook": "poststop", "Sidecar": False},
                     "Config": {"image": "sftobias/mail-sender:latest"},
                     "Env": {"SUBJECT": "[ai4kg] deployment ${NOMAD_JOB_ID} has ended",
                             "BODY": "Your deployment ${NOMAD_JOB_ID} (${NOMAD_META_title}) has ended. "
                                     "Its status and history are on the platform."},
                     "Resources": {"CPU": 100, "MemoryMB": 128}},
}

IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
NAMESPACE = re.compile(r"^[A-Za-z0-9-]{1,128}$")   # Nomad's rule for namespace names
LABEL = re.compile(r"^[A-Za-z0-9_]{1,64}$")        # a port label: also the name of NOMAD_PORT_<label>
DOI = re.compile(r"^10\.\d{4,9}/\S+$")
STORAGE = re.compile(r"^[A-Za-z0-9_-]+:\S*$")        # an rclone remote:path
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


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
    notify_email: str | None = None
    """who gets a mail when the job ends (the notification sidecar)"""
    module: str | None = None
    """the catalogue's module (or tool) it runs: the job's meta `ai4kg.module`, so an operator looking
    at Nomad sees what a job is without asking the platform"""
    secrets: tuple[str, ...] = ()
    """names of the files the job's Nomad Variable (`variable_path`) holds: each is rendered into the
    task's secrets directory, and one named *.env into its environment (KEY=VALUE lines)"""


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
    if spec.notify_email is not None and not EMAIL.match(spec.notify_email):
        raise _invalid("notify_email", "must be an e-mail address", spec.notify_email)
    if spec.storage is not None and not STORAGE.match(spec.storage):
        raise _invalid("storage", "must be an rclone remote:path", spec.storage)
    if spec.module is not None and not isinstance(spec.module, str):
        raise _invalid("module", "must be a string (Nomad's meta values are strings)", spec.module)
    for name in spec.secrets:
        if not SECRET_NAME.match(name):
            raise _invalid("secrets", "file names must be 1-128 letters, digits, '.', '_' or '-'", name)


SECRET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def variable_path(job_id: str) -> str:
    """The Nomad Variable a job's tasks may read without any policy (Nomad's workload identity)."""
    return f"nomad/jobs/{job_id}"


def variable_key(name: str) -> str:
    """A file name as a Variable item key (letters, digits and '_', what templates can name)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def secret_templates(job_id: str, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Templates rendering each secret file from the job's Variable into the secrets directory
    (never into the job's definition, which anyone reading the namespace's jobs sees)."""
    templates = []
    for name in names:
        body = f'{{{{ with nomadVar "{variable_path(job_id)}" }}}}{{{{ .{variable_key(name)} }}}}{{{{ end }}}}'
        templates.append({"EmbeddedTmpl": body, "DestPath": f"secrets/{name}", "ChangeMode": "restart",
                          "Perms": "0600", "Envvars": name.endswith(".env")})
    return templates


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
    if spec.secrets:
        main["Templates"] = secret_templates(spec.identifier, spec.secrets)
    tasks = [main]
    if spec.dataset_doi:
        sidecar = copy.deepcopy(SIDECARS["dataset"])
        sidecar["Env"]["DATASET_DOI"] = spec.dataset_doi
        tasks.append(sidecar)
    if spec.storage:
        sidecar = copy.deepcopy(SIDECARS["storage"])
        sidecar["Config"]["args"][1] = spec.storage
        tasks.append(sidecar)
    if spec.notify_email:
        sidecar = copy.deepcopy(SIDECARS["notification"])
        sidecar["Env"]["DEST"] = spec.notify_email
        tasks.append(sidecar)
    group: dict[str, Any] = {"Name": "usergroup", "Count": 1, "Tasks": tasks,
                             "EphemeralDisk": {"SizeMB": spec.disk_mb}, **copy.deepcopy(kind["group"])}
    if kind["serves"] and spec.endpoints:
        group["Networks"] = [{"DynamicPorts": [{"Label": label, "To": port} for label, port in spec.endpoints.items()]}]
    meta = {"owner": spec.owner, "title": spec.title, "description": spec.description, "ai4kg.kind": spec.kind}
    if spec.module:
        meta["ai4kg.module"] = spec.module
    job = {"ID": spec.identifier, "Name": spec.identifier, "Namespace": namespace, **kind["job"],
           "Datacenters": list(spec.datacenters), "Meta": meta, "TaskGroups": [group]}
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

    def put_variable(self, path: str, items: dict[str, str], namespace: str) -> None:
        """Write (replace) a Nomad Variable."""
        self._call(f"write variable {path}", lambda: self._nomad.variable.create_variable(
            path, {"Namespace": namespace, "Path": path, "Items": items}, namespace=namespace))

    def delete_variable(self, path: str, namespace: str) -> None:
        """Remove a Nomad Variable (none there: nothing to do)."""
        try:
            self._call(f"delete variable {path}", lambda: self._nomad.variable.delete_variable(path, namespace=namespace))
        except NomadRejected as exc:
            if exc.status != 404:
                raise

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
        """The job's allocations (Nomad's list entries); none when the job is not there."""
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
        """The job list entries (with their meta and `JobSummary`) in `namespace`, or in every namespace the
        token may list."""
        return self._call("list jobs", lambda: self._nomad.jobs.get_jobs(namespace=namespace, meta=True))

    def nodes(self, datacenter: str | None = None, resources: bool = False) -> list[dict[str, Any]]:
        """The client nodes (Nomad's list entries), of one datacenter or all; with `resources`, each with its
        `NodeResources` and `ReservedResources`. The datacenter is filtered by the server (a filter
        expression, Nomad >= 1.2) and again here, for a server that ignores the filter."""
        expression = None if datacenter is None else f'Datacenter == "{_quoted(datacenter)}"'
        what = "list the nodes" + ("" if datacenter is None else f" of datacenter {datacenter}")
        found = self._call(what, lambda: self._nomad.nodes.get_nodes(filter_=expression, resources=resources or None))
        return [n for n in found if datacenter is None or n.get("Datacenter") == datacenter]


def _quoted(text: str) -> str:
    """`text` inside a double-quoted string of a Nomad filter expression."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


MHZ_PER_CORE = 1000
"""A request asks for cores; Nomad's `Resources.CPU` is MHz of CPU time. One core is asked as 1000
MHz (a share of the node's `CpuShares`, which is cores x clock), not pinned with `Cores`: a job may
burst on an idle node, and nodes of any clock take it. The same figure turns a node's `CpuShares`
into cores where Nomad gives no `TotalCpuCores`."""
SERVING_KINDS = frozenset(kind for kind, template in KINDS.items() if template["serves"])
TRANSIENT_REFUSALS = frozenset({401, 403, 408, 429})
"""4xx answers that say nothing against the job: the platform's token lacks a right (the operator
fixes it), a timeout, too many requests. The start is tried again instead of failing the deployment."""
SUMMARY_COUNTS = ("Queued", "Starting", "Running", "Complete", "Failed", "Lost", "Unknown")
"""The allocation counts of a task group in a job's `JobSummary.Summary`."""


class NomadExecutor:
    """The platform's workload manager on a Nomad cluster (the `Executor` of workloads/executor.py).

    Each deployment is a Nomad job of the same ID in its VO's namespace, on the one datacenter the
    platform placed it on; the job's meta `ai4kg.kind` marks it as the platform's, so `observe` reads
    every such job from one job list, whatever the namespace, and leaves other jobs alone.
    """

    name = "nomad"

    def __init__(self, workloads: NomadWorkloads, datacenters: list[str], slow_s: float = 2.0,
                 capacity_ttl_s: float = 5.0):
        """`datacenters`: the Nomad datacenters the platform places on. `slow_s`: a probe answered
        later than this says `slow`. `capacity_ttl_s`: how long a reading of the nodes' capacity
        serves (the dispatcher asks for it once per queued deployment)."""
        if not datacenters:
            raise ValueError("NomadExecutor needs at least one datacenter to place deployments on")
        self.workloads = workloads
        self.datacenters = list(dict.fromkeys(datacenters))
        self.slow_s = slow_s
        self.capacity_ttl_s = capacity_ttl_s
        self._urls: dict[tuple[str, str], tuple[tuple[int, int], dict[str, str]]] = {}
        """(namespace, job ID) -> (the job's version, its URLs): see `_urls_of`"""
        self._capacity: tuple[float, dict[str, Resources | None]] | None = None
        self._lock = threading.Lock()

    # -- the Executor protocol -----------------------------------------------------------------------
    def start(self, job: Job) -> None:
        """Register the job, unless Nomad runs (or is placing) it already. A job that exists stopped or
        dead is registered again, which Nomad takes as a new version of it."""
        spec = self.spec_of(job)
        namespace = self.workloads.namespace(job.vo)
        try:
            job_spec(spec, namespace)  # a spec that can never run is refused before Nomad is asked
        except ValueError as exc:
            raise JobRefused(str(exc)) from None
        existing = self.workloads.job(job.identifier, namespace)
        if existing is not None and not existing.get("Stop") and existing.get("Status") != "dead":
            return  # a replayed start: Nomad runs it (or is placing it)
        try:
            if job.secrets_from:  # the secrets first: the job's templates wait for nothing else
                self.workloads.put_variable(variable_path(job.identifier), _secret_items(job.secrets_from), namespace)
            self.workloads.register(spec)
        except NomadRejected as exc:
            if exc.status in TRANSIENT_REFUSALS:
                raise
            raise JobRefused(f"Nomad refused job {job.identifier} in namespace {namespace} with HTTP "
                             f"{exc.status}: {exc.message}") from None

    def stop(self, identifier: str, vo: str) -> bool:
        """Stop the job; Nomad keeps it (no purge), so it is still seen as `stopped` and its history
        can be read. False when Nomad has no such job in the VO's namespace."""
        namespace = self.workloads.namespace(vo)
        stopped = self.workloads.stop(identifier, namespace, purge=False)
        self.workloads.delete_variable(variable_path(identifier), namespace)  # its secrets go with it
        self._urls.pop((namespace, identifier), None)
        return stopped

    def observe(self) -> dict[str, Observed]:
        """Every platform job of every namespace, from one job list. Only running service jobs cost more
        calls (their allocation, for the URLs), and only when the job changed since the last look."""
        entries = self.workloads.jobs("*")
        vos = {namespace: vo for vo, namespace in self.workloads.namespaces.items()}
        previous, fresh = self._urls, {}
        found: dict[str, Observed] = {}
        for entry in entries:
            kind = (entry.get("Meta") or {}).get("ai4kg.kind")
            if not kind:
                continue  # not the platform's
            identifier, namespace = entry["ID"], entry.get("Namespace") or "default"
            status, detail = job_status(entry)
            serves = status == "running" and kind in SERVING_KINDS
            urls = self._urls_of(entry, namespace, previous, fresh) if serves else {}
            datacenters = entry.get("Datacenters") or [None]
            seen = Observed(identifier, status, datacenters[0], vos.get(namespace, namespace), urls, detail)
            other = found.get(identifier)
            # the same ID in two namespaces (a VO moved to another namespace): the one that runs counts
            if other is None or (other.status not in ("starting", "running") and status in ("starting", "running")):
                found[identifier] = seen
        self._urls = fresh
        return found

    def capacity(self) -> dict[str, Resources | None]:
        """Per datacenter, the sum of its schedulable nodes (ready, not draining, eligible): cores
        (`TotalCpuCores`, or `CpuShares` / MHZ_PER_CORE), `MemoryMB`, healthy nvidia GPUs, `DiskMB`.
        The nodes' reservations for their own system are not taken off: Nomad queues what does not
        fit. None (unknown) for every datacenter when Nomad does not answer, and for a datacenter
        with no schedulable node now: all of it down or drained says nothing of what it has, and a
        request must not be refused as too big for it (the probe keeps placement away from it)."""
        with self._lock:
            if self._capacity is not None and time.monotonic() - self._capacity[0] < self.capacity_ttl_s:
                return dict(self._capacity[1])
        try:
            nodes = self.workloads.nodes(resources=True)
        except (NomadUnavailable, NomadRejected) as exc:
            log.warning("the capacity of the Nomad datacenters is unknown: %s", exc)
            return {dc: None for dc in self.datacenters}
        totals: dict[str, Resources | None] = {}
        for node in nodes:
            datacenter = node.get("Datacenter")
            if datacenter not in self.datacenters or not schedulable(node):
                continue
            held, total = node_resources(node), totals.get(datacenter, Resources())
            # a node that does not say what it has (no NodeResources): the datacenter's total is unknown
            totals[datacenter] = None if held is None or total is None else total + held
        totals = {dc: totals.get(dc) for dc in self.datacenters}
        with self._lock:
            self._capacity = (time.monotonic(), totals)
        return dict(totals)

    def probe(self) -> list[Health]:
        """Each datacenter by one timed node list: `down` when Nomad does not answer or no node of it
        can take a job, `slow` when the answer took longer than `slow_s`, else `healthy`."""
        found = []
        for datacenter in self.datacenters:
            started = time.perf_counter()
            try:
                nodes = self.workloads.nodes(datacenter)
            except (NomadUnavailable, NomadRejected) as exc:
                found.append(Health(datacenter, "down", time.perf_counter() - started, str(exc)))
                continue
            latency = time.perf_counter() - started
            ready = [n for n in nodes if schedulable(n)]
            if not ready:
                found.append(Health(datacenter, "down", latency, f"Nomad has no ready, eligible node in datacenter "
                                                                 f"{datacenter} ({len(nodes)} known)"))
            elif latency > self.slow_s:
                found.append(Health(datacenter, "slow", latency, f"Nomad listed the nodes of datacenter {datacenter} "
                                                                 f"in {latency:.1f} s (limit {self.slow_s:g} s)"))
            else:
                found.append(Health(datacenter, "healthy", latency, f"{len(ready)} of {len(nodes)} nodes ready"))
        return found

    # -- helpers ------------------------------------------------------------------------------------
    @staticmethod
    def spec_of(job: Job) -> DeploymentSpec:
        """The Nomad deployment of a platform job (units: see the module's docstring and MHZ_PER_CORE)."""
        if len(job.datasets) > 1:
            raise JobRefused(f"the Nomad job template downloads one dataset (one DOI for its dataset sidecar); "
                             f"{len(job.datasets)} were asked: {', '.join(job.datasets)}")
        return DeploymentSpec(
            identifier=job.identifier, kind=job.kind, vo=job.vo, owner=job.owner, image=job.image, title=job.title,
            description=job.description, command=None if job.command is None else list(job.command),
            cpu=job.resources.cpu * MHZ_PER_CORE, memory_mb=job.resources.memory_mb, gpu=job.resources.gpu,
            gpu_model=job.gpu_model, disk_mb=job.resources.disk_mb, datacenters=[job.datacenter],
            endpoints=dict(job.endpoints), dataset_doi=job.datasets[0] if job.datasets else None,
            storage=job.storage, notify_email=job.notify, module=job.module or None,
            secrets=tuple(sorted(p.name for p in Path(job.secrets_from).iterdir() if p.is_file()))
            if job.secrets_from else ())

    def _urls_of(self, entry: dict[str, Any], namespace: str,
                 previous: dict[tuple[str, str], tuple[tuple[int, int], dict[str, str]]],
                 fresh: dict[tuple[str, str], tuple[tuple[int, int], dict[str, str]]]) -> dict[str, str]:
        """The running job's URLs, read from its allocation only when the job is new to the cache or
        changed: a new version (`JobModifyIndex`) or an allocation that changed state
        (`JobSummary.ModifyIndex`: a rescheduled allocation gets other ports). When the read fails,
        the URLs last read serve, and the next look tries again."""
        key = (namespace, entry["ID"])
        version = (entry.get("JobModifyIndex") or 0, (entry.get("JobSummary") or {}).get("ModifyIndex") or 0)
        cached = previous.get(key)
        if cached is not None and cached[0] == version:
            fresh[key] = cached
            return cached[1]
        try:
            endpoints = self.workloads.endpoints(entry["ID"], namespace)
        except (NomadUnavailable, NomadRejected) as exc:
            log.warning("the URLs of Nomad job %s (namespace %s) are unknown for now: %s", entry["ID"], namespace, exc)
            if cached is not None:
                fresh[key] = cached
                return cached[1]
            return {}
        urls = {label: _url(address) for label, address in endpoints.items()}
        if urls:  # none yet (an allocation between two states): read again next time
            fresh[key] = (version, urls)
        return urls


def job_status(entry: dict[str, Any]) -> tuple[Status, str]:
    """The platform's status of an entry of Nomad's job list, and why, from its `Stop` flag, `Status`
    (pending, running, dead) and the allocation counts of its `JobSummary`, summed over its task groups."""
    counts = dict.fromkeys(SUMMARY_COUNTS, 0)
    for group in ((entry.get("JobSummary") or {}).get("Summary") or {}).values():
        for name in SUMMARY_COUNTS:
            counts[name] += int((group or {}).get(name) or 0)
    said = (entry.get("StatusDescription") or "").strip()
    if entry.get("Stop"):
        return "stopped", said or "the Nomad job was stopped"
    if counts["Running"] > 0:
        return "running", ""
    if entry.get("Status") == "dead":
        if counts["Failed"] or counts["Lost"]:
            return "failed", said or (f"the Nomad job is dead: {counts['Failed']} allocation(s) failed, "
                                      f"{counts['Lost']} lost")
        if counts["Complete"]:
            return "completed", said or f"the Nomad job is dead: {counts['Complete']} allocation(s) completed"
    waiting = [f"{counts[name]} {name.lower()}" for name in ("Queued", "Starting", "Unknown") if counts[name]]
    return "starting", f"Nomad job {entry.get('Status') or 'pending'}" + (f": {', '.join(waiting)}" if waiting else "")


def schedulable(node: dict[str, Any]) -> bool:
    """Whether Nomad places new allocations on the node: ready, not draining, eligible."""
    return (node.get("Status") == "ready" and not node.get("Drain")
            and node.get("SchedulingEligibility", "eligible") == "eligible")


def node_resources(node: dict[str, Any]) -> Resources | None:
    """What a node has (a node list entry, listed with `resources=true`), or None when it does not say."""
    resources = node.get("NodeResources")
    if not resources:
        return None
    cpu = resources.get("Cpu") or {}
    cores = int(cpu.get("TotalCpuCores") or 0) or int(cpu.get("CpuShares") or 0) // MHZ_PER_CORE
    gpus = sum(1 for device in resources.get("Devices") or []
               if device.get("Vendor") == "nvidia" and device.get("Type") == "gpu"
               for instance in device.get("Instances") or [] if instance.get("Healthy", True))
    return Resources(cpu=cores, memory_mb=int((resources.get("Memory") or {}).get("MemoryMB") or 0), gpu=gpus,
                     disk_mb=int((resources.get("Disk") or {}).get("DiskMB") or 0))


def _url(address: str) -> str:
    """`http://host:port/` of an endpoint's `host:port` (an IPv6 host in brackets)."""
    host, _, port = address.rpartition(":")
    return f"http://[{host}]:{port}/" if ":" in host and not host.startswith("[") else f"http://{host}:{port}/"


def _secret_items(folder: str) -> dict[str, str]:
    """The files of a secrets folder as a Variable's items (by `variable_key`)."""
    return {variable_key(p.name): p.read_text("utf-8") for p in sorted(Path(folder).iterdir()) if p.is_file()}
