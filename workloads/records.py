"""A deployment as the platform keeps it: the request checked, the record, and its RML records.

    request (JSON) -> check_request (mappings/deployments/deployment.schema.json + the rules a schema
    cannot say) -> Deployment (defaults filled in, IRIs minted) -> to_records -> RML
    (mappings/deployments/deployment.rml.ttl, compiled) -> quads in the deployment's graph

A `Deployment` is also what the ledger stores (as JSON) and what the REST API answers with; its
status history only grows. What each field means in the graph is said in the RML file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import pyoxigraph as ox

from ..graph.namespaces import AI4KG, asset_iri
from ..graph.validation import Violation
from ..metadata.issues import Issue
from ..metadata.schema import schema_issues, validator_of
from ..metadata.values import with_value_issues
from ..provenance.records import Iris
from .executor import Resources

if TYPE_CHECKING:
    from ..metadata.rml import RmlMapping

KINDS = ("module", "tool", "try-me", "batch", "federated")
CLASSES = {"module": "ModuleDeployment", "tool": "ToolDeployment", "try-me": "TryMeDeployment",
           "batch": "BatchTrainingDeployment",
           "federated": "FederatedServerDeployment"}
STATUSES = ("queued", "starting", "running", "completed", "failed", "stopped")
ACTIVE = ("starting", "running")
"""Statuses that hold resources on a datacenter (what quotas and capacity count)."""
FINAL = ("completed", "failed", "stopped")
NEXT: dict[str, tuple[str, ...]] = {
    "queued": ("starting", "running", "failed", "stopped"),
    "starting": ("running", "completed", "failed", "stopped", "queued"),
    "running": ("completed", "failed", "stopped"),
    "completed": (), "failed": (), "stopped": (),
}
"""The status a deployment may move to from each status (final ones never change again; a
deployment whose datacenter failed before it started goes back to the queue)."""

DEFAULT_RESOURCES = {
    "module": {"cpu": 1, "memory_mb": 2000, "gpu": 0, "disk_mb": 10000},
    "tool": {"cpu": 1, "memory_mb": 2000, "gpu": 0, "disk_mb": 10000},
    "try-me": {"cpu": 1, "memory_mb": 2000, "gpu": 0, "disk_mb": 1000},
    "batch": {"cpu": 1, "memory_mb": 2000, "gpu": 0, "disk_mb": 10000},
    "federated": {"cpu": 1, "memory_mb": 4000, "gpu": 0, "disk_mb": 1000},
}
DEFAULT_ENDPOINTS = {"module": {"api": 5000}, "try-me": {"api": 5000}, "tool": {"ide": 8888}, "batch": {},
                     "federated": {"superlink": 9092}}
"""Where the workload listens inside its task: DEEPaaS's API port for modules, an IDE for tools, the
Flower SuperLink's one HTTPS port (Fleet, Control and Runtime APIs) for a federation's server."""
FEDERATED_SERVER_IMAGE = "flwr/superlink:1.42.0"
"""What a federation's server runs on a workload manager with containers: Flower's own SuperLink image,
of the flwr release the Flower App is locked to (federated/flower-app/uv.lock)."""
DEFAULT_TRY_ME_MINUTES = 10
VISIBILITY = "private"
"""Deployments are seen by their owner, their VO's members and administrators, never anonymously."""


def now() -> str:
    """The time now, as the xsd:dateTime text every record uses (UTC, seconds)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@cache
def request_validator() -> Any:
    text = resources.files("ai4kg").joinpath("mappings/deployments/deployment.schema.json").read_text("utf-8")
    return validator_of(json.loads(text))


def check_request(body: Any, federation: bool = False) -> list[Issue]:
    """Every problem of a deployment request, each naming the field, the rule and the value. Unknown
    fields are errors: a misspelt `gpus` must not deploy without the GPU the user wanted. A
    federation's server (kind `federated`) is made only by its federation (`federation`)."""
    if not isinstance(body, dict):
        return [Issue("", "type", "a deployment request is a JSON object", body)]
    issues = with_value_issues([Issue(i.field, i.rule, i.message, i.value)  # unknown keys too: all are errors here
                                for i in schema_issues(request_validator(), body, "a deployment request")], body)
    if body.get("kind") == "federated" and not federation:
        issues.append(Issue("kind", "federation", "a federated-learning server starts with its federation: "
                                                  "POST /v1/federations", "federated"))
    if body.get("kind") == "batch" and "endpoints" in body:
        issues.append(Issue("endpoints", "kind", "a batch job serves nothing: leave endpoints out", body["endpoints"]))
    if "duration_minutes" in body and body.get("kind") != "try-me":
        issues.append(Issue("duration_minutes", "kind", "only a try-me deployment has a time limit",
                            body["duration_minutes"]))
    return issues


