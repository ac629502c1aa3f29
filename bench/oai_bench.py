"""OAI-PMH harvest benchmark (issue 4): a real harvester (Sickle) over HTTP collects a 10,000- and a
100,000-record catalogue while records are added; records/s and the server's peak memory.

    uv run python bench/oai_bench.py            # 10,000 then 100,000 records (~6 min on 2 cores)
    uv run python bench/oai_bench.py --quick    # 1,000 then 5,000 records: a smoke run (~1 min)

How it works:
1. Build. 200 generated modules (bench/generate.py) go through `import_files` into an on-disk
   KnowledgeGraph; the catalogue then grows to each size with copies of their quads under new IRIs and
   with texts of their own (bench/run.py `replicate`), written in chunks of 1,000 the way run.py's
   bulk build does (`index.mark_pending`, `store.bulk_extend`, `index.apply`), with the documents
   of `store.indexed_document`, so the search index and its record log are filled by the product's
   own `SearchIndex.apply` (content digests, sequence numbers, datestamps, sets).
2. Serve. `ai4kg`'s app runs under uvicorn (httptools, uvloop) in a separate process that owns the
   store (`--serve`), so the figures are the server's alone. A thread of that process adds records
   through `KnowledgeGraph.write` (the product's write path, 20 per write) once told to.
3. Harvest. Sickle, in this process, harvests ListRecords (oai_dc) over HTTP, following resumption
   tokens. After the first 10% of the records it tells the server to add 1,000 records, and at 90%
   it waits until they are all in: the harvest must then return every record, initial
   and added, exactly once. A second harvest of ListIdentifiers, and the first 1,000 records in
   `dcat` (DCAT-AP RDF/XML), run without additions.
4. Memory. A thread samples the server's resident set (VmRSS in /proc/<pid>/status) and its
   anonymous part (RssAnon) every 20 ms, per phase: the peaks against the RSS at rest, at both sizes.
   oai_dc records come from the record log (SQLite) alone; only `dcat` reads the store (its view).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


# -- the server process: `oai_bench.py --serve DATA --port P --plan FILE` ------------------------------------
def serve(data: Path, port: int, plan_file: Path) -> None:
    """uvicorn over the data directory, plus a writer thread that adds records when told to."""
    import uvicorn

    from ai4kg.api.app import create_app
    from ai4kg.cli import server_options
    from ai4kg.config import Settings
    from ai4kg.graph.store import KnowledgeGraph
    from run import replicate  # noqa: E402  (bench/run.py)

    plan = json.loads(plan_file.read_text("utf-8"))
    graph = KnowledgeGraph(Settings(data_dir=data))
    templates = [(iri, identifier, graph.asset_quads(iri)) for iri, identifier in plan["templates"]]

    def writer() -> None:
        trigger, done = Path(plan["trigger"]), Path(plan["done"])
        while not trigger.exists():
            time.sleep(0.01)
        start, count = plan["add_from"], plan["add"]
        for at in range(start, start + count, 20):
            graph.write([replicate(templates, m, graph.settings.base_url) for m in range(at, min(start + count, at + 20))])
            time.sleep(0.005)
        done.write_text(str(count))

    threading.Thread(target=writer, daemon=True).start()
    uvicorn.run(create_app(graph), host="127.0.0.1", port=port, log_level="warning", access_log=False,
                **server_options())


def read_all(data: Path) -> None:
    """The baseline without OAI-PMH: open the store and read every asset graph once, in log order, as
    an oai_dc harvest did before the record log kept the Dublin Core fields (a `dcat` harvest still
    does, through its view); print the process's RSS at rest and its peak (KiB) as JSON."""
    from ai4kg.config import Settings
    from ai4kg.graph.store import KnowledgeGraph

    def rss() -> int:
        return next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                    if line.startswith("VmRSS:"))

    graph = KnowledgeGraph(Settings(data_dir=data))
    rest = peak = rss()
    after, assets = 0, 0
    while True:
        page = graph.index.log_page(None, after, 1_000)
        if not page:
            break
        for entry in page:
            graph.asset_quads(entry.iri)
        assets += len(page)
        after = page[-1].seq
        peak = max(peak, rss())
    print(json.dumps({"rest": rest, "peak": peak, "assets": assets}))


