"""Training runs from a real MLflow tracking server (tests/conftest.py starts `mlflow server`) into
the provenance graph through adapters/mlflow.py: runs logged with the real mlflow client, synced,
mapped to PROV-O, kept verbatim; a second sync writes nothing, a changed run is updated, runs of
modules the catalogue lacks are skipped, and a server that is down says so."""

from __future__ import annotations

import logging
import socket
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Iterator

import httpx
import mlflow
import pandas as pd
import pyoxigraph as ox
import pytest

from ai4kg.adapters import mlflow as adapter
from ai4kg.adapters.mlflow import MlflowTracking, MlflowUnavailable, PeriodicSync, SyncReport, sync
from ai4kg.catalog import import_files
from ai4kg.config import Settings
from ai4kg.graph.store import KnowledgeGraph
from ai4kg.provenance.records import MODULE_TAG

from conftest import MODULES

BASE = "https://w3id.org/ai4kg/id/"
PROV = "http://www.w3.org/ns/prov#"
AI4KG = "https://w3id.org/ai4kg/ns#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
DEMO, YOLO = "ai4os-demo-app", "ai4os-yolo-torch"
START = 1735787045678  # 2025-01-02T03:04:05.678Z, in MLflow's milliseconds


def activity(run_id: str) -> str:
    return f"{BASE}trainingrun/mlflow-{run_id}"


def weights(run_id: str) -> str:
    return f"{BASE}entity/weights/mlflow-{run_id}"


def objects(graph: KnowledgeGraph, run_id: str, subject: str, predicate: str) -> set[str]:
    """The objects of (subject, predicate) in the run's provenance graph."""
    return {q.object.value for q in graph.asset_quads(activity(run_id))
            if q.subject.value == subject and q.predicate.value == predicate}


def outcome_of(report: SyncReport, run_id: str) -> Any:
    [outcome] = [o for o in report.outcomes if o.key == f"mlflow:{run_id}"]
    return outcome


@pytest.fixture(scope="module")
def client(mlflow_server: str) -> Iterator[mlflow.MlflowClient]:
    """The real mlflow client of the test server; the fluent API (log_input) points there too."""
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_server)
    yield mlflow.MlflowClient(tracking_uri=mlflow_server)
    mlflow.set_tracking_uri(before)


@pytest.fixture(scope="module")
def demo_experiment(client: mlflow.MlflowClient) -> str:
    """The experiment named after the demo module (names are unique on a server: shared by the tests)."""
    return client.create_experiment(DEMO)


@pytest.fixture
def catalogue() -> Iterator[KnowledgeGraph]:
    """A fresh store holding two real modules (each test syncs every run on the server into it)."""
    with KnowledgeGraph(Settings.in_memory()) as graph:
        reports = import_files(graph, [MODULES / f"{DEMO}__ai4-metadata.yml", MODULES / f"{YOLO}__ai4-metadata.yml"])
        assert [r.status for r in reports] == ["imported", "imported"]
        yield graph


def log_run(client: mlflow.MlflowClient, experiment: str, status: str | None, start: int = START,
            tags: dict[str, str] | None = None) -> str:
    """A run with params, metrics and tags; terminated with `status` (None: left running)."""
    run = client.create_run(experiment, start_time=start, tags=tags or {}, run_name=f"run-{uuid.uuid4().hex[:6]}")
    run_id = run.info.run_id
    client.log_param(run_id, "epochs", "10")
    client.log_metric(run_id, "train_loss", 0.25, timestamp=start + 1000, step=9)
    if status:
        client.set_terminated(run_id, status, end_time=start + 60_000)
    return run_id


