"""Hardening bench (issue 14): the server under mixed load, with and without pathological queries.

    uv run python bench/hardening_bench.py               # 2 x 60 s of load (about 2.5 min in all)
    uv run python bench/hardening_bench.py --seconds 20  # a quick run

What it does. Two phases, each on a fresh server: `ai4kg serve --demo` as a subprocess (its own
data directory, the demo catalog, an administrator's API key made beforehand with
credentials.KeyStore), so its RSS is the server's alone and one phase's abandoned queries cannot
slow the next. In each phase, for `--seconds`:

- readers: `--clients` (14) threads, each from a loopback address of its own (127.0.1.N, as 14
  clients would be), in a separate client process (so the load generator does not
  share a GIL with the probes below), each sending requests drawn at random from a mix: REST
  listings (modules, tools, module details), one module's metadata, /search, SPARQL lookups (all
  triples of one module; one module's title) and a COUNT, and a GraphQL page of modules;
- a writer: module PUTs (/v1/catalog/modules/{name}/metadata, the administrator's key) at
  `--write-rate` per second (0.5), generated modules (bench/generate.py) with new content each time,
  cycling over 20 names, so the catalogue stays the same size while it is rewritten;
- a health probe: GET /health every 100 ms, in a process of its own (it times the server, not the
  GIL of the process that writes and attacks), each probe timed;
- an RSS probe: the server's VmRSS every 10 s;
- phase "pathological" only: every `--pathological-every` (5) s, one anonymous SPARQL query that
  cannot finish (a COUNT over the cube of all triples, or an ORDER BY over a cross product), each
  in its own thread so that a slow answer does not delay the next, from another loopback address
  (127.0.0.2) than the readers, because the server budgets anonymous callers by address: the
  attacker is one caller, the readers others. The server is expected to answer 503
  (AI4KG_SPARQL_TIMEOUT), or 429 once the attacker's abandoned queries fill its budget, and to
  stay responsive for everyone else meanwhile.

The baseline is the phase "baseline": the same load without the pathological queries, run first in
the same process; the ratios compare the two. RSS growth is measured from the end of the warm-up
(the first minute, or the first third of a shorter run) to the end of the run.

Acceptance points (issue 14): zero errors (any status other than the expected: 200 for reads, 200
or 201 for writes; the pathological queries' own 503s are counted apart), /health p99 <= 100 ms,
RSS growth <= 5 %.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

PATHOLOGICAL = [
    ("count-cube", "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"),
    ("order-by-cross", "SELECT ?a ?d WHERE { ?a ?b ?c . ?d ?e ?f } ORDER BY ?c ?f LIMIT 1"),
]
"""Anonymous queries no server can answer in time: a count over 10^10 rows, and a sort of 3 million
rows (Oxigraph cannot interrupt an ORDER BY: it runs on after the 503)."""

WRITE_NAMES = 20
ACCEPTED = {"read": {200}, "write": {200, 201}}
SPARQL_HEADERS = {"content-type": "application/sparql-query", "accept": "application/sparql-results+json"}
GRAPHQL_PAGE = ("query Page { modules(first: 20) { edges { cursor node { name iri title summary tags } } "
                "pageInfo { hasNextPage endCursor } } }")


# -- the readers (a separate process: `hardening_bench.py --readers URL --plan FILE`) ----------------
def readers(url: str, plan_file: Path, clients: int, seconds: float) -> None:
    """`clients` threads sending the plan's requests for `seconds`; prints a JSON summary."""
    plan = json.loads(plan_file.read_text("utf-8"))
    barrier = threading.Barrier(clients + 1)
    window: dict[str, float] = {}
    done: list[list[tuple[str, int, float]]] = [[] for _ in range(clients)]
    samples: list[list[str]] = [[] for _ in range(clients)]

    def client(number: int) -> None:
        rng = random.Random(number)
        # each reader is a client of its own, from an address of its own (127.0.1.N): the server
        # budgets heavy queries per caller, anonymous callers by address
        transport = httpx.HTTPTransport(local_address=f"127.0.1.{number + 1}")
        with httpx.Client(base_url=url, timeout=120, transport=transport) as http:
            http.get("/version")  # the connection is open before the clock starts
            barrier.wait()
            while (start := time.perf_counter()) < window["end"]:
                request = plan[rng.randrange(len(plan))]
                try:
                    response = http.request(request["method"], request["path"], params=request.get("params"),
                                            content=(request.get("body") or "").encode() or None,
                                            headers=request.get("headers"))
                    status = response.status_code
                    if status != 200 and len(samples[number]) < 3:
                        samples[number].append(f"{request['kind']} {status}: {response.text[:200]}")
                except httpx.HTTPError as exc:
                    status = -1  # no answer (refused, reset, timed out)
                    if len(samples[number]) < 3:
                        samples[number].append(f"{request['kind']}: {exc!r:.200}")
                done[number].append((request["kind"], status, time.perf_counter() - start))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    window["end"] = time.perf_counter() + seconds
    started = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    print(json.dumps({"elapsed": time.perf_counter() - started, "requests": [r for rows in done for r in rows],
                      "samples": [s for rows in samples for s in rows]}))


