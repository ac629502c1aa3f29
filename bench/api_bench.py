"""API benchmarks (issue 3): REST, SPARQL and GraphQL latency over HTTP, concurrency, Figure 10.

    uv run python bench/api_bench.py            # 10,000 modules, 100,000 deployments (~8 min, 2 cores)
    uv run python bench/api_bench.py --quick    # small sizes: a smoke run of every phase (~30 s)

What it does, in one process (figures are given absolutely and as a ratio to a baseline measured
in the same process, interleaved request by request, because the machines are shared and noisy):

1. Build. Generated modules (bench/generate.py) go through `catalog.import_files` into an on-disk
   KnowledgeGraph; then deployments are written as asset graphs through `KnowledgeGraph.write` in
   chunks, spread round-robin over 5 datacenters (plus the 5 Datacenter graphs). A second store
   (same modules, copied graph by graph with `KnowledgeGraph.write`, same deployments) has every
   deployment on one datacenter, for Figure 10.
2. Latency. The real ASGI app (`create_app`) runs under uvicorn on a free loopback port in a
   background thread of this process (with the HTTP parser and event loop `ai4kg serve` uses,
   `cli.server_options`: httptools and uvloop; access log off; after gc.collect() and gc.freeze(),
   as `ai4kg serve` does before serving); an httpx client sends the
   requests one at a time. Each request is also run
   (a) directly, as the same work on the KnowledgeGraph (SearchIndex.filter, KnowledgeGraph.query,
   asset_quads, catalog.document_of) and (b) through the ASGI app in-process, without a socket, so that the
   API overhead (HTTP p50 - direct p50) splits into the framework part and the HTTP part.
   /graphql is measured if create_app serves it (the page query is built by introspection).
3. Concurrency. 8 clients (threads of a separate client process, so the load generator does not
   share the server's GIL) send a mix of the requests above for 30 s; baseline: 8 threads doing
   the same work directly in this process.
4. Figure 10 of the seed paper on this system: search and retrieval time of one deployment as the
   total grows (1k, 10k, 100k) with 1 vs 5 datacenters, plotted to bench/figure10.png.
5. Where the API time goes: cProfile of the in-process ASGI calls of the endpoints with the
   largest overhead (worker-thread hops made inline so that the profiler sees the handler).
6. What-ifs on the benchmark's own store (the product is not changed): the SPARQL endpoint with
   SearchIndex.has_restricted as an index range, and SearchIndex.filter with an index on kind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import gc
import io
import json
import os
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

HERE = Path(__file__).resolve().parent


# -- load client (runs in its own process: `api_bench.py --load URL --plan FILE`) ---------------------
def load_client(url: str, plan_file: Path, clients: int, seconds: float) -> None:
    """Send the plan's requests from `clients` threads for `seconds`; print a JSON summary."""
    plan = json.loads(plan_file.read_text("utf-8"))
    barrier = threading.Barrier(clients + 1)
    results: list[list[tuple[str, float, int]]] = [[] for _ in range(clients)]
    errors: list[list[str]] = [[] for _ in range(clients)]
    window: dict[str, float] = {}

    def client(number: int) -> None:
        rng = random.Random(number)
        with httpx.Client(base_url=url, timeout=60) as http:
            http.get("/version")  # connection open before the clock starts
            barrier.wait()
            deadline = window["end"]
            mine = results[number]
            while True:
                start = time.perf_counter()
                if start >= deadline:
                    break
                request = plan[rng.randrange(len(plan))]
                try:
                    response = http.request(request["method"], request["path"], params=request.get("params"),
                                            content=request.get("body", "").encode() or None,
                                            headers=request.get("headers"))
                    status = response.status_code
                    response.read()
                    if status != 200 and len(errors[number]) < 5:
                        errors[number].append(f"{request['kind']} {status}: {response.text[:200]}")
                except httpx.HTTPError as exc:
                    status = -1
                    if len(errors[number]) < 5:
                        errors[number].append(f"{request['kind']}: {exc!r}")
                mine.append((request["kind"], time.perf_counter() - start, status))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    window["start"] = time.perf_counter()
    window["end"] = window["start"] + seconds
    barrier.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - window["start"]
    flat = [r for rows in results for r in rows]
    print(json.dumps({"elapsed": elapsed, "requests": [[k, t, s] for k, t, s in flat],
                      "errors": [e for rows in errors for e in rows]}))


if __name__ == "__main__" and "--load" in sys.argv:
    _p = argparse.ArgumentParser()
    _p.add_argument("--load", required=True)
    _p.add_argument("--plan", type=Path, required=True)
    _p.add_argument("--clients", type=int, default=8)
    _p.add_argument("--seconds", type=float, default=30)
    _a = _p.parse_args()
    load_client(_a.load, _a.plan, _a.clients, _a.seconds)
    sys.exit(0)


# -- the rest needs the product ----------------------------------------------------------------------
import pyoxigraph as ox  # noqa: E402

import generate as gen  # noqa: E402  (bench/generate.py)
from run import Report, fmt, p50, log, now, own_time_table, percentile, publish, serving, version  # noqa: E402  (bench/run.py helpers)

from ai4kg.api.access import ANONYMOUS  # noqa: E402
from ai4kg.api.app import create_app  # noqa: E402
from ai4kg.catalog import document_of, import_files  # noqa: E402
from ai4kg.cli import server_options  # noqa: E402
from ai4kg.config import DEFAULT_BASE_URL, Settings  # noqa: E402
from ai4kg.graph.search import FacetQuery  # noqa: E402
from ai4kg.graph.store import AssetWrite, KnowledgeGraph  # noqa: E402
from ai4kg.metadata import vocabulary  # noqa: E402

BASE = DEFAULT_BASE_URL
AI4KG = "https://w3id.org/ai4kg/ns#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
XSD_DATETIME = "http://www.w3.org/2001/XMLSchema#dateTime"
PUBLIC_VISIBILITY = "https://w3id.org/ai4kg/vocab/visibility/public"
VO_IRI = f"{BASE}virtualorganisation/vo.bench.eu"
PROVIDER_IRI = f"{BASE}provider/bench-provider"
START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)