def test_runs_become_training_runs_with_weights_and_the_fragment_verbatim(
        client: mlflow.MlflowClient, demo_experiment: str, catalogue: KnowledgeGraph, mlflow_server: str) -> None:
    finished = log_run(client, demo_experiment, "FINISHED")
    client.log_text(finished, "weights of the demo", "model/weights.txt")  # an artifact, through the server
    failed = log_run(client, demo_experiment, "FAILED", start=START + 5000)
    progress: list[int] = []

    report = sync(catalogue, mlflow_server, on_progress=progress.append)

    assert outcome_of(report, finished).status == outcome_of(report, failed).status == "created"
    assert report.created == len(report.outcomes) - report.skipped and report.updated == report.invalid == 0
    assert progress and progress[-1] == len(report.outcomes)
    for run_id, status in ((finished, "finished"), (failed, "failed")):
        run = activity(run_id)
        assert outcome_of(report, run_id).activity == run
        assert AI4KG + "TrainingRun" in objects(catalogue, run_id, run, RDF_TYPE)
        assert objects(catalogue, run_id, run, AI4KG + "status") == {status}
        assert objects(catalogue, run_id, run, AI4KG + "trainedModule") == {f"{BASE}module/{DEMO}"}
    # Only the finished run generated weights, stored where the server keeps the run's artifacts.
    assert objects(catalogue, finished, weights(finished), PROV + "wasGeneratedBy") == {activity(finished)}
    info = client.get_run(finished).info
    assert objects(catalogue, finished, weights(finished), PROV + "atLocation") == {info.artifact_uri}
    assert not [q for q in catalogue.asset_quads(activity(failed)) if q.predicate.value == PROV + "wasGeneratedBy"]
    # The times logged, as xsd:dateTime in UTC.
    expected = datetime.fromtimestamp(START / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    [started] = [q.object for q in catalogue.asset_quads(activity(finished))
                 if q.subject.value == activity(finished) and q.predicate.value == PROV + "startedAtTime"]
    assert started == ox.Literal(expected, datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#dateTime"))
    # The fragment is what the REST API serves, with the experiment's fields around it.
    stored = catalogue.fragments.get(f"mlflow:{finished}")
    assert stored is not None and stored.source == mlflow_server and stored.origin == "mlflow"
    served = httpx.get(f"{mlflow_server}/api/2.0/mlflow/runs/get", params={"run_id": finished}).json()["run"]
    assert stored.fragment["run"] == served
    assert stored.fragment["run"]["info"]["run_id"] == finished
    assert {"key": "epochs", "value": "10"} in stored.fragment["run"]["data"]["params"]
    assert stored.fragment["name"] == DEMO and stored.fragment["experiment_id"] == demo_experiment
    assert stored.fragment["origin"] == "MLflow"


def test_a_second_sync_writes_nothing(client: mlflow.MlflowClient, demo_experiment: str,
                                      catalogue: KnowledgeGraph, mlflow_server: str) -> None:
    log_run(client, demo_experiment, "FINISHED")
    first = sync(catalogue, mlflow_server)
    assert first.created >= 1
    before = catalogue.export(ox.RdfFormat.N_QUADS)
    received = {key: catalogue.fragments.get(key).received for key in catalogue.fragments.keys()}

    second = sync(catalogue, mlflow_server)

    assert second.unchanged == first.created and second.skipped == first.skipped
    assert second.created == second.updated == second.invalid == 0
    assert catalogue.export(ox.RdfFormat.N_QUADS) == before
    assert {key: catalogue.fragments.get(key).received for key in catalogue.fragments.keys()} == received


def test_a_run_that_changed_is_updated(client: mlflow.MlflowClient, demo_experiment: str,
                                       catalogue: KnowledgeGraph, mlflow_server: str) -> None:
    running = log_run(client, demo_experiment, None)
    tagged = log_run(client, demo_experiment, "FINISHED")
    first = sync(catalogue, mlflow_server)
    assert outcome_of(first, running).status == "created"
    assert objects(catalogue, running, activity(running), AI4KG + "status") == {"running"}
    assert not objects(catalogue, running, weights(running), PROV + "wasGeneratedBy")

    client.set_terminated(running, "FINISHED", end_time=START + 120_000)  # it finished since
    client.set_tag(tagged, "reviewed", "yes")  # a tag the mapping does not read: the fragment changed
    second = sync(catalogue, mlflow_server)

    assert outcome_of(second, running).status == outcome_of(second, tagged).status == "updated"
    assert second.updated == 2 and second.created == 0 and second.unchanged == first.created - 2
    assert objects(catalogue, running, activity(running), AI4KG + "status") == {"finished"}
    assert objects(catalogue, running, weights(running), PROV + "wasGeneratedBy") == {activity(running)}
    tags = catalogue.fragments.get(f"mlflow:{tagged}").fragment["run"]["data"]["tags"]
    assert {"key": "reviewed", "value": "yes"} in tags


def test_the_module_tag_wins_and_runs_of_unknown_modules_are_skipped(
        client: mlflow.MlflowClient, demo_experiment: str, catalogue: KnowledgeGraph, mlflow_server: str) -> None:
    elsewhere = log_run(client, demo_experiment, "FINISHED", tags={MODULE_TAG: YOLO})
    nowhere = client.create_experiment(f"no-such-module-{uuid.uuid4().hex[:8]}")
    orphan = log_run(client, nowhere, "FINISHED")

    report = sync(catalogue, mlflow_server)

    assert objects(catalogue, elsewhere, activity(elsewhere), AI4KG + "trainedModule") == {f"{BASE}module/{YOLO}"}
    skipped = outcome_of(report, orphan)
    assert skipped.status == "invalid" and [e.rule for e in skipped.errors] == ["unknown-module"]
    assert skipped.errors[0].field == "name"
    assert report.skipped >= 1 and report.invalid == 0
    assert report.created == len(report.outcomes) - report.skipped
    assert catalogue.fragments.get(f"mlflow:{orphan}") is None
    assert orphan.encode() not in catalogue.export(ox.RdfFormat.N_QUADS)
    assert sync(catalogue, mlflow_server).skipped == report.skipped  # skipped again, still nothing written


def test_a_dataset_input_becomes_a_used_entity(client: mlflow.MlflowClient, demo_experiment: str,
                                               catalogue: KnowledgeGraph, mlflow_server: str) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": [0, 1, 0]})
    with mlflow.start_run(experiment_id=demo_experiment) as run:
        mlflow.log_input(mlflow.data.from_pandas(frame, name="toy-training-set"), context="training")
    run_id = run.info.run_id
    [entry] = client.get_run(run_id).inputs.dataset_inputs
    digest = entry.dataset.digest
    dataset = f"{BASE}entity/dataset/mlflow-{digest}"

    report = sync(catalogue, mlflow_server)

    assert outcome_of(report, run_id).status == "created"
    assert objects(catalogue, run_id, activity(run_id), PROV + "used") == {dataset}
    assert objects(catalogue, run_id, dataset, AI4KG + "identifier") == {digest}
    assert objects(catalogue, run_id, dataset, "http://www.w3.org/2000/01/rdf-schema#label") == {"toy-training-set"}
    assert objects(catalogue, run_id, weights(run_id), PROV + "wasDerivedFrom") == {dataset}


def test_paging_reads_every_run(client: mlflow.MlflowClient, demo_experiment: str, mlflow_server: str,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    log_run(client, demo_experiment, "FINISHED")
    with MlflowTracking(mlflow_server) as tracking:
        whole = [f["run"]["info"]["run_id"] for f in tracking.fragments()]
        experiments = [e["experiment_id"] for e in tracking.experiments()]
        monkeypatch.setattr(adapter, "PAGE_SIZE", 1)
        assert [e["experiment_id"] for e in tracking.experiments()] == experiments
        paged = [f["run"]["info"]["run_id"] for f in tracking.fragments()]
    assert len(whole) >= 2 and len(experiments) >= 2
    assert paged == whole and len(set(paged)) == len(paged)


def test_bearer_token_and_errors_name_the_server(mlflow_server: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(403, json={"error_code": "PERMISSION_DENIED", "message": "no access"})

    with MlflowTracking("https://mlflow.example.org/", token="s3cret",
                        client=httpx.Client(transport=httpx.MockTransport(handler))) as tracking:
        with pytest.raises(MlflowUnavailable, match=r"https://mlflow\.example\.org .*HTTP 403.*no access"):
            list(tracking.fragments())
    assert seen[0].headers["authorization"] == "Bearer s3cret"
    assert seen[0].url == "https://mlflow.example.org/api/2.0/mlflow/experiments/search"

    with pytest.raises(MlflowUnavailable, match="HTTP 404"):
        list(MlflowTracking(f"{mlflow_server}/not-mlflow").experiments())


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the socket is


def test_a_server_that_is_down_is_named(catalogue: KnowledgeGraph, caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(MlflowUnavailable, match=f"{url} does not answer"):
        list(MlflowTracking(url, timeout=5).fragments())
    with pytest.raises(MlflowUnavailable, match=url):
        sync(catalogue, url)
    periodic = PeriodicSync(catalogue, url, interval=60)
    with caplog.at_level(logging.WARNING, logger="ai4kg.adapters.mlflow"):
        assert periodic.run_once() is None
    assert periodic.last_report is None and isinstance(periodic.last_error, MlflowUnavailable)
    assert url in caplog.text


def test_periodic_sync_records_reports_until_stopped(client: mlflow.MlflowClient, demo_experiment: str,
                                                     catalogue: KnowledgeGraph, mlflow_server: str) -> None:
    run_id = log_run(client, demo_experiment, "FINISHED")
    periodic = PeriodicSync(catalogue, mlflow_server, interval=3600)
    report = periodic.run_once()
    assert report is not None and periodic.last_report is report and periodic.last_error is None
    assert outcome_of(report, run_id).status == "created"

    periodic.start()  # syncs at once (nothing new), then would wait an hour
    deadline = time.monotonic() + 60
    while periodic.last_report is report:
        assert time.monotonic() < deadline, "the periodic sync did not run"
        time.sleep(0.05)
    stopping = time.monotonic()
    periodic.stop()
    assert time.monotonic() - stopping < 10  # stop() wakes the thread from its wait
    assert periodic.last_report.created == 0 and periodic.last_report.unchanged == report.created


def test_the_adapter_does_not_import_mlflow() -> None:
    """mlflow is a test dependency only: the product reads the REST API with httpx."""
    import ast

    tree = ast.parse(open(adapter.__file__, encoding="utf-8").read())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and not node.level}
    assert "httpx" in imported and not {name for name in imported if name.split(".")[0] == "mlflow"}


def test_the_sync_endpoint_is_for_administrators(client: mlflow.MlflowClient, demo_experiment: str,
                                                  mlflow_server: str) -> None:
    """POST /v1/provenance/mlflow-sync pulls from the configured server; the runs are then in lineage."""
    from fastapi.testclient import TestClient

    from ai4kg.api.app import create_app
    from ai4kg.credentials import KeyStore

    run_id = log_run(client, demo_experiment, "FINISHED")
    keys = KeyStore(None)
    _, admin = keys.create("operator", frozenset(), admin=True)
    _, member = keys.create("member", frozenset({"default"}))
    with KnowledgeGraph(Settings(data_dir=None, mlflow_url=mlflow_server)) as graph:
        import_files(graph, [MODULES / f"{DEMO}__ai4-metadata.yml"])
        api = TestClient(create_app(graph, keys))
        assert api.post("/v1/provenance/mlflow-sync").status_code == 401
        assert api.post("/v1/provenance/mlflow-sync", headers={"Authorization": f"Bearer {member}"}).status_code == 403
        response = api.post("/v1/provenance/mlflow-sync", headers={"Authorization": f"Bearer {admin}"})
        assert response.status_code == 200, response.text
        assert response.json()["created"] >= 1
        walk = api.get("/v1/provenance/lineage", params={"iri": weights(run_id)}).json()
        assert {"source": weights(run_id), "relation": "wasGeneratedBy", "target": activity(run_id)} in walk["edges"]
    with KnowledgeGraph(Settings.in_memory()) as graph:  # no server configured
        api = TestClient(create_app(graph, keys))
        assert api.post("/v1/provenance/mlflow-sync", headers={"Authorization": f"Bearer {admin}"}).status_code == 409
