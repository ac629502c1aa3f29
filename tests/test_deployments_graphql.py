"""Deployments over GraphQL: the same service, rights, records, errors and cursors as REST's
/v1/deployments (api/graphql/deployments.py: deployments, deploymentRecord, createDeployment, deleteDeployment).

Real batch jobs on the embedded local executor (`sleep`, so they cost nothing); every test's
deployments are deleted after it, and whatever a failing test leaves running is killed at the end."""

from __future__ import annotations

import datetime
import json
import os
import signal
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ai4kg.adapters.local import LocalExecutor
from ai4kg.api import graphql
from ai4kg.api.app import create_app
from ai4kg.config import Settings
from ai4kg.credentials import KeyStore
from ai4kg.demo import load_demo_catalog
from ai4kg.graph.store import KnowledgeGraph
from ai4kg.workloads.executor import Resources
from ai4kg.workloads.records import FINAL
from ai4kg.workloads.service import Deployments, Requester

MODULE = "flood-segmentation-s2"  # of the demo catalog, public
VO, OTHER_VO = "vo.alpha", "vo.beta"
SLEEP = ["sleep", "30"]
ADMIN = Requester("test-cleanup", frozenset(), admin=True)

FIELDS = """identifier iri kind owner vo module moduleIri version image title description status waiting
  datacenter placedOn executor resources { cpu memoryMb gpu gpuModel diskMb } endpoints { label port url }
  datasets storage notify command expiresAt createdAt startedAt endedAt history { status at reason }"""
CREATE = "mutation($r: JSON!) { createDeployment(request: $r) { created deployment { %s } } }" % FIELDS
DELETE = "mutation($i: String!) { deleteDeployment(identifier: $i) { %s } }" % FIELDS
RECORD = "query($i: String!) { deploymentRecord(identifier: $i) { %s } }" % FIELDS
LIST = """query($owner: String, $vo: String, $status: String, $kind: String, $module: String, $datacenter: String,
               $first: Int = 100, $after: String) {
  deployments(owner: $owner, vo: $vo, status: $status, kind: $kind, module: $module, datacenter: $datacenter,
              first: $first, after: $after) {
    edges { cursor node { identifier status } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""


class Platform:
    def __init__(self, root: Path):
        self.root = root
        self.graph = KnowledgeGraph(Settings(data_dir=root / "data"))
        load_demo_catalog(self.graph)
        self.keys = KeyStore(root / "data")
        self.executor = LocalExecutor(root / "local", {"local": Resources(cpu=4, memory_mb=8000, gpu=0,
                                                                          disk_mb=100000)})
        self.deployments = Deployments(self.graph, self.executor)
        self.client = TestClient(create_app(self.graph, self.keys, self.deployments))  # no lifespan: no control loop

    def unfinished(self) -> list[str]:
        return [d.identifier for _, d in self.deployments.find(ADMIN, limit=100_000) if d.status not in FINAL]

    def clean(self) -> None:
        """Delete every deployment still unfinished (its process stops)."""
        for identifier in self.unfinished():
            self.deployments.delete(identifier, ADMIN)

    def kill_everything(self) -> None:
        """What a failed delete might have left: every runner's session."""
        for runner in (self.root / "local" / "jobs").glob("*/runner.json"):
            try:
                os.killpg(json.loads(runner.read_text())["pid"], signal.SIGKILL)
            except (ProcessLookupError, PermissionError, ValueError, KeyError):
                pass

    def close(self) -> None:
        self.deployments.close()
        self.graph.close()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    made = Platform(tmp_path_factory.mktemp("deployments-graphql"))
    try:
        yield made
    finally:
        try:
            made.clean()
        finally:
            made.kill_everything()
            made.close()


@pytest.fixture(autouse=True)
def cleaned(platform: Platform) -> Iterator[None]:
    """Every test's deployments are stopped after it, whatever it asserted."""
    yield
    platform.clean()
    assert platform.unfinished() == []
    alive = [i for i, seen in platform.executor.observe().items() if seen.status not in FINAL]
    assert alive == [], f"processes left running: {alive}"


@pytest.fixture
def member(platform: Platform) -> Callable[..., dict[str, str]]:
    """Headers of a fresh API key (a new account) of `vo`."""

    def make(vo: str = VO, admin: bool = False) -> dict[str, str]:
        _, secret = platform.keys.create(f"test-{uuid.uuid4().hex[:6]}", frozenset({vo}), admin=admin)
        return {"Authorization": f"Bearer {secret}"}
    return make