PREFIX = "PREFIX ai4kg: <https://w3id.org/ai4kg/ns#>\n"
# Bound variables are in the SELECT projection: pyoxigraph 0.5 substitutes only those.
Q_BY_ID = PREFIX + "SELECT ?d ?id WHERE { ?d a ai4kg:ModuleDeployment ; ai4kg:identifier ?id }"
Q_BY_ID_DC = PREFIX + "SELECT ?d ?id ?dc WHERE { ?d a ai4kg:ModuleDeployment ; ai4kg:identifier ?id ; ai4kg:runsOn ?dc }"
# The same with the class bound too: pyoxigraph 0.5 plans joins as if substituted variables were
# unbound, so `?d a ai4kg:ModuleDeployment` (two constants) goes first and is scanned; with ?type
# substituted as well, the identifier pattern is as selective as the type pattern for the planner.
Q_BY_ID_DC_TYPED = PREFIX + "SELECT ?d ?id ?dc ?type WHERE { ?d a ?type ; ai4kg:identifier ?id ; ai4kg:runsOn ?dc }"
Q_RETRIEVE = PREFIX + "SELECT ?id ?dc ?d ?p ?o WHERE { ?d ai4kg:identifier ?id ; ai4kg:runsOn ?dc ; ?p ?o }"
Q_DC_PAGE = PREFIX + ("SELECT ?dc ?d ?started WHERE { ?d a ai4kg:ModuleDeployment ; ai4kg:runsOn ?dc ; "
                      "ai4kg:startedAt ?started } ORDER BY DESC(?started) LIMIT 50")


@dataclass(frozen=True)
class Sizes:
    modules: int = 10_000
    checkpoints: tuple[int, ...] = (1_000, 10_000, 100_000)
    datacenters: int = 5
    chunk: int = 1_000
    requests: int = 300
    warmup: int = 20
    load_seconds: float = 30
    direct_load_seconds: float = 15
    clients: int = 8
    figure_reps: int = 200
    slow_reps: int = 30
    """Lookups per point for the two searches that scan (400 ms each at 100,000 deployments)."""
    page_reps: int = 20
    profile_requests: int = 200

    @property
    def deployments(self) -> int:
        return self.checkpoints[-1]


FULL = Sizes()
QUICK = Sizes(modules=300, checkpoints=(300, 1_000, 3_000), chunk=500, requests=60, warmup=5, load_seconds=5,
              direct_load_seconds=3, figure_reps=40, slow_reps=20, page_reps=8, profile_requests=50)


# -- helpers -------------------------------------------------------------------------------------------
def p99(values: list[float]) -> float:
    return percentile(values, 99)


def open_graph(folder: Path) -> KnowledgeGraph:
    return KnowledgeGraph(Settings(data_dir=folder))


def n(iri: str) -> ox.NamedNode:
    return ox.NamedNode(iri)


def term(name: str) -> ox.NamedNode:
    return ox.NamedNode(AI4KG + name)


def datacenter_iri(k: int) -> str:
    return f"{BASE}datacenter/dc-{k}"


def deployment_iri(number: int) -> str:
    return f"{BASE}deployment/dep-{number}"


def datacenter_of(number: int, datacenters: int) -> int:
    return number % datacenters + 1


def datacenter_write(k: int) -> AssetWrite:
    iri = datacenter_iri(k)
    g = s = n(iri)
    quads = [ox.Quad(s, n(RDF_TYPE), term("Datacenter"), g),
             ox.Quad(s, term("identifier"), ox.Literal(f"dc-{k}"), g),
             ox.Quad(s, term("title"), ox.Literal(f"Benchmark datacenter {k}"), g),
             ox.Quad(s, term("operatedBy"), n(PROVIDER_IRI), g),
             ox.Quad(s, term("belongsToVO"), n(VO_IRI), g),
             ox.Quad(s, term("visibility"), n(PUBLIC_VISIBILITY), g)]
    return AssetWrite(iri, quads)


def deployment_write(number: int, module_iris: list[str], datacenters: int) -> AssetWrite:
    """Deployment `number`: the same module, status and start time whatever the number of datacenters."""
    rng = random.Random(number)
    module = module_iris[rng.randrange(len(module_iris))]
    status = "running" if rng.random() < 0.7 else "stopped"
    started = START + dt.timedelta(seconds=rng.randrange(2 * 365 * 86_400))
    iri = deployment_iri(number)
    g = s = n(iri)
    quads = [ox.Quad(s, n(RDF_TYPE), term("ModuleDeployment"), g),
             ox.Quad(s, term("identifier"), ox.Literal(f"dep-{number}"), g),
             ox.Quad(s, term("title"), ox.Literal(f"Deployment {number} of {module.rsplit('/', 1)[-1]}"), g),
             ox.Quad(s, term("deploys"), n(module), g),
             ox.Quad(s, term("runsOn"), n(datacenter_iri(datacenter_of(number, datacenters))), g),
             ox.Quad(s, term("status"), ox.Literal(status), g),
             ox.Quad(s, term("startedAt"), ox.Literal(started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                                       datatype=n(XSD_DATETIME)), g),
             ox.Quad(s, term("belongsToVO"), n(VO_IRI), g),
             ox.Quad(s, term("visibility"), n(PUBLIC_VISIBILITY), g)]
    return AssetWrite(iri, quads)


def rows(result: Any) -> list[Any]:
    return list(result)


# -- 1. build ----------------------------------------------------------------------------------------
@dataclass
class Stores:
    five: KnowledgeGraph
    one: KnowledgeGraph
    module_iris: list[str]
    written: int = 0
    seconds: dict[int, list[float]] = field(default_factory=lambda: {1: [], 5: []})
    """Seconds per chunk of deployments, by number of datacenters."""


def build_modules(report: Report, sizes: Sizes, work: Path) -> Stores:
    with report.phase(f"1. generate {sizes.modules:,} module files"):
        start = now()
        paths = gen.write(work / "modules", sizes.modules, seed=0)
        generated = now() - start
    report.row("1. build", "generate + write YAML files", f"{generated:.1f} s", f"{sizes.modules:,} files")
    with report.phase(f"1. import {sizes.modules:,} modules (import_files)"):
        five = open_graph(work / "store-5dc")
        start = now()
        reports = import_files(five, paths)
        imported = now() - start
    bad = [r for r in reports if r.status != "imported"]
    if bad:
        raise SystemExit(f"benchmark input rejected: {bad[0].as_dict()}")
    module_iris = [r.iri or "" for r in reports]
    report.row("1. build", f"import_files, {len(paths):,} modules into an empty on-disk store",
               f"{imported:.1f} s = {len(paths) / imported:,.0f} modules/s",
               f"{len(five.store):,} quads; 5-datacenter store")
    with report.phase("1. copy the modules into the 1-datacenter store (KnowledgeGraph.write)"):
        one = open_graph(work / "store-1dc")
        start = now()
        for at in range(0, len(module_iris), sizes.chunk):
            one.write([AssetWrite(iri, five.asset_quads(iri)) for iri in module_iris[at:at + sizes.chunk]])
        copied = now() - start
    report.row("1. build", f"copy the {len(module_iris):,} module graphs into the 1-datacenter store",
               f"{copied:.1f} s", f"KnowledgeGraph.write in chunks of {sizes.chunk:,}; {len(one.store):,} quads",
               ratio=f"{copied / imported:.2f}x the import")
    five.write([datacenter_write(k) for k in range(1, sizes.datacenters + 1)])
    one.write([datacenter_write(1)])
    return Stores(five, one, module_iris)


