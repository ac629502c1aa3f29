"""Deployments benchmarks (issue 6): finding one deployment among many through the REST API,
reconciling 10,000 Nomad jobs, and the platform's overhead on a workload's run time.

    uv run python bench/deployments_bench.py            # full sizes (about 28 minutes on 2 cores, 12 of them the fill)
    uv run python bench/deployments_bench.py --quick    # small sizes: a smoke run of every phase (about 80 s)
    uv run python bench/deployments_bench.py --parts 2  # only part 2 (any of 1, 2, 3)

Every figure is given absolutely and as a ratio against a baseline measured in the same process
(the machines these run on are shared and noisy). Work files go to a temporary folder that is
removed at the end (--work DIR keeps them). The Markdown report goes to stdout (and --out FILE).

1. Finding and retrieving one deployment (the seed paper's Figure 10, where the upstream API got
   slower with more deployments and more datacenters because it asks every Nomad datacenter).
   For each size N (1k, 10k, 100k) and D datacenters (1, 5): a fresh data directory with the demo
   modules imported, an API key for a "probe" user, and N deployments: `new_deployment` records
   (kinds module/tool/batch/try-me, 80% running, the rest ended) owned by 100 users plus the probe
   (one deployment, in the middle of the creation order, of a module nobody else deploys), placed
   round-robin on dc-0..dc-{D-1}. The records are saved with `Ledger.save` (chunks of 1,000, marked
   unmapped) and mapped into the graph: by `Deployments.recover()` as it is (batches of 200) up to
   `recover_max`, beyond that by the "bulk" fill (the same records through `to_quads`, i.e. the
   product's RML mapping with morph-kgc, in batches of 2,000, written with Oxigraph's bulk loader and
   the search index's mark_pending/apply, as bench/run.py's `bulk_write`; then `Ledger.mapped`), since
   `recover()` would take about 32 minutes for the two 100k stores on this machine (the fill phase
   measures both ways on the same records and reports the rates). The executor is a stand-in that
   runs nothing (no reconcile, no dispatch in this part).
   All six stores are then served at once, each by the real ASGI app (`create_app(graph, keys,
   deployments)`) under uvicorn on a loopback port (lifespan off, so the control loop does not run),
   and an httpx client sends, one at a time and interleaved store by store: find the probe's
   deployment by owner + module + datacenter; find it by VO + module + datacenter (no owner); read it
   by identifier; list one user's deployments (limit 100); list the VO's first page (limit 100).
   Each request is also made in-process on `Deployments.find/get` (what the route calls), so the
   HTTP share shows. Ratios: each point against the smallest store on one datacenter.
2. Reconciliation of 10,000 jobs on the Nomad adapter, against the loopback Nomad HTTP API double
   of the tests (tests/nomad_api.py, with its allocation lookups indexed, see IndexedNomadApi).
   10,000 running batch deployments in the ledger and the graph (bulk fill) run as 10,000 jobs in
   the double: the first 100 registered by `NomadExecutor.start` over HTTP (timed), the rest by
   posting the same job JSON (`job_spec` of `NomadExecutor.spec_of`) to the double's request
   handler in-process. `Deployments.reconcile()` timed (a) with nothing changed, (b) after 10% of the
   jobs completed in Nomad, (c) after 10 jobs vanished and 10 unknown jobs appeared; baseline: one
   `NomadExecutor.observe()` (its one job-list call) right before and after each reconcile.
3. Overhead of running a workload through the platform vs starting the same process directly: a
   CPU-bound Python script (a fixed number of iterations, about 10 s) that prints its own elapsed
   time. Direct: `subprocess.run`. Platform: `Deployments.create()` of a batch deployment of the
   demo module flood-segmentation-s2 running that command on a `LocalExecutor`, then `tick()` every
   `--poll` seconds until it is seen completed. Interleaved, direct and platform in turn.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import json
import os
import pstats
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from run import Report, StageTimer, fmt, log, now, own_time_table, p50, percentile, publish, serving, version  # noqa: E402  (bench/run.py helpers)

import httpx  # noqa: E402

from ai4kg.adapters.local import LocalExecutor  # noqa: E402
from ai4kg.adapters.nomad import NomadExecutor, NomadWorkloads, job_spec  # noqa: E402
from ai4kg.api.app import create_app  # noqa: E402
from ai4kg.catalog import ImportOptions, import_files  # noqa: E402
from ai4kg.cli import server_options  # noqa: E402
from ai4kg.config import Settings  # noqa: E402
from ai4kg.credentials import KeyStore  # noqa: E402
from ai4kg.graph.store import AssetWrite, KnowledgeGraph, indexed_document  # noqa: E402
from ai4kg.workloads import service  # noqa: E402
from ai4kg.workloads.executor import Health, Job, Observed, Resources  # noqa: E402
from ai4kg.workloads.ledger import Ledger  # noqa: E402
from ai4kg.workloads.records import FINAL, Deployment, new_deployment, to_quads  # noqa: E402
from ai4kg.workloads.service import Deployments, Requester  # noqa: E402

DEMO = REPO / "demo"
VO = "bench-vo"
"""Every deployment's VO (also its Nomad namespace: letters, digits and '-')."""
PROBE_MODULE = "flood-segmentation-s2"
"""The module only the probe user deploys in part 1; the module part 3 deploys."""
USERS = [f"user-{k:02d}@example.org" for k in range(100)]
PAGE_USER = USERS[7]
KIND_WEIGHTS = (("module", 70), ("tool", 15), ("batch", 10), ("try-me", 5))
STATUS_WEIGHTS = (("running", 80), ("completed", 8), ("stopped", 7), ("failed", 5))
BIG = Resources(cpu=1_000_000, memory_mb=1_000_000_000, gpu=1_000, disk_mb=1_000_000_000)


