"""The Nomad adapter: the job each kind of deployment becomes, its calls through python-nomad, and
the platform's executor on Nomad (alone, and under the deployments service), against a loopback
stand-in of Nomad's HTTP API (tests/nomad_api.py)."""

from __future__ import annotations

import dataclasses
import os
import socket
import stat
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from ai4kg.adapters.nomad import (DATASET_SCRIPT, SIDECARS, DeploymentSpec, NomadExecutor, NomadRejected,
                                  NomadUnavailable, NomadWorkloads, job_spec)
from ai4kg.workloads.executor import Job, JobRefused, Resources

from conftest import REPO
from nomad_api import NODE_IP, NomadApi

SERVICE = DeploymentSpec(identifier="mod-123", kind="module", vo="ai4eosc", owner="alice@example.org",
                         title="Plant classifier", description="Classifies plants", image="ai4oshub/plants:latest",
                         cpu=2000, memory_mb=4000, disk_mb=5000, datacenters=["ifca", "iisas"],
                         endpoints={"api": 5000, "ide": 8888})
BATCH = DeploymentSpec(identifier="train-7", kind="batch", vo="imagine", owner="bob@example.org",
                       image="ai4oshub/trainer:1.0", command=["python", "train.py", "--epochs", "3"])


@pytest.fixture
def api() -> Iterator[NomadApi]:
    with NomadApi() as server:
        yield server


def _job(spec: DeploymentSpec) -> dict:
    return job_spec(spec)["Job"]


def _tasks(job: dict) -> dict[str, dict]:
    return {t["Name"]: t for t in job["TaskGroups"][0]["Tasks"]}


# --- the job spec ---

@pytest.mark.parametrize("kind, job_type", [("module", "service"), ("tool", "service"), ("try-me", "service"),
                                            ("batch", "batch")])
def test_kind_gives_the_job_type(kind: str, job_type: str) -> None:
    spec = dataclasses.replace(SERVICE, kind=kind, endpoints={} if kind == "batch" else SERVICE.endpoints,
                               command=["run"] if kind == "batch" else None)
    job = _job(spec)
    assert job["Type"] == job_type
    assert job["Meta"]["ai4kg.kind"] == kind


def test_service_job_has_namespace_meta_datacenters_resources_and_ports() -> None:
    job = _job(SERVICE)
    assert (job["ID"], job["Namespace"], job["Datacenters"]) == ("mod-123", "ai4eosc", ["ifca", "iisas"])
    assert job["Meta"] == {"owner": "alice@example.org", "title": "Plant classifier",
                           "description": "Classifies plants", "ai4kg.kind": "module"}
    group = job["TaskGroups"][0]
    assert group["EphemeralDisk"] == {"SizeMB": 5000}
    assert group["Networks"] == [{"DynamicPorts": [{"Label": "api", "To": 5000}, {"Label": "ide", "To": 8888}]}]
    main = _tasks(job)["main"]
    assert main["Driver"] == "docker"
    assert main["Config"] == {"image": "ai4oshub/plants:latest", "ports": ["api", "ide"]}
    assert main["Resources"] == {"CPU": 2000, "MemoryMB": 4000}   # no GPU asked: no device
    assert list(_tasks(job)) == ["main"]                           # no dataset, no storage: no sidecar


def test_batch_job_runs_the_command_and_serves_nothing() -> None:
    job = _job(BATCH)
    assert job["Type"] == "batch" and job["Namespace"] == "imagine"
    assert "Networks" not in job["TaskGroups"][0]
    assert _tasks(job)["main"]["Config"] == {"image": "ai4oshub/trainer:1.0", "command": "python",
                                             "args": ["train.py", "--epochs", "3"]}
    with pytest.raises(ValueError, match="'command' is required for a batch job"):
        job_spec(dataclasses.replace(BATCH, command=None))


