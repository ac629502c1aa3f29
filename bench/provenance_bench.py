"""Provenance benchmarks (issue 5): ingest of CI and MLflow events, idempotent re-posts, lineage.

    uv run python bench/provenance_bench.py               # 10,000 events, 10,000 runs (~11 min, 2 cores)
    uv run python bench/provenance_bench.py --quick       # 500 events: a smoke run of every phase (1-2 min)
    uv run python bench/provenance_bench.py --events N    # N events (N/2 Jenkins builds, N/2 MLflow runs)

What it does, in one process (figures are given absolutely and as a ratio to a baseline measured
in the same process, interleaved batch by batch or call by call, because the machines are shared
and noisy). The fragments are synthetic, built from templates in this file shaped like the real
ones of the upstream provenance service (a Jenkins build with its stages, change set and delivered
image digest; an MLflow run with its experiment's fields, params, metrics, tags and sometimes a
dataset input; a Nomad job); this file reads nothing outside the repository.

0. Setup. An on-disk KnowledgeGraph; `--modules` modules (ai4-metadata 2.0.0 JSON, a copy of the
   demo app's metadata with its own id, title, repository, image, and the MLflow run and Nomad job
   it was published from) through `catalog.import_files`; one Nomad job per module, pinned by the
   digest its module's first build delivers, through `Provenance.ingest`.
1. Load. N/2 Jenkins builds and N/2 MLflow runs (FINISHED) spread over the modules, through
   `Provenance.ingest` in batches of BATCH_SIZE (200) of one origin at a time, Jenkins and MLflow
   batches in turn: a burst of queued CI webhooks, an MLflow sync's page of runs. For every second
   pair of batches (one Jenkins, one MLflow), the same batch's records (`records.BUILDERS[origin]`)
   are also (a) mapped by mapping only (`provenance_mapping().materialize`) and (b) the resulting
   quads written straight into a second on-disk store (`KnowledgeGraph.write`), before or after the
   ingest in turn; ratios compare the ingest time of those batches with their baselines.
   Wall time per stage of the ingest (patched timers, ~1 us per call) says where the rest goes.
2. Idempotent path. The same N fragments posted again in the same batches: every outcome
   "unchanged", nothing written.
3. Single events. `--singles` new events (Jenkins and MLflow in turn), each ingested alone, as one
   webhook POST does (`Provenance.ingest([one])`), into the loaded store; with the same two
   baselines for that one event, rotating the order; then cProfile of further single events.
4. Lineage. Upstream from a module (module <- weights <- run <- job <- image <- build, commit),
   upstream from a run's weights, downstream from a commit whose image a job runs (and from one whose
   image nothing runs), depth 5, with `provenance.lineage.lineage`; baselines interleaved call by call:
   a point read of a run's graph (`graph.asset_quads`) and one step (`named_query("lineage-upstream")`).
   Measured when the store holds `--runs`/10 training runs (during the load) and again at `--runs`
   (MLflow runs are added after the single events until the store holds `--runs`), on the same roots.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import cProfile
import functools
import hashlib
import io
import json
import pstats
import shutil
import statistics
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import Report, fmt, p50, StageTimer, log, now, own_time_table, percentile, publish  # noqa: E402  (bench/run.py helpers)

import pyoxigraph as ox  # noqa: E402
import pyshacl  # noqa: E402

from ai4kg.catalog import ImportOptions, InlineFile, import_files  # noqa: E402
from ai4kg.config import Settings  # noqa: E402
from ai4kg.graph import validation  # noqa: E402
from ai4kg.graph.search import SearchIndex  # noqa: E402
from ai4kg.graph.store import AssetWrite, KnowledgeGraph  # noqa: E402
from ai4kg.metadata.rml import RmlMapping  # noqa: E402
from ai4kg.provenance import ingest as ingest_module  # noqa: E402
from ai4kg.provenance.fragments import FragmentStore  # noqa: E402
from ai4kg.provenance.ingest import BATCH_SIZE, Provenance, provenance_mapping  # noqa: E402
from ai4kg.provenance.lineage import lineage  # noqa: E402
from ai4kg.provenance.records import BUILDERS, Application, Iris, origin_of  # noqa: E402

Timing = tuple[str, int, float, "float | None", "float | None", "float | None"]
"""One load batch: origin, events, ingest s, then records, mapping-only and write-only s (None: no baselines)."""

T0 = 1_746_000_000_000  # 2025-04-30, milliseconds


# -- templates, shaped like the upstream provenance service's fragments (demo app bundle) -------------
MODULE_TEMPLATE: dict[str, Any] = {
    "metadata_version": "2.0.0", "id": "ai4os-demo-app", "title": "ai4os-demo-app",
    "summary": "A toy application for demo and testing purposes. We just implement dummy inference/training, "
               "ie. we return the same inputs we are fed. The module does not contain any AI code.",
    "description": "It can serve as a reference implementation of current best practices in the project.\n\n"
                   "This demo module implements:\n* **dummy inference**, ie. we return the same inputs we are fed.\n"
                   "* **dummy training**, ie. we sleep for some time and output some random monitoring metrics.",
    "dates": {"created": "2024-04-18", "updated": "2025-05-09"},
    "links": {"source_code": "https://github.com/ai4os-hub/ai4os-demo-app",
              "docker_image": "ai4oshub/ai4os-demo-app",
              "cicd_url": "https://jenkins.services.ai4os.eu/job/ai4os-hub/job/ai4os-demo-app/job/main/",
              "cicd_badge": "https://jenkins.services.ai4os.eu/buildStatus/icon?job=ai4os-hub/ai4os-demo-app/main",
              "ai4_template": "ai4-template/2.0.0", "documentation": "http://add-some-documentation.com",
              "dataset": "http://add-some-url-pointing-to-your-dataset.com",
              "weights": "http://add-some-weights-url.com"},
    "tags": ["demo", "general purpose"], "tasks": ["Other"], "categories": ["AI4 trainable", "AI4 inference"],
    "libraries": ["Other"], "data-type": ["Other"], "license": "MIT", "origin": "AI4EOSC",
    "resources": {"inference": {"cpu": 2, "gpu": 1, "memory_MB": 1000, "storage_MB": 1000}},
    "provenance": {"nomad_job": "f4b9c17a-1077-11f0-9e04-0242ac120002", "mlflow_run": "5e96fe940dca470aa7d6c16620e82c35"},
}

JENKINS_STAGES = [  # (id, name, seconds after the build starts, duration in seconds)
    ("6", "Declarative: Checkout SCM", 12, 5),
    ("16", "Metadata tests", 25, 5),
    ("28", "Application tests", 40, 95),
    ("152", "Docker Variable initialization", 140, 1),
    ("168", "AI4OS Hub Docker images build", 145, 600),
    ("196", "AI4OS Hub Docker delivery to registry", 750, 31),
]
PEOPLE = [f"developer{i:02d}@institute{i % 7}.example.eu" for i in range(40)]
DATASETS = ["radar", "sentinel-2", "plankton", "chest-xray", "speech-commands"]


def module_name(m: int) -> str:
    return f"bench-prov-{m:03d}"


def job_id(m: int) -> str:
    return f"bench-job-{m:03d}"


def hex_of(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def run_id(r: int) -> str:
    return hex_of(f"run-{r}", 32)


def image_digest(b: int) -> str:
    return "sha256:" + hex_of(f"image-{b}", 64)


def commit_id(b: int) -> str:
    return hex_of(f"commit-{b}", 40)


def module_document(m: int) -> dict[str, Any]:
    name = module_name(m)
    document = copy.deepcopy(MODULE_TEMPLATE)
    document.update(id=name, title=f"Benchmark module {m}")
    document["links"].update(source_code=f"https://github.com/ai4os-hub/{name}", docker_image=f"ai4oshub/{name}")
    # published from its first run's weights, trained in its job (the chain of Figure 9)
    document["provenance"] = {"nomad_job": job_id(m), "mlflow_run": run_id(m)}
    return document


def jenkins_fragment(b: int, modules: int) -> dict[str, Any]:
    """Build b: of module b mod M, its (b div M + 1)-th; six stages, one commit, a delivered digest."""
    m, number = b % modules, b // modules + 1
    name = module_name(m)
    job = {"buildId": number, "jobName": name, "jobGroup": "AI4OS-hub", "jobBranch": "main"}
    start = T0 + b * 600_000
    stages = []
    for sid, label, offset, duration in JENKINS_STAGES:
        stage = {"id": sid, "name": label, "startTime": start + offset * 1000, "endTime": start + (offset + duration) * 1000,
                 "duration": duration * 1000, "jenkins": job, "properties": {}}
        if label.endswith("delivery to registry"):
            stage["properties"] = {"appDockerDeliveryHash": image_digest(b)}
        stages.append(stage)
    author = PEOPLE[b % len(PEOPLE)]
    return {
        "id": job, "label": "main", "gitUrl": None, "origin": "Jenkins",
        "uniqueId": f"AI4OS-hub/main/{name}/{number}",
        "fullLabel": f"AI4OS Hub Building (QA) \u00bb {name} \u00bb main #{number}",
        "jenkinsUrl": f"https://jenkins.services.ai4os.eu/job/AI4OS-hub/job/{name}/job/main/",
        "applicationId": name,
        "trace": {
            "status": "SUCCESS", "startTime": start, "endTime": start,
            "jenkinsUrl": f"https://jenkins.services.ai4os.eu/job/AI4OS-hub/job/{name}/job/main/{number}/",
            "changesets": [{
                "repo": name, "group": "ai4os-hub", "paths": ["Dockerfile", "requirements.txt"],
                "commit": commit_id(b), "comment": f"build: change {b} to the training code\n\nlonger text",
                "jenkins": job, "authorURL": f"https://jenkins.services.ai4os.eu/user/{author.split('@')[0]}",
                "timeStamp": start - 20_000, "authorName": author.split("@")[0].title(), "authorEmail": author}],
            "stages": stages,
        },
    }


def mlflow_fragment(r: int, modules: int) -> dict[str, Any]:
    """Run r: trains module r mod M in its job; FINISHED; params, metrics, tags; every third a dataset."""
    m = r % modules
    rid, name, user = run_id(r), module_name(m), PEOPLE[(r * 7) % len(PEOPLE)]
    start = T0 + r * 300_000

    def tag(key: str, value: str) -> dict[str, str]:
        return {"key": key, "runId": rid, "value": value}

    inputs: dict[str, Any] = {}
    if r % 3 == 0:
        dataset = DATASETS[(r // 3) % len(DATASETS)]
        inputs = {"dataset_inputs": [{"tags": [{"key": "mlflow.data.context", "value": "training"}],
                                      "dataset": {"name": dataset, "digest": hex_of(f"{dataset}-{m}", 8),
                                                  "source_type": "local", "source": f'{{"uri": "/data/{dataset}"}}',
                                                  "schema": "", "profile": '{"num_rows": 1000}'}}]}
    return {
        "run": {
            "data": {
                "tags": [tag("mlflow.user", user), tag("mlflow.source.name", "/srv/.venv/bin/deepaas-run"),
                         tag("mlflow.source.type", "LOCAL"), tag("mlflow.runName", f"training run {r}"),
                         tag("ai4kg.nomad_job", job_id(m))],
                "params": [{"key": k, "runId": rid, "value": v} for k, v in
                           (("epochs", str(10 + r % 20)), ("learning_rate", f"{0.001 * (1 + r % 5):.3f}"),
                            ("batch_size", str(2 ** (4 + r % 4))), ("optimizer", "adam"))],
                "metrics": [{"key": k, "step": 9, "runId": rid, "value": v, "timestamp": start + 20_000} for k, v in
                            (("train_loss", -2.4 + (r % 100) / 1000), ("train_accuracy", 0.9 + (r % 50) / 1000),
                             ("val_accuracy", 0.85 + (r % 70) / 1000))],
            },
            "info": {"run_id": rid, "run_uuid": rid, "status": "FINISHED", "user_id": user,
                     "start_time": start, "end_time": start + 21_470, "run_name": f"training run {r}",
                     "artifact_uri": f"mlflow-artifacts:/{100 + m}/{rid}/artifacts", "experiment_id": str(100 + m),
                     "lifecycle_stage": "active"},
            "inputs": inputs,
        },
        "name": name, "tags": None, "origin": "MLflow", "applicationId": name,
        "creation_time": T0 - 1_000, "experiment_id": str(100 + m), "lifecycle_stage": "active",
        "last_update_time": T0 - 1_000, "artifact_location": f"mlflow-artifacts:/{100 + m}",
    }


def nomad_fragment(m: int) -> dict[str, Any]:
    """Module m's job, running the image its first build (build m) delivered, pinned by digest."""
    job = job_id(m)
    return {
        "name": f"module-{job}", "owner": hex_of(f"owner-{m}", 64) + "@egi.eu", "title": f"bench job {m}",
        "job_ID": job, "origin": "Nomad", "status": "running", "alloc_ID": hex_of(f"alloc-{m}", 32),
        "alloc_start": "2025-04-03T10:42:33.764240116Z", "alloc_end": "2025-04-11T12:00:04Z",
        "endpoints": {"api": f"http://api-{job}.ifca-deployments.cloud.ai4eosc.eu/ui"},
        "namespace": "ai4eosc", "datacenter": "ifca-ai4eosc", "description": "", "submit_time": "2025-04-03 10:39:45",
        "resources": {"cpu_MHz": 8000, "cpu_num": 4, "disk_MB": 10000, "gpu_num": 0, "memory_MB": 8000},
        "docker_image": f"ai4oshub/{module_name(m)}@{image_digest(m)}", "applicationId": module_name(m),
        "main_endpoint": "ide", "docker_command": "deep-start --jupyter", "active_endpoints": None,
    }


