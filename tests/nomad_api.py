"""A loopback stand-in for the part of Nomad's HTTP API that adapters/nomad.py uses (tests only).

No Nomad binary can run here, so this serves, with the paths, payloads, status codes and
plain-text errors that Nomad's API documentation gives:

- Jobs HTTP API (developer.hashicorp.com/nomad/api-docs/jobs): `GET /v1/jobs` (list stubs, each
  with its `JobSummary`: per task group the allocation counts Queued, Complete, Failed, Running,
  Starting, Lost, Unknown; `namespace`, `*` for all, `meta=true` adds Meta), `POST /v1/jobs` (create: {"Job": ...} ->
  {"EvalID", "EvalCreateIndex", "JobModifyIndex", ...}), `GET /v1/job/:job_id` (read),
  `DELETE /v1/job/:job_id` (stop; `purge=true` forgets it), `GET /v1/job/:job_id/allocations`
  (allocation stubs, without resources);
- Allocations HTTP API (api-docs/allocations): `GET /v1/allocation/:alloc_id` (read, with
  `AllocatedResources.Shared.Ports` and `.Networks`);
- Nodes HTTP API (api-docs/nodes): `GET /v1/nodes` (node stubs: Datacenter, Status ready/down,
  Drain, SchedulingEligibility; `resources=true` adds `NodeResources` (Cpu.CpuShares and
  .TotalCpuCores, Memory.MemoryMB, Disk.DiskMB, Devices with Vendor/Type/Name/Instances) and
  `ReservedResources`, as the Go API's `Node` struct has them; `filter` of the one form
  `Datacenter == "NAME"`, any other expression is answered 400);
- API overview (api-docs): the namespace is the `namespace` query parameter (default "default"),
  the ACL token the `X-Nomad-Token` header; errors are plain text with a 4xx/5xx status:
  400 for an invalid job, 403 "Permission denied" (or "ACL token not found") when ACLs are on,
  404 "job not found" / "alloc not found".

What it simplifies: allocations run on one client node (NODE_IP) whatever `nodes` the tests list,
scheduling is instant (a registered job gets at once one allocation per group count, in the
ClientStatus `new_allocations` says: "running", "pending", or "queued" for none placed), each
dynamic port is given a host port, no blocking queries, no evaluations to read, no regions. A job's
Status follows its allocations as Nomad derives it (running while one is not terminal, dead when all
are, pending while none was placed). Tests drive allocations with `set_allocations` (say a batch job
completes or fails), add nodes with `add_node`, slow a datacenter's node lists with `latency`, and
make every request answer a given status with `fail_with` (a server in trouble).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

NODE_IP = "10.0.0.7"
JOB_TYPES = {"service", "batch", "system", "sysbatch"}
SUMMARY_FIELD = {"pending": "Starting", "running": "Running", "complete": "Complete", "failed": "Failed",
                 "lost": "Lost", "unknown": "Unknown"}
"""An allocation's ClientStatus -> the count of its task group's summary it adds to."""
SUMMARY_COUNTS = ("Queued", "Complete", "Failed", "Running", "Starting", "Lost", "Unknown")
TERMINAL = {"complete", "failed", "lost"}
DATACENTER_FILTER = re.compile(r'^\s*Datacenter\s*==\s*"((?:[^"\\]|\\.)*)"\s*$')
TRUE = {"1", "t", "T", "TRUE", "true", "True"}
"""What Go's strconv.ParseBool takes as true (Nomad's boolean query parameters)."""


class NomadApi:
    """The state of the stand-in cluster, and the server serving it on 127.0.0.1 (`address`)."""

    def __init__(self, token: str | None = None):
        self.token = token
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}         # (namespace, id) -> job
        self.allocs: dict[str, dict[str, Any]] = {}                  # alloc id -> allocation
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []  # method, path, query
        self.tokens: list[str | None] = []                            # X-Nomad-Token per request
        self.fail_with: int | None = None
        self.new_allocations = "running"
        """the ClientStatus of a registered job's new allocations; "queued": none is placed"""
        self.queued: dict[tuple[str, str], dict[str, int]] = {}      # (namespace, id) -> group -> unplaced
        self.nodes: dict[str, dict[str, Any]] = {}                   # node id -> node
        self.variables: dict[tuple[str, str], dict[str, Any]] = {}   # (namespace, path) -> Nomad Variable
        self.latency: dict[str, float] = {}                          # datacenter -> seconds its node lists take
        self._index = itertools.count(10)
        self._ports = itertools.count(20000)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "NomadApi":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- the endpoints: each returns (status, body); a str body is a plain-text error ---

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: Any,
               body: bytes) -> tuple[int, Any]:
        self.requests.append((method, path, query))
        self.tokens.append(headers.get("X-Nomad-Token"))
        if path.rstrip("/") == "/v1/nodes" and method == "GET" and not self.fail_with:
            time.sleep(self._latency((query.get("filter") or [""])[0]))  # outside the lock: other calls go on
        if self.fail_with:
            return self.fail_with, "rpc error: No cluster leader"
        if self.token is not None:
            given = headers.get("X-Nomad-Token")
            if not given:
                return 403, "Permission denied"
            if given != self.token:
                return 403, "ACL token not found"
        namespace = (query.get("namespace") or ["default"])[0]
        parts = [unquote(p) for p in path.strip("/").split("/")]
        with self._lock:
            if parts == ["v1", "jobs"] and method == "GET":
                return 200, self._list(namespace, (query.get("meta") or ["false"])[0] in TRUE)
            if parts == ["v1", "nodes"] and method == "GET":
                return self._nodes((query.get("filter") or [""])[0], (query.get("resources") or ["false"])[0] in TRUE)
            if parts == ["v1", "jobs"] and method in ("POST", "PUT"):
                return self._register(namespace, body)
            if len(parts) == 3 and parts[:2] == ["v1", "job"]:
                job = self.jobs.get((namespace, parts[2]))
                if job is None:
                    return 404, "job not found"
                if method == "GET":
                    return 200, job
                if method == "DELETE":
                    return 200, self._stop(job, (query.get("purge") or ["false"])[0].lower() == "true")
            if len(parts) == 4 and parts[:2] == ["v1", "job"] and parts[3] == "allocations" and method == "GET":
                if (namespace, parts[2]) not in self.jobs:
                    return 404, "job not found"
                return 200, [_stub(a) for a in self.allocs.values()
                             if a["Namespace"] == namespace and a["JobID"] == parts[2]]
            if len(parts) > 2 and parts[:2] == ["v1", "var"]:
                return self._variable(method, namespace, "/".join(parts[2:]), body)
            if len(parts) == 3 and parts[:2] == ["v1", "allocation"] and method == "GET":
                alloc = self.allocs.get(parts[2])
                return (200, alloc) if alloc else (404, "alloc not found")
        if method == "GET":
            return 404, f"Invalid URL: {path}"
        return 405, "Invalid method"

    def _variable(self, method: str, namespace: str, path: str, body: bytes) -> tuple[int, Any]:
        """Variables (https://developer.hashicorp.com/nomad/api-docs/variables): PUT writes one (its
        Items: a map of strings), GET reads it, DELETE removes it (no body)."""
        key = (namespace, path)
        if method == "PUT":
            given = json.loads(body or b"{}")
            items = given.get("Items")
            if not isinstance(items, dict) or not items or not all(isinstance(v, str) for v in items.values()):
                return 400, "variable items must be a non-empty map of strings"
            index = next(self._index)
            self.variables[key] = {"Namespace": namespace, "Path": path, "Items": items, "CreateIndex": index,
                                   "ModifyIndex": index}
            return 200, self.variables[key]
        if method == "GET":
            return (200, self.variables[key]) if key in self.variables else (404, "variable not found")
        if method == "DELETE":
            self.variables.pop(key, None)
            return 200, ""
        return 405, "Invalid method"

    def _list(self, namespace: str, meta: bool) -> list[dict[str, Any]]:
        stubs = []
        for (ns, _), job in sorted(self.jobs.items()):
            if namespace in ("*", ns):
                stub = {k: job[k] for k in ("ID", "Name", "Namespace", "Type", "Priority", "Status", "Stop",
                                            "Datacenters", "CreateIndex", "ModifyIndex", "JobModifyIndex")}
                stub.update(ParentID="", StatusDescription="", JobSummary=self._summary(job))
                if meta:
                    stub["Meta"] = job.get("Meta") or {}
                stubs.append(stub)
        return stubs

    def _register(self, namespace: str, body: bytes) -> tuple[int, Any]:
        try:
            request = json.loads(body)
        except ValueError as exc:
            return 400, f"failed to decode the request body: {exc}"
        job = request.get("Job") if isinstance(request, dict) else None
        if not isinstance(job, dict):
            return 400, "Job must be specified"
        namespace = job.get("Namespace") or namespace
        errors = []
        if not job.get("ID"):
            errors.append("Missing job ID")
        elif " " in job["ID"]:
            errors.append("Job ID contains a space")
        if job.get("Type") not in JOB_TYPES:
            errors.append(f"Invalid job type: {job.get('Type')!r}")
        groups = job.get("TaskGroups")
        if not groups:
            errors.append("Missing job task groups")
        for group in groups or []:
            if not group.get("Tasks"):
                errors.append(f"Task group {group.get('Name')!r} has no tasks")
        if errors:
            return 400, f"{len(errors)} error(s) occurred:\n\n" + "\n".join(f"* {e}" for e in errors)
        index = next(self._index)
        previous = self.jobs.get((namespace, job["ID"]))
        stored = {**job, "Namespace": namespace, "Name": job.get("Name") or job["ID"], "Priority": job.get("Priority", 50),
                  "Datacenters": job.get("Datacenters") or ["*"], "Status": "running", "Stop": False,
                  "CreateIndex": previous["CreateIndex"] if previous else index, "ModifyIndex": index,
                  "JobModifyIndex": index, "Version": previous["Version"] + 1 if previous else 0}
        self.jobs[(namespace, job["ID"])] = stored
        for alloc in self.allocs.values():            # an update replaces the running allocations
            if alloc["Namespace"] == namespace and alloc["JobID"] == job["ID"]:
                alloc.update(ClientStatus="complete", DesiredStatus="stop")
        self.queued.pop((namespace, job["ID"]), None)
        for group in groups:
            for _ in range(group.get("Count", 1)):
                if self.new_allocations == "queued":
                    unplaced = self.queued.setdefault((namespace, job["ID"]), {})
                    unplaced[group["Name"]] = unplaced.get(group["Name"], 0) + 1
                else:
                    self._allocate(stored, group, index)
        self._derive_status(stored)
        return 200, {"EvalID": str(uuid.uuid4()), "EvalCreateIndex": index, "JobModifyIndex": index,
                     "Warnings": "", "Index": index, "LastContact": 0, "KnownLeader": True}

    def _allocate(self, job: dict[str, Any], group: dict[str, Any], index: int) -> None:
        alloc_id = str(uuid.uuid4())
        ports, networks = [], []
        for network in group.get("Networks") or []:
            dynamic = [{"Label": p["Label"], "Value": next(self._ports), "To": p.get("To", 0), "HostNetwork": "default"}
                       for p in network.get("DynamicPorts") or []]
            networks.append({"Mode": network.get("Mode", "host"), "IP": NODE_IP, "DynamicPorts": dynamic})
            ports += [{"Label": p["Label"], "Value": p["Value"], "To": p["To"], "HostIP": NODE_IP} for p in dynamic]
        self.allocs[alloc_id] = {
            "ID": alloc_id, "Name": f"{job['ID']}.{group['Name']}[0]", "Namespace": job["Namespace"],
            "NodeID": "node-1", "JobID": job["ID"], "TaskGroup": group["Name"], "DesiredStatus": "run",
            "ClientStatus": self.new_allocations, "CreateIndex": index, "ModifyIndex": index,
            "AllocatedResources": {"Shared": {"DiskMB": (group.get("EphemeralDisk") or {}).get("SizeMB", 300),
                                              "Networks": networks, "Ports": ports}},
            "TaskStates": {t["Name"]: {"State": "running" if self.new_allocations == "running" else "pending",
                                       "Failed": False} for t in group["Tasks"]},
        }

    def _stop(self, job: dict[str, Any], purge: bool) -> dict[str, Any]:
        index = next(self._index)
        key = (job["Namespace"], job["ID"])
        for alloc_id, alloc in list(self.allocs.items()):
            if (alloc["Namespace"], alloc["JobID"]) == key:
                if purge:
                    del self.allocs[alloc_id]
                else:
                    alloc.update(ClientStatus="complete", DesiredStatus="stop")
        self.queued.pop(key, None)
        if purge:
            del self.jobs[key]
        else:
            job.update(Stop=True, ModifyIndex=index, JobModifyIndex=index)
            self._derive_status(job)
        return {"EvalID": str(uuid.uuid4()), "EvalCreateIndex": index, "JobModifyIndex": index,
                "Index": index, "LastContact": 0, "KnownLeader": True}


    def _allocations_of(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        return [a for a in self.allocs.values() if (a["Namespace"], a["JobID"]) == (job["Namespace"], job["ID"])]

    def _derive_status(self, job: dict[str, Any]) -> None:
        """The job's Status as Nomad derives it: running while an allocation is not terminal, pending
        while some are unplaced (or none was made), dead when every one is terminal; a change of
        status is a change of the job (ModifyIndex), not of its spec (JobModifyIndex)."""
        allocations = self._allocations_of(job)
        if any(a["ClientStatus"] not in TERMINAL and a["DesiredStatus"] == "run" for a in allocations):
            status = "running"
        elif self.queued.get((job["Namespace"], job["ID"])) or not allocations:
            status = "dead" if job.get("Stop") else "pending"
        else:
            status = "dead"
        if job.get("Status") != status:
            job.update(Status=status, ModifyIndex=next(self._index))

    def _summary(self, job: dict[str, Any]) -> dict[str, Any]:
        """The job's `JobSummary`: per task group, its allocations counted by ClientStatus, and those
        not placed (Queued); its ModifyIndex moves whenever an allocation changes."""
        groups = {g["Name"]: dict.fromkeys(SUMMARY_COUNTS, 0) for g in job.get("TaskGroups") or []}
        allocations = self._allocations_of(job)
        for alloc in allocations:
            groups.setdefault(alloc["TaskGroup"], dict.fromkeys(SUMMARY_COUNTS, 0))
            groups[alloc["TaskGroup"]][SUMMARY_FIELD[alloc["ClientStatus"]]] += 1
        for group, count in self.queued.get((job["Namespace"], job["ID"]), {}).items():
            groups[group]["Queued"] += count
        return {"JobID": job["ID"], "Namespace": job["Namespace"], "Summary": groups,
                "Children": {"Pending": 0, "Running": 0, "Dead": 0}, "CreateIndex": job["CreateIndex"],
                "ModifyIndex": max([job["CreateIndex"], *(a["ModifyIndex"] for a in allocations)])}

    # --- what tests drive ---

    def set_allocations(self, job_id: str, client_status: str, namespace: str = "default") -> None:
        """Move the job's current allocations (those Nomad wants running) to `client_status`
        (pending, running, complete, failed, lost, unknown), as the client would report it."""
        assert client_status in SUMMARY_FIELD, client_status
        with self._lock:
            job = self.jobs[(namespace, job_id)]
            for alloc in self._allocations_of(job):
                if alloc["DesiredStatus"] == "run":
                    state = "dead" if client_status in TERMINAL else client_status
                    alloc.update(ClientStatus=client_status, ModifyIndex=next(self._index),
                                 TaskStates={name: {"State": state, "Failed": client_status == "failed"}
                                             for name in alloc["TaskStates"]})
            self._derive_status(job)

    def add_node(self, datacenter: str, status: str = "ready", drain: bool = False, eligible: bool = True,
                 cores: int = 8, mhz: int = 2500, memory_mb: int = 32_768, disk_mb: int = 100_000, gpus: int = 0,
                 gpu_model: str = "Tesla T4", with_cores: bool = True) -> dict[str, Any]:
        """A client node of `datacenter`: `cores` of `mhz` each (CpuShares = cores x mhz; TotalCpuCores
        left out with `with_cores=False`, as servers before Nomad 1.1 do), `gpus` nvidia GPUs. A
        draining node is ineligible, as Nomad marks it."""
        node_id = str(uuid.uuid4())
        index = next(self._index)
        cpu: dict[str, Any] = {"CpuShares": cores * mhz}
        if with_cores:
            cpu.update(TotalCpuCores=cores, ReservableCpuCores=list(range(cores)))
        instances = [{"ID": f"GPU-{uuid.uuid4()}", "Healthy": True, "HealthDescription": "",
                      "Locality": {"PciBusID": f"00000000:{n:02x}:00.0"}} for n in range(gpus)]
        devices = [{"Vendor": "nvidia", "Type": "gpu", "Name": gpu_model, "Attributes": {}, "Instances": instances}
                   ] if gpus else []
        node = {
            "Address": NODE_IP, "CreateIndex": index, "ModifyIndex": index, "Datacenter": datacenter,
            "Drain": drain, "Drivers": {"docker": {"Attributes": {"driver.docker": "true"}, "Detected": True,
                                                   "Healthy": True, "HealthDescription": "Healthy"}},
            "ID": node_id, "LastDrain": None, "Name": f"{datacenter}-{node_id[:8]}", "NodeClass": "",
            "NodePool": "default", "SchedulingEligibility": "eligible" if eligible and not drain else "ineligible",
            "Status": status, "StatusDescription": "", "Version": "1.8.4",
            "NodeResources": {"Cpu": cpu, "Memory": {"MemoryMB": memory_mb}, "Disk": {"DiskMB": disk_mb},
                              "Networks": [], "Devices": devices, "MinDynamicPort": 20000, "MaxDynamicPort": 32000},
            "ReservedResources": {"Cpu": {"CpuShares": 0}, "Memory": {"MemoryMB": 0}, "Disk": {"DiskMB": 0},
                                  "Networks": {"ReservedHostPorts": ""}},
        }
        with self._lock:
            self.nodes[node_id] = node
        return node

    def _nodes(self, expression: str, resources: bool) -> tuple[int, Any]:
        datacenter = None
        if expression:
            match = DATACENTER_FILTER.match(expression)
            if match is None:
                return 400, (f"failed to read filter expression: this stand-in reads only "
                             f"Datacenter == \"NAME\": {expression}")
            datacenter = re.sub(r"\\(.)", r"\1", match.group(1))
        listed = []
        for node in sorted(self.nodes.values(), key=lambda n: n["ID"]):
            if datacenter is None or node["Datacenter"] == datacenter:
                listed.append(node if resources else
                              {k: v for k, v in node.items() if k not in ("NodeResources", "ReservedResources")})
        return 200, listed

    def _latency(self, expression: str) -> float:
        """How long a node list takes: the slowest datacenter it covers."""
        match = DATACENTER_FILTER.match(expression) if expression else None
        if match is not None:
            return self.latency.get(re.sub(r"\\(.)", r"\1", match.group(1)), 0.0)
        return max(self.latency.values(), default=0.0)


def _stub(alloc: dict[str, Any]) -> dict[str, Any]:
    """An allocation as a job's allocation list gives it: no resources."""
    return {k: v for k, v in alloc.items() if k != "AllocatedResources"}


def _handler(api: NomadApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True  # as a real server: no 40 ms wait on kept-alive requests (Nagle vs delayed ACK)
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, answer = api.handle(self.command, url.path, parse_qs(url.query), self.headers, body)
            if isinstance(answer, str):
                data, kind = answer.encode(), "text/plain; charset=utf-8"
            else:
                data, kind = json.dumps(answer).encode(), "application/json"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            if status < 400:
                self.send_header("X-Nomad-Index", str(next(api._index)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:
            pass

    return Handler
