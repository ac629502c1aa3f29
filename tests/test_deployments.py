"""Deployments on the embedded local executor: real processes, the REST API, quotas and the queue,
the reconciler, and what a crash leaves (issue 6)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pyoxigraph as ox
import pytest
from fastapi.testclient import TestClient

from ai4kg.adapters.local import LocalExecutor
from ai4kg.adapters.local_runner import ALREADY_RUNNING
from ai4kg.api.app import create_app
from ai4kg.catalog import ImportOptions, import_files
from ai4kg.config import Settings
from ai4kg.credentials import KeyStore
from ai4kg.graph.store import KnowledgeGraph
from ai4kg.graph.validation import validate
from ai4kg.workloads.executor import Health, Resources
from ai4kg.workloads.service import Deployments, DeploymentRejected, Quotas, Requester

DEMO = Path(__file__).parent.parent / "demo"
MODULE = "flood-segmentation-s2"
SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]
LONG_SLEEP = ["sleep", "600"]  # killed when the test ends
AI4KG = "https://w3id.org/ai4kg/ns#"


def violations(graph: KnowledgeGraph, iri: str) -> list[Any]:
    """SHACL on a deployment's graph, with what the shapes need to know of its VO."""
    quads = graph.asset_quads(iri)
    kinds = {"belongsToVO": "VirtualOrganisation", "runsOn": "Datacenter"}
    context = [ox.Quad(q.object, ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type"),
                       ox.NamedNode(AI4KG + kinds[q.predicate.value[len(AI4KG):]]), ox.NamedNode("urn:context"))
               for q in quads if q.predicate.value[len(AI4KG):] in kinds]
    return [v for v in validate(quads + context) if v.focus.startswith(iri)]


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def stop_everything(state: Path) -> None:
    """Kill what a test left running (every runner's session)."""
    for runner in (state / "jobs").glob("*/runner.json"):
        try:
            os.killpg(json.loads(runner.read_text())["pid"], signal.SIGKILL)
        except (ProcessLookupError, PermissionError, ValueError, KeyError):
            pass


class Platform:
    def __init__(self, root: Path, capacity: dict[str, Resources] | None = None, quotas: Quotas | None = None,
                 executor: LocalExecutor | None = None):
        self.root = root
        self.graph = KnowledgeGraph(Settings(data_dir=root / "data"))
        if not self.graph.contains("https://w3id.org/ai4kg/id/module/" + MODULE):
            [report] = import_files(self.graph, [DEMO / f"{MODULE}.yml"], ImportOptions())
            assert report.status == "imported", report.issues
        self.executor = executor or LocalExecutor(root / "local", capacity or {"local": Resources(4, 16000, 2, 100000)})
        self.deployments = Deployments(self.graph, self.executor, quotas)

    def close(self) -> None:
        self.deployments.close()
        self.graph.close()


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    made = Platform(tmp_path)
    try:
        yield made
    finally:
        stop_everything(tmp_path / "local")
        made.close()


ALICE = Requester("alice", frozenset({"default"}))
BOB = Requester("bob", frozenset({"other"}))
CAROL = Requester("carol", frozenset({"default"}))  # alice's VO


def batch(**extra: Any) -> dict[str, Any]:
    return {"kind": "batch", "module": MODULE, "command": SLEEP, "resources": {"cpu": 1, "memory_mb": 500}, **extra}


def settle(platform: Platform, identifier: str, status: str, timeout: float = 20.0) -> Any:
    def check() -> Any:
        platform.deployments.tick()
        found = platform.deployments.get(identifier)
        return found if found.status == status else None
    return wait_for(check, timeout, f"{identifier} to be {status}")


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