# -- sizes and report -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sizes:
    events: int = 10_000
    modules: int = 100
    runs: int = 10_000
    singles: int = 50
    warmup: int = 2
    profiled_singles: int = 6
    lineage_reps: int = 40
    lineage_roots: int = 20

    @property
    def builds(self) -> int:
        return self.events // 2

    @property
    def load_runs(self) -> int:
        return self.events - self.builds

    @property
    def checkpoint(self) -> int:
        """Runs in the store at the first lineage measurement: a tenth of `runs`, rounded up to the
        end of an MLflow batch of the load."""
        return min(self.load_runs, max(BATCH_SIZE, -(-self.runs // 10 // BATCH_SIZE) * BATCH_SIZE))


def p95(values: list[float]) -> float:
    return percentile(values, 95)


# -- wall time per stage of Provenance.ingest --------------------------------------------------------------
INGEST_STAGES: list[tuple[Any, str, str]] = [
    (Provenance, "_prepare", "prepare (per fragment): schema, module, records, digest"),
    (ingest_module, "check", "  of which: JSON Schema check"),
    (Provenance, "_application_for", "  of which: module lookup (asset_quads + search_document)"),
    (BUILDERS, "jenkins", "  of which: records (BUILDERS[origin])"),
    (BUILDERS, "mlflow", "  of which: records (BUILDERS[origin])"),
    (BUILDERS, "nomad", "  of which: records (BUILDERS[origin])"),
    (ingest_module, "canonical", "  of which: canonical JSON + digest"),
    (ingest_module, "digest_of", "  of which: canonical JSON + digest"),
    (FragmentStore, "digests", "idempotency lookup (FragmentStore.digests)"),
    (RmlMapping, "materialize", "RML mapping (the compiled mapping)"),
    (Provenance, "_context", "SHACL context (module graphs read)"),
    (ingest_module, "validate", "SHACL, total (validation.validate)"),
    (validation, "to_rdflib", "  of which: Oxigraph quads -> rdflib graph"),
    (pyshacl, "validate", "  of which: pyshacl.validate"),
    (FragmentStore, "put", "fragment store (put + mapped, SQLite)"),
    (FragmentStore, "mapped", "fragment store (put + mapped, SQLite)"),
    (KnowledgeGraph, "write", "commit: KnowledgeGraph.write, total"),
    (KnowledgeGraph, "_replace_graph", "  of which: Oxigraph (one DROP + INSERT DATA update)"),
    (SearchIndex, "mark_pending", "  of which: search index (mark_pending + apply)"),
    (SearchIndex, "apply", "  of which: search index (mark_pending + apply)"),
]
"""The stages of `Provenance.ingest`."""


def open_graph(folder: Path) -> KnowledgeGraph:
    return KnowledgeGraph(Settings(data_dir=folder))


class Bench:
    def __init__(self, sizes: Sizes, work: Path, report: Report):
        self.sizes, self.work, self.report = sizes, work, report
        self.graph = open_graph(work / "store")
        self.baseline = open_graph(work / "store-baseline")
        """Baseline (b): the same quads written straight into a store of their own."""
        self.provenance = Provenance(self.graph)
        self.iris = Iris(self.graph.settings.base_url)
        self.base = self.graph.settings.base_url
        self.applications: dict[str, Application] = {}
        self.breakdown = StageTimer(INGEST_STAGES, "event", "Provenance.ingest", "batching, owner maps, _issue_of, ...")
        self.runs_in_store = 0
        self.lineage_points: dict[int, dict[str, list[float]]] = {}
        self.lineage_nodes: dict[int, dict[str, list[int]]] = {}

    # -- helpers
    def application(self, fragment: dict[str, Any]) -> Application:
        name = fragment.get("applicationId")
        if name not in self.applications:
            found = self.provenance.application(name)
            assert found is not None, name
            self.applications[name] = found
        return self.applications[name]

    def records_of(self, fragments: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        """What _map_and_commit hands the mapping: the records of every fragment, source by source."""
        records: dict[str, list[dict[str, Any]]] = {}
        for fragment in fragments:
            mapped = BUILDERS[origin_of(fragment)](fragment, self.application(fragment), self.iris)
            for source, rows in mapped.records.items():
                records.setdefault(source, []).extend(rows)
        return records

    def baselines(self, fragments: list[dict[str, Any]]) -> tuple[float, float, float]:
        """(records, mapping only, store write only) seconds for these fragments."""
        start = now()
        records = self.records_of(fragments)
        built = now() - start
        start = now()
        quads = provenance_mapping().materialize(records)
        mapped = now() - start
        by_graph: dict[str, list[ox.Quad]] = defaultdict(list)
        for quad in quads:
            by_graph[quad.graph_name.value].append(quad)
        writes = [AssetWrite(iri, q) for iri, q in by_graph.items()]
        start = now()
        self.baseline.write(writes)
        written = now() - start
        return built, mapped, written

    def ingest(self, fragments: list[dict[str, Any]], expect: str = "created", source: str = "bench") -> float:
        with self.breakdown.active():
            start = now()
            outcomes = self.provenance.ingest([(f, source) for f in fragments])
            elapsed = now() - start
        bad = [o for o in outcomes if o.status != expect]
        if bad:
            raise SystemExit(f"benchmark fragment not {expect}: {bad[0].as_dict()}")
        return elapsed

    # -- 0. setup
    def setup(self) -> None:
        s = self.sizes
        with self.report.phase(f"0. publish {s.modules} modules, ingest {s.modules} Nomad jobs"):
            start = now()
            documents = [module_document(m) for m in range(s.modules)]
            # one call; each identifier is derived from the repository name (links.source_code)
            reports = import_files(self.graph, [InlineFile(f"{d['id']}.json", json.dumps(d).encode()) for d in documents])
            bad = [r for r, d in zip(reports, documents) if r.status != "imported" or r.identifier != d["id"]]
            if bad:
                raise SystemExit(f"benchmark module rejected: {bad[0].as_dict()}")
            published = now() - start
            # machine reference: one-module upserts (changed title), the catalogue's write path of
            # RESULTS.md's first section, p50 of 5 (before any fragment names the module)
            upserts = []
            for j in range(5):
                document = module_document(j)
                document["title"] = f"Benchmark module {j}, changed"
                start = now()
                [one] = import_files(self.graph, [InlineFile(f"{document['id']}.json", json.dumps(document).encode())],
                                     ImportOptions(identifier=document["id"]))
                upserts.append(now() - start)
                assert one.status == "imported", one.as_dict()
            jobs = [nomad_fragment(m) for m in range(s.modules)]
            jobs_s = self.ingest(jobs)
            self.baselines(jobs)  # the baseline store holds the same jobs (and the mapping is warm)
        self.report.row("0. setup", f"{s.modules} modules through import_files (one call)", f"{published:.1f} s",
                        "ai4-metadata 2.0.0 JSON; each names its first run and its job")
        self.report.row("0. setup",
                        "machine reference: one-module import_files (upsert of a changed module), p50 of 5",
                        fmt(p50(upserts)),
                        "the catalogue's one-module upsert of the first section of RESULTS.md "
                        "(154 ms there, generated YAML modules)")
        self.report.row("0. setup", f"{s.modules} Nomad jobs through Provenance.ingest (one call)",
                        f"{jobs_s:.2f} s", "each pinned by the digest its module's first build delivers")
        self.report.figures["setup"] = {"modules_seconds": published, "reference_upserts": upserts, "jobs_seconds": jobs_s}

    # -- 1. load
    def batches(self) -> list[tuple[str, int, int]]:
        """(origin, first, end) of the load's batches: Jenkins and MLflow in turn, BATCH_SIZE each."""
        s = self.sizes
        jenkins = [("jenkins", b, min(b + BATCH_SIZE, s.builds)) for b in range(0, s.builds, BATCH_SIZE)]
        mlflow = [("mlflow", r, min(r + BATCH_SIZE, s.load_runs)) for r in range(0, s.load_runs, BATCH_SIZE)]
        order = []
        for i in range(max(len(jenkins), len(mlflow))):
            order += jenkins[i:i + 1] + mlflow[i:i + 1]
        return order

    def fragments_of(self, origin: str, first: int, end: int) -> list[dict[str, Any]]:
        make = jenkins_fragment if origin == "jenkins" else mlflow_fragment
        return [make(i, self.sizes.modules) for i in range(first, end)]

    def load(self) -> None:
        s = self.sizes
        timings: list[Timing] = []  # origin, n, ingest, records, rml, write (baselines: None when not run)
        before = self.breakdown.snapshot()
        marks: list[dict[str, float]] = []
        with self.report.phase(f"1. load: ingest {s.events:,} events (+ baselines, + lineage at {s.checkpoint:,} runs)"):
            for number, (origin, first, end) in enumerate(self.batches()):
                fragments = self.fragments_of(origin, first, end)
                pair = number // 2  # (Jenkins batch, MLflow batch) pairs: baselines on every second pair
                built = mapped = written = None
                if pair % 2 == 1:
                    ingested = self.ingest(fragments)
                elif pair % 4 == 0:
                    ingested = self.ingest(fragments)
                    built, mapped, written = self.baselines(fragments)
                else:
                    built, mapped, written = self.baselines(fragments)
                    ingested = self.ingest(fragments)
                timings.append((origin, len(fragments), ingested, built, mapped, written))
                marks.append(self.breakdown.snapshot())
                if origin == "mlflow":
                    self.runs_in_store = end
                    if end == s.checkpoint:
                        self.measure_lineage(self.runs_in_store, nested=True)
                if number % 10 == 9:
                    done = sum(t[1] for t in timings)
                    log(f"  {done:,} events, {done / sum(t[2] for t in timings):.1f} events/s so far")
        whole = StageTimer.diff(self.breakdown.snapshot(), before)
        self.load_timings = timings
        self.report_load(timings, whole, marks, before)

    def report_load(self, timings: list[Timing], whole: dict[str, float], marks: list[dict[str, float]],
                    before: dict[str, float]) -> None:
        s = self.sizes
        n = sum(t[1] for t in timings)
        total = sum(t[2] for t in timings)
        matched = [t for t in timings if t[4] is not None]
        m_n, m_ingest = sum(t[1] for t in matched), sum(t[2] for t in matched)
        built, mapped, written = (sum(t[i] for t in matched) for i in (3, 4, 5))
        self.report.row("1. load",
                        f"Provenance.ingest of {n:,} events ({s.builds:,} Jenkins builds, {s.load_runs:,} MLflow "
                        f"runs) over {s.modules} modules, batches of {BATCH_SIZE}",
                        f"{total:.1f} s = **{n / total:,.1f} events/s** ({total / n * 1000:.2f} ms/event)",
                        f"{len(self.graph.store):,} quads in the store; batches of one origin, Jenkins and MLflow in turn")
        per = {}
        for origin in ("jenkins", "mlflow"):
            rows = [t for t in timings if t[0] == origin]
            both = [t for t in rows if t[4] is not None]
            k, sec = sum(t[1] for t in rows), sum(t[2] for t in rows)
            bk, bsec = sum(t[1] for t in both), sum(t[2] for t in both)
            rml, write = sum(t[4] for t in both), sum(t[5] for t in both)
            per[origin] = (k, sec, bk, bsec, rml, write)
            self.report.row("1. load", f"{origin}: {k:,} events",
                            f"{k / sec:,.1f} events/s ({sec / k * 1000:.2f} ms/event)",
                            f"on the {bk:,} events with baselines: ingest {bsec / bk * 1000:.2f}, mapping only "
                            f"{rml / bk * 1000:.2f}, store write only {write / bk * 1000:.2f} ms/event",
                            ratio=f"{bsec / rml:.1f}x mapping only; {bsec / write:.1f}x store write only")
        note = (f"on the {m_n:,} events of every second pair of batches (Jenkins + MLflow), interleaved with their "
                f"ingest; ingest of those: {m_ingest:.1f} s ({m_ingest / m_n * 1000:.2f} ms/event)")
        self.report.row("1. load",
                        "baseline (a): the same records mapped by mapping only (materialize, same batches)",
                        f"{mapped:.1f} s ({mapped / m_n * 1000:.2f} ms/event)",
                        note + f"; records built by BUILDERS in {built / m_n * 1000:.2f} ms/event, not in (a)",
                        ratio=f"ingest / (a) **{m_ingest / mapped:.1f}x**")
        self.report.row("1. load",
                        "baseline (b): the same quads written straight to a store (KnowledgeGraph.write, "
                        "same batches)",
                        f"{written:.1f} s ({written / m_n * 1000:.2f} ms/event)",
                        f"a second on-disk store; (a) + (b) = {(mapped + written) / m_ingest:.0%} of the ingest time",
                        ratio=f"ingest / (b) **{m_ingest / written:.1f}x**")
        # first vs last, per origin (like with like) and overall
        for origin in ("jenkins", "mlflow"):
            rows = [t for t in timings if t[0] == origin]
            take = min(1000, sum(t[1] for t in rows) // 2) // BATCH_SIZE * BATCH_SIZE or rows[0][1]
            first, last = _edge(rows, take), _edge(list(reversed(rows)), take)
            drift = []
            for label, i in (("mapping only", 4), ("store write only", 5)):
                a_ = [t for t in first[5] if t[i] is not None]
                b_ = [t for t in last[5] if t[i] is not None]
                if a_ and b_:
                    drift.append(f"{label} last/first {(sum(t[i] for t in b_) / sum(t[1] for t in b_)) / (sum(t[i] for t in a_) / sum(t[1] for t in a_)):.2f}x")
            a_ = [t for t in first[5] if t[4] is not None]
            b_ = [t for t in last[5] if t[4] is not None]
            if a_ and b_:
                ratio = lambda rows_: sum(t[2] for t in rows_) / sum(t[4] + t[5] for t in rows_)  # noqa: E731
                drift.append(f"ingest / ((a) + (b)) {ratio(a_):.2f} first, {ratio(b_):.2f} last")
            self.report.row("1. load", f"{origin}: first vs last {first[0]:,} events",
                            f"{first[0] / first[1]:,.1f} vs {last[0] / last[1]:,.1f} events/s",
                            "; ".join(drift) + " (baseline batches in those windows)",
                            ratio=f"time per event last/first **{(last[1] / last[0]) / (first[1] / first[0]):.2f}x**")
        # overall: the first and last 1,000 events (5 batches: the mix of origins differs by one batch)
        take = min(1000, n // 2)
        first, last = _edge(timings, take), _edge(list(reversed(timings)), take)
        self.report.row("1. load", f"all origins: first vs last {first[0]:,} events",
                        f"{first[0] / first[1]:,.1f} vs {last[0] / last[1]:,.1f} events/s",
                        f"first: {first[4]}; last: {last[4]}",
                        ratio=f"last/first {(last[1] / last[0]) / (first[1] / first[0]):.2f}x")
        ratios = {o: ", ".join(f"{t[2] / (t[4] + t[5]):.2f}" for t in timings if t[0] == o and t[4] is not None)
                  for o in ("jenkins", "mlflow")}
        segment = 2 * BATCH_SIZE * 5 if n >= 4 * 2 * BATCH_SIZE * 5 else 2 * BATCH_SIZE
        rates, acc, sec = [], 0, 0.0
        for t in timings:
            acc, sec = acc + t[1], sec + t[2]
            if acc >= segment:
                rates.append(f"{acc / sec:.0f}")
                acc, sec = 0, 0.0
        self.report.figures["load"] = {"events": n, "seconds": total, "baseline_events": m_n, "baseline_ingest_seconds": m_ingest,
                                       "rml_only_seconds": mapped, "write_only_seconds": written, "records_seconds": built,
                                       "per_origin": {o: dict(zip(("events", "seconds", "baseline_events",
                                                                    "baseline_ingest_seconds", "rml_only_seconds",
                                                                    "write_only_seconds"), v)) for o, v in per.items()},
                                       "batches": [list(t) for t in timings], "stages": whole}
        # stage table: whole load, first and last batch of each origin
        columns = [("whole load", whole, total, n)]
        for origin in ("jenkins", "mlflow"):
            indexes = [i for i, t in enumerate(timings) if t[0] == origin]
            for label, i in (("first", indexes[0]), ("last", indexes[-1])):
                prior = marks[i - 1] if i > 0 else before
                columns.append((f"{label} {origin} batch", StageTimer.diff(marks[i], prior), timings[i][2], timings[i][1]))
        self.report.sections.append(
            f"#### Where the load's ingest time went (wall time per stage)\n\n"
            f"Events/s per segment of {segment:,} events (same mix of origins in each), in order: {', '.join(rates)}. "
            f"Ingest time / ((a) + (b)) time of each batch with baselines, in order: Jenkins {ratios['jenkins']}; "
            f"MLflow {ratios['mlflow']}.\n\n"
            + self.breakdown.table(columns))

    # -- 2. idempotent path
    def repost(self) -> None:
        s = self.sizes
        before = self.breakdown.snapshot()
        quads = len(self.graph.store)
        with self.report.phase(f"2. re-post all {s.events:,} events (idempotent path)"):
            seconds = 0.0
            per: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
            for origin, first, end in self.batches():
                elapsed = self.ingest(self.fragments_of(origin, first, end), expect="unchanged")
                seconds += elapsed
                per[origin][0] += end - first
                per[origin][1] += elapsed
        stages = StageTimer.diff(self.breakdown.snapshot(), before)
        first_pass = sum(t[2] for t in self.load_timings)
        assert len(self.graph.store) == quads, "an unchanged event wrote something"
        self.report.row("2. idempotent", f"re-post all {s.events:,} events (same batches): every outcome unchanged",
                        f"{seconds:.1f} s = **{s.events / seconds:,.0f} events/s**",
                        "; ".join(f"{o}: {v[0] / v[1]:,.0f} events/s" for o, v in per.items())
                        + f"; store unchanged ({quads:,} quads)",
                        ratio=f"{seconds / first_pass:.2f}x the first ingest's time")
        self.report.figures["repost"] = {"events": s.events, "seconds": seconds, "stages": stages}
        self.report.sections.append("#### The idempotent path: re-posting every event (wall time per stage)\n\n"
                                    + self.breakdown.table([("re-post, every event unchanged", stages, seconds, s.events)]))

    # -- 3. single events
    def singles(self) -> None:
        s = self.sizes
        count = s.singles + s.warmup
        events = []
        for i in range(count + s.profiled_singles):
            # new events after the load's: builds and runs numbered on from there
            events.append(jenkins_fragment(s.builds + i // 2, s.modules) if i % 2 == 0
                          else mlflow_fragment(s.load_runs + i // 2, s.modules))
        times: dict[str, list[float]] = {"ingest": [], "rml": [], "write": []}
        by_origin: dict[str, list[float]] = defaultdict(list)
        with self.report.phase(f"3. {count} single-event ingests (+ baselines, + {s.profiled_singles} profiled)"):
            stage_before = None
            for i, fragment in enumerate(events[:count]):
                if i == s.warmup:
                    stage_before = self.breakdown.snapshot()
                order = ["ingest", "baselines"] if i % 2 == 0 else ["baselines", "ingest"]
                if (i // 2) % 2:
                    order.reverse()
                got: dict[str, float] = {}
                for what in order:
                    if what == "ingest":
                        got["ingest"] = self.ingest([fragment])
                    else:
                        _, got["rml"], got["write"] = self.baselines([fragment])
                if i >= s.warmup:
                    for key, value in got.items():
                        times[key].append(value)
                    by_origin[origin_of(fragment)].append(got["ingest"])
            assert stage_before is not None
            stages = StageTimer.diff(self.breakdown.snapshot(), stage_before)
            total = sum(times["ingest"])
            profiler = cProfile.Profile()
            profiled = events[count:]
            profiler.enable()
            for fragment in profiled:
                self.provenance.ingest([(fragment, "bench")])
            profiler.disable()
        self.runs_in_store += (count + s.profiled_singles) // 2
        ing, rml, write = times["ingest"], times["rml"], times["write"]
        mapping = provenance_mapping()
        self.report.row("3. single event",
                        f"Provenance.ingest of ONE new event (as one webhook POST), {len(ing)} events "
                        "(Jenkins and MLflow in turn) into the loaded store",
                        f"**p50 {fmt(p50(ing))}, p95 {fmt(p95(ing))}**",
                        "; ".join(f"{o}: p50 {fmt(p50(v))}, p95 {fmt(p95(v))}" for o, v in by_origin.items())
                        + f"; after {s.warmup} warm-up",
                        ratio=f"{p50(ing) / p50(rml):.2f}x mapping only; {p50(ing) / p50(write):.1f}x store write only")
        self.report.row("3. single event", "baseline (a): that event's records mapped by mapping only",
                        f"p50 {fmt(p50(rml))}, p95 {fmt(p95(rml))}",
                        f"the compiled mapping: {len(mapping.rules)} triples maps, "
                        f"{sum(len(r.objects) for r in mapping.rules)} predicate-object maps",
                        ratio=f"{p50(rml) / p50(ing):.0%} of the ingest p50")
        self.report.row("3. single event", "baseline (b): that event's quads written straight to a store",
                        f"p50 {fmt(p50(write))}, p95 {fmt(p95(write))}", "",
                        ratio=f"{p50(write) / p50(ing):.1%} of the ingest p50")
        self.report.figures["single"] = {"ingest": ing, "rml_only": rml, "write_only": write, "stages": stages,
                                         "by_origin": by_origin}
        self.report.sections.append(f"#### Where one single-event ingest goes ({len(ing)} events, wall time per stage)\n\n"
                                    + self.breakdown.table([("one event per call", stages, total, len(ing))]))
        self.report.sections.append(profile_section(profiler, len(profiled),
                                                    f"cProfile of {len(profiled)} further single-event ingests"))

    # -- top-up: MLflow runs until the store holds `runs`
    def top_up(self) -> None:
        s = self.sizes
        first = s.load_runs + (s.singles + s.warmup + s.profiled_singles) // 2  # the next run number not used
        missing = s.runs - self.runs_in_store
        if missing <= 0:
            return
        with self.report.phase(f"4. add {missing:,} MLflow runs (store up to {s.runs:,} runs)"):
            seconds, times = 0.0, []
            for start in range(first, first + missing, BATCH_SIZE):
                fragments = [mlflow_fragment(r, s.modules) for r in range(start, min(start + BATCH_SIZE, first + missing))]
                elapsed = self.ingest(fragments)
                seconds += elapsed
                times.append((len(fragments), elapsed))
        self.runs_in_store += missing
        k = min(5, len(times))
        head = sum(t[0] for t in times[:k]) / sum(t[1] for t in times[:k])
        tail = sum(t[0] for t in times[-k:]) / sum(t[1] for t in times[-k:])
        self.report.row("4. lineage",
                        f"add {missing:,} more MLflow runs (batches of {BATCH_SIZE}) so the store holds "
                        f"{s.runs:,} training runs",
                        f"{seconds:.1f} s = {missing / seconds:,.1f} events/s",
                        f"{len(self.graph.store):,} quads, {self.graph.index.count():,} index entries",
                        ratio=f"first vs last {k * BATCH_SIZE:,}: {head:,.1f} vs {tail:,.1f} events/s")

    # -- 4. lineage
    def roots(self) -> dict[str, list[tuple[str, str]]]:
        """(label, (iri, direction)) roots: the same at every store size."""
        s, base = self.sizes, self.base
        k = min(s.lineage_roots, s.modules)
        runs_early = [m for m in range(k)]  # the named runs of modules 0..k-1 (in the store from the first batch)
        return {
            "upstream from a module": [(f"{base}module/{module_name(m)}", "upstream") for m in range(k)],
            "upstream from a run's weights": [(f"{base}entity/weights/mlflow-{run_id(r + k)}", "upstream")
                                              for r in runs_early],
            "downstream from a commit whose image a job runs": [(f"{base}entity/commit/{commit_id(m)}", "downstream")
                                                                 for m in range(k)],
            "downstream from a commit whose image no job runs": [(f"{base}entity/commit/{commit_id(s.modules + m)}",
                                                                  "downstream") for m in range(k)],
        }

    def measure_lineage(self, runs: int, nested: bool = False) -> None:
        s, graph = self.sizes, self.graph
        roots = self.roots()
        kinds = list(roots) + ["baseline: asset_quads(run)", "baseline: one lineage-upstream step (run)"]
        times: dict[str, list[float]] = {kind: [] for kind in kinds}
        nodes: dict[str, list[int]] = {kind: [] for kind in roots}
        run_iris = [f"{self.base}trainingrun/mlflow-{run_id(m + min(s.lineage_roots, s.modules))}"
                    for m in range(min(s.lineage_roots, s.modules))]
        assert all(graph.contains(iri) for iri in run_iris)
        log(f"lineage at {runs:,} runs ({s.lineage_reps} rounds) ...")
        with (contextlib.nullcontext() if nested else self.report.phase(f"4. lineage at {runs:,} runs ({s.lineage_reps} rounds)")):
            for kind, items in roots.items():  # warm-up, and the walks are complete
                for iri, direction in items[:2]:
                    walk = lineage(graph, iri, direction, 5)
                    assert len(walk.nodes) > 1 and not walk.truncated, (kind, iri, len(walk.nodes))
            for rep in range(s.lineage_reps):
                shift = rep % len(kinds)
                for kind in kinds[shift:] + kinds[:shift]:  # rotate which goes first
                    j = rep % len(run_iris)
                    if kind == "baseline: asset_quads(run)":
                        start = now()
                        quads = graph.asset_quads(run_iris[j])
                        times[kind].append(now() - start)
                        assert quads
                    elif kind.startswith("baseline: one"):
                        start = now()
                        rows = list(graph.named_query("lineage-upstream", node=ox.NamedNode(run_iris[j])))
                        times[kind].append(now() - start)
                        assert rows
                    else:
                        iri, direction = roots[kind][rep % len(roots[kind])]
                        start = now()
                        walk = lineage(graph, iri, direction, 5)
                        times[kind].append(now() - start)
                        nodes[kind].append(len(walk.nodes))
        self.lineage_points[runs] = times
        self.lineage_nodes[runs] = nodes

    def report_lineage(self) -> None:
        points = sorted(self.lineage_points)
        if not points:
            return
        small, big = points[0], points[-1]
        b_quads = p50(self.lineage_points[big]["baseline: asset_quads(run)"])
        b_step = p50(self.lineage_points[big]["baseline: one lineage-upstream step (run)"])
        table = ["| query (depth 5) | " + " | ".join(f"{r:,} runs: p50 (p95), nodes" for r in points)
                 + f" | p50 {big:,} / {small:,} runs | per node {big:,} / {small:,} | p50 / asset_quads p50 "
                 f"| p50 / one step p50 |", "|---|" + "---|" * (len(points) + 4)]
        for kind in self.lineage_points[big]:
            cells = []
            for r in points:
                t = self.lineage_points[r][kind]
                n = self.lineage_nodes[r].get(kind)
                cells.append(f"{fmt(p50(t))} ({fmt(p95(t))})" + (f", {statistics.median(n):.0f}" if n else ""))
            t_small, t_big = self.lineage_points[small][kind], self.lineage_points[big][kind]
            n_small, n_big = self.lineage_nodes[small].get(kind), self.lineage_nodes[big].get(kind)
            growth = p50(t_big) / p50(t_small)
            per_node = (f"{(p50(t_big) / statistics.median(n_big)) / (p50(t_small) / statistics.median(n_small)):.2f}x"
                        if n_big else "")
            table.append(f"| {kind} | " + " | ".join(cells) + f" | {growth:.2f}x | {per_node} | "
                         f"{p50(t_big) / b_quads:,.0f}x | {p50(t_big) / b_step:,.1f}x |")
            if n_big:
                self.report.row("4. lineage", f"{kind}, depth 5, store of {big:,} runs",
                                f"**p50 {fmt(p50(t_big))}**, p95 {fmt(p95(t_big))}; {statistics.median(n_big):.0f} nodes",
                                f"at {small:,} runs: p50 {fmt(p50(t_small))}, {statistics.median(n_small):.0f} nodes; "
                                f"per node {per_node}",
                                ratio=f"{p50(t_big) / b_quads:,.0f}x asset_quads, {p50(t_big) / b_step:,.1f}x one step; "
                                f"{big:,} / {small:,} runs: {growth:.2f}x")
            else:
                self.report.row("4. lineage", f"{kind}, store of {big:,} runs",
                                f"p50 {fmt(p50(t_big))}, p95 {fmt(p95(t_big))}",
                                f"at {small:,} runs: p50 {fmt(p50(t_small))}",
                                ratio=f"{big:,} / {small:,} runs: {growth:.2f}x")
        self.report.figures["lineage"] = {str(r): {"times": self.lineage_points[r], "nodes": self.lineage_nodes[r]}
                                          for r in points}
        self.report.sections.insert(0, f"#### Lineage (depth 5), {self.sizes.lineage_reps} walks per query and store "
                                    f"size, interleaved with the baselines; the same roots at both sizes\n\n"
                                    + "\n".join(table))

    def close(self) -> None:
        self.graph.close()
        self.baseline.close()


def _edge(rows: list[Timing], take: int) -> tuple[int, float, None, None, str, list[Timing]]:
    """(events, ingest s, -, -, mix, batches) of the first `take` events of the batches in `rows`."""
    n, sec, mix, used = 0, 0.0, defaultdict(int), []
    for row in rows:
        if n >= take:
            break
        n, sec = n + row[1], sec + row[2]
        mix[row[0]] += row[1]
        used.append(row)
    return n, sec, None, None, ", ".join(f"{v:,} {o}" for o, v in mix.items()), used


def profile_section(profiler: cProfile.Profile, calls: int, title: str) -> str:
    total, table = own_time_table(profiler, calls, ("pyoxigraph", "sqlite3", "json", "pandas", "numpy"))
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(30)
    cumulative = "\n".join(line for line in text.getvalue().splitlines()
                           if line.strip() and not line.startswith(("   Ordered by", "   List reduced")))
    return (f"#### {title}: {total / calls * 1000:.1f} ms per call under cProfile (which inflates Python-heavy code)\n\n"
            f"Own time by package:\n\n" + "\n".join(table) + f"\n\nTop 30 by cumulative time:\n\n```\n{cumulative}\n```")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 events, 20 modules: a smoke run of every phase")
    parser.add_argument("--events", type=int, help="events in the load (half Jenkins, half MLflow; default 10,000)")
    parser.add_argument("--modules", type=int, help="modules the events are spread over (default 100)")
    parser.add_argument("--runs", type=int, help="training runs in the store for the lineage (default: --events)")
    parser.add_argument("--work", type=Path, help="keep the stores in this folder")
    parser.add_argument("--out", type=Path, help="also write the Markdown report to this file")
    parser.add_argument("--json", type=Path, help="also write the raw figures to this JSON file")
    args = parser.parse_args()
    sizes = Sizes(events=500, modules=20, singles=10, profiled_singles=4, lineage_reps=12,
                  lineage_roots=6) if args.quick else Sizes()
    events = args.events or sizes.events
    modules = args.modules or sizes.modules
    sizes = Sizes(events=events, modules=modules, runs=args.runs or events,
                  singles=sizes.singles, profiled_singles=sizes.profiled_singles, lineage_reps=sizes.lineage_reps,
                  lineage_roots=sizes.lineage_roots)
    if sizes.builds < modules or sizes.checkpoint > sizes.load_runs:
        raise SystemExit(f"--events must give every module a build and at least {sizes.checkpoint:,} runs in the load")
    work = args.work or Path(tempfile.mkdtemp(prefix="ai4kg-provenance-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    report = Report()
    started = now()
    try:
        bench = Bench(sizes, work, report)
        bench.setup()
        bench.load()
        bench.repost()
        bench.singles()
        bench.top_up()
        bench.measure_lineage(bench.runs_in_store)
        bench.report_lineage()
        bench.close()
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    publish(f"ai4kg provenance benchmarks ({'quick' if args.quick else 'full'} sizes: {sizes.events:,} events, "
            f"{sizes.modules} modules, lineage at {sizes.checkpoint:,} and {sizes.runs:,} runs)", "provenance_bench.py",
            report, started, args.out)
    if args.json:
        args.json.write_text(json.dumps({"sizes": sizes.__dict__, "wall_seconds": now() - started, **report.figures},
                                        default=str, indent=1) + "\n", "utf-8")


if __name__ == "__main__":
    main()