def health_probe(url: str, seconds: float, every: float) -> None:
    """GET /health every `every` s for `seconds`, from a process of its own (so that the probe times
    the server, not the GIL of the process that also generates writes and attacks); prints a JSON
    list of [status, seconds] per probe."""
    probes: list[tuple[int, float]] = []
    with httpx.Client(base_url=url, timeout=30) as http:
        http.get("/version")  # the connection is open before the first probe
        end = time.perf_counter() + seconds
        next_at = time.perf_counter()
        while (started := time.perf_counter()) < end:
            try:
                status = http.get("/health").status_code
            except httpx.HTTPError:
                status = -1
            probes.append((status, time.perf_counter() - started))
            next_at += every
            time.sleep(max(0.0, next_at - time.perf_counter()))
    print(json.dumps(probes))


if __name__ == "__main__" and "--health-probe" in sys.argv:
    _p = argparse.ArgumentParser()
    _p.add_argument("--health-probe", required=True)
    _p.add_argument("--seconds", type=float, required=True)
    _p.add_argument("--every", type=float, required=True)
    _a = _p.parse_args()
    health_probe(_a.health_probe, _a.seconds, _a.every)
    sys.exit(0)

if __name__ == "__main__" and "--readers" in sys.argv:
    _p = argparse.ArgumentParser()
    _p.add_argument("--readers", required=True)
    _p.add_argument("--plan", type=Path, required=True)
    _p.add_argument("--clients", type=int, required=True)
    _p.add_argument("--seconds", type=float, required=True)
    _a = _p.parse_args()
    readers(_a.readers, _a.plan, _a.clients, _a.seconds)
    sys.exit(0)

import generate as gen  # noqa: E402  (bench/generate.py)
from run import Report, fmt, free_port, log, now, publish, version  # noqa: E402  (bench/run.py)

from ai4kg.config import DEFAULT_VO  # noqa: E402
from ai4kg.credentials import KeyStore  # noqa: E402