def test_gpu_gives_a_device_with_constraints() -> None:
    resources = _tasks(_job(dataclasses.replace(SERVICE, gpu=2, gpu_model="Tesla T4")))["main"]["Resources"]
    assert resources["Devices"] == [{"Name": "nvidia/gpu", "Count": 2, "Constraints": [
        {"LTarget": "${device.vendor}", "Operand": "=", "RTarget": "nvidia"},
        {"LTarget": "${device.model}", "Operand": "=", "RTarget": "Tesla T4"}]}]


def test_sidecars_for_dataset_and_storage() -> None:
    job = _job(dataclasses.replace(SERVICE, dataset_doi="10.5281/zenodo.1234567", storage="nextcloud:/alice"))
    tasks = _tasks(job)
    dataset, storage = tasks["dataset-download"], tasks["storage-mount"]
    assert dataset["Lifecycle"] == {"Hook": "prestart", "Sidecar": False}
    assert dataset["Env"]["DATASET_DOI"] == "10.5281/zenodo.1234567"   # passed in the environment, not the script
    assert "10.5281" not in " ".join(dataset["Config"]["args"])
    assert storage["Lifecycle"] == {"Hook": "prestart", "Sidecar": True}
    assert storage["Config"]["args"][:3] == ["mount", "nextcloud:/alice", "/alloc/storage"]
    # the templates are not changed by building a job
    assert "DATASET_DOI" not in SIDECARS["dataset"]["Env"] and SIDECARS["storage"]["Config"]["args"][1] == ""
    again = _tasks(_job(dataclasses.replace(SERVICE, storage="other:/bob")))["storage-mount"]
    assert again["Config"]["args"][1] == "other:/bob"


def test_notification_sidecar_mails_the_address_when_the_job_ends() -> None:
    tasks = _tasks(_job(dataclasses.replace(SERVICE, notify_email="alice@example.org")))
    notify = tasks["notify"]
    assert notify["Lifecycle"] == {"Hook": "poststop", "Sidecar": False}
    assert notify["Env"]["DEST"] == "alice@example.org" and "${NOMAD_JOB_ID}" in notify["Env"]["SUBJECT"]
    assert "DEST" not in SIDECARS["notification"]["Env"]
    with pytest.raises(ValueError, match="notify_email"):
        _job(dataclasses.replace(SERVICE, notify_email="not an address"))


@pytest.mark.parametrize("change, field", [
    ({"kind": "notebook"}, "kind"), ({"identifier": "has space"}, "identifier"), ({"vo": "vo.ai4eosc.eu"}, "vo"),
    ({"cpu": 0}, "cpu"), ({"gpu": -1}, "gpu"), ({"datacenters": []}, "datacenters"),
    ({"endpoints": {"api": 70000}}, "endpoints"), ({"dataset_doi": "not-a-doi"}, "dataset_doi"),
    ({"storage": "/etc; rm -rf /"}, "storage"), ({"image": "a b"}, "image"),
])
def test_invalid_spec_names_the_field(change: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"field '{field}'"):
        job_spec(dataclasses.replace(SERVICE, **change))