# -- acceptance: the demo module answers on its endpoint; deleting it stops it and frees its resources --
def test_demo_module_answers_on_its_endpoint_and_delete_frees_it(platform: Platform) -> None:
    keys = KeyStore(platform.root / "data")
    _, secret = keys.create("alice", frozenset({"default"}))
    headers = {"Authorization": f"Bearer {secret}"}
    with TestClient(create_app(platform.graph, keys, platform.deployments)) as client:
        created = client.post("/v1/deployments", json={"kind": "module", "module": MODULE, "title": "my flood API"},
                              headers=headers)
        assert created.status_code == 201, created.text
        identifier = created.json()["identifier"]
        assert created.headers["location"] == f"/v1/deployments/{identifier}"

        def running() -> Any:
            answer = client.get(f"/v1/deployments/{identifier}", headers=headers).json()
            return answer if answer["status"] == "running" else None
        deployment = wait_for(running, 30, "the module API to answer")
        url = deployment["urls"]["api"]
        assert _get(url + "v2/models/")["models"][0]["id"] == MODULE
        request = urllib.request.Request(url + f"v2/models/{MODULE}/predict/", data=b'{"data": [1, 2, 6]}',
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert json.loads(answer.read())["predictions"] == {"count": 3, "mean": 3.0, "min": 1.0, "max": 6.0}
        used = client.get("/v1/workloads/datacenters", headers=headers).json()["datacenters"][0]["used"]
        assert used == {"cpu": 1, "memory_mb": 2000, "gpu": 0, "disk_mb": 10000}
        runner = json.loads((platform.root / "local/jobs" / identifier / "runner.json").read_text())["pid"]

        deleted = client.delete(f"/v1/deployments/{identifier}", headers=headers)
        assert deleted.status_code == 200 and deleted.json()["status"] == "stopped"
        assert deleted.json()["urls"] == {}
        with pytest.raises(OSError):  # the process is gone: nothing answers on its port
            urllib.request.urlopen(url + "v2/models/", timeout=2)
        with pytest.raises(ProcessLookupError):
            os.kill(runner, 0)
        assert client.get("/v1/workloads/datacenters", headers=headers).json()["datacenters"][0]["used"] is None
        history = [c["status"] for c in client.get(f"/v1/deployments/{identifier}", headers=headers).json()["history"]]
        assert history == ["queued", "starting", "running", "stopped"]
        assert client.delete(f"/v1/deployments/{identifier}", headers=headers).json()["status"] == "stopped"

    # the graph holds it, with its history, its endpoint gone, as a PROV activity of its owner's VO
    iri = f"https://w3id.org/ai4kg/id/deployment/{identifier}"
    rows = list(platform.graph.query(
        "PREFIX ai4kg: <https://w3id.org/ai4kg/ns#> PREFIX prov: <http://www.w3.org/ns/prov#> "
        "SELECT ?d ?module ?status (COUNT(?change) AS ?changes) WHERE { GRAPH ?d { ?d a ai4kg:ModuleDeployment, "
        "prov:Activity ; ai4kg:status ?status ; ai4kg:deploys ?module ; ai4kg:statusChange ?change ; "
        "prov:endedAtTime ?end } } GROUP BY ?d ?module ?status", {"d": ox.NamedNode(iri)}))
    assert [(r["module"].value, r["status"].value, int(r["changes"].value)) for r in rows] == [
        (f"https://w3id.org/ai4kg/id/module/{MODULE}", "stopped", 4)]
    assert not any(q.predicate.value == AI4KG + "endpoint" for q in platform.graph.asset_quads(iri))


def test_a_running_deployment_has_its_endpoint_in_the_graph(platform: Platform) -> None:
    deployment, _ = platform.deployments.create({"kind": "module", "module": MODULE}, ALICE)
    deployment = settle(platform, deployment.identifier, "running", 30)
    quads = platform.graph.asset_quads(deployment.iri)
    targets = {q.object.value for q in quads if q.predicate.value == AI4KG + "linkTarget"}
    assert targets == {deployment.urls["api"]}
    assert violations(platform.graph, deployment.iri) == []
    platform.deployments.delete(deployment.identifier, ALICE)


# -- acceptance: over-quota jobs queue, and start when capacity frees ---------------------------------
def test_over_quota_gpu_jobs_queue_and_start_when_the_first_is_deleted(tmp_path: Path) -> None:
    made = Platform(tmp_path, quotas=Quotas(user=Resources(cpu=16, memory_mb=64000, gpu=1, disk_mb=500000)))
    try:
        first, _ = made.deployments.create(batch(resources={"cpu": 1, "memory_mb": 500, "gpu": 1}), ALICE)
        second, _ = made.deployments.create(batch(resources={"cpu": 1, "memory_mb": 500, "gpu": 1}), ALICE)
        assert first.status == "starting" and second.status == "queued"
        assert "owner's quota" in second.waiting and "gpu (2 > 1)" in second.waiting
        other, _ = made.deployments.create(batch(resources={"cpu": 1, "memory_mb": 500, "gpu": 1}), CAROL)
        assert other.status == "starting"  # the quota is per user; the datacenter has 2 GPUs
        made.deployments.tick()
        assert made.deployments.get(second.identifier).status == "queued"
        gpus = {json.loads((tmp_path / "local/jobs" / d.identifier / "job.json").read_text())["gpus"][0]
                for d in (first, other)}
        assert gpus == {0, 1}  # two different GPUs

        made.deployments.delete(first.identifier, ALICE)
        started = made.deployments.get(second.identifier)
        assert started.status == "starting", started.waiting
        assert [c.status for c in started.history] == ["queued", "starting"]
        assert json.loads((tmp_path / "local/jobs" / second.identifier / "job.json").read_text())["gpus"] == [0]
    finally:
        stop_everything(tmp_path / "local")
        made.close()


def test_jobs_over_the_datacenter_capacity_wait_and_start_when_one_ends(tmp_path: Path) -> None:
    made = Platform(tmp_path, capacity={"local": Resources(cpu=2, memory_mb=4000, gpu=0, disk_mb=100000)})
    try:
        quick = [sys.executable, "-c", "import time; time.sleep(1.5)"]
        first, _ = made.deployments.create(batch(command=quick, resources={"cpu": 2, "memory_mb": 500}), ALICE)
        second, _ = made.deployments.create(batch(resources={"cpu": 2, "memory_mb": 500}), ALICE)
        assert (first.status, second.status) == ("starting", "queued")
        assert "room on a datacenter" in second.waiting and "cpu (2 > 0)" in second.waiting
        assert made.deployments.ledger.seq_of(second.identifier) is not None
        settle(made, first.identifier, "completed")
        assert made.deployments.get(second.identifier).status in ("starting", "running")
    finally:
        stop_everything(tmp_path / "local")
        made.close()


def test_what_could_never_run_is_refused_at_once(platform: Platform) -> None:
    with pytest.raises(DeploymentRejected) as refused:
        platform.deployments.create(batch(resources={"gpu": 3}), ALICE)
    assert {(i.field, i.rule) for i in refused.value.issues} >= {("resources.gpu", "quota"), ("resources.gpu", "capacity")}
    with pytest.raises(DeploymentRejected) as refused:
        platform.deployments.create(batch(datacenter="elsewhere"), ALICE)
    assert [(i.field, i.rule, i.value) for i in refused.value.issues] == [("datacenter", "exists", "elsewhere")]
    assert platform.deployments.ledger.count() == 0


# -- requests: errors name the field, the rule and the value; nothing is written ----------------------
@pytest.mark.parametrize("body, field, rule", [
    ({"kind": "module", "module": MODULE, "resources": {"gpus": 1}}, "resources.gpus", "unknown-key"),
    ({"kind": "batch", "module": MODULE}, "command", "required"),
    ({"kind": "batch", "module": MODULE, "command": ["x"], "endpoints": {"api": 5000}}, "endpoints", "kind"),
    ({"kind": "module", "module": MODULE, "duration_minutes": 5}, "duration_minutes", "kind"),
    ({"kind": "notebook", "module": MODULE}, "kind", "allowed-values"),
    ({"kind": "module", "module": MODULE, "resources": {"memory_mb": "lots"}}, "resources.memory_mb", "type"),
    ({"kind": "module", "module": MODULE, "datasets": [{"doi": "zenodo 1234"}]}, "datasets[0].doi", "format"),
    ({"kind": "module", "module": "no-such-module"}, "module", "exists"),
    ({"kind": "module", "module": MODULE, "name": "Bad Name"}, "name", "format"),
])
def test_bad_requests_name_the_field_and_write_nothing(platform: Platform, body: dict, field: str, rule: str) -> None:
    before = len(platform.graph.store)
    with pytest.raises(DeploymentRejected) as refused:
        platform.deployments.create(body, ALICE)
    assert (field, rule) in {(i.field, i.rule) for i in refused.value.issues}, refused.value.issues
    assert len(platform.graph.store) == before and platform.deployments.ledger.count() == 0


def test_rights_vos_and_names(platform: Platform) -> None:
    with pytest.raises(DeploymentRejected) as refused:
        platform.deployments.create(batch(vo="other"), ALICE)
    assert refused.value.status == 403 and refused.value.issues[0].field == "vo"
    mine, created = platform.deployments.create(batch(name="nightly-train"), ALICE)
    again, created_again = platform.deployments.create(batch(name="nightly-train"), ALICE)
    assert created and not created_again and again.identifier == mine.identifier
    with pytest.raises(DeploymentRejected) as taken:
        platform.deployments.create(batch(name="nightly-train"), CAROL)
    assert taken.value.status == 409 and taken.value.issues[0].field == "name"
    assert platform.deployments.get(mine.identifier, BOB) is None          # another VO: as if it did not exist
    assert platform.deployments.delete(mine.identifier, BOB) is None
    assert platform.deployments.find(BOB) == [] and platform.deployments.find(BOB, vo="default") == []
    assert platform.deployments.get(mine.identifier, CAROL) is not None    # the VO's members read it
    with pytest.raises(DeploymentRejected) as forbidden:
        platform.deployments.delete(mine.identifier, CAROL)               # only its owner deletes it
    assert forbidden.value.status == 403
    assert [d.identifier for _, d in platform.deployments.find(CAROL, vo="default")] == [mine.identifier]
    assert platform.deployments.find(CAROL) == []                           # carol's own: none
    platform.deployments.delete(mine.identifier, ALICE)


def test_another_vos_private_module_cannot_be_deployed(platform: Platform, tmp_path: Path) -> None:
    private = tmp_path / "secret-model.yml"
    private.write_text((DEMO / f"{MODULE}.yml").read_text())
    [report] = import_files(platform.graph, [private], ImportOptions(vo="other", visibility="private"))
    assert report.status == "imported"
    with pytest.raises(DeploymentRejected) as refused:
        platform.deployments.create({"kind": "module", "module": "secret-model"}, ALICE)
    assert (refused.value.issues[0].field, refused.value.issues[0].rule) == ("module", "exists")


def test_deployments_are_invisible_to_anonymous_sparql_and_other_vos(platform: Platform) -> None:
    deployment, _ = platform.deployments.create(batch(), ALICE)
    keys = KeyStore(platform.root / "data")
    _, bob = keys.create("bob", frozenset({"other"}))
    _, carol = keys.create("carol", frozenset({"default"}))
    query = "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?d a <https://w3id.org/ai4kg/ns#Deployment> } }"
    query = query.replace("Deployment>", "BatchTrainingDeployment>")
    with TestClient(create_app(platform.graph, keys, platform.deployments)) as client:
        def count(headers: dict[str, str]) -> int:
            answer = client.get("/sparql", params={"query": query}, headers={"Accept": "application/sparql-results+json", **headers})
            return int(answer.json()["results"]["bindings"][0]["n"]["value"])
        assert count({}) == 0 and count({"Authorization": f"Bearer {bob}"}) == 0
        assert count({"Authorization": f"Bearer {carol}"}) == 1
        assert client.get(f"/v1/deployments/{deployment.identifier}", headers={"Authorization": f"Bearer {bob}"}).status_code == 404
        assert client.get("/v1/deployments").status_code == 401
        assert client.get(f"/id/deployment/{deployment.identifier}").status_code == 404
    platform.deployments.delete(deployment.identifier, ALICE)


# -- the reconciler: job gone, a job nobody asked for, a status changed -------------------------------
def test_reconciler_repairs_and_records_each_difference(platform: Platform) -> None:
    finishing, _ = platform.deployments.create(batch(command=[sys.executable, "-c", "pass"]), ALICE)
    vanishing, _ = platform.deployments.create(batch(), ALICE)
    wait_for(lambda: (platform.root / "local/jobs" / finishing.identifier / "status.json").exists(), what="the job to end")
    # the job disappears from the workload manager (its runner and directory removed behind our back)
    os.killpg(json.loads((platform.root / "local/jobs" / vanishing.identifier / "runner.json").read_text())["pid"],
              signal.SIGKILL)
    wait_for(lambda: not platform.executor._alive(platform.root / "local/jobs" / vanishing.identifier))
    subprocess.run(["rm", "-rf", str(platform.root / "local/jobs" / vanishing.identifier)], check=True)
    # a job the platform never asked for
    from ai4kg.workloads.executor import Job
    platform.executor.start(Job("intruder", "batch", "default", "mallory", "x", "x", "local", Resources(1, 100, 0, 1),
                                command=SLEEP))

    report = platform.deployments.reconcile()
    assert (report.changed, report.gone, report.unknown) == (2, 1, 1)
    assert platform.deployments.get(finishing.identifier).status == "completed"
    gone = platform.deployments.get(vanishing.identifier)
    assert gone.status == "failed" and "found no job" in gone.history[-1].reason
    assert platform.executor.observe()["intruder"].status == "stopped"
    repairs = {(r.identifier, r.repair) for r in platform.deployments.ledger.repairs()}
    assert repairs == {(finishing.identifier, "status-changed"), (vanishing.identifier, "job-gone"),
                       ("intruder", "unknown-job")}
    # the graph says the same
    statuses = {platform.graph.asset_quads(d.iri)[0].graph_name.value: {
        q.object.value for q in platform.graph.asset_quads(d.iri)
        if q.predicate.value == AI4KG + "status" and q.subject.value == d.iri} for d in (finishing, vanishing)}
    assert statuses == {finishing.iri: {"completed"}, vanishing.iri: {"failed"}}
    assert platform.deployments.reconcile().changed == 0  # nothing left to repair


def test_a_failing_job_fails_with_its_exit_status(platform: Platform) -> None:
    failing, _ = platform.deployments.create(batch(command=[sys.executable, "-c", "raise SystemExit(3)"]), ALICE)
    found = settle(platform, failing.identifier, "failed")
    assert found.history[-1].reason == "the process exited with status 3"


def test_placement_avoids_a_datacenter_that_is_down(tmp_path: Path) -> None:
    class FlakyProvider(LocalExecutor):
        down: set[str] = set()

        def probe(self) -> list[Health]:
            return [Health(h.datacenter, "down", h.latency_s, "no answer") if h.datacenter in self.down else h
                    for h in super().probe()]

    executor = FlakyProvider(tmp_path / "local", {"north": Resources(4, 8000, 0, 100000),
                                                   "south": Resources(8, 8000, 0, 100000)})
    made = Platform(tmp_path, executor=executor)
    try:
        made.deployments.probe()
        first, _ = made.deployments.create(batch(), ALICE)
        assert first.placed_on == "south"  # the most room
        executor.down = {"south"}
        made.deployments.probe()
        assert made.deployments.ledger.health()["south"][0] == "down"
        second, _ = made.deployments.create(batch(), ALICE)
        assert second.placed_on == "north"
        executor.down = {"south", "north"}
        made.deployments.probe()
        third, _ = made.deployments.create(batch(), ALICE)
        assert third.status == "queued" and third.waiting == "waiting for a healthy datacenter"
        executor.down = set()
        made.deployments.probe()
        made.deployments.dispatch()
        assert made.deployments.get(third.identifier).status == "starting"
    finally:
        stop_everything(tmp_path / "local")
        made.close()


# -- crashes: the ledger and graph protocol; a replayed start runs nothing twice ---------------------
def test_a_record_saved_but_not_in_the_graph_is_completed_on_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = Platform(tmp_path)
    real_write = made.graph.write

    def crash(writes: Any) -> None:
        raise SystemExit("the server died between the ledger and the graph")
    monkeypatch.setattr(made.graph, "write", crash)
    with pytest.raises(SystemExit):
        made.deployments.create(batch(name="half-written"), ALICE)
    assert not made.graph.contains("https://w3id.org/ai4kg/id/deployment/half-written")
    assert made.deployments.ledger.pending() == []  # the outbox waits for the graph
    assert not (tmp_path / "local/jobs/half-written").exists()
    monkeypatch.setattr(made.graph, "write", real_write)
    made.close()

    reopened = Platform(tmp_path)  # a restart
    try:
        iri = "https://w3id.org/ai4kg/id/deployment/half-written"
        assert reopened.graph.contains(iri) and violations(reopened.graph, iri) == []
        assert [a.action for a in reopened.deployments.ledger.pending()] == ["start"]
        reopened.deployments.dispatch()
        assert reopened.deployments.get("half-written").status == "starting"
    finally:
        stop_everything(tmp_path / "local")
        reopened.close()


def test_a_started_job_whose_record_was_lost_is_adopted_not_started_again(platform: Platform) -> None:
    deployment, _ = platform.deployments.create(batch(), ALICE)
    job = platform.deployments._job(deployment, "local")
    # replaying the start (as after a crash between the executor's start and the record's update)
    platform.executor.start(job)
    runners = list((platform.root / "local/jobs").glob("*/runner.json"))
    assert len(runners) == 1
    # a second runner of the same job refuses to run
    directory = platform.root / "local/jobs" / deployment.identifier
    second = subprocess.run([sys.executable, "-m", "ai4kg.adapters.local_runner", str(directory), "--", "true"],
                            timeout=30)
    assert second.returncode == ALREADY_RUNNING
    platform.deployments.delete(deployment.identifier, ALICE)


def _serve(data: Path, port: int, log: Path, capacity: Path) -> subprocess.Popen:
    quotas = capacity.with_name("quotas.json")
    quotas.write_text(json.dumps({"user": {"cpu": 64}}))
    environment = {**os.environ, "AI4KG_LOCAL_CAPACITY": str(capacity), "AI4KG_QUOTAS": str(quotas),
                   "AI4KG_CONTROL_INTERVAL": "0.5"}
    return subprocess.Popen([sys.executable, "-c", "from ai4kg.cli import main; main()", "--data", str(data), "serve",
                             "--port", str(port)], stdout=log.open("a"), stderr=subprocess.STDOUT, env=environment)


def test_killing_the_server_while_creating_deployments_leaves_each_whole_or_absent(tmp_path: Path) -> None:
    """Acceptance: kill -9 the server in the middle of creating deployments, restart it; every
    deployment is complete or absent, none is duplicated; the client's retries (same names) then
    create each exactly once."""
    import concurrent.futures
    import socket

    import httpx

    made = Platform(tmp_path)  # the module imported, then the store closed for the server
    _, secret = KeyStore(tmp_path / "data").create("alice", frozenset({"default"}))
    made.close()
    capacity = tmp_path / "capacity.json"
    capacity.write_text(json.dumps({"local": {"cpu": 64, "memory_mb": 64000, "gpu": 0, "disk_mb": 100000}}))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {secret}"}
    names = [f"job-{n:02d}" for n in range(16)]

    def up(process: subprocess.Popen) -> None:
        def answering() -> bool:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                return httpx.get(f"{url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False
        wait_for(answering, 60, "the server")

    def post(name: str) -> int | None:
        try:
            return httpx.post(f"{url}/v1/deployments", headers=headers, timeout=30,
                              json=batch(name=name, command=LONG_SLEEP,
                                         resources={"cpu": 1, "memory_mb": 200, "disk_mb": 100})).status_code
        except httpx.HTTPError:
            return None

    server = _serve(tmp_path / "data", port, tmp_path / "serve.log", capacity)
    try:
        up(server)
        answered: list[int | None] = []
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(post, name) for name in names]
            wait_for(lambda: sum(f.done() for f in futures) >= 6, 60, "some answers")
            server.send_signal(signal.SIGKILL)  # in the middle: more requests are on their way
            server.wait(10)
            answered = [f.result() for f in futures]
        assert answered.count(201) >= 6 and None in answered  # some made it, some did not

        server = _serve(tmp_path / "data", port, tmp_path / "serve.log", capacity)
        up(server)
        # after the restart, before any retry: what exists is whole, and nothing twice
        graph_rows = _deployments_in_graph(url, headers)
        listed = httpx.get(f"{url}/v1/deployments", headers=headers, params={"limit": 1000}).json()["deployments"]
        assert sorted(graph_rows) == sorted(d["identifier"] for d in listed)
        for d in listed:
            assert d["history"][0]["status"] == "queued" and d["status"] in ("queued", "starting", "running"), d
        # the client retries everything: each name exactly once, idempotent
        retried = [post(name) for name in names]
        assert all(code in (200, 201) for code in retried), retried
        listed = httpx.get(f"{url}/v1/deployments", headers=headers, params={"limit": 1000}).json()["deployments"]
        assert sorted(d["identifier"] for d in listed) == names
        assert sorted(_deployments_in_graph(url, headers)) == names

        def one_runner_each() -> bool:
            running = [d for d in httpx.get(f"{url}/v1/deployments", headers=headers, params={"limit": 1000}).json()[
                "deployments"] if d["status"] == "running"]
            return len(running) == len(names)
        wait_for(one_runner_each, 60, "every job to run")
        # none duplicated: one live runner process per job
        ps = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True, check=True).stdout
        for name in names:
            assert ps.count(f"/local-executor/jobs/{name} --") == 1, name
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)
        stop_everything(tmp_path / "data" / "local-executor")