@dataclass(frozen=True)
class Sizes:
    totals: tuple[int, ...] = (1_000, 10_000, 100_000)
    datacenters: tuple[int, ...] = (1, 5)
    recover_max: int = 1_000
    """stores up to this size are mapped by Deployments.recover() as it is; bigger ones by the bulk fill"""
    fill_probe: int = 2_000
    """records on which the fill phase measures recover() with batches of 2,000 and the bulk fill"""
    fill_batch: int = 2_000
    warmup: int = 20
    reps: int = 300
    jobs: int = 10_000
    http_starts: int = 100
    steady_reps: int = 5
    completed_share: float = 0.10
    gone: int = 10
    unknown: int = 10
    work_seconds: float = 10.0
    runs: int = 3


FULL = Sizes()
QUICK = Sizes(totals=(100, 300, 1_000), recover_max=100, fill_probe=200, warmup=5, reps=30, jobs=1_000,
              http_starts=20, steady_reps=3, work_seconds=2.0, runs=2)


def add_section(report: Report, text: str) -> None:
    """A section of the report, set off by a blank line (Report joins them with one newline)."""
    report.sections.append(text + "\n")


def ratio(value: float) -> str:
    return f"{value:.2f}x" if value >= 0.1 else f"{value:.2g}x"


def p95(values: list[float]) -> float:
    return percentile(values, 95)


def seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 100 else f"{value:.0f} s"


# -- records and the fill -----------------------------------------------------------------------------
def import_demo(graph: KnowledgeGraph) -> dict[str, str]:
    """The demo modules (public, VO `default`): module name -> IRI."""
    reports = import_files(graph, sorted(DEMO.glob("*.yml")), ImportOptions())
    bad = [r for r in reports if r.status not in ("imported", "updated", "unchanged")]
    assert not bad, [(r.identifier, r.issues) for r in bad]
    return {r.identifier: r.iri for r in reports}


def weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([c for c, _ in choices], [w for _, w in choices])[0]


def make_records(total: int, datacenters: int, base: str, modules: dict[str, str], probe_owner: str,
                 executor: str = "local", kinds: tuple[tuple[str, int], ...] = KIND_WEIGHTS,
                 statuses: tuple[tuple[str, int], ...] = STATUS_WEIGHTS, with_probe: bool = True
                 ) -> tuple[list[Deployment], int]:
    """`total` deployment records, the same whatever the number of datacenters but for placement;
    and the index of the probe user's one deployment (-1: none)."""
    rng = random.Random(total)
    others = sorted(name for name in modules if name != PROBE_MODULE)
    probe = total // 2 if with_probe else -1
    records = []
    for i in range(total):
        kind, status = weighted(rng, kinds), weighted(rng, statuses)
        module = PROBE_MODULE if i == probe else others[rng.randrange(len(others))]
        if i == probe:
            kind, status = "module", "running"
        body: dict[str, Any] = {"kind": kind, "module": module}
        if kind == "batch":
            body["command"] = ["python", "train.py", "--epochs", str(rng.randrange(1, 50))]
        owner = probe_owner if i == probe else USERS[i % len(USERS)]
        record = new_deployment(body, f"dep-{i:06d}", base, owner, VO, modules[module], f"ai4kg-demo/{module}",
                                executor)
        record.placed_on = f"dc-{i % datacenters}"
        record.move("starting", f"placed on datacenter {record.placed_on}")
        record.move("running", f"the {executor} workload manager reports it running")
        if status != "running":
            record.move(status, f"the {executor} workload manager reports it {status}")
        records.append(record)
    return records, probe


def save_ledger(data_dir: Path, records: list[Deployment], chunk: int = 1_000) -> float:
    """`Ledger.save` in chunks (each one transaction, the records marked unmapped): seconds."""
    ledger = Ledger(data_dir)
    start = now()
    for at in range(0, len(records), chunk):
        ledger.save(records[at:at + chunk])
    ledger.close()
    return now() - start


def bulk_map(graph: KnowledgeGraph, records: list[Deployment], batch: int) -> float:
    """The records' graphs through the product's mapping (`to_quads`: morph-kgc) in batches, written
    as new assets with Oxigraph's bulk loader and the search index's own marks; then marked mapped
    in the ledger. Seconds."""
    ledger = Ledger(graph.settings.data_dir)
    base = graph.settings.base_url
    start = now()
    for at in range(0, len(records), batch):
        chunk = records[at:at + batch]
        by_graph, _ = to_quads(chunk, base)
        writes = [AssetWrite(d.iri, by_graph[d.iri]) for d in chunk]
        graph.index.mark_pending(w.iri for w in writes)
        graph.store.bulk_extend(q for w in writes for q in w.quads)
        documents = [indexed_document(w.iri, w.quads) for w in writes]
        graph.index.apply([d for d in documents if d is not None])
        ledger.mapped(d.identifier for d in chunk)
    graph.store.flush()
    ledger.close()
    return now() - start


@contextlib.contextmanager
def batch_size(size: int) -> Iterator[None]:
    original = service.BATCH_SIZE
    service.BATCH_SIZE = size
    try:
        yield
    finally:
        service.BATCH_SIZE = original


class IdleExecutor:
    """An executor that runs nothing: D datacenters of (practically) unlimited room. Part 1 never
    dispatches or reconciles (with it, a reconcile would find every job gone)."""

    name = "local"

    def __init__(self, datacenters: int):
        self.datacenters = {f"dc-{k}": BIG for k in range(datacenters)}

    def capacity(self) -> dict[str, Resources | None]:
        return dict(self.datacenters)

    def probe(self) -> list[Health]:
        return [Health(name, "healthy", 0.0) for name in self.datacenters]

    def start(self, job: Job) -> None:
        raise RuntimeError("the benchmark's idle executor starts nothing")

    def stop(self, identifier: str, vo: str) -> bool:
        return False

    def observe(self) -> dict[str, Observed]:
        return {}


def graph_deployments(graph: KnowledgeGraph) -> int:
    prefix = graph.settings.base_url + "deployment/"
    return sum(1 for g in graph.store.named_graphs() if g.value.startswith(prefix))


# -- serving ------------------------------------------------------------------------------------------
# -- 1. find and retrieve one deployment among N --------------------------------------------------------
@dataclass
class Point:
    total: int
    datacenters: int
    folder: Path
    graph: KnowledgeGraph
    deployments: Deployments
    keys: KeyStore
    requester: Requester
    secret: str
    probe_id: str
    probe_dc: str
    fill: dict[str, float] = field(default_factory=dict)
    method: str = ""

    @property
    def label(self) -> str:
        return f"{self.total:,} / {self.datacenters} DC"

    def close(self) -> None:
        self.deployments.close()
        self.keys.close()
        self.graph.close()