if __name__ == "__main__" and "--read-all" in sys.argv:
    read_all(Path(sys.argv[sys.argv.index("--read-all") + 1]))
    sys.exit(0)

if __name__ == "__main__" and "--serve" in sys.argv:
    _p = argparse.ArgumentParser()
    _p.add_argument("--serve", type=Path, required=True)
    _p.add_argument("--port", type=int, required=True)
    _p.add_argument("--plan", type=Path, required=True)
    _a = _p.parse_args()
    serve(_a.serve, _a.port, _a.plan)
    sys.exit(0)


# -- the rest: build, harvest, report -----------------------------------------------------------------------------
import generate as gen  # noqa: E402  (bench/generate.py)
from run import log, machine, now, percentile, replicate  # noqa: E402  (bench/run.py)
from sickle import Sickle  # noqa: E402

from ai4kg.catalog import import_files  # noqa: E402
from ai4kg.config import Settings  # noqa: E402
from ai4kg.graph.store import KnowledgeGraph, indexed_document  # noqa: E402

TEMPLATES = 200
CHUNK = 1_000


@dataclass(frozen=True)
class Sizes:
    steps: tuple[int, ...] = (10_000, 100_000)
    added: int = 1_000
    """Records the server adds during each harvest: the same number at every size, so the memory its
    writes take (RocksDB memtables) is the same in both measurements."""
    dcat_records: int = 1_000


FULL = Sizes()
QUICK = Sizes(steps=(1_000, 5_000), added=50, dcat_records=200)