def grow(stores: Stores, sizes: Sizes, target: int) -> tuple[float, float]:
    """Write deployments up to `target` into both stores (chunk by chunk, alternating); seconds for each."""
    totals = {5: 0.0, 1: 0.0}
    for at in range(stores.written, target, sizes.chunk):
        numbers = range(at, min(target, at + sizes.chunk))
        order = [(stores.five, sizes.datacenters), (stores.one, 1)]
        if (at // sizes.chunk) % 2:
            order.reverse()
        for graph, datacenters in order:
            writes = [deployment_write(number, stores.module_iris, datacenters) for number in numbers]
            start = now()
            graph.write(writes)
            seconds = now() - start
            totals[1 if datacenters == 1 else 5] += seconds
            stores.seconds[1 if datacenters == 1 else 5].append(seconds)
    stores.written = target
    return totals[5], totals[1]


# -- 4. Figure 10 ------------------------------------------------------------------------------------
FIGURE_OPS = {
    "by_id": "search: SPARQL, identifier bound",
    "by_id_dc": "search: SPARQL, identifier + datacenter bound",
    "by_id_dc_typed": "search: SPARQL, identifier + datacenter + class bound",
    "asset_quads": "retrieval: asset_quads(IRI)",
    "search_then_quads": "search (SPARQL, identifier + datacenter + class bound) + retrieval (asset_quads)",
    "one_query": "search + retrieval in one SPARQL query (all triples)",
    "dc_page": "newest 50 deployments of one datacenter (SPARQL ORDER BY)",
}


def figure_point(stores: Stores, sizes: Sizes, total: int) -> dict[tuple[int, str], list[float]]:
    """Times of every Figure 10 operation on both stores at `total` deployments, interleaved."""
    rng = random.Random(total)
    sample = [rng.randrange(total) for _ in range(sizes.figure_reps + 10)]
    times: dict[tuple[int, str], list[float]] = defaultdict(list)
    cases = [(stores.five, sizes.datacenters), (stores.one, 1)]

    def one(graph: KnowledgeGraph, datacenters: int, number: int, keep: bool, slow: bool) -> None:
        identifier = ox.Literal(f"dep-{number}")
        dc = n(datacenter_iri(datacenter_of(number, datacenters)))
        iri = deployment_iri(number)
        typed = {"id": identifier, "dc": dc, "type": term("ModuleDeployment")}
        measured: dict[str, float] = {}

        def by_id() -> None:
            found = rows(graph.query(Q_BY_ID, {"id": identifier}))
            assert [r["d"].value for r in found] == [iri], found

        def by_id_dc() -> None:
            found = rows(graph.query(Q_BY_ID_DC, {"id": identifier, "dc": dc}))
            assert [r["d"].value for r in found] == [iri], found

        def by_id_dc_typed() -> None:
            found = rows(graph.query(Q_BY_ID_DC_TYPED, typed))
            assert [r["d"].value for r in found] == [iri], found

        def asset_quads() -> None:
            assert len(graph.asset_quads(iri)) == 9

        def search_then_quads() -> None:
            found = rows(graph.query(Q_BY_ID_DC_TYPED, typed))
            assert len(graph.asset_quads(found[0]["d"].value)) == 9

        def one_query() -> None:
            assert len(rows(graph.query(Q_RETRIEVE, {"id": identifier, "dc": dc}))) == 9

        operations = [by_id_dc_typed, asset_quads, search_then_quads, one_query] + ([by_id, by_id_dc] if slow else [])
        rng.shuffle(operations)  # each operation follows a different one each time (caches)
        for operation in operations:
            start = now()
            operation()
            measured[operation.__name__] = now() - start
        if keep:
            for key, value in measured.items():
                times[(datacenters, key)].append(value)

    for i, number in enumerate(sample):
        for graph, datacenters in (cases if i % 2 else cases[::-1]):
            one(graph, datacenters, number, keep=i >= 10, slow=i < 10 + sizes.slow_reps)
    for i in range(sizes.page_reps + 2):
        k = rng.randrange(sizes.datacenters) + 1
        for graph, datacenters in (cases if i % 2 else cases[::-1]):
            dc = n(datacenter_iri(k if datacenters > 1 else 1))
            start = now()
            found = rows(graph.query(Q_DC_PAGE, {"dc": dc}))
            seconds = now() - start
            assert len(found) == min(50, total), len(found)
            if i >= 2:
                times[(datacenters, "dc_page")].append(seconds)
    return times


PLOT_LABELS = {
    "by_id_dc": "SPARQL search, ?id + ?dc bound (class written as a constant)",
    "by_id_dc_typed": "SPARQL search, ?id + ?dc + ?type bound",
    "asset_quads": "retrieval: asset_quads(IRI)",
    "search_then_quads": "SPARQL search (?id + ?dc + ?type bound) + asset_quads",
    "one_query": "search + retrieval in one SPARQL query (no class pattern)",
}


def plot_figure(points: dict[int, dict[tuple[int, str], list[float]]], datacenters: int, path: Path,
                title_note: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, NullFormatter

    totals = sorted(points)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 6.6), layout="constrained",
                                      gridspec_kw={"width_ratios": [1.5, 1]})
    colours = {"by_id_dc": "tab:blue", "by_id_dc_typed": "tab:cyan", "asset_quads": "tab:green",
               "search_then_quads": "tab:orange", "one_query": "tab:purple", "dc_page": "tab:red"}
    styles = {datacenters: ("-", "o"), 1: ("--", "s")}

    def dc_label(d: int) -> str:
        return f"{d} datacenter{'s' if d > 1 else ''}"

    for key in PLOT_LABELS:
        for d in (datacenters, 1):
            line, marker = styles[d]
            values = [p50(points[t][(d, key)]) * 1000 for t in totals]
            left.plot(totals, values, linestyle=line, marker=marker, color=colours[key])
    handles = [Line2D([], [], color=colours[key], marker="o", label=label) for key, label in PLOT_LABELS.items()]
    handles += [Line2D([], [], color="grey", linestyle=styles[d][0], marker=styles[d][1], label=dc_label(d))
                for d in (datacenters, 1)]
    left.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    left.set_title("(a) one deployment, found by its identifier: search and retrieval")
    left.set_ylabel("time per lookup, p50 (ms, log scale)")
    for d in (datacenters, 1):
        line, marker = styles[d]
        values = [p50(points[t][(d, "dc_page")]) * 1000 for t in totals]
        share = f"1/{d} of the deployments on it" if d > 1 else "all deployments on it"
        right.plot(totals, values, linestyle=line, marker=marker, color=colours["dc_page"],
                   label=f"{dc_label(d)} ({share})")
    right.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=1)
    right.set_title("(b) filtered by datacenter: its 50 newest deployments")
    right.set_ylabel("time per query, p50 (ms, log scale)")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    for axis in (left, right):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("deployments in the store (log scale)")
        axis.grid(True, which="both", alpha=0.3)
        axis.set_xticks(totals)
        axis.set_xticklabels([f"{t:,}" for t in totals])
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.yaxis.set_major_formatter(plain)
        axis.yaxis.set_minor_formatter(NullFormatter())
    fig.suptitle("ai4kg on embedded Oxigraph (pyoxigraph): the seed paper's Figure 10 measured on this system\n"
                 + title_note, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- 2. latency: HTTP vs in-process ASGI vs direct ---------------------------------------------------
@dataclass
class Call:
    """One request, as sent over HTTP and in-process."""

    kind: str
    method: str
    path: str
    params: list[tuple[str, str]] = field(default_factory=list)
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def plan(self) -> dict[str, Any]:
        return {"kind": self.kind, "method": self.method, "path": self.path, "params": self.params,
                "body": self.body, "headers": self.headers}


class InProcess:
    """Calls the ASGI app directly on an event loop of this thread: no socket, no HTTP parsing."""

    def __init__(self, app: Any):
        self.app = app
        self.loop = asyncio.new_event_loop()

    async def _call(self, call: Call) -> tuple[int, bytes]:
        body = call.body.encode()
        headers = [(b"host", b"127.0.0.1"), *((k.lower().encode(), v.encode()) for k, v in call.headers.items())]
        if body:
            headers.append((b"content-length", str(len(body)).encode()))
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
                 "method": call.method, "scheme": "http", "path": call.path, "raw_path": call.path.encode(),
                 "query_string": urlencode(call.params).encode(), "root_path": "", "headers": headers,
                 "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80), "state": {}}
        sent_request = False
        done = asyncio.Event()
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent_request
            if not sent_request:
                sent_request = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    done.set()

        await self.app(scope, receive, send)
        return status, b"".join(chunks)

    def __call__(self, call: Call) -> tuple[int, bytes]:
        return self.loop.run_until_complete(self._call(call))

    def close(self) -> None:
        self.loop.close()


@dataclass
class Endpoint:
    name: str
    calls: list[Call]
    direct: Callable[[int], Any] | None
    """The same work on the KnowledgeGraph, for request i (None: nothing to compare with)."""
    check: Callable[[int, bytes, Any], None] = lambda i, body, direct: None
    direct_label: str = ""


def catalog_query(**kwargs: Any) -> FacetQuery:
    """The FacetQuery the REST listing builds for an anonymous request (see api/catalog.py listing)."""
    any_of = [("tag", ())] + list(kwargs.pop("any_of", ()))
    return FacetQuery(kind="Module", readers=ANONYMOUS, any_of=tuple(any_of),
                      none_of=(("tag", ()), ("category", ("ai4-tools",))), not_all_of=(("tag", ()),),
                      sort="identifier", descending=False, **kwargs)


def endpoints(graph: KnowledgeGraph, app: Any, sizes: Sizes, module_iris: list[str], http: httpx.Client) -> list[Endpoint]:
    rng = random.Random(3)
    count = sizes.warmup + sizes.requests
    found: list[Endpoint] = []

    tool = "/category/ai4-tools"  # the modules endpoint answers 404 for tools (they are under /tools)
    modules_only = [i for i, iri in enumerate(module_iris)
                    if not any(q.object.value.endswith(tool) for q in graph.asset_quads(iri))]
    picks = [rng.choice(modules_only) for _ in range(count)]
    names = [module_iris[i].rsplit("/", 1)[-1] for i in picks]
    found.append(Endpoint(
        "module detail", [Call("detail", "GET", f"/v1/catalog/modules/{name}/metadata") for name in names],
        lambda i: document_of(graph.asset_quads(module_iris[picks[i]]), "v2"),
        lambda i, body, direct: _same(json.loads(body), direct, "detail"),
        "asset_quads + catalog.document_of"))

    library = vocabulary.schemes()["library"]
    pairs = []
    for _ in range(count):
        document = gen.generate_one(rng.randrange(len(module_iris)), 0)
        pairs.append((document["tags"][0], document["libraries"][0]))
    queries = [catalog_query(all_of=(("tag", tag.lower()),), any_of=(("library", (library.concept_of(lib),)),),
                             limit=50) for tag, lib in pairs]
    found.append(Endpoint(
        "filtered listing (tags + libraries, limit 50)",
        [Call("listing", "GET", "/v1/catalog/modules", [("tags", tag), ("libraries", lib), ("limit", "50")])
         for tag, lib in pairs],
        lambda i: graph.index.filter(queries[i]),
        lambda i, body, direct: _same(json.loads(body), [iri.rsplit("/", 1)[-1] for iri in direct.iris], "listing"),
        "SearchIndex.filter"))

    words_all = gen.vocabulary()
    words = [gen._words(rng, 1)[0] if i % 2 else words_all[rng.randrange(1000, len(words_all))] for i in range(count)]
    text_queries = [catalog_query(text=word, limit=50) for word in words]
    found.append(Endpoint(
        "free text (q=word, limit 50)",
        [Call("free-text", "GET", "/v1/catalog/modules", [("q", word), ("limit", "50")]) for word in words],
        lambda i: graph.index.filter(text_queries[i]),
        lambda i, body, direct: _same(json.loads(body), [iri.rsplit("/", 1)[-1] for iri in direct.iris], "free text"),
        "SearchIndex.filter"))

    iris = [module_iris[rng.randrange(len(module_iris))] for _ in range(count)]
    sparql = [f"SELECT ?p ?o WHERE {{ <{iri}> ?p ?o }}" for iri in iris]
    found.append(Endpoint(
        "SPARQL point query (all triples of one module)",
        [Call("sparql", "POST", "/sparql", body=q, headers={"content-type": "application/sparql-query",
                                                             "accept": "application/sparql-results+json"})
         for q in sparql],
        lambda i: rows(graph.query(sparql[i])),
        lambda i, body, direct: _same(len(json.loads(body)["results"]["bindings"]), len(direct), "sparql"),
        "KnowledgeGraph.query, rows collected"))

    graphql = graphql_endpoint(graph, app, sizes, http)
    if graphql is not None:
        found.append(graphql)

    found.append(Endpoint("GET /version (floor: no store work)", [Call("version", "GET", "/version")] * count,
                          None))
    return found


def _same(got: Any, wanted: Any, what: str) -> None:
    if got != wanted:
        raise AssertionError(f"{what}: the API answered {str(got)[:300]} where the direct call gives {str(wanted)[:300]}")


INTROSPECT_FIELDS = """query { __schema { queryType { fields { name args { name } type { ...T } } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }"""
INTROSPECT_TYPE = """query($name: String!) { __type(name: $name) { fields { name type { ...T } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }"""


def _named(type_: dict[str, Any]) -> tuple[str, bool]:
    """(named type, is a list) of an introspected type reference."""
    is_list = False
    while type_.get("ofType") is not None and type_["kind"] in ("NON_NULL", "LIST"):
        is_list = is_list or type_["kind"] == "LIST"
        type_ = type_["ofType"]
    return type_["name"], is_list


GRAPHQL_QUERY: dict[str, str] = {}
"""The GraphQL query that was measured (for the report)."""


def graphql_endpoint(graph: KnowledgeGraph, app: Any, sizes: Sizes, http: httpx.Client) -> Endpoint | None:
    """A page of 50 modules through /graphql, if create_app mounts it (the query is built from introspection)."""
    probe = http.post("/graphql", json={"query": "{ __typename }"})
    if probe.status_code == 404:  # (FastAPI 0.165 nests included routers: app.routes does not list it)
        log("GraphQL: create_app serves no /graphql; not measured")
        return None

    def ask(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = http.post("/graphql", json={"query": query, "variables": variables or {}},
                             headers={"accept": "application/graphql-response+json, application/json"})
        return response.json()

    def fields_of(name: str) -> dict[str, str]:
        data = ask(INTROSPECT_TYPE, {"name": name})["data"]["__type"]
        return {f["name"]: _named(f["type"])[0] for f in (data or {}).get("fields") or []}

    def scalars(name: str) -> list[str]:
        fields = fields_of(name)
        wanted = [f for f in ("iri", "id", "identifier", "name", "title", "summary") if f in fields]
        return wanted or [f for f, t in fields.items() if t in ("String", "ID")][:4]

    try:
        root = ask(INTROSPECT_FIELDS)["data"]["__schema"]["queryType"]["fields"]
        field_ = next(f for f in root if f["name"] == "modules")
        args = {a["name"] for a in field_["args"]}
        type_name, is_list = _named(field_["type"])
        page_arg = "first" if "first" in args else "limit" if "limit" in args else None
        arguments = f"({page_arg}: 50)" if page_arg else ""
        fields = fields_of(type_name)
        if "edges" in fields:
            node_type = fields_of(fields["edges"])["node"]
            selection = "edges { cursor node { " + " ".join(scalars(node_type)) + " } } pageInfo { hasNextPage endCursor }"
        elif "nodes" in fields:
            selection = "nodes { " + " ".join(scalars(fields["nodes"])) + " }"
        elif "items" in fields:
            selection = "items { " + " ".join(scalars(fields["items"])) + " }"
        else:
            selection = " ".join(scalars(type_name))
        query = f"query Page {{ modules{arguments} {{ {selection} }} }}"
        answer = ask(query)
        if answer.get("errors") or not answer.get("data"):
            raise ValueError(answer)
    except (StopIteration, KeyError, TypeError, ValueError, httpx.HTTPError) as exc:
        log(f"GraphQL: could not build a page query from the schema ({exc!r:.300}); not measured")
        return None
    GRAPHQL_QUERY["query"] = query
    log(f"GraphQL query: {query}")
    count = sizes.warmup + sizes.requests
    page_query = catalog_query(limit=50)
    body = json.dumps({"query": query})

    def direct(i: int) -> Any:
        page = graph.index.filter(page_query)
        return [document_of(graph.asset_quads(iri), "v2") for iri in page.iris]

    def check(i: int, body_: bytes, direct_: Any) -> None:
        answer = json.loads(body_)
        if answer.get("errors"):
            raise AssertionError(f"graphql: {answer['errors']}")

    return Endpoint("GraphQL page of 50 modules",
                    [Call("graphql", "POST", "/graphql", body=body,
                          headers={"content-type": "application/json",
                                   "accept": "application/graphql-response+json, application/json"})] * count,
                    direct, check, "SearchIndex.filter + asset_quads and catalog.document_of of the 50 modules")


def timed_http(http: httpx.Client, call: Call) -> tuple[float, int, bytes]:
    start = now()
    response = http.request(call.method, call.path, params=call.params, content=call.body.encode() or None,
                            headers=call.headers)
    body = response.content
    return now() - start, response.status_code, body


def bench_latency(report: Report, sizes: Sizes, graph: KnowledgeGraph, app: Any, url: str, module_iris: list[str],
                  in_process: InProcess) -> dict[str, dict[str, list[float]]]:
    results: dict[str, dict[str, list[float]]] = {}
    with httpx.Client(base_url=url, timeout=60) as http:
        http.get("/version")
        for endpoint in endpoints(graph, app, sizes, module_iris, http):
            times: dict[str, list[float]] = defaultdict(list)
            with report.phase(f"2. {endpoint.name}: {sizes.requests} requests (+{sizes.warmup} warm-up) x 3 ways"):
                for i, call in enumerate(endpoint.calls):
                    ways = ["direct", "asgi", "http"]
                    rotated = ways[i % 3:] + ways[:i % 3]
                    direct_value = None
                    for way in rotated:
                        if way == "direct":
                            if endpoint.direct is None:
                                continue
                            start = now()
                            direct_value = endpoint.direct(i)
                            seconds = now() - start
                        elif way == "asgi":
                            start = now()
                            status, body = in_process(call)
                            seconds = now() - start
                            if status != 200:
                                raise AssertionError(f"{endpoint.name} in-process: {status} {body[:300]!r}")
                        else:
                            seconds, status, body = timed_http(http, call)
                            if status != 200:
                                raise AssertionError(f"{endpoint.name} over HTTP: {status} {body[:300]!r}")
                            http_body = body
                        if i >= sizes.warmup:
                            times[way].append(seconds)
                    if i < sizes.warmup + 3 and endpoint.direct is not None:
                        endpoint.check(i, http_body, direct_value)
            results[endpoint.name] = dict(times)
            api, asgi = times["http"], times["asgi"]
            if endpoint.direct is None:
                report.row("2. latency", f"{endpoint.name}: HTTP", f"p50 {fmt(p50(api))}, p99 {fmt(p99(api))}",
                           f"in-process ASGI p50 {fmt(p50(asgi))}; {len(api)} requests")
                continue
            direct = times["direct"]
            overhead = p50(api) - p50(direct)
            report.row("2. latency", f"{endpoint.name}: HTTP", f"p50 {fmt(p50(api))}, p99 {fmt(p99(api))}",
                       f"{len(api)} requests; direct ({endpoint.direct_label}) p50 {fmt(p50(direct))}, "
                       f"p99 {fmt(p99(direct))}",
                       ratio=f"{p50(api) / p50(direct):.2f}x direct (p99 {p99(api) / p99(direct):.2f}x)")
            report.row("2. latency", f"{endpoint.name}: API overhead = HTTP p50 - direct p50",
                       f"**{fmt(overhead)}** ({'under' if overhead < 0.002 else 'over'} 2 ms)",
                       f"of which in-process ASGI (framework) {fmt(p50(asgi) - p50(direct))}, "
                       f"HTTP (uvicorn + socket + httpx client) {fmt(p50(api) - p50(asgi))}")
    return results


def breakdown_table(results: dict[str, dict[str, list[float]]]) -> str:
    out = ["| endpoint | direct p50 | in-process ASGI p50 | HTTP p50 | HTTP p99 | framework (ASGI - direct) | "
           "HTTP layer (HTTP - ASGI) | **API overhead (HTTP - direct)** | HTTP / direct |",
           "|---|---|---|---|---|---|---|---|---|"]
    for name, times in results.items():
        d = p50(times["direct"]) if times.get("direct") else 0.0
        a, h = p50(times["asgi"]), p50(times["http"])
        ratio = f"{h / d:.2f}x" if d else "-"
        out.append(f"| {name} | {fmt(d) if d else '-'} | {fmt(a)} | {fmt(h)} | {fmt(p99(times['http']))} | "
                   f"{fmt(a - d)} | {fmt(h - a)} | **{fmt(h - d)}** | {ratio} |")
    return "\n".join(out)


# -- 3. concurrency ----------------------------------------------------------------------------------
def bench_concurrency(report: Report, sizes: Sizes, graph: KnowledgeGraph, app: Any, url: str,
                      module_iris: list[str], work: Path) -> None:
    with httpx.Client(base_url=url, timeout=60) as http:
        mix = [e for e in endpoints(graph, app, sizes, module_iris, http) if e.direct is not None]
    plan = [call.plan() for e in mix for call in e.calls[sizes.warmup:]]
    plan_file = work / "plan.json"
    plan_file.write_text(json.dumps(plan), "utf-8")
    kinds = sorted({p["kind"] for p in plan})
    with report.phase(f"3. {sizes.clients} HTTP clients for {sizes.load_seconds:g} s"):
        process = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--load", url, "--plan", str(plan_file),
                                  "--clients", str(sizes.clients), "--seconds", str(sizes.load_seconds)],
                                 capture_output=True, text=True, timeout=sizes.load_seconds + 300)
    if process.returncode != 0:
        raise SystemExit(f"load client failed: {process.stderr[-2000:]}")
    load = json.loads(process.stdout)
    requests = load["requests"]
    errors = sum(1 for _, _, status in requests if status != 200)
    latencies = [t for _, t, _ in requests]
    throughput = len(requests) / load["elapsed"]

    # baseline: the same work, directly, from 8 threads of this process
    calls = [(e, i) for e in mix for i in range(sizes.warmup, len(e.calls))]
    direct_times: list[list[tuple[str, float]]] = [[] for _ in range(sizes.clients)]
    with report.phase(f"3. baseline: {sizes.clients} threads doing the same work directly for "
                      f"{sizes.direct_load_seconds:g} s"):
        barrier = threading.Barrier(sizes.clients + 1)
        window: dict[str, float] = {}

        def worker(number: int) -> None:
            rng = random.Random(number)
            barrier.wait()
            while True:
                start = now()
                if start >= window["end"]:
                    break
                endpoint, i = calls[rng.randrange(len(calls))]
                endpoint.direct(i)  # type: ignore[misc]
                direct_times[number].append((endpoint.calls[i].kind, now() - start))

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(sizes.clients)]
        for thread in threads:
            thread.start()
        window["start"] = now()
        window["end"] = window["start"] + sizes.direct_load_seconds
        barrier.wait()
        for thread in threads:
            thread.join()
        direct_elapsed = now() - window["start"]
    flat_direct = [x for rows_ in direct_times for x in rows_]
    direct_throughput = len(flat_direct) / direct_elapsed
    direct_latencies = [t for _, t in flat_direct]
    report.row("3. concurrency",
               f"{sizes.clients} clients x {sizes.load_seconds:g} s over HTTP, mix of "
               f"{', '.join(kinds)}",
               f"**{throughput:,.0f} requests/s**; p50 {fmt(p50(latencies))}, "
               f"p99 {fmt(p99(latencies))}; **errors: {errors}** of {len(requests):,}",
               f"direct baseline ({sizes.clients} threads in-process, {sizes.direct_load_seconds:g} s): "
               f"{direct_throughput:,.0f} calls/s, p50 {fmt(p50(direct_latencies))}, p99 {fmt(p99(direct_latencies))}",
               ratio=f"throughput {throughput / direct_throughput:.2f}x direct; p50 {p50(latencies) / p50(direct_latencies):.1f}x")
    if load["errors"]:
        report.row("3. concurrency", "first errors", "; ".join(load["errors"][:3]))
    table = ["| request | HTTP count | HTTP p50 | HTTP p99 | direct count | direct p50 | direct p99 |",
             "|---|---|---|---|---|---|---|"]
    for kind in kinds:
        api = [t for k, t, _ in requests if k == kind]
        direct = [t for k, t in flat_direct if k == kind]
        table.append(f"| {kind} | {len(api):,} | {fmt(p50(api))} | {fmt(p99(api))} | {len(direct):,} | "
                     f"{fmt(p50(direct))} | {fmt(p99(direct))} |")
    report.sections.append(f"#### {sizes.clients} concurrent clients, by request (HTTP: {load['elapsed']:.1f} s, "
                           f"{len(requests):,} requests, {errors} errors; direct: {direct_elapsed:.1f} s)\n\n"
                           + "\n".join(table))


