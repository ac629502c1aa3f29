"""The Nomad adapter: the job each kind of deployment becomes, and its calls through python-nomad
against a loopback stand-in of Nomad's HTTP API (tests/nomad_api.py)."""

from __future__ import annotations

import dataclasses
import os
import socket
import stat
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from ai4kg.adapters.nomad import (DATASET_SCRIPT, SIDECARS, DeploymentSpec, NomadRejected, NomadUnavailable,
                                  NomadWorkloads, job_spec)

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
