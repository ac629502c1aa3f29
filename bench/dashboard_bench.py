"""Dashboard benchmarks (issue 16): server time of the catalogue page and of a module page.

    uv run python bench/dashboard_bench.py                 # 10,000 generated modules (~2.5 min, 2 cores)
    uv run python bench/dashboard_bench.py --quick         # 1,000 modules
    uv run python bench/dashboard_bench.py --store DIR     # a data directory already holding modules

Requests go through the whole ASGI app in process (Starlette's TestClient: routing, middleware,
templates; no network), so a request's time is the server's time. Each page is measured beside
its baseline in the same process, request by request, alternating so that noise falls on both:
- the catalogue page (search index query, facet counts, 20 cards, the HTML) against the REST
  listing of the same page (`/v1/catalog/modules/detail?limit=20`, same filters);
- a module page (`/id/module/NAME` asked for text/html) against the same IRI asked for JSON (the
  module's ai4-metadata document, what programs get); and its FAIR report, which the page loads in
  a request of its own (`/fair/module/NAME`) the first time a module's content is seen.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import generate as gen  # noqa: E402
from run import Report, fmt, now, publish  # noqa: E402

from fastapi.testclient import TestClient  # noqa: E402

from ai4kg.api.app import create_app  # noqa: E402
from ai4kg.catalog import import_files  # noqa: E402
from ai4kg.config import Settings  # noqa: E402
from ai4kg.graph.store import KnowledgeGraph  # noqa: E402

HTML = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
ROUNDS = 30


def _timed(client: TestClient, url: str, headers: dict[str, str] | None = None, graph: KnowledgeGraph | None = None) -> float:
    if graph is not None:  # a first visit: the facet counts are computed, not remembered
        graph.index._facet_cache.clear()
    started = now()
    response = client.get(url, headers=headers or {})
    elapsed = now() - started
    if response.status_code != 200:
        raise SystemExit(f"{url}: {response.status_code} {response.text[:300]}")
    return elapsed


def catalogue(report: Report, client: TestClient, graph: KnowledgeGraph) -> None:
    libraries = [value for value, _ in graph.index.facet_values("library", None)]
    tasks = [value for value, _ in graph.index.facet_values("task", None)]
    words = ["segmentation", "model", "forecast", "image", "detection"]
    rng = random.Random(0)
    pages, remembered, listings = [], [], []
    cases = [("", ""), ("q={word}", "q={word}"), ("library={library}", "libraries={library}"),
             ("library={library}&task={task}&sort=-updated", "libraries={library}&tasks={task}&sort=-updated")]
    for round_ in range(ROUNDS):
        for page_query, rest_query in cases:
            values = {"word": rng.choice(words), "library": rng.choice(libraries), "task": rng.choice(tasks)}
            page_url = "/?" + page_query.format(**values)
            rest_url = "/v1/catalog/modules/detail?limit=20&" + rest_query.format(**values)
            if round_ % 2:
                pages.append(_timed(client, page_url, HTML, graph))
                listings.append(_timed(client, rest_url))
            else:
                listings.append(_timed(client, rest_url))
                pages.append(_timed(client, page_url, HTML, graph))
            remembered.append(_timed(client, page_url, HTML))  # the same page again (or its next page)
    p50_page, p50_rest, p50_again = statistics.median(pages), statistics.median(listings), statistics.median(remembered)
    report.row("1. catalogue", f"catalogue page with facets, first visit, p50 over {len(pages)} requests", fmt(p50_page),
               f"p90 {fmt(sorted(pages)[int(len(pages) * 0.9)])}; no filter, text, a library, library + task "
               "sorted by update; facet counts computed; acceptance: p50 <= 100 ms", ratio=f"{p50_page / p50_rest:.2f}x")
    report.row("1. catalogue", "the same page again (facet counts remembered until the index changes), p50",
               fmt(p50_again), ratio=f"{p50_again / p50_rest:.2f}x")
    report.row("1. catalogue", "REST listing of the same page (baseline), p50", fmt(p50_rest), ratio="1.00x")


def module_pages(report: Report, client: TestClient, graph: KnowledgeGraph) -> None:
    names = [identifier for _, _, _, identifier in graph.index.names(None, "Module")]
    chosen = random.Random(1).sample(names, min(len(names), 60))
    for name in chosen[:3]:  # warm: templates, FAIR shapes, views
        client.get(f"/id/module/{name}", headers=HTML)
    pages, documents, reports = [], [], []
    for i, name in enumerate(chosen):
        url = f"/id/module/{name}"
        if i % 2:
            pages.append(_timed(client, url, HTML))
            documents.append(_timed(client, url, {"accept": "application/json"}))
        else:
            documents.append(_timed(client, url, {"accept": "application/json"}))
            pages.append(_timed(client, url, HTML))
        reports.append(_timed(client, f"/fair/module/{name}", {**HTML, "HX-Request": "true"}))
    p50_page, p50_json = statistics.median(pages), statistics.median(documents)
    report.row("2. module page", f"module page, p50 over {len(pages)} modules", fmt(p50_page),
               f"p90 {fmt(sorted(pages)[int(len(pages) * 0.9)])}; acceptance: p50 <= 50 ms",
               ratio=f"{p50_page / p50_json:.2f}x")
    report.row("2. module page", "the same IRI as JSON (baseline), p50", fmt(p50_json), ratio="1.00x")
    p50_report = statistics.median(reports)
    report.row("2. module page", "its FAIR report, a request of its own (htmx) the first time a module is seen, p50",
               fmt(p50_report), "MLDCAT-AP view + pyshacl; then kept per content of the module's graph",
               ratio=f"{p50_report / p50_json:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 modules instead of 10,000")
    parser.add_argument("--modules", type=int, default=None)
    parser.add_argument("--store", type=Path, help="a data directory that already holds the modules")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    modules = args.modules or (1_000 if args.quick else 10_000)
    started = now()
    report = Report()
    with tempfile.TemporaryDirectory(prefix="ai4kg-dashboard-") as scratch:
        data = args.store
        if data is None:
            data = Path(scratch) / "store"
            with report.phase(f"0. generate and import {modules:,} modules"):
                paths = gen.write(Path(scratch) / "modules", modules, seed=0)
                with KnowledgeGraph(Settings(data_dir=data)) as graph:
                    if any(r.status != "imported" for r in import_files(graph, paths)):
                        raise SystemExit("benchmark input rejected")
        with KnowledgeGraph(Settings(data_dir=data)) as graph, TestClient(create_app(graph)) as client:
            held = graph.index.count_by_kind(None).get("Module", 0)
            with report.phase("1. catalogue page"):
                catalogue(report, client, graph)
            with report.phase("2. module pages"):
                module_pages(report, client, graph)
    publish("Issue 16: the dashboard", "dashboard_bench.py", report, started, args.out,
            extra=f"Store: {held:,} modules.")


if __name__ == "__main__":
    main()