# -- the server ---------------------------------------------------------------------------------------
@dataclass
class Server:
    """`ai4kg serve --demo` on a fresh data directory, in a process of its own."""

    folder: Path
    process: subprocess.Popen[bytes]
    url: str
    key: str
    started_in: float

    @classmethod
    def start(cls, folder: Path, env: dict[str, str]) -> "Server":
        data = folder / "data"
        keys = KeyStore(data)  # made before the server opens the directory; it reads keys from it
        _, secret = keys.create("hardening-bench", frozenset({DEFAULT_VO}), admin=True)
        keys.close()
        port = free_port()
        log_file = open(folder / "server.log", "wb")
        started = now()
        process = subprocess.Popen(
            [sys.executable, "-m", "ai4kg", "--data", str(data), "serve", "--demo", "--port", str(port)],
            stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=folder, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or now() - started > 180:
                tail = (folder / "server.log").read_text(errors="replace")[-3000:]
                process.kill()
                raise SystemExit(f"ai4kg serve did not start (exit {process.poll()}):\n{tail}")
            time.sleep(0.2)
        return cls(folder, process, url, secret, now() - started)

    def rss_mb(self) -> float | None:
        try:
            with open(f"/proc/{self.process.pid}/status") as status:
                return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024
        except (OSError, StopIteration):
            return None

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # its own session: uvicorn and nothing else
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


# -- the plan of reads --------------------------------------------------------------------------------
def read_plan(url: str) -> list[dict[str, Any]]:
    """The reads, built from what the demo catalogue holds (module names, a tag to search for)."""
    with httpx.Client(base_url=url, timeout=60) as http:
        names = http.get("/v1/catalog/modules", params={"limit": 100}).raise_for_status().json()
        iris = [f"https://w3id.org/ai4kg/id/module/{name}" for name in names]
        words = [w for name in names for w in name.split("-") if len(w) > 3] or ["model"]
    if not names:
        raise SystemExit("the demo catalogue holds no modules")
    plan: list[dict[str, Any]] = [
        {"kind": "listing", "method": "GET", "path": "/v1/catalog/modules", "params": {"limit": "20"}},
        {"kind": "listing", "method": "GET", "path": "/v1/catalog/tools", "params": {"limit": "20"}},
        {"kind": "listing-detail", "method": "GET", "path": "/v1/catalog/modules/detail", "params": {"limit": "5"}},
    ]
    for name, iri in zip(names, iris):
        plan.append({"kind": "metadata", "method": "GET", "path": f"/v1/catalog/modules/{name}/metadata"})
        plan.append({"kind": "sparql-lookup", "method": "POST", "path": "/sparql", "headers": SPARQL_HEADERS,
                     "body": f"SELECT ?p ?o WHERE {{ <{iri}> ?p ?o }}"})
        plan.append({"kind": "sparql-lookup", "method": "POST", "path": "/sparql", "headers": SPARQL_HEADERS,
                     "body": "PREFIX ai4kg: <https://w3id.org/ai4kg/ns#>\n"
                             f"SELECT ?title WHERE {{ <{iri}> ai4kg:title ?title }}"})
    for word in sorted(set(words))[:10]:
        plan.append({"kind": "search", "method": "GET", "path": "/search", "params": {"q": word}})
    plan.append({"kind": "sparql-count", "method": "POST", "path": "/sparql", "headers": SPARQL_HEADERS,
                 "body": "PREFIX ai4kg: <https://w3id.org/ai4kg/ns#>\n"
                         "SELECT (COUNT(DISTINCT ?m) AS ?n) WHERE { ?m a ai4kg:Module }"})
    plan.append({"kind": "graphql", "method": "POST", "path": "/graphql", "body": json.dumps({"query": GRAPHQL_PAGE}),
                 "headers": {"content-type": "application/json",
                             "accept": "application/graphql-response+json, application/json"}})
    return plan


# -- one phase ----------------------------------------------------------------------------------------
@dataclass
class Phase:
    name: str
    seconds: float
    reads: list[tuple[str, int, float]] = field(default_factory=list)
    read_samples: list[str] = field(default_factory=list)
    writes: list[tuple[int, float]] = field(default_factory=list)
    write_samples: list[str] = field(default_factory=list)
    health: list[tuple[int, float]] = field(default_factory=list)
    pathological: list[tuple[str, int, float]] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)
    started_in: float = 0.0
    elapsed: float = 0.0
    rss_after_answers: float | None = None
    """The server's RSS once every pathological query was answered (after the load)."""
    server_exit: int | None = None
    """The server's exit status if it died during the phase (negative: the signal)."""
    server_log_tail: str = ""

    def errors(self) -> Counter[str]:
        """Unexpected statuses by kind and status (-1: no answer); the pathological queries' own apart."""
        found: Counter[str] = Counter()
        for kind, status, _ in self.reads:
            if status not in ACCEPTED["read"]:
                found[f"{kind} {status}"] += 1
        for status, _ in self.writes:
            if status not in ACCEPTED["write"]:
                found[f"write {status}"] += 1
        for status, _ in self.health:
            if status != 200:
                found[f"health {status}"] += 1
        if self.server_exit is not None:
            found[f"server died (exit status {self.server_exit})"] += 1
        return found

    def health_quantile(self, q: float) -> float:
        times = sorted(t for _, t in self.health)
        return times[min(len(times) - 1, int(q * len(times)))] if times else float("nan")

    def rss_growth(self, warmup: float) -> tuple[float, float, float]:
        """(RSS at the end of the warm-up, at the end, growth as a fraction)."""
        if not self.rss:
            return float("nan"), float("nan"), float("nan")
        after = [mb for t, mb in self.rss if t >= warmup - 1e-6] or [mb for _, mb in self.rss]
        first, last = after[0], self.rss[-1][1]
        return first, last, (last - first) / first