def _run_dataset_script(tmp_path: Path, datahugger: str) -> subprocess.CompletedProcess:
    """The sidecar's script under bash, with a stand-in `datahugger` first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / "datahugger"
    tool.write_text("#!/usr/bin/env bash\n" + datahugger)
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "DATASET_DOI": "10.5281/zenodo.1",
           "DATASET_DIR": str(tmp_path / "data")}
    script = _tasks(_job(dataclasses.replace(SERVICE, dataset_doi="10.5281/zenodo.1")))["dataset-download"]
    assert script["Config"]["command"] == "bash" and script["Config"]["args"][0] == "-c"
    return subprocess.run(["bash", "-c", script["Config"]["args"][1]], env=env, capture_output=True, text=True,
                          timeout=30)


def test_dataset_script_fails_when_the_download_fails(tmp_path: Path) -> None:
    # a partial download: the directory is not empty, so only `set -e` can tell
    failed = _run_dataset_script(tmp_path, "echo half > \"$2/part\"; echo 'connection reset' >&2; exit 3\n")
    assert failed.returncode == 3 and (tmp_path / "data" / "part").exists()


def test_dataset_script_fails_when_the_download_writes_nothing(tmp_path: Path) -> None:
    empty = _run_dataset_script(tmp_path, "exit 0\n")
    assert empty.returncode != 0 and "wrote nothing" in empty.stderr


def test_dataset_script_succeeds_on_a_download(tmp_path: Path) -> None:
    done = _run_dataset_script(tmp_path, 'echo rows > "$2/data.csv"\n')
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "data.csv").read_text() == "rows\n"


def test_dataset_script_holds_no_nomad_interpolation() -> None:
    assert "${" not in DATASET_SCRIPT


# --- the calls, against the stand-in ---

def test_register_status_allocations_endpoints(api: NomadApi) -> None:
    workloads = NomadWorkloads(api.address)
    assert workloads.status("mod-123", "ai4eosc") is None
    eval_id = workloads.register(SERVICE)
    assert len(eval_id) == 36
    assert ("POST", "/v1/jobs") in [(m, p) for m, p, _ in api.requests]
    assert api.jobs[("ai4eosc", "mod-123")]["Meta"]["owner"] == "alice@example.org"
    assert workloads.status("mod-123", "ai4eosc") == "running"
    allocations = workloads.allocations("mod-123", "ai4eosc")
    assert [a["ClientStatus"] for a in allocations] == ["running"]
    endpoints = workloads.endpoints("mod-123", "ai4eosc")
    assert set(endpoints) == {"api", "ide"}
    assert all(e.startswith(f"{NODE_IP}:2") for e in endpoints.values())
    assert endpoints["api"] != endpoints["ide"]


def test_stop_then_purge(api: NomadApi) -> None:
    workloads = NomadWorkloads(api.address)
    workloads.register(BATCH)
    assert workloads.stop("train-7", "imagine") is True
    assert workloads.status("train-7", "imagine") == "dead"
    assert workloads.endpoints("train-7", "imagine") == {}
    assert [j["Stop"] for j in workloads.jobs("imagine")] == [True]
    assert workloads.stop("train-7", "imagine", purge=True) is True
    assert workloads.status("train-7", "imagine") is None
    assert workloads.allocations("train-7", "imagine") == []
    assert workloads.stop("train-7", "imagine") is False


def test_namespaces_keep_jobs_apart(api: NomadApi) -> None:
    workloads = NomadWorkloads(api.address, namespaces={"vo.imagine-ai.eu": "imagine"})
    workloads.register(SERVICE)
    workloads.register(dataclasses.replace(BATCH, vo="vo.imagine-ai.eu"))
    assert workloads.status("mod-123", "imagine") is None
    assert workloads.allocations("mod-123", "imagine") == []
    assert workloads.stop("mod-123", "imagine") is False
    assert workloads.status("mod-123", "ai4eosc") == "running"
    assert [j["ID"] for j in workloads.jobs("ai4eosc")] == ["mod-123"]
    listed = {(j["Namespace"], j["ID"]): j for j in workloads.jobs()}
    assert set(listed) == {("ai4eosc", "mod-123"), ("imagine", "train-7")}
    assert listed[("imagine", "train-7")]["Meta"]["ai4kg.kind"] == "batch"


def test_token_is_required() -> None:
    with NomadApi(token="s3cret") as api:
        with pytest.raises(NomadRejected) as refused:
            NomadWorkloads(api.address, token="wrong").register(SERVICE)
        assert refused.value.status == 403 and "ACL token not found" in str(refused.value)
        assert api.address in str(refused.value) and not api.jobs
        assert NomadWorkloads(api.address, token="s3cret").register(SERVICE)
        assert NomadWorkloads(api.address, token="s3cret").status("mod-123", "ai4eosc") == "running"
        assert all(token == "s3cret" for token in api.tokens[-2:])


def test_missing_token_is_permission_denied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOMAD_TOKEN", raising=False)
    with NomadApi(token="s3cret") as api:
        with pytest.raises(NomadRejected, match="HTTP 403: Permission denied"):
            NomadWorkloads(api.address).jobs()


def test_invalid_job_is_rejected_with_nomads_message(api: NomadApi) -> None:
    workloads = NomadWorkloads(api.address)
    bad = job_spec(SERVICE)
    bad["Job"]["TaskGroups"] = []
    with pytest.raises(NomadRejected) as rejected:
        workloads._call("register", lambda: workloads._nomad.jobs.register_job(bad))
    assert rejected.value.status == 400 and "Missing job task groups" in rejected.value.message


def test_server_error_is_unavailable(api: NomadApi) -> None:
    api.fail_with = 500
    with pytest.raises(NomadUnavailable, match=r"HTTP 500: rpc error: No cluster leader") as failed:
        NomadWorkloads(api.address).status("mod-123", "ai4eosc")
    assert api.address in str(failed.value)


def test_closed_port_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"http://127.0.0.1:{port}"
    with pytest.raises(NomadUnavailable, match=f"the Nomad server at {address} does not answer"):
        NomadWorkloads(address, timeout=2).register(SERVICE)


def test_not_nomad_is_unavailable() -> None:
    with NomadApi() as api:
        api.handle = lambda *args: (200, "<html>not nomad</html>")  # type: ignore[method-assign]
        with pytest.raises(NomadUnavailable, match="did not answer as Nomad does"):
            NomadWorkloads(api.address).jobs()


# --- the executor ---

VO, NAMESPACE = "vo.ai4eosc.eu", "ai4eosc"   # a VO whose name is no namespace name
MODULE_JOB = Job(identifier="plants-1", kind="module", vo=VO, owner="alice@example.org", image="ai4oshub/plants:1.0",
                 title="Plant classifier", datacenter="ifca", resources=Resources(cpu=2, memory_mb=4000, disk_mb=5000),
                 description="Classifies plants", endpoints={"api": 5000}, module="plants-classifier")
BATCH_JOB = Job(identifier="train-1", kind="batch", vo=VO, owner="bob@example.org", image="ai4oshub/trainer:1.0",
                title="Training", datacenter="iisas", resources=Resources(cpu=1, memory_mb=2000, disk_mb=1000),
                command=["python", "train.py"], module="trainer")


def _executor(api: NomadApi, **options: Any) -> NomadExecutor:
    workloads = NomadWorkloads(api.address, namespaces={VO: NAMESPACE}, timeout=5)
    return NomadExecutor(workloads, ["ifca", "iisas"], **{"capacity_ttl_s": 0, **options})


def _count(api: NomadApi, method: str, path: str) -> int:
    return sum(1 for m, p, _ in api.requests if (m, p) == (method, path))


def test_executor_start_registers_the_job(api: NomadApi) -> None:
    _executor(api).start(MODULE_JOB)
    job = api.jobs[(NAMESPACE, "plants-1")]
    assert (job["Type"], job["Datacenters"]) == ("service", ["ifca"])
    assert job["Meta"] == {"owner": "alice@example.org", "title": "Plant classifier",
                           "description": "Classifies plants", "ai4kg.kind": "module",
                           "ai4kg.module": "plants-classifier"}
    group = job["TaskGroups"][0]
    assert _tasks(job)["main"]["Resources"] == {"CPU": 2000, "MemoryMB": 4000}   # 2 cores asked: 2000 MHz
    assert group["EphemeralDisk"] == {"SizeMB": 5000}
    assert group["Networks"] == [{"DynamicPorts": [{"Label": "api", "To": 5000}]}]
    assert _tasks(job)["main"]["Config"]["image"] == "ai4oshub/plants:1.0"


def test_executor_dataset_gpu_and_storage_reach_the_job(api: NomadApi) -> None:
    job = dataclasses.replace(MODULE_JOB, resources=Resources(cpu=1, memory_mb=1000, gpu=1, disk_mb=1000),
                              gpu_model="Tesla T4", datasets=("10.5281/zenodo.1234567",), storage="nextcloud:/alice")
    _executor(api).start(job)
    tasks = _tasks(api.jobs[(NAMESPACE, "plants-1")])
    assert tasks["dataset-download"]["Env"]["DATASET_DOI"] == "10.5281/zenodo.1234567"
    assert tasks["storage-mount"]["Config"]["args"][1] == "nextcloud:/alice"
    assert tasks["main"]["Resources"]["Devices"][0]["Count"] == 1


def test_executor_start_twice_runs_once(api: NomadApi) -> None:
    executor = _executor(api)
    executor.start(MODULE_JOB)
    executor.start(MODULE_JOB)                      # a replayed start: Nomad runs it already
    assert _count(api, "POST", "/v1/jobs") == 1
    assert len(api.allocs) == 1 and api.jobs[(NAMESPACE, "plants-1")]["Version"] == 0
    api.new_allocations = "queued"                  # a job Nomad is still placing is not registered again either
    executor.start(dataclasses.replace(BATCH_JOB, identifier="train-2"))
    executor.start(dataclasses.replace(BATCH_JOB, identifier="train-2"))
    assert _count(api, "POST", "/v1/jobs") == 2


def test_executor_starts_a_stopped_or_dead_job_again(api: NomadApi) -> None:
    executor = _executor(api)
    executor.start(MODULE_JOB)
    assert executor.stop("plants-1", VO) is True
    executor.start(MODULE_JOB)                      # stopped: registered again, a new version
    job = api.jobs[(NAMESPACE, "plants-1")]
    assert (job["Stop"], job["Status"], job["Version"]) == (False, "running", 1)
    executor.start(BATCH_JOB)
    api.set_allocations("train-1", "complete", NAMESPACE)
    assert api.jobs[(NAMESPACE, "train-1")]["Status"] == "dead"
    executor.start(BATCH_JOB)                       # dead: registered again
    assert _count(api, "POST", "/v1/jobs") == 4 and api.jobs[(NAMESPACE, "train-1")]["Status"] == "running"


@pytest.mark.parametrize("change, message", [
    ({"vo": "vo.other.eu"}, "field 'vo'"),                            # no namespace given for that VO
    ({"resources": Resources(cpu=0, memory_mb=100, disk_mb=100)}, "field 'cpu'"),
    ({"endpoints": {"web ui": 80}}, "field 'endpoints'"),
    ({"datasets": ("10.5281/zenodo.1", "10.5281/zenodo.2")}, "one dataset"),
])
def test_executor_refuses_an_invalid_job_without_asking_nomad(api: NomadApi, change: dict, message: str) -> None:
    with pytest.raises(JobRefused, match=message):
        _executor(api).start(dataclasses.replace(MODULE_JOB, **change))
    assert api.requests == [] and not api.jobs


def test_executor_refusal_by_nomad_is_job_refused(api: NomadApi) -> None:
    answer = api.handle

    def refuse_registrations(method: str, path: str, *rest: Any) -> tuple[int, Any]:
        if method in ("POST", "PUT") and path == "/v1/jobs":
            return 400, "1 error(s) occurred:\n\n* Constraint \"${device.model} = Tesla T4\" filters out all nodes"
        return answer(method, path, *rest)

    api.handle = refuse_registrations  # type: ignore[method-assign]
    with pytest.raises(JobRefused, match=r"(?s)Nomad refused job plants-1 in namespace ai4eosc with HTTP 400: "
                                         r".*Tesla T4"):
        _executor(api).start(MODULE_JOB)


def test_executor_without_the_right_token_is_not_a_refusal() -> None:
    with NomadApi(token="s3cret") as api:
        executor = NomadExecutor(NomadWorkloads(api.address, token="wrong", namespaces={VO: NAMESPACE}), ["ifca"])
        with pytest.raises(NomadRejected) as rejected:   # tried again once the operator fixes the token
            executor.start(MODULE_JOB)
        assert rejected.value.status == 403 and not isinstance(rejected.value, JobRefused)


def test_executor_start_while_nomad_is_down_is_transient(api: NomadApi) -> None:
    api.fail_with = 500
    with pytest.raises(NomadUnavailable, match="No cluster leader"):
        _executor(api).start(MODULE_JOB)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = NomadExecutor(NomadWorkloads(f"http://127.0.0.1:{port}", namespaces={VO: NAMESPACE}, timeout=2), ["ifca"])
    with pytest.raises(NomadUnavailable, match="does not answer"):
        closed.start(MODULE_JOB)


def test_executor_stop(api: NomadApi) -> None:
    executor = _executor(api)
    executor.start(MODULE_JOB)
    assert executor.stop("plants-1", VO) is True
    job = api.jobs[(NAMESPACE, "plants-1")]           # stopped, not purged: its history stays readable
    assert (job["Stop"], job["Status"]) == (True, "dead")
    assert ("DELETE", "/v1/job/plants-1", {"namespace": [NAMESPACE]}) in api.requests
    assert executor.stop("unknown-job", VO) is False
    assert executor.stop("plants-1", "vo.other.eu") is False   # another VO's namespace has no such job


def _foreign_job(api: NomadApi) -> None:
    """A job of the cluster that the platform did not start (no ai4kg meta)."""
    job = job_spec(dataclasses.replace(SERVICE, identifier="traefik", vo="default"))["Job"]
    job["Meta"] = {"owner": "ops"}
    NomadWorkloads(api.address)._nomad.jobs.register_job({"Job": job})


def test_executor_observe_maps_nomads_states(api: NomadApi) -> None:
    executor = _executor(api)
    executor.start(MODULE_JOB)                                                # running
    executor.start(BATCH_JOB)
    api.set_allocations("train-1", "complete", NAMESPACE)                    # completed
    executor.start(dataclasses.replace(BATCH_JOB, identifier="train-broke"))
    api.set_allocations("train-broke", "failed", NAMESPACE)                  # failed
    executor.start(dataclasses.replace(BATCH_JOB, identifier="train-lost"))
    api.set_allocations("train-lost", "lost", NAMESPACE)                     # failed: its node went away
    executor.start(dataclasses.replace(MODULE_JOB, identifier="halted"))
    executor.stop("halted", VO)                                              # stopped
    api.new_allocations = "pending"
    executor.start(dataclasses.replace(MODULE_JOB, identifier="pulling"))    # starting: allocation pending
    api.new_allocations = "queued"
    executor.start(dataclasses.replace(MODULE_JOB, identifier="no-room"))    # starting: not placed
    _foreign_job(api)
    observed = executor.observe()
    assert {i: o.status for i, o in observed.items()} == {
        "plants-1": "running", "train-1": "completed", "train-broke": "failed", "train-lost": "failed",
        "halted": "stopped", "pulling": "starting", "no-room": "starting"}
    plants = observed["plants-1"]
    assert (plants.vo, plants.datacenter) == (VO, "ifca")                     # the namespace mapped back to the VO
    assert list(plants.urls) == ["api"] and plants.urls["api"].startswith(f"http://{NODE_IP}:2")
    assert plants.urls["api"].endswith("/")
    assert observed["train-1"].datacenter == "iisas" and observed["train-1"].urls == {}
    assert "1 allocation(s) failed" in observed["train-broke"].detail
    assert "1 lost" in observed["train-lost"].detail
    assert "1 queued" in observed["no-room"].detail and "1 starting" in observed["pulling"].detail
    assert all(o.urls == {} for i, o in observed.items() if i != "plants-1")
    listings = [q for m, p, q in api.requests if (m, p) == ("GET", "/v1/jobs")]
    assert listings == [{"namespace": ["*"], "meta": ["True"]}]             # one call for every namespace
    fetched = {p for m, p, _ in api.requests if p.endswith("/allocations")}
    assert fetched == {"/v1/job/plants-1/allocations"}                       # only the running service job


def test_executor_observe_follows_a_job_to_its_end(api: NomadApi) -> None:
    executor = _executor(api)
    api.new_allocations = "pending"
    executor.start(BATCH_JOB)
    assert executor.observe()["train-1"].status == "starting"
    api.set_allocations("train-1", "running", NAMESPACE)
    assert executor.observe()["train-1"].status == "running"
    api.set_allocations("train-1", "complete", NAMESPACE)
    assert executor.observe()["train-1"].status == "completed"


def test_executor_observe_reads_urls_once_per_job_version(api: NomadApi) -> None:
    executor = _executor(api)
    executor.start(MODULE_JOB)
    first = executor.observe()["plants-1"].urls
    assert executor.observe()["plants-1"].urls == first
    assert executor.observe()["plants-1"].urls == first
    assert _count(api, "GET", "/v1/job/plants-1/allocations") == 1           # unchanged: read once
    NomadWorkloads(api.address, namespaces={VO: NAMESPACE}).register(        # a new version: new allocation, new port
        dataclasses.replace(NomadExecutor.spec_of(MODULE_JOB), memory_mb=5000))
    second = executor.observe()["plants-1"].urls
    assert second != first and _count(api, "GET", "/v1/job/plants-1/allocations") == 2


def test_executor_observe_keeps_the_urls_when_reading_them_fails(api: NomadApi) -> None:
    executor = _executor(api)
    executor.start(MODULE_JOB)
    first = executor.observe()["plants-1"].urls
    api.set_allocations("plants-1", "running", NAMESPACE)                    # the job changed: its URLs are read again
    answer, failed = api.handle, []

    def fail_allocations(method: str, path: str, *rest: Any) -> tuple[int, Any]:
        if "/allocation" in path:
            failed.append(path)
            return 500, "rpc error: timeout"
        return answer(method, path, *rest)

    api.handle = fail_allocations  # type: ignore[method-assign]
    seen = executor.observe()["plants-1"]
    assert (seen.status, seen.urls) == ("running", first) and failed == ["/v1/job/plants-1/allocations"]
    api.handle = answer  # type: ignore[method-assign]
    assert executor.observe()["plants-1"].urls == first
    assert _count(api, "GET", "/v1/job/plants-1/allocations") == 2           # failed once, so read again


def test_executor_observe_when_nomad_is_down_raises(api: NomadApi) -> None:
    api.fail_with = 503
    with pytest.raises(NomadUnavailable):
        _executor(api).observe()


def test_executor_capacity_sums_the_schedulable_nodes(api: NomadApi) -> None:
    api.add_node("ifca", cores=8, memory_mb=32_000, disk_mb=100_000)
    api.add_node("ifca", cores=16, memory_mb=64_000, disk_mb=200_000, gpus=2)
    api.add_node("ifca", status="down", cores=64, gpus=4)
    api.add_node("ifca", drain=True, cores=64, gpus=4)
    api.add_node("ifca", eligible=False, cores=64)
    unhealthy = api.add_node("ifca", cores=4, memory_mb=8_000, disk_mb=10_000, gpus=2)
    unhealthy["NodeResources"]["Devices"][0]["Instances"][1]["Healthy"] = False
    api.add_node("iisas", cores=4, mhz=2500, memory_mb=16_000, disk_mb=50_000, with_cores=False)
    api.add_node("elsewhere", cores=128)                                      # not a datacenter the platform uses
    capacity = _executor(api).capacity()
    assert capacity == {"ifca": Resources(cpu=28, memory_mb=104_000, gpu=3, disk_mb=310_000),
                        "iisas": Resources(cpu=10, memory_mb=16_000, gpu=0, disk_mb=50_000)}  # 10,000 MHz: 10 cores
    assert [q for m, p, q in api.requests if p == "/v1/nodes"] == [{"resources": ["True"]}]


def test_executor_capacity_of_an_empty_or_unreachable_cluster(api: NomadApi) -> None:
    executor = _executor(api)
    api.add_node("ifca", cores=8)
    api.add_node("iisas", status="down", cores=8)    # no node to run on now: unknown, not nothing
    assert executor.capacity() == {"ifca": Resources(8, 32_768, 0, 100_000), "iisas": None}
    api.fail_with = 500
    assert executor.capacity() == {"ifca": None, "iisas": None}


def test_executor_capacity_is_read_once_in_a_while(api: NomadApi) -> None:
    api.add_node("ifca", cores=8)
    executor = _executor(api, capacity_ttl_s=60)
    assert executor.capacity()["ifca"].cpu == 8
    api.add_node("ifca", cores=8)
    assert executor.capacity()["ifca"].cpu == 8 and _count(api, "GET", "/v1/nodes") == 1


def test_executor_probe(api: NomadApi) -> None:
    api.add_node("ifca")
    api.add_node("iisas", status="down")
    api.add_node("iisas", drain=True)
    health = {h.datacenter: h for h in _executor(api).probe()}
    assert (health["ifca"].status, health["ifca"].detail) == ("healthy", "1 of 1 nodes ready")
    assert health["iisas"].status == "down" and "no ready, eligible node in datacenter iisas (2 known)" \
        in health["iisas"].detail
    assert [q["filter"] for m, p, q in api.requests if p == "/v1/nodes"] == [['Datacenter == "ifca"'],
                                                                            ['Datacenter == "iisas"']]
    api.latency["ifca"] = 0.3
    slow = {h.datacenter: h for h in _executor(api, slow_s=0.2).probe()}["ifca"]
    assert slow.status == "slow" and slow.latency_s >= 0.3 and "limit 0.2 s" in slow.detail
    api.fail_with = 500
    down = _executor(api).probe()
    assert [h.status for h in down] == ["down", "down"] and all(api.address in h.detail for h in down)


def test_deployments_service_runs_on_nomad(api: NomadApi) -> None:
    """The deployments service with the Nomad executor: create, start, run, complete, delete."""
    from ai4kg.catalog import ImportOptions, import_files
    from ai4kg.config import Settings
    from ai4kg.graph.store import KnowledgeGraph
    from ai4kg.workloads.service import Deployments, Requester

    api.add_node("ifca", cores=16, memory_mb=64_000, disk_mb=500_000)
    with KnowledgeGraph(Settings.in_memory()) as graph:
        [report] = import_files(graph, [REPO / "demo" / "sst-forecaster.yml"],
                                ImportOptions(identifier="sst-forecaster"))
        assert report.status == "imported", report.issues
        executor = NomadExecutor(NomadWorkloads(api.address, namespaces={VO: NAMESPACE}), ["ifca"])
        deployments = Deployments(graph, executor)
        try:
            alice = Requester("alice@example.org", frozenset({VO}))
            created, new = deployments.create({"kind": "module", "module": "sst-forecaster", "name": "sst-api"}, alice)
            assert new and (created.status, created.placed_on) == ("starting", "ifca")
            job = api.jobs[(NAMESPACE, "sst-api")]
            assert job["Meta"]["ai4kg.module"] == "sst-forecaster" and job["Datacenters"] == ["ifca"]
            assert _tasks(job)["main"]["Config"]["image"] == "ai4kg-demo/sst-forecaster:latest"
            assert _tasks(job)["main"]["Resources"]["CPU"] == 1000

            batch, _ = deployments.create({"kind": "batch", "module": "sst-forecaster", "name": "sst-train",
                                           "command": ["python", "train.py"]}, alice)
            assert batch.status == "starting"
            deployments.tick()
            running = deployments.get("sst-api")
            assert running.status == "running" and running.urls["api"].startswith(f"http://{NODE_IP}:")
            assert deployments.get("sst-train").status == "running"

            api.set_allocations("sst-train", "complete", NAMESPACE)
            deployments.tick()
            assert deployments.get("sst-train").status == "completed"

            deployments.probe()
            assert deployments.ledger.health()["ifca"][0] == "healthy"

            stopped = deployments.delete("sst-api", alice)
            assert stopped is not None and stopped.status == "stopped" and stopped.urls == {}
            assert api.jobs[(NAMESPACE, "sst-api")]["Stop"] is True
            report_ = deployments.reconcile()
            assert (report_.gone, report_.unknown) == (0, 0)
            assert deployments.get("sst-api").status == "stopped"
        finally:
            deployments.close()
