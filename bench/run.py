"""Catalog benchmarks: import throughput, single-module upsert vs store size, free-text search.

    uv run python bench/run.py            # full sizes (10k import, 100k-asset store), ~13 min on 2 cores
    uv run python bench/run.py --quick    # small sizes, a smoke run of every phase (~30 s)

Every figure is given absolutely and as a ratio against a baseline measured in the same process
(the machines these run on are shared and noisy). Work files go to a temporary folder that is
removed at the end (--work DIR keeps them). The Markdown report goes to stdout (and --out FILE).

How the 100,000-asset store is built (--build bulk, the default): `templates` generated modules
are imported with `import_files`; every further asset copies the quads of one of them under a
new IRI (identifier, image and source links rewritten) with its own generated title, summary,
description and tags, and is written in chunks of 1,000 with Oxigraph's bulk loader plus the
search index's own `mark_pending`/`apply` (what `KnowledgeGraph.write` does, without the per-asset
staging-graph transaction). `--build write` uses `KnowledgeGraph.write` for the chunks instead.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import functools
import io
import os
import platform
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate as gen  # noqa: E402  (bench/generate.py)

import pyoxigraph as ox  # noqa: E402


from ai4kg import catalog  # noqa: E402
from ai4kg.catalog import expand_paths, import_files  # noqa: E402
from ai4kg.config import Settings  # noqa: E402
from ai4kg.graph import validation  # noqa: E402
from ai4kg.graph.search import SearchIndex, match_expression  # noqa: E402
from ai4kg.graph.store import AssetWrite, KnowledgeGraph, search_document  # noqa: E402
from ai4kg.metadata import loader  # noqa: E402
from ai4kg.metadata.rml import RmlMapping  # noqa: E402

AI4KG = "https://w3id.org/ai4kg/ns#"
TEXT_PREDICATES = {AI4KG + name for name in ("title", "summary", "description", "tag")}
# ?w is projected because pyoxigraph 0.5 substitutes only variables of the SELECT projection
# ("The SPARQL query does not contains variable ?w in its SELECT projection" otherwise).
SCAN_QUERY = """PREFIX ai4kg: <https://w3id.org/ai4kg/ns#>
SELECT ?s ?w WHERE { ?s ai4kg:title|ai4kg:summary|ai4kg:description|ai4kg:tag ?t
                  FILTER(CONTAINS(LCASE(STR(?t)), ?w)) } LIMIT 20"""


@dataclass(frozen=True)
class Sizes:
    import_n: int = 10_000
    small: int = 100
    big: int = 100_000
    templates: int = 1_000
    upserts: int = 50
    searches: int = 200
    scans: int = 20
    profile_batch: int = 200
    chunk: int = 1_000


FULL = Sizes()
QUICK = Sizes(import_n=600, small=100, big=5_000, templates=200, upserts=10, searches=50, scans=6)


# -- helpers ----------------------------------------------------------------------------------------
def now() -> float:
    return time.perf_counter()


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def fmt(seconds: float) -> str:
    """A latency in ms with the digits that matter."""
    value = seconds * 1000
    return f"{value:.3f} ms" if value < 1 else f"{value:.2f} ms" if value < 100 else f"{value:,.0f} ms"


def p50(values: list[float]) -> float:
    return statistics.median(values)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Report:
    """A bench's table (bench, measure, value, ratio to a baseline run in the same process, note),
    its phases' wall times, free sections, and raw figures (for a --json file)."""

    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    phases: list[tuple[str, float]] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def row(self, bench: str, measure: str, value: str, note: str = "", ratio: str = "") -> None:
        self.rows.append((bench, measure, value, ratio, note))
        log(f"{bench} | {measure} | {value} | {ratio} | {note}")

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        log(f"phase: {name} ...")
        start = now()
        try:
            yield
        finally:
            self.phases.append((name, now() - start))
            log(f"phase: {name} done in {now() - start:.1f} s")

    def markdown(self) -> str:
        out = ["| bench | measure | value | ratio to baseline | note |", "|---|---|---|---|---|"]
        out += [f"| {b} | {m} | {v} | {r} | {n} |" for b, m, v, r, n in self.rows]
        out += ["", "| phase | wall time |", "|---|---|"]
        out += [f"| {name} | {seconds:.1f} s |" for name, seconds in self.phases]
        out += [f"| **total** | **{sum(s for _, s in self.phases):.1f} s** |"]
        return "\n".join(out + [""] + self.sections)