def _deployments_in_graph(url: str, headers: dict[str, str]) -> list[str]:
    import httpx

    query = ("PREFIX ai4kg: <https://w3id.org/ai4kg/ns#> SELECT ?id WHERE { GRAPH ?d { ?d a ai4kg:BatchTrainingDeployment ;"
             " ai4kg:identifier ?id ; ai4kg:statusChange ?c ; ai4kg:requestedResources ?r } } GROUP BY ?id")
    answer = httpx.get(f"{url}/sparql", params={"query": query}, headers={**headers,
                       "Accept": "application/sparql-results+json"}).json()
    return [row["id"]["value"] for row in answer["results"]["bindings"]]


def test_try_me_deployments_are_limited_per_user_and_stopped_when_their_time_is_up(tmp_path: Path) -> None:
    made = Platform(tmp_path, quotas=Quotas(try_me_per_user=1))
    try:
        first, _ = made.deployments.create({"kind": "try-me", "module": MODULE, "duration_minutes": 5}, ALICE)
        second, _ = made.deployments.create({"kind": "try-me", "module": MODULE}, ALICE)
        assert first.status == "starting" and first.expires_at is not None
        assert second.status == "queued" and "at most 1 try-me" in second.waiting
        first = made.deployments.get(first.identifier)
        first.expires_at = "2000-01-01T00:00:00Z"  # its time is up
        made.deployments._write([first])
        made.deployments.tick()
        ended = made.deployments.get(first.identifier)
        assert ended.status == "stopped" and ended.history[-1].reason == "its try-me time ran out"
        assert made.deployments.get(second.identifier).status == "starting"
    finally:
        stop_everything(tmp_path / "local")
        made.close()