def run_phase(name: str, args: argparse.Namespace, env: dict[str, str], work: Path) -> Phase:
    folder = work / name
    folder.mkdir()
    server = Server.start(folder, env)
    phase = Phase(name, args.seconds, started_in=server.started_in)
    log(f"{name}: server up in {server.started_in:.1f} s (pid {server.process.pid}), {server.rss_mb():.0f} MB RSS")
    try:
        plan_file = folder / "plan.json"
        plan_file.write_text(json.dumps(read_plan(server.url)), "utf-8")
        client = subprocess.Popen([sys.executable, __file__, "--readers", server.url, "--plan", str(plan_file),
                                   "--clients", str(args.clients), "--seconds", str(args.seconds)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        probe = subprocess.Popen([sys.executable, __file__, "--health-probe", server.url, "--seconds", str(args.seconds),
                                  "--every", str(args.health_every)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stop = threading.Event()
        start = now()
        threads = [threading.Thread(target=_rss, args=(server, phase, stop, start, args.rss_every), daemon=True),
                   threading.Thread(target=_writer, args=(server, phase, stop, args.write_rate), daemon=True)]
        fired: list[threading.Thread] = []
        if name == "pathological":
            threads.append(threading.Thread(target=_pathological, args=(server, phase, stop, args.pathological_every,
                                                                         fired, args.attacker_address), daemon=True))
        for thread in threads:
            thread.start()
        out, err = client.communicate(timeout=args.seconds + 300)
        phase.elapsed = now() - start
        probed, _ = probe.communicate(timeout=args.seconds + 300)
        phase.health = [tuple(p) for p in json.loads(probed)]  # type: ignore[misc]
        stop.set()
        rss_end = server.rss_mb()  # the end of the load: the growth is measured up to here
        if rss_end is not None:
            phase.rss.append((phase.elapsed, rss_end))
        for thread in threads:
            thread.join(timeout=150)
        for thread in fired:  # a pathological query gets its 503 after the SPARQL timeout
            thread.join(timeout=150)
        phase.rss_after_answers = server.rss_mb()
        phase.server_exit = server.process.poll()  # None: still serving, as it should be
        if phase.server_exit is not None:
            phase.server_log_tail = _why_it_died(folder / "server.log")
        if client.returncode != 0:
            raise SystemExit(f"the reader process failed:\n{err.decode(errors='replace')[-3000:]}")
        answer = json.loads(out)
        phase.reads = [tuple(r) for r in answer["requests"]]  # type: ignore[misc]
        phase.read_samples = answer["samples"]
    finally:
        server.stop()
    return phase


def _why_it_died(log_file: Path) -> str:
    """The server log's panic message (a Rust panic aborts the process), else its last lines."""
    lines = log_file.read_text(errors="replace").splitlines()
    panic = next((i for i, line in enumerate(lines) if "panicked at" in line), None)
    if panic is not None:
        return " ".join(lines[panic:panic + 2])
    return " | ".join(line for line in lines[-5:] if line.strip())[-600:]


def _rss(server: Server, phase: Phase, stop: threading.Event, start: float, every: float) -> None:
    while not stop.is_set():
        mb = server.rss_mb()
        if mb is not None and not stop.is_set():
            phase.rss.append((now() - start, mb))
        stop.wait(every)


def _writer(server: Server, phase: Phase, stop: threading.Event, rate: float) -> None:
    if rate <= 0:
        return
    headers = {"authorization": f"Bearer {server.key}", "content-type": "application/yaml"}
    number = 0
    with httpx.Client(base_url=server.url, timeout=120, headers=headers) as http:
        next_at = now()
        while not stop.is_set():
            body = gen.to_yaml(gen.generate_one(number, 14))  # new content every time, same 20 names
            started = now()
            try:
                status = http.put(f"/v1/catalog/modules/hardening-{number % WRITE_NAMES}/metadata",
                                  content=body.encode()).status_code
            except httpx.HTTPError as exc:
                status = -1
                if len(phase.write_samples) < 3:
                    phase.write_samples.append(repr(exc)[:200])
            phase.writes.append((status, now() - started))
            number += 1
            next_at += 1 / rate
            stop.wait(max(0.0, next_at - now()))


def _pathological(server: Server, phase: Phase, stop: threading.Event, every: float,
                  fired: list[threading.Thread], address: str) -> None:
    def ask(kind: str, query: str) -> None:
        started = now()
        try:  # anonymous (no key), from an address of its own: another caller than the readers
            with httpx.Client(base_url=server.url, timeout=600,
                              transport=httpx.HTTPTransport(local_address=address)) as http:
                status = http.post("/sparql", content=query.encode(), headers=SPARQL_HEADERS).status_code
        except httpx.HTTPError:
            status = -1
        phase.pathological.append((kind, status, now() - started))

    number = 0
    while not stop.wait(every):
        kind, query = PATHOLOGICAL[number % len(PATHOLOGICAL)]
        thread = threading.Thread(target=ask, args=(kind, query), daemon=True)
        thread.start()
        fired.append(thread)
        number += 1


# -- the report ---------------------------------------------------------------------------------------
def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "n/a"


def describe(phase: Phase, warmup: float) -> dict[str, Any]:
    errors = phase.errors()
    throughput = len(phase.reads) / phase.elapsed if phase.elapsed else 0.0
    p50, p99 = phase.health_quantile(0.50), phase.health_quantile(0.99)
    first, last, growth = phase.rss_growth(warmup)
    kinds = Counter(k for k, _, _ in phase.reads)
    read_p99 = {k: sorted(t for kk, _, t in phase.reads if kk == k)[int(0.99 * (n - 1))] for k, n in kinds.items()}
    return {"errors": dict(errors), "errors_total": sum(errors.values()), "reads": len(phase.reads),
            "reads_per_s": throughput, "writes": len(phase.writes), "writes_per_s": len(phase.writes) / phase.elapsed,
            "write_p50_s": statistics.median([t for _, t in phase.writes]) if phase.writes else None,
            "health_probes": len(phase.health), "health_p50_s": p50, "health_p99_s": p99,
            "health_max_s": max((t for _, t in phase.health), default=float("nan")),
            "rss_mb": [[round(t, 1), round(mb, 1)] for t, mb in phase.rss], "rss_warm_mb": first,
            "rss_end_mb": last, "rss_growth": growth, "read_p99_s": read_p99,
            "rss_after_answers_mb": phase.rss_after_answers,
            "pathological": Counter(f"{k} {s}" for k, s, _ in phase.pathological),
            "pathological_s": [round(t, 1) for _, _, t in phase.pathological],
            "samples": phase.read_samples[:5] + phase.write_samples[:3], "server_start_s": phase.started_in,
            "server_exit": phase.server_exit, "server_log_tail": phase.server_log_tail}


def add_rows(report: Report, figures_of: dict[str, dict[str, Any]]) -> None:
    def verdict(ok: bool) -> str:
        return "**meets**" if ok else "**fails**"

    base = figures_of["baseline"]
    for name, figures in figures_of.items():
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(figures["errors"].items())) or "none"
        report.row(name, "errors (unexpected statuses)", str(figures["errors_total"]),
                   f"{errors}; acceptance: 0 {verdict(figures['errors_total'] == 0)}")
    loaded = figures_of.get("pathological")
    if loaded:
        report.row("pathological", "pathological queries: answers", str(sum(loaded["pathological"].values())),
                   ", ".join(f"{k}: {v}" for k, v in sorted(loaded["pathological"].items())) +
                   " (503 or 429 expected; -1: no answer); seconds each: " +
                   ", ".join(map(str, loaded["pathological_s"])) +
                   f"; server RSS once all were answered: {loaded['rss_after_answers_mb'] or float('nan'):.0f} MB")
    for name, figures in figures_of.items():
        report.row(name, "/health p50", fmt(figures["health_p50_s"]), f"{figures['health_probes']} probes",
                   ratio(figures["health_p50_s"], base["health_p50_s"]))
        report.row(name, "/health p99", fmt(figures["health_p99_s"]),
                   f"max {fmt(figures['health_max_s'])}; acceptance: <= 100 ms "
                   f"{verdict(figures['health_p99_s'] <= 0.1)}", ratio(figures["health_p99_s"], base["health_p99_s"]))
        report.row(name, "read throughput", f"{figures['reads_per_s']:.1f} req/s", f"{figures['reads']} reads",
                   ratio(figures["reads_per_s"], base["reads_per_s"]))
        report.row(name, "writes", f"{figures['writes_per_s']:.2f} /s",
                   f"{figures['writes']} PUTs, p50 {fmt(figures['write_p50_s'] or 0)}")
        report.row(name, "server RSS growth (end of warm-up -> end)",
                   f"{figures['rss_growth']:+.1%}",
                   f"{figures['rss_warm_mb']:.0f} -> {figures['rss_end_mb']:.0f} MB; acceptance: <= 5 % "
                   f"{verdict(figures['rss_growth'] <= 0.05)}",
                   ratio(figures["rss_growth"], base["rss_growth"]) if base["rss_growth"] > 0 else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="load per phase (default 60)")
    parser.add_argument("--clients", type=int, default=14, help="reader threads (default 14)")
    parser.add_argument("--write-rate", type=float, default=0.5, help="module PUTs per second (default 0.5)")
    parser.add_argument("--pathological-every", type=float, default=5.0, help="seconds between two (default 5)")
    parser.add_argument("--attacker-address", default="127.0.0.2",
                        help="loopback address the pathological queries come from (default 127.0.0.2): the server "
                             "budgets anonymous callers by address, and the attacker is not the readers")
    parser.add_argument("--health-every", type=float, default=0.1, help="seconds between /health probes")
    parser.add_argument("--rss-every", type=float, default=10.0, help="seconds between RSS samples")
    parser.add_argument("--baseline-only", action="store_true",
                        help="run the baseline phase alone (e.g. to watch the RSS under writes: --write-rate 2)")
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    parser.add_argument("--work", type=Path, help="keep the servers' data and logs in this folder")
    args = parser.parse_args()
    if args.seconds < 10:
        parser.error("--seconds: at least 10")
    warmup = 60.0 if args.seconds >= 180 else args.seconds / 3
    started = now()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI4KG_")}  # the server's defaults
    for name in ("AI4KG_SPARQL_TIMEOUT", "AI4KG_SPARQL_RESULT_LIMIT"):
        if name in os.environ:  # the two settings the pathological queries meet may be chosen
            env[name] = os.environ[name]
    report = Report()
    with tempfile.TemporaryDirectory(prefix="ai4kg-hardening-") as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        phases = {}
        for name in ("baseline",) if args.baseline_only else ("baseline", "pathological"):
            with report.phase(f"{name}: {args.seconds:g} s of load"):
                phases[name] = run_phase(name, args, env, work)
    figures = {name: describe(phase, warmup) for name, phase in phases.items()}
    add_rows(report, figures)
    rss_lines = [f"| {name} | " + ", ".join(f"{t:.0f} s: {mb:.0f}" for t, mb in f["rss_mb"]) + " |"
                 for name, f in figures.items()]
    p99_lines = [f"| {kind} | " + " | ".join(fmt(f["read_p99_s"].get(kind, float("nan"))) for f in figures.values())
                 + " |" for kind in sorted(figures["baseline"]["read_p99_s"])]
    samples = [f"- {name}: {s}" for name, f in figures.items() for s in f["samples"]]
    samples += [f"- {name}: the server died (exit status {f['server_exit']}): {f['server_log_tail']}"
                for name, f in figures.items() if f["server_exit"] is not None]
    report.sections += [
        "### Server RSS (MB) every ~10 s", "", "| phase | t: MB |", "|---|---|", *rss_lines, "",
        "### Read p99 by kind", "", "| kind | " + " | ".join(figures) + " |", "|---|" + "---|" * len(figures),
        *p99_lines, "",
        *(["### First unexpected answers", "", *samples, ""] if samples else []),
    ]
    extra = (f"- load: {args.clients} reader threads (own process), writes {args.write_rate}/s, /health every "
             f"{args.health_every * 1000:.0f} ms, pathological query every {args.pathological_every:g} s from "
             f"{args.attacker_address} (phase pathological only); warm-up {warmup:.0f} s; SPARQL timeout "
             f"{env.get('AI4KG_SPARQL_TIMEOUT', 'default')}; httpx {version('httpx')}, uvicorn {version('uvicorn')}")
    publish("Issue 14: hardening under load", "hardening_bench.py", report, started, args.out, extra)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str), "utf-8")


if __name__ == "__main__":
    main()