@dataclass
class Change:
    status: str
    at: str
    reason: str


@dataclass
class Deployment:
    """One deployment: what was asked, where it runs, and its status history."""

    identifier: str
    iri: str
    kind: str
    owner: str
    vo: str
    module: str
    module_iri: str
    version: str
    image: str
    title: str
    resources: dict[str, Any]
    executor: str
    created_at: str
    description: str = ""
    datacenter: str | None = None
    """the datacenter the user asked for (None: any)"""
    placed_on: str | None = None
    """the datacenter it runs on, once placed"""
    command: list[str] | None = None
    endpoints: dict[str, int] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    """port label -> the URL it answers on, once running"""
    datasets: list[str] = field(default_factory=list)
    storage: str | None = None
    notify: str | None = None
    """who is told by mail when it ends (kept here, never in the graph)"""
    secrets_from: str | None = None
    """a folder of the platform whose files the workload is given as secrets (a federation's TLS key
    and recorder token); the path is kept here, never in the graph, and the contents nowhere"""
    expires_at: str | None = None
    status: str = "queued"
    history: list[Change] = field(default_factory=list)
    started_at: str | None = None
    ended_at: str | None = None
    waiting: str | None = None
    """why a queued deployment waits (a quota, no room on any datacenter)"""

    @property
    def needs(self) -> Resources:
        r = self.resources
        return Resources(r["cpu"], r["memory_mb"], r["gpu"], r["disk_mb"])

    def move(self, status: str, reason: str, at: str | None = None) -> bool:
        """Enter `status` (if it may follow the current one), recording why; False if it may not."""
        if status == self.status and self.history:
            return False
        if self.history and status not in NEXT[self.status]:
            return False
        at = at or now()
        self.status = status
        self.history.append(Change(status, at, reason))
        if status in ACTIVE and self.started_at is None:
            self.started_at = at
        if status in FINAL:
            self.ended_at = at
            self.urls = {}
        if status != "queued":
            self.waiting = None
        return True

    def as_json(self) -> dict[str, Any]:
        return record_json(self, "history")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Deployment":
        return record_of(cls, data, "history", Change)


def record_json(record: Any, nested: str) -> dict[str, Any]:
    """A record dataclass as JSON values, its list `nested` of dataclasses too. A shallow copy (its
    nested dicts and lists are the record's own, for reading and serialising): dataclasses.asdict's
    deep copy was most of a listing's time."""
    data = dict(record.__dict__)
    data[nested] = [dict(item.__dict__) for item in getattr(record, nested)]
    return data


def record_of(cls: Any, data: dict[str, Any], nested: str, item: Any) -> Any:
    """The record dataclass `cls` from `record_json`'s values (keys it does not know, from an older
    or newer release, are left out)."""
    known = {f.name for f in fields(cls)}
    values = {k: v for k, v in data.items() if k in known}
    values[nested] = [item(**c) for c in values.get(nested, [])]
    return cls(**values)


def image_reference(image: str, version: str) -> str:
    """The module's image at `version` (its tag): `ai4oshub/app` + `1.2` -> `ai4oshub/app:1.2`."""
    repository = re.sub(r"(@sha256:[0-9a-f]+|:[A-Za-z0-9_][A-Za-z0-9._-]*)$", "", image)
    return f"{repository}:{version}"