def test_a_workload_managers_fragment_cannot_replace_a_managed_deployment(platform: Platform) -> None:
    from ai4kg.provenance.ingest import Provenance

    deployment, _ = platform.deployments.create(batch(name="tracked-job"), ALICE)
    shared = json.loads((Path(__file__).parents[2] / "shared/ai4eosc/provenance/fragments-demo-app.json").read_text())
    fragment = {**shared["nomad"], "applicationId": MODULE, "job_ID": "tracked-job"}
    [outcome] = Provenance(platform.graph).ingest([(fragment, "test")])
    assert outcome.status == "invalid" and [(i.field, i.rule) for i in outcome.errors] == [("job_ID", "managed")]
    assert platform.deployments.get("tracked-job").history  # the graph still holds the managed record
    assert any(q.predicate.value == AI4KG + "statusChange" for q in platform.graph.asset_quads(deployment.iri))
    # and a deployment cannot take the name of a job recorded from fragments
    fragment["job_ID"] = "job-from-nomad"
    [outcome] = Provenance(platform.graph).ingest([(fragment, "test")])
    assert outcome.status == "created", outcome.errors
    with pytest.raises(DeploymentRejected) as taken:
        platform.deployments.create(batch(name="job-from-nomad"), ALICE)
    assert taken.value.status == 409
    platform.deployments.delete(deployment.identifier, ALICE)