def post(platform: Platform, query: str, headers: dict[str, str] | None = None, **variables: Any) -> dict[str, Any]:
    response = platform.client.post("/graphql", json={"query": query, "variables": variables}, headers=headers or {})
    assert response.status_code == 200, response.text
    return response.json()


def data(platform: Platform, query: str, headers: dict[str, str] | None = None, **variables: Any) -> dict[str, Any]:
    answer = post(platform, query, headers, **variables)
    assert "errors" not in answer, answer["errors"]
    return answer["data"]


def error(platform: Platform, query: str, headers: dict[str, str] | None = None, **variables: Any) -> dict[str, Any]:
    answer = post(platform, query, headers, **variables)
    [found] = answer["errors"]
    return found


def batch(**extra: Any) -> dict[str, Any]:
    return {"kind": "batch", "module": MODULE, "command": SLEEP, "resources": {"cpu": 1, "memory_mb": 256}, **extra}


def create(platform: Platform, headers: dict[str, str], request: Any) -> dict[str, Any]:
    return data(platform, CREATE, headers, r=request)["createDeployment"]


def rest_listing(platform: Platform, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = platform.client.get("/v1/deployments", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def when(value: str | None) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(value) if value else None


def graphql_view(rest: dict[str, Any]) -> dict[str, Any]:
    """REST's record as DeploymentRecord says it (times parsed: REST writes Z, GraphQL +00:00)."""
    resources = rest["resources"]
    labels = list(dict.fromkeys([*rest["endpoints"], *rest["urls"]]))
    view = {
        "identifier": rest["identifier"], "iri": rest["iri"], "kind": rest["kind"], "owner": rest["owner"],
        "vo": rest["vo"], "module": rest["module"], "moduleIri": rest["module_iri"], "version": rest["version"],
        "image": rest["image"], "title": rest["title"], "description": rest["description"],
        "status": rest["status"], "waiting": rest["waiting"], "datacenter": rest["datacenter"],
        "placedOn": rest["placed_on"], "executor": rest["executor"],
        "resources": {"cpu": resources["cpu"], "memoryMb": resources["memory_mb"], "gpu": resources["gpu"],
                      "gpuModel": resources.get("gpu_model"), "diskMb": resources["disk_mb"]},
        "endpoints": [{"label": label, "port": rest["endpoints"].get(label), "url": rest["urls"].get(label)}
                      for label in labels],
        "datasets": rest["datasets"], "storage": rest["storage"], "notify": rest["notify"], "command": rest["command"],
        "expiresAt": when(rest["expires_at"]), "createdAt": when(rest["created_at"]),
        "startedAt": when(rest["started_at"]), "endedAt": when(rest["ended_at"]),
        "history": [{"status": c["status"], "at": when(c["at"]), "reason": c["reason"]} for c in rest["history"]],
    }
    covered = {"identifier", "iri", "kind", "owner", "vo", "module", "module_iri", "version", "image", "title",
               "description", "status", "waiting", "datacenter", "placed_on", "executor", "resources", "endpoints",
               "urls", "datasets", "storage", "notify", "command", "expires_at", "created_at", "started_at", "ended_at",
               "history"}
    assert set(rest) == covered, f"REST fields GraphQL does not show: {set(rest) - covered}"
    return view


def parsed(record: dict[str, Any]) -> dict[str, Any]:
    """A DeploymentRecord answer with its times parsed."""
    return {**record, **{name: when(record[name]) for name in ("expiresAt", "createdAt", "startedAt", "endedAt")},
            "history": [{**change, "at": when(change["at"])} for change in record["history"]]}


def rest_record(platform: Platform, headers: dict[str, str], identifier: str) -> dict[str, Any]:
    response = platform.client.get(f"/v1/deployments/{identifier}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


# -- create, list, look up: the REST record ------------------------------------------------------

def test_created_deployment_is_listed_and_found_as_rest_shows_it(platform: Platform, member: Callable) -> None:
    alice = member()
    name = f"gql-{uuid.uuid4().hex[:8]}"
    request = batch(name=name, title="Flood masks, batch", description="retrain on new events")
    made = create(platform, alice, request)
    assert made["created"] is True
    record = made["deployment"]
    assert record["identifier"] == name and record["kind"] == "batch" and record["vo"] == VO
    assert record["status"] == "starting" and record["placedOn"] == "local"  # there was room: started at once
    assert record["command"] == SLEEP and record["resources"]["memoryMb"] == 256
    assert [c["status"] for c in record["history"]] == ["queued", "starting"]

    rest = rest_record(platform, alice, name)
    assert parsed(record) == graphql_view(rest)
    found = data(platform, RECORD, alice, i=name)["deploymentRecord"]
    assert parsed(found) == graphql_view(rest)

    listed = data(platform, LIST, alice)["deployments"]
    assert [e["node"] for e in listed["edges"]] == [{"identifier": name, "status": "starting"}]
    assert [d["identifier"] for d in rest_listing(platform, alice)["deployments"]] == [name]

    # the catalog's module, and the knowledge graph's record of the same deployment
    linked = data(platform, 'query($i: String!) { deploymentRecord(identifier: $i) { deploys { __typename name } } '
                            'deployment(identifier: $i) { kind status module { name } } }', alice, i=name)
    assert linked["deploymentRecord"]["deploys"] == {"__typename": "Module", "name": MODULE}
    assert linked["deployment"] == {"kind": "BatchTrainingDeployment", "status": "starting", "module": {"name": MODULE}}

    # the same request again (same name): nothing new, as REST's 200
    again = create(platform, alice, json.dumps(request))  # its JSON text is taken as well
    assert again["created"] is False and again["deployment"]["identifier"] == name
    assert len(rest_listing(platform, alice)["deployments"]) == 1

    # a VO colleague reads it, and may not delete it
    colleague = member()
    assert data(platform, RECORD, colleague, i=name)["deploymentRecord"]["identifier"] == name
    assert [e["node"]["identifier"] for e in data(platform, LIST, colleague, vo=VO)["deployments"]["edges"]] == [name]
    assert data(platform, LIST, colleague)["deployments"]["edges"] == []  # by default: one's own
    refused = error(platform, DELETE, colleague, i=name)
    assert refused["extensions"]["code"] == "FORBIDDEN" and refused["extensions"]["status"] == 403
    assert refused["extensions"]["invalidParams"] == [
        {"name": "identifier", "rule": "owner", "reason": "only its owner or an administrator may delete a deployment",
         "value": name}]
    assert rest_record(platform, alice, name)["status"] == "starting"


def test_a_queued_deployment_says_why_and_shows_its_endpoints(platform: Platform, member: Callable) -> None:
    alice = member()
    full = create(platform, alice, batch(resources={"cpu": 4, "memory_mb": 256}))["deployment"]
    assert full["status"] == "starting"
    waiting = create(platform, alice, {"kind": "module", "module": MODULE, "resources": {"cpu": 1}})["deployment"]
    assert waiting["status"] == "queued" and waiting["placedOn"] is None and waiting["startedAt"] is None
    assert waiting["waiting"].startswith("waiting for room on a datacenter")
    assert waiting["endpoints"] == [{"label": "api", "port": 5000, "url": None}]  # not running: no URL yet
    assert parsed(waiting) == graphql_view(rest_record(platform, alice, waiting["identifier"]))
    queued = data(platform, LIST, alice, status="queued", kind="module")["deployments"]["edges"]
    assert [e["node"]["identifier"] for e in queued] == [waiting["identifier"]]
    stopped = data(platform, DELETE, alice, i=waiting["identifier"])["deleteDeployment"]  # never started
    assert stopped["status"] == "stopped"
    assert stopped["history"][-1]["reason"] == "deleted by its owner before it started"


# -- refusals ------------------------------------------------------------------------------------

def test_an_invalid_request_names_each_field_and_rule_and_creates_nothing(platform: Platform,
                                                                          member: Callable) -> None:
    alice, admin = member(), member(admin=True)
    before = rest_listing(platform, admin)  # an administrator's listing: everyone's
    ledger = len(platform.deployments.find(ADMIN, limit=100_000))

    request = {"kind": "batch", "module": MODULE, "gpus": 1}  # a misspelt `gpu`, and no command for a batch job
    for given in (request, json.dumps(request)):  # as an object, or as its JSON text
        refused = error(platform, CREATE, alice, r=given)
        assert refused["path"] == ["createDeployment"]
        assert refused["extensions"]["code"] == "BAD_USER_INPUT" and refused["extensions"]["status"] == 422
        assert refused["extensions"]["argument"] == "request"
        params = refused["extensions"]["invalidParams"]
        assert {(p["name"], p["rule"]) for p in params} == {("gpus", "unknown-key"), ("command", "required")}
        assert all(p["reason"] and "[" not in p["reason"] for p in params)  # the rule apart, not in the reason
        rest = platform.client.post("/v1/deployments", json=request, headers=alice)
        assert rest.status_code == 422
        assert {(p["name"], p["rule"]) for p in rest.json()["invalid-params"]} == \
            {(p["name"], p["rule"]) for p in params}

    # each field with its value: resources beyond any datacenter, a nested unknown key
    refused = error(platform, CREATE, alice, r=batch(resources={"cpu": 64, "gpus": 1}))
    params = refused["extensions"]["invalidParams"]
    assert [(p["name"], p["rule"]) for p in params] == [("resources.gpus", "unknown-key")]
    refused = error(platform, CREATE, alice, r=batch(resources={"cpu": 8}))  # within the quota (16), not the room
    assert refused["extensions"]["invalidParams"] == [
        {"name": "resources.cpu", "rule": "capacity", "reason": "more than any datacenter has (4)", "value": 8}]
    refused = error(platform, CREATE, alice, r=batch(vo=OTHER_VO))
    assert refused["extensions"]["code"] == "FORBIDDEN"
    assert [(p["name"], p["rule"], p["value"]) for p in refused["extensions"]["invalidParams"]] == \
        [("vo", "membership", OTHER_VO)]
    refused = error(platform, CREATE, alice, r='{"kind": "batch"')
    assert refused["extensions"] == {"code": "BAD_USER_INPUT", "status": 400, "argument": "request", "value": None}
    assert refused["message"].startswith("the request is not JSON")
    refused = error(platform, CREATE, alice, r=["not", "an", "object"])
    assert [(p["name"], p["rule"]) for p in refused["extensions"]["invalidParams"]] == [("", "type")]

    assert rest_listing(platform, admin) == before
    assert data(platform, LIST, alice)["deployments"]["edges"] == []
    assert len(platform.deployments.find(ADMIN, limit=100_000)) == ledger


def test_another_vo_sees_nothing(platform: Platform, member: Callable) -> None:
    alice, bob = member(), member(OTHER_VO)
    name = create(platform, alice, batch())["deployment"]["identifier"]
    found = data(platform, 'query($i: String!) { deploymentRecord(identifier: $i) { identifier } '
                           'deployment(identifier: $i) { identifier } }', bob, i=name)
    assert found == {"deploymentRecord": None, "deployment": None}
    for variables in ({}, {"vo": VO}, {"owner": rest_record(platform, alice, name)["owner"]}, {"module": MODULE}):
        assert data(platform, LIST, bob, **variables)["deployments"]["edges"] == [], variables
    missing = error(platform, DELETE, bob, i=name)
    assert missing["extensions"] == {"code": "NOT_FOUND", "status": 404, "argument": "identifier", "value": name}
    assert platform.client.get(f"/v1/deployments/{name}", headers=bob).status_code == 404
    assert rest_record(platform, alice, name)["status"] == "starting"  # untouched


def test_anonymous_requests_are_unauthenticated(platform: Platform, member: Callable) -> None:
    alice = member()
    name = create(platform, alice, batch())["deployment"]["identifier"]
    for query, variables in ((LIST, {}), (RECORD, {"i": name}), (CREATE, {"r": batch()}), (DELETE, {"i": name})):
        refused = error(platform, query, None, **variables)
        assert refused["extensions"]["code"] == "UNAUTHENTICATED" and refused["extensions"]["status"] == 401
        assert refused["message"].startswith("sign in")
    assert platform.client.get("/v1/deployments").status_code == 401
    assert [d["identifier"] for d in rest_listing(platform, alice)["deployments"]] == [name]
    assert rest_record(platform, alice, name)["status"] == "starting"


def test_mutations_need_post(platform: Platform, member: Callable) -> None:
    alice = member()
    name = create(platform, alice, batch())["deployment"]["identifier"]
    for query in ('mutation { deleteDeployment(identifier: "%s") { status } }' % name,
                  'mutation { createDeployment(request: {kind: "batch", module: "%s", command: ["true"]}) '
                  '{ created } }' % MODULE):
        response = platform.client.get("/graphql", params={"query": query}, headers=alice)
        assert response.status_code == 405 and response.headers["allow"] == "POST", response.text
    assert [d["identifier"] for d in rest_listing(platform, alice)["deployments"]] == [name]
    assert rest_record(platform, alice, name)["status"] == "starting"
    schema = data(platform, "{ __schema { mutationType { fields { name } } } }")["__schema"]
    assert {"createDeployment", "deleteDeployment"} <= {f["name"] for f in schema["mutationType"]["fields"]}


# -- delete --------------------------------------------------------------------------------------

def test_delete_stops_the_process_and_keeps_the_record(platform: Platform, member: Callable) -> None:
    alice = member()
    name = create(platform, alice, batch())["deployment"]["identifier"]
    assert platform.executor.observe()[name].status in ("starting", "running")  # a real process
    stopped = data(platform, DELETE, alice, i=name)["deleteDeployment"]
    assert stopped["status"] == "stopped" and stopped["endedAt"] is not None
    assert stopped["history"][-1]["status"] == "stopped" and stopped["history"][-1]["reason"] == "deleted by its owner"
    assert parsed(stopped) == graphql_view(rest_record(platform, alice, name))
    assert platform.executor.observe()[name].status == "stopped"
    assert data(platform, RECORD, alice, i=name)["deploymentRecord"]["status"] == "stopped"
    again = data(platform, DELETE, alice, i=name)["deleteDeployment"]  # changes nothing
    assert parsed(again) == parsed(stopped)
    assert [e["node"] for e in data(platform, LIST, alice, status="stopped")["deployments"]["edges"]] == \
        [{"identifier": name, "status": "stopped"}]
    # an administrator may delete anyone's
    other = create(platform, alice, batch())["deployment"]["identifier"]
    assert data(platform, DELETE, member(admin=True), i=other)["deleteDeployment"]["status"] == "stopped"


# -- pages ---------------------------------------------------------------------------------------

def test_pages_with_first_and_after_as_rest_cursors(platform: Platform, member: Callable) -> None:
    alice = member()
    names = [create(platform, alice, batch())["deployment"]["identifier"] for _ in range(3)]
    everything = data(platform, LIST, alice)["deployments"]
    assert [e["node"]["identifier"] for e in everything["edges"]] == names  # oldest first
    assert everything["pageInfo"]["hasNextPage"] is False

    first = data(platform, LIST, alice, first=2)["deployments"]
    assert [e["node"]["identifier"] for e in first["edges"]] == names[:2]
    assert first["pageInfo"] == {"hasNextPage": True, "hasPreviousPage": False,
                                 "startCursor": first["edges"][0]["cursor"], "endCursor": first["edges"][1]["cursor"]}
    second = data(platform, LIST, alice, first=2, after=first["pageInfo"]["endCursor"])["deployments"]
    assert [e["node"]["identifier"] for e in second["edges"]] == names[2:]
    assert second["pageInfo"]["hasNextPage"] is False and second["pageInfo"]["hasPreviousPage"] is True
    last = data(platform, LIST, alice, first=2, after=second["pageInfo"]["endCursor"])["deployments"]
    assert last["edges"] == [] and last["pageInfo"]["endCursor"] is None

    # REST's cursors are the same positions
    rest = rest_listing(platform, alice, limit=2)
    assert rest["next"] == first["pageInfo"]["endCursor"]
    assert [d["identifier"] for d in rest_listing(platform, alice, limit=2, cursor=rest["next"])["deployments"]] == \
        names[2:]
    # filters
    filtered = data(platform, LIST, alice, kind="batch", module=MODULE, datacenter="local")["deployments"]
    assert len(filtered["edges"]) == 3
    assert data(platform, LIST, alice, status="completed")["deployments"]["edges"] == []
    # arguments out of range
    for variables, argument in (({"first": 0}, "first"), ({"first": 1001}, "first"), ({"after": "nonsense"}, "after"),
                                ({"status": "sleeping"}, "status"), ({"kind": "cron"}, "kind"),
                                ({"module": "m" * 129}, "module")):
        refused = error(platform, LIST, alice, **variables)
        assert refused["extensions"]["code"] == "BAD_USER_INPUT", variables
        assert refused["extensions"]["argument"] == argument, variables
    assert len(data(platform, LIST, alice, first=1000)["deployments"]["edges"]) == 3


# -- without the service -------------------------------------------------------------------------

def test_a_router_without_deployments_says_they_are_not_served(platform: Platform, member: Callable) -> None:
    bare = FastAPI()
    bare.include_router(graphql.router(platform.graph))  # the call as it was: no service
    client = TestClient(bare)
    answer = client.post("/graphql", json={"query": '{ deploymentRecord(identifier: "x") { status } '
                                                    f'module(name: "{MODULE}") {{ name }} }}'}).json()
    assert answer["data"] == {"deploymentRecord": None, "module": {"name": MODULE}}
    [refused] = answer["errors"]
    assert refused["message"] == "deployments are not served here"
    assert refused["extensions"]["code"] == "NOT_IMPLEMENTED"
    answer = client.post("/graphql", json={"query": "mutation($r: JSON!) { createDeployment(request: $r) { created } }",
                                           "variables": {"r": batch()}}).json()
    assert answer["errors"][0]["message"] == "deployments are not served here"
    assert platform.unfinished() == []