def new_deployment(body: dict[str, Any], identifier: str, base_url: str, owner: str, vo: str, module_iri: str,
                   module_image: str, executor: str, secrets_from: str | None = None) -> Deployment:
    """The record of a checked request: defaults filled in, status queued. A federation's server
    runs Flower's SuperLink image, not the module's."""
    kind = body["kind"]
    version = body.get("version") or "latest"
    image = FEDERATED_SERVER_IMAGE if kind == "federated" else image_reference(module_image, version)
    created = now()
    deployment = Deployment(
        identifier=identifier, iri=asset_iri(base_url, "Deployment", identifier), kind=kind, owner=owner, vo=vo,
        module=body["module"], module_iri=module_iri, version=version, image=image,
        title=body.get("title") or f"{body['module']} ({kind})", description=body.get("description", ""),
        resources={**DEFAULT_RESOURCES[kind], **body.get("resources", {})}, executor=executor, created_at=created,
        datacenter=body.get("datacenter"), command=body.get("command"),
        endpoints=dict(body["endpoints"]) if "endpoints" in body else dict(DEFAULT_ENDPOINTS[kind]),
        datasets=[d["doi"] for d in body.get("datasets", [])], storage=body.get("storage"),
        notify=body.get("notify"), secrets_from=secrets_from)
    if kind == "try-me":
        minutes = body.get("duration_minutes", DEFAULT_TRY_ME_MINUTES)
        deployment.expires_at = datetime.fromtimestamp(datetime.now(timezone.utc).timestamp() + 60 * minutes,
                                                       timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    deployment.move("queued", "created by its owner", created)
    return deployment


def to_records(deployment: Deployment, base_url: str) -> dict[str, list[dict[str, Any]]]:
    """The mapping's records of one deployment (record keys are the request's field names)."""
    iris = Iris(base_url)
    iri = deployment.iri
    requested = f"{iri}#resources"
    record: dict[str, Any] = {
        "deployment@iri": iri, "class@iri": AI4KG + CLASSES[deployment.kind], "identifier": deployment.identifier,
        "title": deployment.title, "description": deployment.description or None, "status": deployment.status,
        "vo@iri": iris.vo(deployment.vo), "visibility": VISIBILITY, "module@iri": deployment.module_iri,
        "version": deployment.version, "image": deployment.image,
        "job": deployment.identifier if deployment.executor == "nomad" else None,
        "command": json.dumps(deployment.command) if deployment.command else None, "storage": deployment.storage,
        "datacenter@iri": asset_iri(base_url, "Datacenter", deployment.placed_on) if deployment.placed_on else None,
        "resources@iri": requested,
        "allocated@iri": requested if deployment.status in ACTIVE else None,
        # the workload manager is named only: mappings/platform-agents.ttl describes it (a system graph)
        "owner@iri": iris.person(deployment.owner), "engine@iri": iris.agent(deployment.executor),
        "started": deployment.started_at, "ended": deployment.ended_at, "expires": deployment.expires_at,
    }
    resources_record = {"resources@iri": requested, "deployment@iri": iri,
                        **{f"resources.{k}": v for k, v in deployment.resources.items()}}
    return {
        "deployments": [{k: v for k, v in record.items() if v is not None}],
        "resources": [{k: v for k, v in resources_record.items() if v is not None}],
        "endpoints": [{"endpoint@iri": f"{iri}#endpoint-{label}", "deployment@iri": iri, "key": label, "url": url}
                      for label, url in sorted(deployment.urls.items())],
        "datasets": [{"dataset@iri": "https://doi.org/" + doi, "deployment@iri": iri, "doi": doi}
                     for doi in deployment.datasets],
        "history": [{"change@iri": f"{iri}#status-{n}", "deployment@iri": iri, "sequence": n, "status": c.status,
                     "at": c.at, "reason": c.reason} for n, c in enumerate(deployment.history)],
    }


@cache
def deployment_mapping() -> RmlMapping:
    from ..metadata.rml import RmlMapping, mapping_path  # not at import: the command line's start stays light

    return RmlMapping(mapping_path("deployments/deployment"))


def to_quads(deployments: list[Deployment], base_url: str) -> tuple[dict[str, list[ox.Quad]], dict[str, Any]]:
    """The quads of each deployment's graph (one mapping call for all), and the records made."""
    records: dict[str, list[dict[str, Any]]] = {}
    for deployment in deployments:
        for source, rows in to_records(deployment, base_url).items():
            records.setdefault(source, []).extend(rows)
    by_graph: dict[str, list[ox.Quad]] = {d.iri: [] for d in deployments}
    for quad in deployment_mapping().materialize(records):
        by_graph[quad.graph_name.value].append(quad)  # type: ignore[union-attr]
    return by_graph, records


def issue_of(violation: Violation, records: dict[str, Any]) -> Issue:
    """A SHACL violation said in the request's terms (the field it came from)."""
    found = deployment_mapping().field_of(records, violation.focus, violation.path or "") if violation.path else None
    field_name = found[0] if found else (violation.path or violation.focus)
    value = found[1].get(found[0]) if found else violation.value
    return Issue(field_name.removesuffix("@iri"), violation.rule, violation.message, value)