def test_the_local_executor_refuses_what_needs_nomads_sidecars(platform: Platform) -> None:
    refused, _ = platform.deployments.create(batch(datasets=[{"doi": "10.5281/zenodo.1234567"}],
                                                   notify="alice@example.org"), ALICE)
    assert refused.status == "failed"
    assert refused.history[-1].reason.startswith("the local workload manager refused it: the local executor downloads")
    assert "alice@example.org" not in platform.graph.export(ox.RdfFormat.N_QUADS).decode()  # kept out of the graph
    assert platform.deployments.ledger.pending() == []


def test_the_settings_choose_the_executor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ai4kg.adapters.nomad import NomadExecutor
    from ai4kg.workloads.service import open_deployments

    monkeypatch.setenv("AI4KG_WORKLOADS", "nomad")
    monkeypatch.delenv("AI4KG_NOMAD_ADDR", raising=False)
    with pytest.raises(ValueError, match="AI4KG_NOMAD_ADDR"):
        Settings.from_env(tmp_path / "data")
    monkeypatch.setenv("AI4KG_NOMAD_ADDR", "http://127.0.0.1:4646")
    monkeypatch.setenv("AI4KG_NOMAD_DATACENTERS", "north, south")
    capacity = tmp_path / "quotas.json"
    capacity.write_text(json.dumps({"user": {"gpu": 2}, "vo": {"default": {"cpu": 8, "memory_mb": 1, "gpu": 0,
                                                                           "disk_mb": 1}}}))
    monkeypatch.setenv("AI4KG_QUOTAS", str(capacity))
    with KnowledgeGraph(Settings.from_env(tmp_path / "data")) as graph:
        deployments = open_deployments(graph)
        assert isinstance(deployments.executor, NomadExecutor)
        assert deployments.executor.datacenters == ["north", "south"]
        assert deployments.quotas.user.gpu == 2 and deployments.quotas.user.cpu == 16  # the rest: defaults
        assert deployments.quotas.vo["default"] == Resources(8, 1, 0, 1)
        deployments.close()