# -- where a profile's time went --------------------------------------------------------------------
def _package_of(filename: str, function: str, builtins: tuple[str, ...], named: dict[str, str]) -> str:
    """The package, ai4kg module or stdlib file a profiled function belongs to."""
    if filename == "~":
        return next((f"C: {package}" for package in builtins if package in function), "C: other builtins")
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    for suffix, name in named.items():
        if filename.endswith(suffix):
            return name
    if "/work/main/" in filename or "/ai4kg/" in filename:
        return "ai4kg/" + (filename.split("/ai4kg/", 1)[-1] if "/ai4kg/" in filename else filename.split("/work/main/", 1)[1])
    if "/lib/python3" in filename:
        return "stdlib: " + filename.rsplit("/", 1)[-1]
    return filename


def own_time_table(profiler: cProfile.Profile, calls: int, builtins: tuple[str, ...], unit: str = "call",
                   digits: int = 2, named: dict[str, str] | None = None) -> tuple[float, list[str]]:
    """A profile's total time and a Markdown table of its own time by package (the 14 largest),
    per call: C builtins by the names in `builtins`, files ending in a key of `named` by its value."""
    stats = pstats.Stats(profiler)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    by_package: dict[str, float] = defaultdict(float)
    for (filename, _, function), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        by_package[_package_of(filename, function, builtins, named or {})] += own
    table = [f"| where (own time) | ms per {unit} | share |", "|---|---|---|"]
    table += [f"| {name} | {seconds / calls * 1000:.{digits}f} | {seconds / total:.0%} |"
              for name, seconds in sorted(by_package.items(), key=lambda kv: -kv[1])[:14]]
    return total, table


def version(name: str) -> str:
    """An installed package's version, for the report's header."""
    try:
        return importlib_metadata.version(name)
    except importlib_metadata.PackageNotFoundError:
        return "(not installed)"