def bulk_grow(graph: KnowledgeGraph, templates: list, start: int, end: int) -> float:
    """Assets start..end-1 as copies of the templates, written as bench/run.py's bulk build does."""
    began = now()
    for at in range(start, end, CHUNK):
        writes = [replicate(templates, m, graph.settings.base_url) for m in range(at, min(end, at + CHUNK))]
        graph.index.mark_pending(w.iri for w in writes)
        graph.store.bulk_extend(q for w in writes for q in w.quads)
        graph.index.apply([d for d in (indexed_document(w.iri, w.quads) for w in writes) if d is not None])
        if (at // CHUNK) % 20 == 19:
            log(f"  {at + len(writes):,} assets")
    graph.store.flush()
    return now() - began


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int, field_name: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


class RssSampler:
    """The peak VmRSS of a process, and of its anonymous part (RssAnon: heap and stacks, not the
    pages of files it maps, such as the store's), sampled every 20 ms while running."""

    def __init__(self, pid: int):
        self.pid, self.peak, self.peak_anon, self.samples = pid, 0, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            self.peak_anon = max(self.peak_anon, rss_kib(self.pid, "RssAnon"))
            self.samples += 1
            self._stop.wait(0.02)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class TimedSickle(Sickle):
    """Sickle, timing each HTTP request (one page)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.page_seconds: list[float] = []
        self.first_response: Any = None

    def harvest(self, **kwargs: Any) -> Any:
        start = now()
        response = super().harvest(**kwargs)
        self.page_seconds.append(now() - start)
        if self.first_response is None:
            self.first_response = response
        return response


@dataclass
class Step:
    records: int
    added: int
    build_seconds: float
    harvested: int = 0
    duplicates: int = 0
    missing: int = 0
    seconds: float = 0.0
    pages: list[float] = field(default_factory=list)
    first_list_size: int = 0
    id_seconds: float = 0.0
    id_count: int = 0
    dcat_seconds: float = 0.0
    dcat_count: int = 0
    rss_rest: int = 0
    rss_ids_peak: int = 0
    rss_warm: int = 0
    """The server's RSS after the first 10% of ListRecords."""
    rss_records_peak: int = 0
    rss_dcat_peak: int = 0
    rss_peak: int = 0
    rss_hwm: int = 0
    rss_anon_peak: int = 0
    """The largest RssAnon seen in any phase: memory the server allocated, not mapped file pages."""
    anon_ids_peak: int = 0
    anon_records_peak: int = 0
    anon_dcat_peak: int = 0
    baseline_rest: int = 0
    baseline_peak: int = 0
    """A process that only opens the store and reads every asset graph once (no HTTP, no OAI-PMH)."""


def measure(data: Path, work: Path, step: Step, templates: list[tuple[str, str]], add_from: int,
            expected: set[str], sizes: Sizes) -> None:
    """Serve `data` in a subprocess and harvest it (see the module docstring)."""
    baseline = json.loads(subprocess.run([sys.executable, str(HERE / "oai_bench.py"), "--read-all", str(data)],
                                         capture_output=True, text=True, check=True).stdout)
    step.baseline_rest, step.baseline_peak = baseline["rest"], baseline["peak"]
    log(f"baseline (read every asset graph once): {baseline['rest'] / 1024:.0f} -> {baseline['peak'] / 1024:.0f} MiB")
    port = free_port()
    plan = {"templates": templates, "trigger": str(work / f"trigger-{step.records}"), "done": str(work / f"done-{step.records}"),
            "add_from": add_from, "add": step.added}
    plan_file = work / f"plan-{step.records}.json"
    plan_file.write_text(json.dumps(plan), "utf-8")
    server_log = (work / f"server-{step.records}.log").open("w")
    process = subprocess.Popen([sys.executable, str(HERE / "oai_bench.py"), "--serve", str(data), "--port", str(port),
                                "--plan", str(plan_file)], stdout=server_log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/oai"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}?verb=Identify", timeout=2).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit((work / f"server-{step.records}.log").read_text()) from None
                time.sleep(0.2)
        time.sleep(1.0)
        step.rss_rest = rss_kib(process.pid)
        log(f"server at rest: {step.rss_rest / 1024:.0f} MiB")
        sickle = TimedSickle(url, max_retries=0, timeout=120)
        seen: list[str] = []
        ids = TimedSickle(url, max_retries=0, timeout=120)
        with RssSampler(process.pid) as sampler:  # headers only: the record log, no asset graph is read
            start = now()
            step.id_count = sum(1 for _ in ids.ListIdentifiers(metadataPrefix="oai_dc"))
            step.id_seconds = now() - start
        step.rss_ids_peak, step.anon_ids_peak = sampler.peak, sampler.peak_anon
        step.rss_anon_peak = max(step.rss_anon_peak, sampler.peak_anon)
        with RssSampler(process.pid) as sampler:
            start = now()
            for record in sickle.ListRecords(metadataPrefix="oai_dc"):
                seen.append(record.header.identifier)
                if len(seen) == step.records // 10:
                    Path(plan["trigger"]).touch()  # the server starts adding records
                    step.rss_warm = rss_kib(process.pid)
                if len(seen) == step.records * 9 // 10:
                    while not Path(plan["done"]).exists():  # every addition is in before the harvest ends
                        time.sleep(0.05)
            step.seconds = now() - start
        step.rss_records_peak, step.anon_records_peak = sampler.peak, sampler.peak_anon
        step.rss_anon_peak = max(step.rss_anon_peak, sampler.peak_anon)
        step.pages = sickle.page_seconds
        token = sickle.first_response.xml.find(".//{http://www.openarchives.org/OAI/2.0/}resumptionToken")
        step.first_list_size = int(token.get("completeListSize"))
        dcat = TimedSickle(url, max_retries=0, timeout=120)
        with RssSampler(process.pid) as sampler:
            start = now()
            for _ in dcat.ListRecords(metadataPrefix="dcat"):
                step.dcat_count += 1
                if step.dcat_count == sizes.dcat_records:
                    break
            step.dcat_seconds = now() - start
        step.rss_dcat_peak, step.anon_dcat_peak = sampler.peak, sampler.peak_anon
        step.rss_anon_peak = max(step.rss_anon_peak, sampler.peak_anon)
        step.rss_peak = max(step.rss_ids_peak, step.rss_records_peak, step.rss_dcat_peak)
        step.rss_hwm = rss_kib(process.pid, "VmHWM")
        step.harvested = len(seen)
        step.duplicates = len(seen) - len(set(seen))
        every = expected | {f"oai:w3id.org:module/{gen.module_id(m, 0)}" for m in range(add_from, add_from + step.added)}
        step.missing = len(every - set(seen))
        assert set(seen) == every and not step.duplicates, (len(seen), len(every), step.duplicates)
        assert step.id_count == len(expected)  # harvested before the additions
        log(f"{step.records:,}: {step.harvested:,} records in {step.seconds:.1f} s "
            f"({step.harvested / step.seconds:,.0f}/s); peak RSS {step.rss_peak / 1024:.0f} MiB")
    finally:
        process.terminate()
        process.wait(timeout=30)
        server_log.close()


def report(steps: list[Step], sizes: Sizes, wall: float) -> str:
    first, last = steps[0], steps[-1]

    def mib(kib: int) -> str:
        return f"{kib / 1024:,.0f} MiB"

    rows = ["| measure | " + " | ".join(f"{s.records:,} records" for s in steps) + f" | ratio {last.records // first.records}x / 1x |",
            "|---|" + "---|" * len(steps) + "---|"]

    def row(name: str, values: list[str], ratio: str = "") -> None:
        rows.append(f"| {name} | " + " | ".join(values) + f" | {ratio} |")

    row("catalogue build (bulk, product's SearchIndex.apply)", [f"{s.build_seconds:.1f} s" for s in steps])
    row("records added by the server during the harvest (KnowledgeGraph.write)", [f"{s.added:,}" for s in steps])
    row("completeListSize of the first response", [f"{s.first_list_size:,}" for s in steps])
    row("**records harvested (Sickle ListRecords oai_dc) / duplicates / missing**",
        [f"**{s.harvested:,} / {s.duplicates} / {s.missing}**" for s in steps])
    row("**ListRecords oai_dc throughput**", [f"**{s.harvested / s.seconds:,.0f} records/s** ({s.seconds:.1f} s)" for s in steps],
        f"{(last.harvested / last.seconds) / (first.harvested / first.seconds):.2f}")
    p50 = [statistics.median(s.pages) for s in steps]
    row("page latency seen by Sickle, p50 / p99 (200 records)",
        [f"{statistics.median(s.pages) * 1000:.0f} / {percentile(s.pages, 99) * 1000:.0f} ms" for s in steps],
        f"{p50[-1] / p50[0]:.2f} (p50)")
    row("ListIdentifiers throughput", [f"{s.id_count / s.id_seconds:,.0f} headers/s" for s in steps],
        f"{(last.id_count / last.id_seconds) / (first.id_count / first.id_seconds):.2f}")
    row(f"ListRecords dcat (DCAT-AP RDF/XML), first {sizes.dcat_records:,} records",
        [f"{s.dcat_count / s.dcat_seconds:,.0f} records/s" for s in steps],
        f"{(last.dcat_count / last.dcat_seconds) / (first.dcat_count / first.dcat_seconds):.2f}")
    row("server RSS at rest (store open, before the harvests)", [mib(s.rss_rest) for s in steps],
        f"{last.rss_rest / first.rss_rest:.2f}")
    row("server peak RSS during ListIdentifiers (the record log only)", [mib(s.rss_ids_peak) for s in steps],
        f"{last.rss_ids_peak / first.rss_ids_peak:.2f}")
    row("server RSS after the first 10% of ListRecords oai_dc", [mib(s.rss_warm) for s in steps],
        f"{last.rss_warm / first.rss_warm:.2f}")
    row("**server peak RSS during ListRecords oai_dc** (with the additions; the record log only)",
        [f"**{mib(s.rss_records_peak)}**" for s in steps], f"**{last.rss_records_peak / first.rss_records_peak:.2f}**")
    row("**server peak RssAnon during ListRecords oai_dc**", [f"**{mib(s.anon_records_peak)}**" for s in steps],
        f"**{last.anon_records_peak / first.anon_records_peak:.2f}**")
    row("**what the last 90% of ListRecords adds** (its peak minus the RSS at 10%)",
        [f"**{mib(s.rss_records_peak - s.rss_warm)}**" for s in steps], "")
    row(f"server peak RSS / RssAnon during ListRecords dcat ({sizes.dcat_records:,} records, SPARQL views over the store)",
        [f"{mib(s.rss_dcat_peak)} / {mib(s.anon_dcat_peak)}" for s in steps],
        f"{last.rss_dcat_peak / first.rss_dcat_peak:.2f} / {last.anon_dcat_peak / first.anon_dcat_peak:.2f}")
    row("server peak RssAnon during ListIdentifiers", [mib(s.anon_ids_peak) for s in steps],
        f"{last.anon_ids_peak / first.anon_ids_peak:.2f}")
    row("server peak RSS, whole run incl. the dcat phase (VmRSS sampled every 20 ms)", [mib(s.rss_peak) for s in steps],
        f"{last.rss_peak / first.rss_peak:.2f}")
    row("server peak anonymous memory, whole run incl. the dcat phase (RssAnon: what it allocated; the rest of "
        "RSS is mapped file pages, which the kernel can drop)", [mib(s.rss_anon_peak) for s in steps],
        f"{last.rss_anon_peak / first.rss_anon_peak:.2f}")
    row("server VmHWM (whole process life, incl. startup)", [mib(s.rss_hwm) for s in steps],
        f"{last.rss_hwm / first.rss_hwm:.2f}")
    row("baseline without OAI-PMH or HTTP: a process that opens the store and reads every asset graph once "
        "(what an oai_dc harvest read before the record log kept the Dublin Core fields)",
        [f"{mib(s.baseline_rest)} → {mib(s.baseline_peak)} (+{mib(s.baseline_peak - s.baseline_rest)})" for s in steps],
        f"{(last.baseline_peak - last.baseline_rest) / max(1, first.baseline_peak - first.baseline_rest):.2f} (growth)")
    return "\n".join(rows + ["", f"Total wall time: {wall:.0f} s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--work", type=Path, help="keep the work files (store, logs) in this folder")
    parser.add_argument("--out", type=Path, help="also write the Markdown report to this file")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    work = args.work or Path(tempfile.mkdtemp(prefix="ai4kg-oai-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    started = now()
    steps: list[Step] = []
    try:
        graph = KnowledgeGraph(Settings(data_dir=data))
        log(f"import {TEMPLATES} generated modules")
        begin = now()
        reports = import_files(graph, gen.write(work / "modules", TEMPLATES, seed=0))
        assert all(r.status == "imported" for r in reports), [r.as_dict() for r in reports if r.status != "imported"][:1]
        templates = [(r.iri or "", r.identifier or "") for r in reports]
        template_quads = [(iri, identifier, graph.asset_quads(iri)) for iri, identifier in templates]
        written, build = TEMPLATES, now() - begin
        expected = {f"oai:w3id.org:module/{identifier}" for _, identifier in templates}
        for number, size in enumerate(sizes.steps):
            log(f"grow the catalogue to {size:,} records")
            build += bulk_grow(graph, template_quads, written, size)
            expected |= {f"oai:w3id.org:module/{gen.module_id(m, 0)}" for m in range(written, size)}
            written = size
            graph.close()
            step = Step(size, sizes.added, build)
            add_from = 10_000_000 * (number + 1)
            measure(data, work, step, templates, add_from, set(expected), sizes)
            expected |= {f"oai:w3id.org:module/{gen.module_id(m, 0)}" for m in range(add_from, add_from + step.added)}
            steps.append(step)
            graph = KnowledgeGraph(Settings(data_dir=data))
            build = 0.0
        graph.close()
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    text = "\n".join([f"## OAI-PMH harvest ({'quick' if args.quick else 'full'} sizes)", "", machine(), "",
                      f"Command: `uv run python bench/oai_bench.py{''.join(' ' + a for a in sys.argv[1:])}`",
                      "", report(steps, sizes, now() - started)])
    print(text)
    if args.out:
        args.out.write_text(text + "\n", "utf-8")


if __name__ == "__main__":
    main()