# -- 5. profile ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def inline_threadpool() -> Iterator[None]:
    """Run FastAPI's and the SPARQL router's worker-thread calls inline, so cProfile (one thread) sees them."""
    import anyio.to_thread
    import fastapi.dependencies.utils
    import fastapi.routing

    async def run_in_threadpool(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    async def run_sync(func: Callable[..., Any], *args: Any, abandon_on_cancel: bool = False, **kwargs: Any) -> Any:
        return func(*args)

    saved = [(fastapi.routing, "run_in_threadpool", fastapi.routing.run_in_threadpool),
             (fastapi.dependencies.utils, "run_in_threadpool", fastapi.dependencies.utils.run_in_threadpool),
             (anyio.to_thread, "run_sync", anyio.to_thread.run_sync)]
    fastapi.routing.run_in_threadpool = run_in_threadpool  # type: ignore[assignment]
    fastapi.dependencies.utils.run_in_threadpool = run_in_threadpool  # type: ignore[assignment]
    anyio.to_thread.run_sync = run_sync  # type: ignore[assignment]
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def bench_profile(report: Report, sizes: Sizes, endpoints_: list[Endpoint], in_process: InProcess) -> None:
    for endpoint in endpoints_:
        calls = endpoint.calls[: sizes.profile_requests]
        with report.phase(f"5. profile {endpoint.name}"), inline_threadpool():
            for call in calls[:5]:
                in_process(call)
            inline: list[float] = []
            for call in calls:
                start = now()
                in_process(call)
                inline.append(now() - start)
            profiler = cProfile.Profile()
            profiler.enable()
            for call in calls:
                in_process(call)
            profiler.disable()
        direct = []
        if endpoint.direct is not None:
            for i in range(len(calls)):
                start = now()
                endpoint.direct(i)
                direct.append(now() - start)
        total, table = own_time_table(profiler, len(calls), ("pyoxigraph", "sqlite3", "json", "_asyncio", "select",
                                                             "socket"), unit="request", digits=3,
                                      named={"bench/api_bench.py": "benchmark's ASGI driver"})
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(18)
        top = "\n".join(line for line in text.getvalue().splitlines()
                        if line.strip() and not line.startswith(("   Ordered by", "   List reduced")))
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
        cumulative = "\n".join(line for line in text.getvalue().splitlines()
                               if line.strip() and not line.startswith(("   Ordered by", "   List reduced")))
        header = (f"#### Profile: {endpoint.name}, {len(calls)} in-process ASGI calls with the worker-thread hop "
                  f"made inline: p50 {fmt(p50(inline))} without the profiler"
                  + (f" (direct work p50 {fmt(p50(direct))})" if direct else "")
                  + f"; {total / len(calls) * 1000:.2f} ms per request under cProfile")
        report.sections.append(f"{header}\n\nOwn time by package (cProfile):\n\n" + "\n".join(table)
                               + f"\n\nTop 18 functions by own time:\n\n```\n{top}\n```\n\n"
                               f"Top 25 by cumulative time:\n\n```\n{cumulative}\n```")


# -- 6. what-ifs (measured on the benchmark's store; the product is not changed) ---------------------
def bench_what_if(report: Report, sizes: Sizes, graph: KnowledgeGraph, endpoints_: list[Endpoint],
                  in_process: InProcess) -> None:
    import types

    from ai4kg.graph.search import PUBLIC

    index = graph.index
    sparql = next((e for e in endpoints_ if e.name.startswith("SPARQL")), None)
    if sparql is not None:
        def by_range(self: Any) -> bool:
            """has_restricted as two index ranges (visibility < 'public' or > 'public') instead of '!='."""
            with self._lock:
                return self._db.execute("SELECT EXISTS (SELECT 1 FROM documents WHERE visibility < ? OR visibility > ?)",
                                        (PUBLIC, PUBLIC)).fetchone()[0] == 1

        with report.phase("6. what-if: SPARQL endpoint with has_restricted as an index range"):
            as_is: list[float] = []
            patched: list[float] = []
            for i, call in enumerate(sparql.calls):
                for variant in ((0, 1) if i % 2 else (1, 0)):
                    if variant:
                        index.has_restricted = types.MethodType(by_range, index)  # type: ignore[method-assign]
                    start = now()
                    status, _ = in_process(call)
                    seconds = now() - start
                    if variant:
                        del index.has_restricted
                    assert status == 200
                    if i >= sizes.warmup:
                        (patched if variant else as_is).append(seconds)
            check = min(_timed(index.has_restricted) for _ in range(5))
        report.row("6. what-if",
                   "SPARQL point query in-process: SearchIndex.has_restricted() as is vs as two index ranges",
                   f"p50 {fmt(p50(as_is))} -> {fmt(p50(patched))}",
                   f"has_restricted() alone: {fmt(check)} ('visibility != ?' walks the whole (visibility, vo) index: "
                   f"{index.count():,} rows); same answer either way",
                   ratio=f"{p50(patched) / p50(as_is):.2f}x")
    listing = next(e for e in endpoints_ if e.name.startswith("filtered listing"))
    plain = catalog_query(limit=50)
    sample = list(range(sizes.warmup, sizes.warmup + min(100, sizes.requests)))

    def measure() -> tuple[float, float]:
        tagged = [_timed(lambda i=i: listing.direct(i)) for i in sample]  # type: ignore[misc]
        page = [_timed(lambda: index.filter(plain)) for _ in sample]
        return p50(tagged), p50(page)

    with report.phase("6. what-if: SearchIndex.filter with an index on documents(kind, identifier, iri)"):
        before = measure()
        with index._lock:
            index._db.execute("CREATE INDEX IF NOT EXISTS bench_documents_by_kind_identifier "
                              "ON documents(kind, identifier, iri)")
        after = measure()
    report.row("6. what-if",
               "SearchIndex.filter, sort=identifier, limit 50: as is vs with an index on "
               "documents(kind, identifier, iri)",
               f"tags + libraries {fmt(before[0])} -> {fmt(after[0])}; plain page {fmt(before[1])} -> {fmt(after[1])}",
               f"{index.count():,} index entries, {stores_note(index)}; the index was added to the benchmark's copy only",
               ratio=f"{after[0] / before[0]:.2f}x / {after[1] / before[1]:.2f}x")


def stores_note(index: Any) -> str:
    with index._lock:
        modules = index._db.execute("SELECT COUNT(*) FROM documents WHERE kind = 'Module'").fetchone()[0]
    return f"{modules:,} of them modules"


# -- main ----------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every phase (~1 min)")
    parser.add_argument("--work", type=Path, help="keep work files (stores, YAML) in this folder")
    parser.add_argument("--out", type=Path, help="also write the Markdown report to this file")
    parser.add_argument("--figure", type=Path, default=HERE / "figure10.png", help="where to write Figure 10")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    work = args.work or Path(tempfile.mkdtemp(prefix="ai4kg-api-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    report = Report()
    started = now()
    try:
        stores = build_modules(report, sizes, work)
        graph = stores.five

        # Listing and free text before any deployment: the SQLite index also holds the deployments.
        probe = [catalog_query(limit=50), catalog_query(text=gen.vocabulary()[1500], limit=50)]
        before = [min(_timed(lambda q=q: graph.index.filter(q)) for _ in range(30)) for q in probe]

        figure: dict[int, dict[tuple[int, str], list[float]]] = {}
        for target in sizes.checkpoints:
            with report.phase(f"1. write deployments up to {target:,} into both stores (KnowledgeGraph.write)"):
                first = stores.written
                five_s, one_s = grow(stores, sizes, target)
            written = target - first
            report.row("1. build",
                       f"deployments {first:,}-{target:,}: KnowledgeGraph.write, chunks of {sizes.chunk:,}",
                       f"5 DC: {five_s:.1f} s ({written / five_s:,.0f}/s); 1 DC: {one_s:.1f} s ({written / one_s:,.0f}/s)",
                       f"5-DC store {len(stores.five.store):,} quads, {stores.five.index.count():,} index entries",
                       ratio=f"1 DC / 5 DC {one_s / five_s:.2f}x")
            with report.phase(f"4. Figure 10 point at {target:,} deployments"):
                figure[target] = figure_point(stores, sizes, target)
        chunks = stores.seconds[5]
        report.row("1. build", "deployment write throughput, first vs last chunk (5-DC store)",
                   f"{sizes.chunk / chunks[0]:,.0f} vs {sizes.chunk / chunks[-1]:,.0f} deployments/s",
                   f"{len(chunks)} chunks", ratio=f"last/first {chunks[-1] / chunks[0]:.2f}x")
        after = [min(_timed(lambda q=q: graph.index.filter(q)) for _ in range(30)) for q in probe]
        report.row("1. build",
                   f"SearchIndex.filter of a module page, with 0 vs {stores.written:,} deployments in the index",
                   f"listing {fmt(before[0])} -> {fmt(after[0])}; free text {fmt(before[1])} -> {fmt(after[1])}",
                   "best of 30; the documents table has no index on kind or the sort keys",
                   ratio=f"{after[0] / before[0]:.1f}x / {after[1] / before[1]:.1f}x")
        figure_table(report, figure, sizes)
        stores.one.close()
        plot_figure(figure, sizes.datacenters, args.figure,
                    f"{sizes.modules:,} modules + deployments on 1 or {sizes.datacenters} datacenters; "
                    f"p50 of {sizes.figure_reps} lookups per point ({sizes.slow_reps} for the class-as-constant "
                    f"search, {sizes.page_reps} for (b)); "
                    f"{os.cpu_count()} cores")
        report.row("4. Figure 10", "plot", f"`{args.figure.name}`", "")

        app = create_app(graph)
        in_process = InProcess(app)
        # As `ai4kg serve` does once the app is built and the store open: what lives as long as the
        # process (here also the build's leftovers) leaves the collected generations, so that full
        # collections, which request garbage keeps triggering, no longer walk it (pauses of ~100 ms).
        gc.collect()
        gc.freeze()
        with serving(app) as url:
            results = bench_latency(report, sizes, graph, app, url, stores.module_iris, in_process)
            report.sections.insert(0, "#### API latency, sequential requests: where the time goes (p50)\n\n"
                                   + breakdown_table(results)
                                   + (f"\n\nGraphQL query measured: `{GRAPHQL_QUERY['query']}`" if GRAPHQL_QUERY else
                                      "\n\nGraphQL: create_app had no /graphql route when this ran; not measured."))
            bench_concurrency(report, sizes, graph, app, url, stores.module_iris, work)
            with httpx.Client(base_url=url, timeout=60) as http:
                all_endpoints = endpoints(graph, app, sizes, stores.module_iris, http)
        ranked = sorted((e for e in all_endpoints if e.direct is not None),
                        key=lambda e: -(p50(results[e.name]["http"]) - p50(results[e.name]["direct"])))
        floor = [e for e in all_endpoints if e.direct is None]
        detail = [e for e in ranked[2:] if e.name.startswith("module detail")]
        bench_profile(report, sizes, ranked[:2] + floor + detail, in_process)
        bench_what_if(report, sizes, graph, all_endpoints, in_process)
        in_process.close()
        graph.close()
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    publish(f"ai4kg API benchmarks ({'quick' if args.quick else 'full'} sizes)", "api_bench.py", report, started,
            args.out, f"- uvicorn {version('uvicorn')}, fastapi {version('fastapi')}, starlette {version('starlette')}, "
            f"httpx {version('httpx')}; uvicorn runs {' and '.join(server_options().values())} "
            f"(httptools {version('httptools')}, uvloop {version('uvloop')}, h11 {version('h11')})")


def _timed(function: Callable[[], Any]) -> float:
    start = now()
    function()
    return now() - start


def figure_table(report: Report, figure: dict[int, dict[tuple[int, str], list[float]]], sizes: Sizes) -> None:
    totals = sorted(figure)
    d = sizes.datacenters
    out = ["| operation | datacenters | " + " | ".join(f"{t:,}: p50 (p99)" for t in totals)
           + f" | {totals[-1]:,} / {totals[0]:,} (p50) | 1 DC / {d} DC at {totals[-1]:,} |",
           "|---|---|" + "---|" * len(totals) + "---|---|"]
    for key, label in FIGURE_OPS.items():
        for dcs in (d, 1):
            values = [figure[t][(dcs, key)] for t in totals]
            cells = " | ".join(f"{fmt(p50(v))} ({fmt(p99(v))})" for v in values)
            growth = p50(values[-1]) / p50(values[0])
            vs = p50(figure[totals[-1]][(1, key)]) / p50(figure[totals[-1]][(d, key)])
            out.append(f"| {label} | {dcs} | {cells} | {growth:.2f}x | {vs:.2f}x |")
        last = figure[totals[-1]]
        report.row("4. Figure 10", f"{label}, {totals[-1]:,} deployments",
                   f"{d} DC p50 {fmt(p50(last[(d, key)]))}; 1 DC p50 {fmt(p50(last[(1, key)]))}", "",
                   ratio=f"{totals[-1]:,} vs {totals[0]:,}: {p50(last[(d, key)]) / p50(figure[totals[0]][(d, key)]):.2f}x "
                   f"({d} DC)")
    report.sections.append("#### Figure 10 data: one deployment, search and retrieval (embedded pyoxigraph, "
                           f"{sizes.figure_reps} lookups per cell, {sizes.slow_reps} for the two searches with the "
                           f"class as a constant, {sizes.page_reps} for the datacenter page)\n\n"
                           + "\n".join(out))


if __name__ == "__main__":
    main()