def publish(title: str, script: str, report: "Report", started: float, out: Path | None, extra: str = "") -> str:
    """The Markdown report of a bench run (title, machine, `extra` lines, the command, the wall time,
    the table): printed, written to `out` when given, and returned."""
    text = "\n".join([f"## {title}", "", machine(), *([extra] if extra else []), "",
                      f"Command: `uv run python bench/{script} {' '.join(sys.argv[1:])}`".replace("  ", " "),
                      f"Total wall time: {now() - started:.0f} s", "", report.markdown()])
    print(text)
    if out:
        out.write_text(text + "\n", "utf-8")
    return text


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(app: Any, lifespan: bool = True) -> Iterator[str]:
    """uvicorn on a free loopback port in a background thread (the HTTP parser and event loop that
    `ai4kg serve` uses, access log off). `lifespan=False`: the app's control loop (a reconcile every
    few seconds) does not run."""
    import threading

    import uvicorn

    from ai4kg.cli import server_options

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                                           lifespan="on" if lifespan else "off", **server_options()))
    thread = threading.Thread(target=server.run, daemon=True, name=f"uvicorn-{port}")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise SystemExit("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    try:
        memory = subprocess.run(["free", "-h"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        memory = "(free not available)"
    versions = ", ".join(f"{name} {importlib_metadata.version(name)}"
                         for name in ("pyoxigraph", "morph-kgc", "pyshacl", "rdflib", "jsonschema", "pyyaml"))
    import sqlite3
    return "\n".join([
        f"- date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- nproc: {os.cpu_count()}; CPU: {cpu}",
        f"- Python {platform.python_version()} ({platform.platform()}); SQLite {sqlite3.sqlite_version}",
        f"- {versions}",
        "- memory (free -h):", "", "```", memory, "```",
    ])


def open_graph(folder: Path) -> KnowledgeGraph:
    return KnowledgeGraph(Settings(data_dir=folder))


def import_checked(graph: KnowledgeGraph, paths: list[Path], **kwargs: Any) -> list[catalog.FileReport]:
    reports = import_files(graph, paths, **kwargs)
    bad = [r for r in reports if r.status != "imported"]
    if bad:
        raise SystemExit(f"benchmark input rejected: {bad[0].as_dict()}")
    return reports


# -- wall time per stage of a write path --------------------------------------------------------
class StageTimer:
    """Wall time spent in the named stages of a write path, by patching them with timers (about
    1 us per call). A target is (owner, name, label): an attribute of a module or class, or a key
    of a dict; labels starting with spaces are parts of the stage above them."""

    def __init__(self, targets: list[tuple[Any, str, str]], unit: str, whole: str, rest: str):
        self.targets, self.unit, self.whole, self.rest = targets, unit, whole, rest
        self.seconds: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        originals = []
        for owner, name, label in self.targets:
            original = owner[name] if isinstance(owner, dict) else getattr(owner, name)
            originals.append((owner, name, original))
            self._set(owner, name, self._timed(original, label))
        try:
            yield
        finally:
            for owner, name, original in reversed(originals):
                self._set(owner, name, original)

    @staticmethod
    def _set(owner: Any, name: str, value: Any) -> None:
        if isinstance(owner, dict):
            owner[name] = value
        else:
            setattr(owner, name, value)

    def _timed(self, function: Callable[..., Any], label: str) -> Callable[..., Any]:
        seconds = self.seconds

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = now()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[label] += now() - start
        return timed

    def snapshot(self) -> dict[str, float]:
        return dict(self.seconds)

    @staticmethod
    def diff(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
        return {k: v - before.get(k, 0.0) for k, v in after.items()}

    def table(self, columns: list[tuple[str, dict[str, float], float, int]]) -> str:
        """One row per stage; each column is (title, seconds by stage, total seconds, count of units)."""
        labels = list(dict.fromkeys(label for _, _, label in self.targets))
        out = ["| stage | " + " | ".join(f"{title}: ms/{self.unit} (share)" for title, *_ in columns) + " |",
               "|---|" + "---|" * len(columns)]

        def cell(seconds: float, total: float, count: int) -> str:
            return f"{seconds / count * 1000:.2f} ({seconds / total:.0%})"

        for label in labels:
            out.append(f"| {label} | " + " | ".join(cell(sec.get(label, 0.0), total, count)
                                                  for _, sec, total, count in columns) + " |")
        rest = [total - sum(v for k, v in sec.items() if not k.startswith("  ")) for _, sec, total, _ in columns]
        out.append(f"| everything else ({self.rest}) | "
                   + " | ".join(cell(r, total, count) for r, (_, _, total, count) in zip(rest, columns)) + " |")
        out.append(f"| **total {self.whole}** | " + " | ".join(f"**{total / count * 1000:.2f}** ({count:,} {self.unit}s)"
                                                            for _, _, total, count in columns) + " |")
        return "\n".join(out)


IMPORT_STAGES: list[tuple[Any, str, str]] = [
    (loader, "read_file", "parse YAML (loader.read_file)"),
    (catalog, "check_document", "JSON Schema check"),
    (catalog, "to_records", "records (to_records)"),
    (RmlMapping, "materialize", "RML mapping (the compiled mapping)"),
    (catalog, "validate", "SHACL, total (validation.validate)"),
    (validation, "to_rdflib", "  of which: Oxigraph quads -> rdflib graph"),
    (validation, "vocabulary_for", "  of which: the vocabulary statements the shapes read"),
    (validation, "violations_of", "  of which: pyshacl (its Validator, with the shapes kept)"),
    (KnowledgeGraph, "_replace_graph", "Oxigraph writes (one DROP + INSERT DATA update)"),
    (SearchIndex, "mark_pending", "search index (mark_pending + apply)"),
    (SearchIndex, "apply", "search index (mark_pending + apply)"),
]
"""The stages of `import_files`."""


def import_stages() -> StageTimer:
    return StageTimer(IMPORT_STAGES, "module", "import_files", "batching, _issue_of, search_document, ...")


def bench_import(report: Report, sizes: Sizes, work: Path) -> tuple[KnowledgeGraph, list[Path]]:
    folder = work / "modules"
    with report.phase(f"a. generate {sizes.import_n:,} files"):
        start = now()
        paths = gen.write(folder, sizes.import_n, seed=0)
        generated = now() - start
    report.row("a. import", "generate + write YAML files", f"{generated:.1f} s", f"{sizes.import_n:,} files "
               f"({sum(p.stat().st_size for p in paths) / len(paths) / 1024:.1f} KiB each on average)")
    paths = expand_paths([folder])

    def parse_all() -> float:
        start = now()
        for path in paths:
            loader.read_file(path)
        return now() - start

    graph = open_graph(work / "store-import")
    batch = catalog.BATCH_SIZE
    # on_file runs for a whole batch at once, after its commit: segments are whole batches
    n_files = len(paths)
    segment = 1000 if n_files >= 3000 else max(batch, n_files // 3 // batch * batch)
    breakdown = import_stages()
    marks: list[tuple[float, dict[str, float]]] = []  # (time, stage seconds) at each segment end

    def on_file(_: catalog.FileReport) -> None:
        stamps.append(now())
        if len(stamps) % segment == 0 or len(stamps) == n_files:
            marks.append((stamps[-1], breakdown.snapshot()))

    with report.phase(f"a. parse + import + parse {sizes.import_n:,} files"):
        parse_before = parse_all()
        stamps: list[float] = []
        with breakdown.active():  # wall-time counters around the stages; overhead ~1 us per call
            start = now()
            marks.append((start, breakdown.snapshot()))
            import_checked(graph, paths, on_file=on_file)
            imported = now() - start
        parse_after = parse_all()
    parse = min(parse_before, parse_after)
    n = len(paths)
    report.row("a. import", "parse only (loader.read_file), baseline",
               f"{parse:.1f} s ({n / parse:,.0f} files/s)",
               f"min of a run before ({parse_before:.1f} s) and after ({parse_after:.1f} s) the import")
    report.row("a. import", f"import_files, {n:,} modules into an empty on-disk store",
               f"{imported:.1f} s = **{n / imported:,.1f} modules/s**",
               f"{len(graph.store):,} quads, {graph.index.count():,} search entries")
    report.row("a. import", "ratio import time / parse time", f"**{imported / parse:.1f}x**", "")
    (t0, s0), (t1, s1), (t8, s8), (t9, s9) = marks[0], marks[1], marks[-2], marks[-1]
    first, last = t1 - t0, t9 - t8
    last_n = n - (len(marks) - 2) * segment
    report.row("a. import", f"throughput of the first {segment:,} vs the last {last_n:,} modules",
               f"{segment / first:,.1f} vs {last_n / last:,.1f} modules/s",
               f"time per module last/first {last / last_n / (first / segment):.1f}x (same batch size; see the breakdown)")
    rates = ", ".join(f"{segment / (b[0] - a[0]):.0f}" for a, b in zip(marks, marks[1:]))
    diff = StageTimer.diff
    report.sections.append(
        f"#### Where the {n:,}-module import went (wall time per stage)\n\n"
        f"Modules/s per segment of {segment:,} files, in order: {rates}.\n\n"
        + breakdown.table([("whole import", s9, imported, n), (f"first {segment:,}", diff(s1, s0), first, segment),
                           (f"last {last_n:,}", diff(s9, s8), last, last_n)]))
    return graph, paths


def replicate(templates: list[tuple[str, str, list[ox.Quad]]], m: int, base: str) -> AssetWrite:
    """Asset number m of the big store: the quads of template m % T under a new identifier, with
    generated text of its own (generator module m, seed 0)."""
    iri0, id0, quads0 = templates[m % len(templates)]
    new_id = gen.module_id(m, 0)
    iri = f"{base}module/{new_id}"
    graph = ox.NamedNode(iri)
    subject = ox.NamedNode(iri)

    def term(t: Any) -> Any:
        if isinstance(t, ox.NamedNode) and id0 in t.value:
            return ox.NamedNode(t.value.replace(id0, new_id))
        if isinstance(t, ox.Literal) and id0 in t.value:
            return ox.Literal(t.value.replace(id0, new_id), datatype=t.datatype)
        return t

    quads = [ox.Quad(term(q.subject), q.predicate, term(q.object), graph) for q in quads0
             if not (q.predicate.value in TEXT_PREDICATES and q.subject.value == iri0)]
    document = gen.generate_one(m, 0)
    for name in ("title", "summary", "description"):
        quads.append(ox.Quad(subject, ox.NamedNode(AI4KG + name), ox.Literal(document[name]), graph))
    for tag in document["tags"]:
        quads.append(ox.Quad(subject, ox.NamedNode(AI4KG + "tag"), ox.Literal(tag), graph))
    return AssetWrite(iri, quads)


def bulk_write(graph: KnowledgeGraph, writes: list[AssetWrite]) -> None:
    """New assets only: what KnowledgeGraph.write does, with Oxigraph's bulk loader for the quads."""
    graph.index.mark_pending(w.iri for w in writes)
    graph.store.bulk_extend(q for w in writes for q in w.quads)
    documents = [search_document(w.iri, w.quads) for w in writes]
    graph.index.apply([d for d in documents if d is not None])


def build_stores(report: Report, sizes: Sizes, work: Path, paths: list[Path], build: str
                 ) -> tuple[KnowledgeGraph, KnowledgeGraph]:
    with report.phase(f"b. build the {sizes.small:,}-asset store"):
        small = open_graph(work / "store-small")
        start = now()
        import_checked(small, paths[:sizes.small])
    report.row("b. upsert", f"build small store: import_files of {sizes.small:,} modules", f"{now() - start:.1f} s",
               f"{len(small.store):,} quads")
    with report.phase(f"b. build the {sizes.big:,}-asset store ({build})"):
        big = open_graph(work / "store-big")
        start = now()
        reports = import_checked(big, paths[:sizes.templates])
        imported = now() - start
        templates = []
        for r in reports:
            assert r.iri and r.identifier
            templates.append((r.iri, r.identifier, big.asset_quads(r.iri)))
        start = now()
        chunk_times = []
        for begin in range(sizes.templates, sizes.big, sizes.chunk):
            chunk_start = now()
            writes = [replicate(templates, m, big.settings.base_url)
                      for m in range(begin, min(sizes.big, begin + sizes.chunk))]
            bulk_write(big, writes) if build == "bulk" else big.write(writes)
            chunk_times.append(now() - chunk_start)
            if len(chunk_times) % 10 == 0:
                log(f"  {begin + len(writes):,} assets, last chunk {chunk_times[-1]:.1f} s")
        replicated = now() - start
        big.store.flush()
        assets = big.index.count()
        graphs = sum(1 for g in big.store.named_graphs() if g.value.startswith(big.settings.base_url))
        assert assets == sizes.big and graphs == sizes.big, (assets, graphs)
    report.row("b. upsert", f"build big store: import_files of {sizes.templates:,} modules", f"{imported:.1f} s", "")
    report.row("b. upsert", f"build big store: {sizes.big - sizes.templates:,} replicated assets "
               f"({'bulk_extend + index.apply' if build == 'bulk' else 'KnowledgeGraph.write'}, chunks of {sizes.chunk:,})",
               f"{replicated:.1f} s", f"first / last chunk {chunk_times[0]:.2f} / {chunk_times[-1]:.2f} s; "
               f"{len(big.store):,} quads, {assets:,} assets")
    return small, big


def write_variants(folder: Path, count: int, small: int) -> list[Path]:
    """Changed versions of modules 0..small-1 (same identifier, new text, dates, tags...)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for j in range(count):
        target = gen.generate_one(j % small, 0)
        document = gen.generate_one(900_000 + j, 0)
        document["links"] = target["links"]
        path = folder / f"variant-{j:04d}.yml"
        path.write_text(gen.to_yaml(document), "utf-8")
        paths.append(path)
    return paths


def time_upserts(stores: dict[str, KnowledgeGraph], variants: list[Path], warmup: int = 2) -> dict[str, list[float]]:
    """Each variant is imported into every store in turn (rotating which store goes first)."""
    times: dict[str, list[float]] = {name: [] for name in stores}
    names = list(stores)
    for j, path in enumerate(variants):
        order = names[j % len(names):] + names[:j % len(names)]
        for name in order:
            start = now()
            reports = import_files(stores[name], [path])
            elapsed = now() - start
            assert reports[0].status == "imported", reports[0].as_dict()
            if j >= warmup:
                times[name].append(elapsed)
    return times


def bench_upsert(report: Report, sizes: Sizes, work: Path, small: KnowledgeGraph, big: KnowledgeGraph,
                 history: KnowledgeGraph) -> None:
    variants = write_variants(work / "variants", sizes.upserts + 2, sizes.small)
    stores = {"small": small, "big": big, "history": history}
    with report.phase(f"b. {sizes.upserts} upserts x 3 stores"):
        times = time_upserts(stores, variants)
    p50 = {name: statistics.median(t) for name, t in times.items()}
    p95 = {name: percentile(t, 95) for name, t in times.items()}
    labels = {"small": f"{sizes.small:,} assets", "big": f"{sizes.big:,} assets (built as above)",
              "history": f"{sizes.import_n:,} assets imported by import_files (phase a store)"}
    for name in stores:
        report.row("b. upsert", f"one-module import_files, store of {labels[name]}",
                   f"p50 {ms(p50[name])}, p95 {ms(p95[name])}", f"{len(times[name])} upserts (after 2 warm-up)")
    report.row("b. upsert", f"ratio p50 {sizes.big:,} / {sizes.small:,} assets (acceptance < 2)",
               f"**{p50['big'] / p50['small']:.2f}x**", f"p95 ratio {p95['big'] / p95['small']:.2f}x")
    report.row("b. upsert", f"ratio p50 phase-a store ({sizes.import_n:,} writes) / {sizes.small:,} assets",
               f"**{p50['history'] / p50['small']:.2f}x**", "the store's write history, not its size (see notes)")
    # The same after a RocksDB compaction of the phase-a store.
    with report.phase("b. optimize() the phase-a store, upserts again"):
        start = now()
        history.store.optimize()
        optimized = now() - start
        again = time_upserts({"small": small, "history": history},
                             write_variants(work / "variants-2", min(sizes.upserts, 20) + 2, sizes.small))
    a50, s50 = statistics.median(again["history"]), statistics.median(again["small"])
    # Where one upsert's time goes (small store; the wall-time counters cost ~1 us per stage call).
    breakdown = import_stages()
    singles = write_variants(work / "variants-3", 10, sizes.small)
    with breakdown.active():
        start = now()
        for path in singles:
            import_checked(small, [path])
        total = now() - start
    report.sections.append(f"#### Where one upsert goes: {len(singles)} single-file import_files into the "
                           f"{sizes.small:,}-asset store (wall time per stage)\n\n"
                           + breakdown.table([("one-file upsert", breakdown.snapshot(), total, len(singles))]))
    report.row("b. upsert", "phase-a store after Store.optimize()",
               f"p50 {ms(a50)} vs small {ms(s50)}: **{a50 / s50:.2f}x**",
               f"optimize() took {optimized:.1f} s; {len(again['small'])} upserts each")


def bench_search(report: Report, sizes: Sizes, big: KnowledgeGraph) -> None:
    rng = random.Random(42)
    vocabulary = gen.vocabulary()
    half = sizes.searches // 2
    common = [w for w in (gen._words(rng, 1)[0] for _ in range(half))]  # Zipf-weighted: mostly frequent words
    rare = [vocabulary[rng.randrange(1000, len(vocabulary))] for _ in range(sizes.searches - half)]
    for word in common[:5]:
        big.search(word)

    def timed_search(words: list[str]) -> tuple[list[float], list[int]]:
        times, hits = [], []
        for word in words:
            start = now()
            found = big.search(word)
            times.append(now() - start)
            hits.append(len(found))
        return times, hits

    with report.phase(f"c. {sizes.searches} searches"):
        # interleave common and rare so drift on the machine hits both alike
        mixed = [w for pair in zip(common, rare) for w in pair]
        times, hits = timed_search(mixed)
    common_t, rare_t = times[0::2], times[1::2]
    fts_p50 = statistics.median(times)

    def matching(word: str) -> int:
        expression = match_expression(word)
        return big.index._db.execute("SELECT count(*) FROM documents_text WHERE documents_text MATCH ?",
                                     (expression,)).fetchone()[0]

    matches = [matching(w) for w in mixed]
    report.row("c. search", f"graph.search(word), {sizes.big:,} assets, {len(times)} queries",
               f"**p50 {ms(fts_p50)}**, p95 {ms(percentile(times, 95))}, max {ms(max(times))}",
               f"half common words (Zipf-weighted draw: p50 {ms(statistics.median(common_t))}, median "
               f"{statistics.median(matches[0::2]):,.0f} matching modules), half rarer words (vocabulary rank >= 1000: "
               f"p50 {ms(statistics.median(rare_t))}, median {statistics.median(matches[1::2]):,.0f} matching); "
               f"every query returned {min(hits)}-{max(hits)} hits (limit 20)")
    buckets = [(0, 1_000), (1_000, 10_000), (10_000, 50_000), (50_000, 10**9)]
    cells = []
    for low, high in buckets:
        inside = [t for t, m in zip(times, matches) if low <= m < high]
        if inside:
            cells.append(f"{low:,}-{high:,}: {len(inside)} queries, p50 {ms(statistics.median(inside))}"
                         .replace("-1,000,000,000", "+"))
    report.row("c. search", "search latency by number of matching modules", "; ".join(cells),
               "FTS5 scores (bm25) every match before LIMIT 20")
    per_scan = max(1, sizes.scans // 2)
    scan_words = mixed[:2 * per_scan]  # the first common and rare words, interleaved as above
    with report.phase(f"c. {len(scan_words)} SPARQL CONTAINS scans"):
        scan_times = []
        for word in scan_words:
            start = now()
            list(big.query(SCAN_QUERY, {"w": ox.Literal(word)}))
            scan_times.append(now() - start)
    scan_p50 = statistics.median(scan_times)
    same = times[:len(scan_words)]
    report.row("c. search", f"SPARQL FILTER(CONTAINS) scan, LIMIT 20, {len(scan_times)} queries (the first words "
               "of the same mix)", f"p50 {ms(scan_p50)}, p95 {ms(percentile(scan_times, 95))}",
               f"common p50 {ms(statistics.median(scan_times[0::2]))} (LIMIT 20 stops the scan early), "
               f"rarer p50 {ms(statistics.median(scan_times[1::2]))}")
    report.row("c. search", "ratio SPARQL scan p50 / search p50", f"**{scan_p50 / fts_p50:,.0f}x**",
               f"same words only: {scan_p50 / statistics.median(same):,.0f}x overall, common "
               f"{statistics.median(scan_times[0::2]) / statistics.median(same[0::2]):,.2f}x, rarer "
               f"{statistics.median(scan_times[1::2]) / statistics.median(same[1::2]):,.0f}x")


def bench_profile(report: Report, sizes: Sizes, work: Path) -> None:
    n = sizes.profile_batch
    breakdown_files = gen.write(work / "profile-a", n, seed=3)
    cprofile_files = gen.write(work / "profile-b", n, seed=5)
    with report.phase(f"d. profile one batch of {n}"):
        fresh = open_graph(work / "store-profile")
        import_checked(fresh, gen.write(work / "profile-warm", 5, seed=6))  # caches warm, store open
        breakdown = import_stages()
        with breakdown.active():
            start = now()
            import_checked(fresh, breakdown_files)
            total = now() - start
        report.sections.append(f"#### One batch of {n} modules into a fresh store (wall time per stage)\n\n"
                               + breakdown.table([(f"batch of {n}", breakdown.snapshot(), total, n)]))
        profiler = cProfile.Profile()
        profiler.enable()
        import_checked(fresh, cprofile_files)
        profiler.disable()
        fresh.close()
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("tottime").print_stats(15)
        top = "\n".join(line for line in text.getvalue().splitlines()
                        if line.strip() and not line.startswith(("   Ordered by", "   List reduced")))
        report.sections.append(f"#### cProfile, the next batch of {n} into that store, top 15 by own time "
                               f"(cProfile inflates Python-heavy code)\n\n```\n{top}\n```")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every phase")
    parser.add_argument("--build", choices=("bulk", "write"), default="bulk",
                        help="how the replicated assets of the big store are written (default: bulk)")
    parser.add_argument("--work", type=Path, help="keep work files (stores, YAML) in this folder")
    parser.add_argument("--out", type=Path, help="also write the Markdown report to this file")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    work = args.work or Path(tempfile.mkdtemp(prefix="ai4kg-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    report = Report()
    started = now()
    try:
        history, paths = bench_import(report, sizes, work)
        small, big = build_stores(report, sizes, work, paths, args.build)
        bench_upsert(report, sizes, work, small, big, history)
        bench_search(report, sizes, big)
        bench_profile(report, sizes, work)
        for graph in (history, small, big):
            graph.close()
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    publish(f"ai4kg benchmarks ({'quick' if args.quick else 'full'} sizes, build={args.build})", "run.py", report,
            started, args.out)


if __name__ == "__main__":
    main()