MEASURES = {
    "find_owner": "find: owner + module + datacenter (the probe's one deployment)",
    "find_vo": "find: VO + module + datacenter, no owner (the same one)",
    "retrieve": "retrieve: GET /v1/deployments/{id}",
    "user_page": "list one user's deployments (limit 100)",
    "vo_page": "list the VO's first page (limit 100)",
}


def requests_of(point: Point) -> dict[str, tuple[str, dict[str, Any], Callable[[], Any], int]]:
    """measure -> (path, query, the same work in-process, rows expected)."""
    d, who = point.deployments, point.requester
    user_rows = min(100, sum(1 for i in range(point.total) if i % len(USERS) == 7 and i != point.total // 2))
    return {
        "find_owner": ("/v1/deployments", {"owner": who.subject, "module": PROBE_MODULE, "datacenter": point.probe_dc},
                       lambda: d.find(who, owner=who.subject, module=PROBE_MODULE, datacenter=point.probe_dc,
                                      after=0, limit=101), 1),
        "find_vo": ("/v1/deployments", {"vo": VO, "module": PROBE_MODULE, "datacenter": point.probe_dc},
                    lambda: d.find(who, vo=VO, module=PROBE_MODULE, datacenter=point.probe_dc, after=0, limit=101), 1),
        "retrieve": (f"/v1/deployments/{point.probe_id}", {}, lambda: d.get(point.probe_id, who), 1),
        "user_page": ("/v1/deployments", {"owner": PAGE_USER, "limit": 100},
                      lambda: d.find(who, owner=PAGE_USER, after=0, limit=101), user_rows),
        "vo_page": ("/v1/deployments", {"vo": VO, "limit": 100},
                    lambda: d.find(who, vo=VO, after=0, limit=101), min(100, point.total)),
    }


def build_point(report: Report, sizes: Sizes, work: Path, total: int, datacenters: int) -> Point:
    folder = work / f"find-{total}-{datacenters}dc"
    graph = KnowledgeGraph(Settings(data_dir=folder / "data"))
    modules = import_demo(graph)
    keys = KeyStore(graph.settings.data_dir)
    key, secret = keys.create("probe", frozenset({VO}))
    requester = Requester(f"api-key:{key.id}", frozenset({VO}))
    start = now()
    records, probe = make_records(total, datacenters, graph.settings.base_url, modules, requester.subject)
    fill = {"records": now() - start, "ledger": save_ledger(graph.settings.data_dir, records)}
    executor = IdleExecutor(datacenters)
    if total <= sizes.recover_max:
        method = "Deployments.recover() (batches of 200)"
        start = now()
        deployments = Deployments(graph, executor)  # its __init__ runs recover()
        fill["map"] = now() - start
    else:
        method = f"bulk fill (to_quads in batches of {sizes.fill_batch:,} + bulk loader)"
        fill["map"] = bulk_map(graph, records, sizes.fill_batch)
        start = now()
        deployments = Deployments(graph, executor)
        fill["open"] = now() - start
    assert deployments.ledger.count() == total and not deployments.ledger.unmapped()
    in_graph = graph_deployments(graph)
    assert in_graph == total, (in_graph, total)
    point = Point(total, datacenters, folder, graph, deployments, keys, requester, secret,
                  records[probe].identifier, records[probe].placed_on or "", fill, method)
    mapped = fill["map"]
    report.row("1. fill", f"{total:,} deployments, {datacenters} DC: {method}",
               f"{seconds(mapped)} = {total / mapped:,.0f} deployments/s",
               f"records built {seconds(fill['records'])}, Ledger.save {seconds(fill['ledger'])}; "
               f"{len(graph.store):,} quads, {in_graph:,} deployment graphs")
    return point


def fill_methods(report: Report, sizes: Sizes, work: Path, recover_rate: float) -> None:
    """The same records mapped by recover() with batches of 2,000 and by the bulk fill (fresh stores)."""
    rates = {"recover(), batches of 200": recover_rate}
    for method in ("recover(), batches of 2,000", "bulk"):
        folder = work / f"fill-{method.split(',')[0].strip('()')}"
        graph = KnowledgeGraph(Settings(data_dir=folder / "data"))
        modules = import_demo(graph)
        records, _ = make_records(sizes.fill_probe, 5, graph.settings.base_url, modules, "probe@example.org")
        save_ledger(graph.settings.data_dir, records)
        if method == "bulk":
            spent = bulk_map(graph, records, sizes.fill_batch)
        else:
            with batch_size(2_000):
                start = now()
                Deployments(graph, IdleExecutor(5)).close()
                spent = now() - start
        assert graph_deployments(graph) == sizes.fill_probe
        rates[method] = sizes.fill_probe / spent
        graph.close()
        shutil.rmtree(folder, ignore_errors=True)
    whole = 2 * sum(sizes.totals)
    for method, rate in rates.items():
        report.row("1. fill", f"fill rate: {method}", f"{rate:,.0f} deployments/s",
                   f"all {len(sizes.totals) * 2} stores ({whole:,} deployments) would take {whole / rate / 60:.1f} min",
                   ratio=f"{rate / rates['recover(), batches of 200']:.2f}x recover() as it is")


def bench_find(report: Report, sizes: Sizes, work: Path) -> None:
    points: list[Point] = []
    with report.phase("1. fill the stores"):
        # morph-kgc's first call in a process costs seconds of imports: not the fill's
        warm = KnowledgeGraph(Settings.in_memory())
        modules = import_demo(warm)
        to_quads(make_records(5, 1, warm.settings.base_url, modules, "probe@example.org")[0], warm.settings.base_url)
        warm.close()
        for total in sizes.totals:
            for datacenters in sizes.datacenters:
                points.append(build_point(report, sizes, work, total, datacenters))
        recovered = [p for p in points if p.total <= sizes.recover_max]
        rate = sum(p.total for p in recovered) / sum(p.fill["map"] for p in recovered)
        fill_methods(report, sizes, work, rate)
    gc.collect()
    gc.freeze()
    times: dict[tuple[int, int, str, str], list[float]] = defaultdict(list)
    rows_seen: dict[tuple[int, int, str], int] = {}
    with report.phase(f"1. {sizes.reps} interleaved rounds of {len(MEASURES)} requests on {len(points)} stores"), \
            contextlib.ExitStack() as stack:
        clients = {}
        for point in points:
            url = stack.enter_context(serving(create_app(point.graph, point.keys, point.deployments), lifespan=False))
            clients[id(point)] = stack.enter_context(httpx.Client(
                base_url=url, timeout=60, headers={"Authorization": f"Bearer {point.secret}"}))
        plans = {id(p): requests_of(p) for p in points}
        # check every answer once, then warm up
        for point in points:
            http = clients[id(point)]
            for name, (path, query, direct, expected) in plans[id(point)].items():
                answer = http.get(path, params=query)
                assert answer.status_code == 200, (name, answer.status_code, answer.text[:300])
                body = answer.json()
                found = body["deployments"] if "deployments" in body else [body]
                assert len(found) == expected, (point.label, name, len(found), expected)
                if name in ("find_owner", "find_vo", "retrieve"):
                    assert found[0]["identifier"] == point.probe_id, (name, found[0]["identifier"])
                direct_found = direct()
                assert len((direct_found if isinstance(direct_found, list) else [direct_found])[:100]) == expected
                rows_seen[(point.total, point.datacenters, name)] = len(found)
                for _ in range(sizes.warmup):
                    http.get(path, params=query)
                    direct()
        rng = random.Random(6)
        for rep in range(sizes.reps):
            order = points[:]
            rng.shuffle(order)
            for point in order:
                http = clients[id(point)]
                for name, (path, query, direct, _) in plans[id(point)].items():
                    for way in (("http", "direct") if rep % 2 else ("direct", "http")):
                        start = now()
                        if way == "http":
                            status = http.get(path, params=query).status_code
                        else:
                            direct()
                            status = 200
                        times[(point.total, point.datacenters, name, way)].append(now() - start)
                        assert status == 200
            if (rep + 1) % 50 == 0:
                log(f"  round {rep + 1} of {sizes.reps}")
    find_tables(report, sizes, times, rows_seen, points)
    biggest = [p for p in points if p.total == sizes.totals[-1]]
    with report.phase("1. where a page's time goes (cProfile, in-process ASGI)"):
        profile_page(report, sizes, biggest[-1])
    with report.phase("1. what-if: the ledger's planner statistics (ANALYZE)"):
        what_if_analyze(report, sizes, biggest)
    for point in points:
        point.close()
        shutil.rmtree(point.folder, ignore_errors=True)


def profile_page(report: Report, sizes: Sizes, point: Point) -> None:
    """cProfile of the VO page request through the ASGI app in-process (bench/api_bench.py's driver,
    worker-thread hops made inline so that the profiler sees the handler)."""
    from api_bench import Call, InProcess, inline_threadpool

    in_process = InProcess(create_app(point.graph, point.keys, point.deployments))
    headers = {"Authorization": f"Bearer {point.secret}"}
    calls = {"vo_page": Call("vo_page", "GET", "/v1/deployments", [("vo", VO), ("limit", "100")], headers=headers),
             "retrieve": Call("retrieve", "GET", f"/v1/deployments/{point.probe_id}", [], headers=headers)}
    count = max(20, sizes.reps // 6)
    for name, call in calls.items():
        with inline_threadpool():
            for _ in range(5):
                status, _ = in_process(call)
                assert status == 200, status
            inline = []
            for _ in range(count):
                start = now()
                in_process(call)
                inline.append(now() - start)
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(count):
                in_process(call)
            profiler.disable()
        total, table = own_time_table(profiler, count, ("json", "sqlite3", "_asyncio", "select"), unit="request",
                                      digits=3, named={"bench/api_bench.py": "benchmark's ASGI driver"})
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(15)
        cumulative = "\n".join(line for line in text.getvalue().splitlines()
                               if line.strip() and not line.startswith(("   Ordered by", "   List reduced")))
        add_section(report, 
            f"#### Part 1: where the time of `{MEASURES[name]}` goes ({point.label}): {count} in-process ASGI "
            f"calls, worker-thread hop inline: p50 {fmt(p50(inline))} without the profiler, "
            f"{total / count * 1000:.2f} ms under cProfile\n\nOwn time by package:\n\n" + "\n".join(table)
            + f"\n\nTop 15 functions by own time:\n\n```\n{cumulative}\n```")
    in_process.close()


def what_if_analyze(report: Report, sizes: Sizes, points: list[Point]) -> None:
    """The ledger's queries in-process before and after `ANALYZE` on the benchmark's own ledger
    (the product is not changed): without statistics SQLite picks the datacenter or VO index over the
    owner's for a query that names both."""
    count = max(20, sizes.reps // 3)
    for point in points:
        plan = requests_of(point)
        chosen = {}
        ledger = point.deployments.ledger
        for name, sql_filters in (("find_owner", "owner = 'x' AND datacenter = 'y' AND module = 'z'"),
                                  ("user_page", "owner = 'x' AND vo IN ('v')")):
            with ledger._lock:
                chosen[name, "before"] = ledger._db.execute(
                    f"EXPLAIN QUERY PLAN SELECT seq, record FROM deployments WHERE seq > 0 AND {sql_filters} "
                    "ORDER BY seq LIMIT 101").fetchall()[0][-1]
        before = {name: [] for name in ("find_owner", "user_page", "find_vo", "retrieve")}
        for _ in range(count):
            for name in before:
                start = now()
                plan[name][2]()
                before[name].append(now() - start)
        with ledger._lock:
            start = now()
            ledger._db.execute("ANALYZE")
            analyze_s = now() - start
        for name, sql_filters in (("find_owner", "owner = 'x' AND datacenter = 'y' AND module = 'z'"),
                                  ("user_page", "owner = 'x' AND vo IN ('v')")):
            with ledger._lock:
                chosen[name, "after"] = ledger._db.execute(
                    f"EXPLAIN QUERY PLAN SELECT seq, record FROM deployments WHERE seq > 0 AND {sql_filters} "
                    "ORDER BY seq LIMIT 101").fetchall()[0][-1]
        after = {name: [] for name in before}
        for _ in range(count):
            for name in after:
                start = now()
                plan[name][2]()
                after[name].append(now() - start)
        for name in before:
            note = (f"plan before: {chosen[name, 'before']}; after: {chosen[name, 'after']}"
                    if (name, "before") in chosen else "")
            report.row("1. what-if", f"{MEASURES[name]}, {point.label}, in-process: after ANALYZE vs before",
                       f"p50 {fmt(p50(after[name]))} vs {fmt(p50(before[name]))}",
                       (note + f"; ANALYZE took {seconds(analyze_s)}").lstrip("; "),
                       ratio=ratio(p50(after[name]) / p50(before[name])))


def find_tables(report: Report, sizes: Sizes, times: dict[tuple[int, int, str, str], list[float]],
                rows_seen: dict[tuple[int, int, str], int], points: list[Point]) -> None:
    totals, dcs = sizes.totals, sizes.datacenters
    first, last = totals[0], totals[-1]
    for way, title in (("http", "through the REST API (uvicorn, loopback HTTP, httpx client)"),
                       ("direct", "in-process: Deployments.find / get, what the route calls (no HTTP, no JSON)")):
        out = [f"#### Part 1, {title}: p50 (p95) and the p50's ratio to {first:,} deployments on 1 DC, "
               f"{sizes.reps} requests per cell", "",
               "| operation | DC | " + " | ".join(f"{t:,}" for t in totals) + f" | {last:,} / {first:,} | "
               f"{dcs[-1]} DC / 1 DC at {last:,} |", "|---|---|" + "---|" * len(totals) + "---|---|"]
        for name, label in MEASURES.items():
            base = p50(times[(first, dcs[0], name, way)])
            for d in dcs:
                cells = []
                for t in totals:
                    v = times[(t, d, name, way)]
                    cells.append(f"{fmt(p50(v))} ({fmt(p95(v))}) {p50(v) / base:.2f}x")
                growth = p50(times[(last, d, name, way)]) / p50(times[(first, d, name, way)])
                across = p50(times[(last, dcs[-1], name, way)]) / p50(times[(last, dcs[0], name, way)])
                out.append(f"| {label} | {d} | " + " | ".join(cells) + f" | {growth:.2f}x | "
                           + (f"{across:.2f}x" if d == dcs[-1] else "") + " |")
        add_section(report, "\n".join(out))
    rows = ["#### Part 1: rows each request returns", "", "| operation | " + " | ".join(f"{t:,}" for t in totals) + " |",
            "|---|" + "---|" * len(totals)]
    for name, label in MEASURES.items():
        rows.append(f"| {label} | " + " | ".join(str(rows_seen[(t, dcs[0], name)]) for t in totals) + " |")
    add_section(report, "\n".join(rows))
    for name, label in MEASURES.items():
        base = p50(times[(first, dcs[0], name, "http")])
        for d in dcs:
            v = times[(last, d, name, "http")]
            direct = times[(last, d, name, "direct")]
            report.row("1. find", f"{label}, {last:,} deployments, {d} DC (HTTP)",
                       f"p50 {fmt(p50(v))}, p95 {fmt(p95(v))}",
                       f"in-process p50 {fmt(p50(direct))}; HTTP / in-process {p50(v) / p50(direct):.1f}x",
                       ratio=f"{p50(v) / base:.2f}x {first:,}/1 DC")


# -- 2. reconciliation of 10,000 jobs on Nomad ---------------------------------------------------------
def indexed_nomad_api() -> Any:
    """The tests' Nomad API double with two things of its own that a Nomad server does not have
    taken away; everything else is the double's code.

    - It finds a job's allocations by scanning all of them, for every job of a job list and every
      registration: a list of 3,000 jobs takes it 6 s, one of 10,000 over a minute (Nomad keeps
      allocations indexed by job). Here they are indexed by job.
    - Its handler sends the headers and the body in two writes without TCP_NODELAY, so on a kept-alive
      connection (python-nomad's requests session) every answer waits about 40 ms for the client's
      delayed ACK (Nagle). Go's net/http, which Nomad serves with, sets TCP_NODELAY; so does this.
    """
    sys.path.insert(0, str(REPO / "tests"))
    from nomad_api import NomadApi  # the test double; here it stands in for a Nomad server

    class IndexedNomadApi(NomadApi):
        def __init__(self) -> None:
            super().__init__()
            self._server.RequestHandlerClass.disable_nagle_algorithm = True  # the class is this instance's own
            self._by_job: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)

        def _allocate(self, job: dict[str, Any], group: dict[str, Any], index: int) -> None:
            super()._allocate(job, group, index)
            alloc = next(reversed(self.allocs.values()))
            self._by_job[(alloc["Namespace"], alloc["JobID"])].append(alloc)

        def _allocations_of(self, job: dict[str, Any]) -> list[dict[str, Any]]:
            return [a for a in self._by_job.get((job["Namespace"], job["ID"]), ()) if a["ID"] in self.allocs]

    return IndexedNomadApi()


RECONCILE_STAGES: list[tuple[Any, str, str]] = [
    (NomadExecutor, "observe", "NomadExecutor.observe (one job list over HTTP)"),
    (Ledger, "unfinished", "Ledger.unfinished (records of the unfinished deployments)"),
    (Ledger, "pending", "Ledger.pending (outbox)"),
    (Deployments, "_write", "_write: the changed deployments, batches of 200"),
    (service, "to_quads", "  of which: to_quads (morph-kgc)"),
    (service, "validate", "  of which: SHACL (validation.validate)"),
    (Ledger, "save", "  of which: Ledger.save"),
    (KnowledgeGraph, "write", "  of which: KnowledgeGraph.write"),
    (NomadExecutor, "stop", "NomadExecutor.stop (unknown jobs)"),
    (Ledger, "record_repairs", "Ledger.record_repairs"),
]


def bench_reconcile(report: Report, sizes: Sizes, work: Path) -> None:
    folder = work / "reconcile"
    graph = KnowledgeGraph(Settings(data_dir=folder / "data"))
    modules = import_demo(graph)
    datacenters = [f"dc-{k}" for k in range(5)]
    api = indexed_nomad_api()
    timer = StageTimer(RECONCILE_STAGES, "reconcile", "Deployments.reconcile", "comparing, Deployment.move, ...")
    with api:
        for dc in datacenters:
            api.add_node(dc, cores=64, memory_mb=512_000, disk_mb=10_000_000)
        executor = NomadExecutor(NomadWorkloads(api.address, timeout=120), datacenters)
        with report.phase(f"2. {sizes.jobs:,} deployments in the ledger and graph, {sizes.jobs:,} jobs in the double"):
            records, _ = make_records(sizes.jobs, len(datacenters), graph.settings.base_url, modules, USERS[0],
                                      executor="nomad", kinds=(("batch", 1),), statuses=(("running", 1),),
                                      with_probe=False)
            save_ledger(graph.settings.data_dir, records)
            mapped = bulk_map(graph, records, sizes.fill_batch)
            start = now()
            for record in records[:sizes.http_starts]:
                executor.start(Deployments._job(record, record.placed_on or ""))
            http_start = (now() - start) / sizes.http_starts
            start = now()
            for record in records[sizes.http_starts:]:
                body = json.dumps(job_spec(executor.spec_of(Deployments._job(record, record.placed_on or "")),
                                           VO)).encode()
                status, answer = api.handle("POST", "/v1/jobs", {}, {}, body)
                assert status == 200, answer
            in_process = (now() - start) / max(1, sizes.jobs - sizes.http_starts)
            deployments = Deployments(graph, executor)
        assert len(api.jobs) == sizes.jobs
        report.row("2. reconcile", f"fill: {sizes.jobs:,} running batch deployments (bulk fill), {sizes.jobs:,} jobs",
                   f"graph {seconds(mapped)}; jobs: NomadExecutor.start over HTTP {fmt(http_start)}/job "
                   f"(first {sizes.http_starts}), the rest posted in-process {fmt(in_process)}/job",
                   f"{len(graph.store):,} quads; 5 datacenters, one node each")

        def observe_once() -> float:
            start = now()
            found = executor.observe()
            spent = now() - start
            assert len(found) == len(api.jobs), (len(found), len(api.jobs))
            return spent

        def reconcile_once() -> tuple[float, Any, dict[str, float]]:
            before = timer.snapshot()
            with timer.active():
                start = now()
                result = deployments.reconcile()
                spent = now() - start
            return spent, result, StageTimer.diff(timer.snapshot(), before)

        def listing_once() -> float:
            start = now()
            with api._lock:
                json.dumps(api._list("*", True))
            return now() - start

        cases: list[tuple[str, list[float], list[float], Any, dict[str, float], list[float]]] = []
        def steady(label: str) -> None:
            """Reconciles with nothing to repair, each beside one observe() (their order alternating)."""
            rec, obs, parts, lists = [], [], defaultdict(float), []
            result = None
            for rep in range(sizes.steady_reps):
                if rep % 2:
                    spent, result, diff = reconcile_once()
                    obs.append(observe_once())
                else:
                    obs.append(observe_once())
                    spent, result, diff = reconcile_once()
                rec.append(spent)
                lists.append(listing_once())
                for k, v in diff.items():
                    parts[k] += v / sizes.steady_reps
                assert (result.changed, result.gone, result.unknown) == (0, 0, 0), result
            cases.append((label, rec, obs, result, dict(parts), lists))

        with report.phase("2. (a) steady state"):
            observe_once()  # warm-up (connection, caches)
            steady("(a) nothing changed")

        with report.phase(f"2. (b) {sizes.completed_share:.0%} of the jobs completed"):
            rng = random.Random(2)
            done = rng.sample([r.identifier for r in records], int(sizes.jobs * sizes.completed_share))
            for identifier in done:
                api.set_allocations(identifier, "complete", VO)
            obs = [observe_once()]
            spent, result, diff = reconcile_once()
            obs.append(observe_once())
            assert (result.changed, result.gone, result.unknown) == (len(done), 0, 0), result
            assert len(deployments.ledger.find(status="completed", limit=sizes.jobs)) == len(done)
            cases.append((f"(b) {len(done):,} jobs completed", [spent], obs, result, diff, [listing_once()]))
        with report.phase(f"2. (c) {sizes.gone} jobs gone, {sizes.unknown} unknown"):
            finished = set(done)
            running = [r.identifier for r in records if r.identifier not in finished]
            gone = rng.sample(running, sizes.gone)
            for identifier in gone:
                status, _ = api.handle("DELETE", f"/v1/job/{identifier}", {"namespace": [VO], "purge": ["true"]}, {}, b"")
                assert status == 200
            for k in range(sizes.unknown):
                stray = Job(identifier=f"stray-{k}", kind="batch", vo=VO, owner="someone@example.org",
                            image="ai4kg-demo/stray:latest", title="not the platform's record", datacenter="dc-0",
                            resources=Resources(1, 2000, 0, 10000), command=["sleep", "3600"], module="stray")
                status, _ = api.handle("POST", "/v1/jobs", {}, {}, json.dumps(job_spec(executor.spec_of(stray), VO)).encode())
                assert status == 200
            obs = [observe_once()]
            spent, result, diff = reconcile_once()
            obs.append(observe_once())
            assert (result.gone, result.unknown) == (sizes.gone, sizes.unknown), result
            assert all(api.jobs[(VO, f"stray-{k}")]["Stop"] for k in range(sizes.unknown))
            cases.append((f"(c) {sizes.gone} jobs gone + {sizes.unknown} unknown", [spent], obs, result, diff,
                          [listing_once()]))
        with report.phase("2. (a') steady state again"):
            steady("(a') nothing changed, afterwards")
        deployments.close()
    graph.close()
    shutil.rmtree(folder, ignore_errors=True)

    for name, rec, obs, result, parts, lists in cases:
        r, o = p50(rec), p50(obs)
        report.row("2. reconcile", f"{name}: Deployments.reconcile, {result.observed:,} jobs observed, "
                   f"{result.checked:,} unfinished in the ledger",
                   f"{seconds(r)} = {result.observed / r:,.0f} jobs/s",
                   f"{len(rec)} run(s), p50; changed {result.changed:,}, gone {result.gone}, unknown {result.unknown}; "
                   f"observe p50 {seconds(o)}, of which the double's own listing (+ JSON) {seconds(p50(lists))}",
                   ratio=f"{r / o:.2f}x one observe()")
    columns = [(name, parts, mean(rec), 1) for name, rec, _, _, parts, _ in cases]
    add_section(report, f"#### Part 2: where a reconcile of {sizes.jobs:,} jobs goes (ms per reconcile; "
                           f"mean of the {sizes.steady_reps} runs for (a) and (a'), one run otherwise)\n\n"
                           + timer.table(columns))


# -- 3. the platform's overhead on a workload -------------------------------------------------------------
WORKLOAD = """\
import json, sys, time
start_wall, start, cpu = time.time(), time.perf_counter(), time.process_time()
x = 0
for i in range(int(sys.argv[1])):
    x = (x * 31 + i) % 1000003
print(json.dumps({"start": start_wall, "end": time.time(), "elapsed_s": time.perf_counter() - start,
                  "cpu_s": time.process_time() - cpu, "result": x}), flush=True)
"""

CREATE_STAGES: list[tuple[Any, str, str]] = [
    (Deployments, "_write", "_write (map, SHACL, ledger, graph), each status change"),
    (service, "to_quads", "  of which: to_quads (morph-kgc)"),
    (service, "validate", "  of which: SHACL (validation.validate)"),
    (Ledger, "save", "  of which: Ledger.save"),
    (KnowledgeGraph, "write", "  of which: KnowledgeGraph.write"),
    (LocalExecutor, "start", "LocalExecutor.start (runner started, waits for its pid file)"),
    (LocalExecutor, "observe", "LocalExecutor.observe"),
]


def self_report(text: str) -> dict[str, float]:
    line = next(line for line in reversed(text.splitlines()) if line.startswith("{"))
    return json.loads(line)


def bench_overhead(report: Report, sizes: Sizes, work: Path, poll: float) -> None:
    folder = work / "overhead"
    graph = KnowledgeGraph(Settings(data_dir=folder / "data"))
    [imported] = import_files(graph, [DEMO / f"{PROBE_MODULE}.yml"], ImportOptions())
    assert imported.status == "imported", imported.issues
    executor = LocalExecutor(folder / "local")  # this machine's capacity
    deployments = Deployments(graph, executor)
    requester = Requester("bench@example.org", frozenset({VO}))
    script = folder / "workload.py"
    script.write_text(WORKLOAD, "utf-8")
    scratch = folder / "direct"
    scratch.mkdir()
    timer = StageTimer(CREATE_STAGES, "run", "platform run", "create checks, ledger reads, sleeping between ticks")

    def direct(iterations: int) -> dict[str, float]:
        wall_start, start = time.time(), now()
        done = subprocess.run([sys.executable, str(script), str(iterations)], cwd=scratch, capture_output=True,
                              text=True, check=True)
        wall = now() - start
        found = self_report(done.stdout)
        return {"wall": wall, "self": found["elapsed_s"], "cpu": found["cpu_s"],
                "start_latency": found["start"] - wall_start, "after": wall_start + wall - found["end"]}

    def platform(iterations: int, name: str, command: list[str] | None = None) -> dict[str, float]:
        body = {"kind": "batch", "module": PROBE_MODULE, "name": name,
                "command": command or [sys.executable, str(script), str(iterations)]}
        before = timer.snapshot()
        ticks: list[float] = []
        with timer.active():
            wall_start, start = time.time(), now()
            created, new = deployments.create(body, requester)
            create_s = now() - start
            at_create = StageTimer.diff(timer.snapshot(), before)
            assert new and created.status == "starting", (created.status, created.waiting, created.history)
            while True:
                time.sleep(poll)
                tick = now()
                deployments.tick()
                ticks.append(now() - tick)
                status = deployments.get(created.identifier).status  # type: ignore[union-attr]
                if status in FINAL:
                    break
            e2e = now() - start
        assert status == "completed", deployments.get(created.identifier)
        found = self_report((executor.jobs_dir / created.identifier / "output.log").read_text("utf-8"))
        return {"e2e": e2e, "create": create_s, "self": found["elapsed_s"], "cpu": found["cpu_s"],
                "start_latency": found["start"] - wall_start, "after": wall_start + e2e - found["end"],
                "ticks": len(ticks), "tick_s": sum(ticks), "tick_max": max(ticks),
                "parts_create": at_create, "parts": StageTimer.diff(timer.snapshot(), before)}

    runs: dict[str, list[dict[str, float]]] = {"direct": [], "platform": []}
    try:
        with report.phase("3. calibrate and warm up"):
            calibration = direct(2_000_000)
            iterations = int(2_000_000 / calibration["self"] * sizes.work_seconds)
            warm_direct = direct(iterations // 20)
            warm = platform(0, "warm-up", [sys.executable, "-c", "print('{\"start\": 0, \"end\": 0, "
                                                                  "\"elapsed_s\": 0, \"cpu_s\": 0}')"])
        report.row("3. overhead", "workload", f"{iterations:,} iterations of a pure-Python loop",
                   f"calibrated at {2_000_000 / calibration['self']:,.0f} iterations/s for ~{sizes.work_seconds:g} s; "
                   f"polling: tick() every {poll:g} s")
        report.row("3. overhead", "warm-up: first platform run in the process (a command that prints and exits)",
                   f"{seconds(warm['e2e'])} end to end, create() {seconds(warm['create'])}",
                   f"first morph-kgc and pyshacl calls of the process; a direct start of the script "
                   f"takes {fmt(warm_direct['start_latency'])} to reach its first line")
        with report.phase(f"3. {sizes.runs} direct and {sizes.runs} platform runs, interleaved"):
            for k in range(sizes.runs):
                order = ("direct", "platform") if k % 2 == 0 else ("platform", "direct")
                for way in order:
                    result = direct(iterations) if way == "direct" else platform(iterations, f"overhead-{k}")
                    runs[way].append(result)
                    log(f"  {way} run {k + 1}: " + ", ".join(f"{key} {value:.3f}" for key, value in result.items()
                                                             if isinstance(value, (int, float))))
    finally:
        for runner in executor.jobs_dir.glob("*/runner.json"):
            directory = runner.parent
            if executor._alive(directory):  # a runner this bench started and that still runs
                try:
                    os.killpg(json.loads(runner.read_text())["pid"], signal.SIGKILL)
                except (ProcessLookupError, PermissionError, ValueError, KeyError):
                    pass
        deployments.close()
        graph.close()
        shutil.rmtree(folder, ignore_errors=True)
    overhead_tables(report, runs, poll)


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def overhead_tables(report: Report, runs: dict[str, list[dict[str, float]]], poll: float) -> None:
    d, p = runs["direct"], runs["platform"]
    self_ratio = mean([x["self"] for x in p]) / mean([x["self"] for x in d])
    e2e_ratio = mean([x["e2e"] for x in p]) / mean([x["wall"] for x in d])
    fixed = mean([x["e2e"] for x in p]) - mean([x["wall"] for x in d])
    report.row("3. overhead", "the workload's own run time (it measures itself): platform / direct",
               f"platform {mean([x['self'] for x in p]):.3f} s, direct {mean([x['self'] for x in d]):.3f} s "
               f"(means of {len(p)})", f"CPU time {mean([x['cpu'] for x in p]):.3f} vs {mean([x['cpu'] for x in d]):.3f} s",
               ratio=f"**{self_ratio:.4f}x** ({(self_ratio - 1) * 100:+.2f}%)")
    report.row("3. overhead", "end to end: create() to completed seen, vs subprocess.run wall time",
               f"platform {mean([x['e2e'] for x in p]):.2f} s, direct {mean([x['wall'] for x in d]):.2f} s",
               f"the platform's fixed cost: {fixed:.2f} s per run (polling every {poll:g} s)",
               ratio=f"{e2e_ratio:.3f}x")
    lines = ["#### Part 3: each run (seconds)", "",
             "| run | way | end to end | create() | start latency | workload (self) | workload CPU | end -> seen | "
             "ticks (their time) |", "|---|---|---|---|---|---|---|---|---|"]
    for k in range(len(d)):
        x = d[k]
        lines.append(f"| {k + 1} | direct | {x['wall']:.3f} | | {x['start_latency']:.3f} | {x['self']:.3f} | "
                     f"{x['cpu']:.3f} | {x['after']:.3f} | |")
        y = p[k]
        lines.append(f"| {k + 1} | platform | {y['e2e']:.3f} | {y['create']:.3f} | {y['start_latency']:.3f} | "
                     f"{y['self']:.3f} | {y['cpu']:.3f} | {y['after']:.3f} | {int(y['ticks'])} ({y['tick_s']:.2f}, "
                     f"max {y['tick_max']:.2f}) |")
    lines += ["", "Start latency: from the call (create() or subprocess.run) to the workload's first line; "
              "end -> seen: from its last line to create()'s caller seeing `completed` (platform) or "
              "subprocess.run returning (direct)."]
    parts = ["| part of the platform's fixed cost | seconds per run (mean) |", "|---|---|"]
    parts.append(f"| create() call | {mean([x['create'] for x in p]):.3f} |")
    for label in dict.fromkeys(label for _, _, label in CREATE_STAGES):
        parts.append(f"| &nbsp;&nbsp;in create(): {label.strip()} | "
                     f"{mean([x['parts_create'].get(label, 0.0) for x in p]):.3f} |")
    parts.append(f"| from the create() call to the workload's first line (the runner starts inside create(), "
                 f"before its second _write) | {mean([x['start_latency'] for x in p]):.3f} |")
    parts.append(f"| from the workload's last line to `completed` seen (polling every {poll:g} s) | "
                 f"{mean([x['after'] for x in p]):.3f} |")
    parts.append(f"| ticks during the run: count, and their time (in this process, beside the workload) | "
                 f"{mean([x['ticks'] for x in p]):.0f}, {mean([x['tick_s'] for x in p]):.3f} |")
    for label in dict.fromkeys(label for _, _, label in CREATE_STAGES):
        parts.append(f"| &nbsp;&nbsp;whole run: {label.strip()} | {mean([x['parts'].get(label, 0.0) for x in p]):.3f} |")
    parts.append(f"| direct: from subprocess.run to the first line, and last line to return | "
                 f"{mean([x['start_latency'] for x in d]):.3f}, {mean([x['after'] for x in d]):.3f} |")
    add_section(report, "\n".join(lines) + "\n\n" + "\n".join(parts))


# -- main -------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every phase (about 80 s)")
    parser.add_argument("--work", type=Path, help="keep work files in this folder")
    parser.add_argument("--out", type=Path, help="also write the Markdown report to this file")
    parser.add_argument("--poll", type=float, default=0.25, help="seconds between ticks in part 3 (default 0.25)")
    parser.add_argument("--parts", default="123", help="which parts to run (default 123)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    work = args.work or Path(tempfile.mkdtemp(prefix="ai4kg-deployments-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    report = Report()
    started = now()
    try:
        if "1" in args.parts:
            bench_find(report, sizes, work)
        if "2" in args.parts:
            bench_reconcile(report, sizes, work)
        if "3" in args.parts:
            bench_overhead(report, sizes, work, args.poll)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    publish(f"ai4kg deployments benchmarks ({'quick' if args.quick else 'full'} sizes)", "deployments_bench.py",
            report, started, args.out, f"- uvicorn {version('uvicorn')} ({' and '.join(server_options().values())}), "
            f"httpx {version('httpx')}, python-nomad {version('python-nomad')}")


if __name__ == "__main__":
    main()
