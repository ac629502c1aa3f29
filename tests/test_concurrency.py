"""Many requests at once: lazily built things are built once, safely, and no reader waits behind a
writer that waits for a query (issue 14, items 1 and 3)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from conftest import REPO, valid_module_files
from loopback_endpoint import LoopbackEndpoint

FIRST_WRITES = textwrap.dedent("""
    import json, sys, threading
    from pathlib import Path
    from ai4kg.__main__ import without_script_directory
    without_script_directory()
    from ai4kg.catalog import ImportOptions, InlineFile, import_files
    from ai4kg.config import Settings
    from ai4kg.graph.store import KnowledgeGraph

    files = [Path(p) for p in sys.argv[1:]]
    graph = KnowledgeGraph(Settings.in_memory())
    start = threading.Barrier(len(files))
    statuses = {}

    def publish(index, path):
        start.wait()  # every thread asks for the mapping, not yet built, at the same moment
        try:
            [report] = import_files(graph, [InlineFile(path.name, path.read_bytes())],
                                    ImportOptions(identifier=f"module-{index}"))
            statuses[index] = report.status
        except Exception as exc:
            statuses[index] = f"{type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=publish, args=(i, p)) for i, p in enumerate(files)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # and the process keeps working afterwards
    [again] = import_files(graph, [InlineFile(files[0].name, files[0].read_bytes())], ImportOptions(identifier="after"))
    print(json.dumps({"first": sorted(statuses.values()), "after": again.status}))
""")


def test_concurrent_first_writes_build_the_mapping_once_and_all_succeed() -> None:
    """Eight writes at the moment a process starts, each the first to need the RML mapping (and with
    it rdflib's SPARQL parser): before the fix, nearly every trial failed with pyparsing errors
    (`Param.postParse2() missing 1 required positional argument`) and some broke the process for
    good. Each trial is a fresh process, since the first use is what races."""
    files = [str(p) for p in valid_module_files() if p.suffix == ".yml"][:8]
    for trial in range(3):
        done = subprocess.run([sys.executable, "-c", FIRST_WRITES, *files], cwd=REPO, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        outcome = json.loads(done.stdout.strip().splitlines()[-1])
        assert outcome == {"first": ["imported"] * len(files), "after": "imported"}, (trial, outcome)


# -- item 3: a query past its deadline holds up nobody ------------------------------------------------
def _query_threads() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name == "sparql-query" and t.is_alive()]


def _wait_until(condition, seconds: float = 120) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)


def test_an_abandoned_query_holds_up_no_write_no_query_and_no_health_check() -> None:
    """The probe's stall: a query past its deadline kept a read lock, a write waited for it, and every
    reader (and /health) queued behind that write for as long as the query ran. Here the query is
    held for as long as the test likes (its SERVICE endpoint does not answer): while it is, a write
    completes, SPARQL and /health answer, and the abandoned query's thread runs at the lowest
    priority; once released, it ends."""
    import threading

    import httpx
    import pyoxigraph as ox

    from ai4kg.api.app import create_app
    from ai4kg.api.query_threads import LOWEST_PRIORITY, thread_priority
    from ai4kg.config import Settings
    from ai4kg.graph.store import AssetWrite, KnowledgeGraph
    from conftest import serving

    held = LoopbackEndpoint(held=True)
    # The timeout is the slow query's: long enough that the quick ones below never meet it on a loaded machine
    settings = Settings(data_dir=None, sparql_timeout=1.5, sparql_services=(held.url,), sparql_service_timeout=120)
    try:
        with KnowledgeGraph(settings) as graph, serving(create_app(graph)) as url, httpx.Client(timeout=60) as client:
            slow = client.get(f"{url}/sparql", params={"query": f"SELECT * WHERE {{ SERVICE <{held.url}> {{ ?s ?p ?o }} }}"})
            assert slow.status_code == 503 and "timeout of 1.5 s" in slow.json()["detail"]
            assert held.holding.acquire(timeout=60)  # the abandoned query is inside its SERVICE call
            [abandoned] = _query_threads()
            assert thread_priority(abandoned) == LOWEST_PRIORITY

            iri = "https://w3id.org/ai4kg/id/module/written-meanwhile"
            quad = ox.Quad(ox.NamedNode(iri), ox.NamedNode("https://w3id.org/ai4kg/ns#title"), ox.Literal("t"),
                           ox.NamedNode(iri))
            writer = threading.Thread(target=graph.write, args=([AssetWrite(iri, [quad])],))
            writer.start()
            writer.join(60)
            assert not writer.is_alive(), "the write waited for the abandoned query"
            # a SELECT streams in its thread; an ASK would fork a process, slow on a loaded machine
            count = client.get(f"{url}/sparql", params={"query": f"SELECT ?p WHERE {{ <{iri}> ?p ?o }}"},
                               headers={"accept": "application/sparql-results+json"})
            assert count.status_code == 200 and count.json()["results"]["bindings"]
            assert client.get(f"{url}/health").json() == {"status": "ok"}
            assert not held.release.is_set() and abandoned.is_alive()  # all of that while it still ran

            held.release.set()
            _wait_until(lambda: not _query_threads())
    finally:
        held.close()


def test_abandoned_queries_are_limited_per_caller_and_in_all() -> None:
    """A caller whose abandoned queries still run at the per-caller limit gets 429 (others are still
    served); at the overall limit every new query gets 503; both clear when the queries end."""
    import httpx

    from ai4kg.api.app import create_app
    from ai4kg.config import Settings
    from ai4kg.credentials import KeyStore
    from ai4kg.graph.store import KnowledgeGraph
    from conftest import serving

    held = LoopbackEndpoint(held=True)
    settings = Settings(data_dir=None, sparql_timeout=1.5, sparql_services=(held.url,), sparql_service_timeout=120,
                        sparql_heavy_per_caller=1, sparql_heavy_limit=2)
    keys = KeyStore(None)
    _, member = keys.create("member", frozenset({"vo.a.eu"}))
    slow = {"query": f"SELECT * WHERE {{ SERVICE <{held.url}> {{ ?s ?p ?o }} }}"}
    quick = {"query": "SELECT * WHERE { ?s ?p ?o } LIMIT 1"}  # streams: no process to fork on a loaded machine
    signed_in = {"authorization": f"Bearer {member}"}
    try:
        with KnowledgeGraph(settings) as graph, serving(create_app(graph, keys)) as url, \
                httpx.Client(timeout=60) as client:
            assert client.get(f"{url}/sparql", params=slow).status_code == 503
            refused = client.get(f"{url}/sparql", params=quick)
            assert refused.status_code == 429 and refused.headers["retry-after"]
            assert "AI4KG_SPARQL_HEAVY_PER_CALLER" in refused.json()["detail"]
            assert client.get(f"{url}/sparql", params=quick, headers=signed_in).status_code == 200
            assert client.get(f"{url}/sparql", params=slow, headers=signed_in).status_code == 503
            everyone = client.get(f"{url}/sparql", params=quick, headers={"authorization": "Bearer " + keys.create(
                "third", frozenset())[1]})
            assert everyone.status_code == 503 and "AI4KG_SPARQL_HEAVY_LIMIT" in everyone.json()["detail"]
            held.release.set()
            _wait_until(lambda: not _query_threads())
            assert client.get(f"{url}/sparql", params=quick).status_code == 200
    finally:
        held.close()



def test_a_query_computed_whole_runs_in_a_process_with_its_own_memory_limit() -> None:
    """A sort of a cross product held every row in the server's memory (over a GB on the demo
    catalogue) until it ended, long after its 503. It now runs in a process of its own: past
    AI4KG_SPARQL_QUERY_MEMORY it fails alone (507), and the server goes on."""
    import pyoxigraph as ox
    from fastapi.testclient import TestClient

    from ai4kg.api.app import create_app
    from ai4kg.config import Settings
    from ai4kg.graph.store import KnowledgeGraph

    settings = Settings(data_dir=None, sparql_timeout=120, sparql_result_limit=10**9,
                        sparql_query_memory=64 * 1024 * 1024)
    with KnowledgeGraph(settings) as graph:
        graph.store.extend(ox.Quad(ox.NamedNode(f"http://x/s{i}"), ox.NamedNode("http://x/p"), ox.Literal(i),
                                   ox.NamedNode("http://x/g")) for i in range(2000))
        client = TestClient(create_app(graph))
        response = client.get("/sparql", params={"query": "SELECT ?x ?y WHERE { ?a ?p ?x . ?b ?p ?y } ORDER BY ?y ?x"})
        assert response.status_code == 507, response.text[:500]
        assert "AI4KG_SPARQL_QUERY_MEMORY" in response.json()["detail"]
        counted = client.get("/sparql", params={"query": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"},
                             headers={"accept": "application/sparql-results+json"})
        assert counted.status_code == 200 and int(counted.json()["results"]["bindings"][0]["n"]["value"]) > 2000


def test_heavy_queries_count_against_their_caller_from_the_start() -> None:
    """A query computed in a process of its own counts against its caller while it runs (one
    attacker could otherwise fork a process per request): the caller's next one gets 429, another
    caller is served, and the count goes back when it ends."""
    import threading

    import httpx

    from ai4kg.api.app import create_app
    from ai4kg.config import Settings
    from ai4kg.graph.store import KnowledgeGraph
    from conftest import serving

    held = LoopbackEndpoint(held=True)
    settings = Settings(data_dir=None, sparql_timeout=60, sparql_services=(held.url,), sparql_service_timeout=120,
                        sparql_heavy_per_caller=1)
    sorted_remote = {"query": f"SELECT ?s WHERE {{ SERVICE <{held.url}> {{ ?s ?p ?o }} }} ORDER BY ?s"}
    try:
        with KnowledgeGraph(settings) as graph, serving(create_app(graph)) as url, httpx.Client(timeout=60) as client:
            first: dict[str, httpx.Response] = {}
            running = threading.Thread(target=lambda: first.update(answer=client.get(f"{url}/sparql", params=sorted_remote)))
            running.start()
            assert held.holding.acquire(timeout=60)  # the sort's process waits inside its SERVICE call
            refused = client.get(f"{url}/sparql", params={"query": "ASK {}"})
            assert refused.status_code == 429 and "AI4KG_SPARQL_HEAVY_PER_CALLER" in refused.json()["detail"]
            held.release.set()
            running.join(60)
            assert first["answer"].status_code == 200, first["answer"].text
            assert first["answer"].json()["results"]["bindings"] == [{"s": {"type": "uri", "value": "http://x/s"}}]
            assert client.get(f"{url}/sparql", params={"query": "ASK {}"}).status_code == 200
    finally:
        held.close()


SERVER_WITH_A_LONG_SORT = textwrap.dedent("""
    import threading, time
    import pyoxigraph as ox
    from ai4kg.__main__ import without_script_directory
    without_script_directory()
    from ai4kg.api.query_process import run_forked
    from ai4kg.api.sparql import _collect, _timed_out
    from ai4kg.config import Settings
    from ai4kg.graph.store import KnowledgeGraph

    graph = KnowledgeGraph(Settings.in_memory())
    graph.store.extend(ox.Quad(ox.NamedNode(f"http://x/s{i}"), ox.NamedNode("http://x/p"), ox.Literal(i),
                               ox.NamedNode("http://x/g")) for i in range(300))
    query = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?p ?x . ?b ?p ?y . ?c ?p ?z . ?d ?p ?w }"  # 8 billion rows
    deadline = time.monotonic() + 600
    threading.Thread(target=run_forked, args=(graph, lambda: _collect(graph, query, {}, "http://x/", "", deadline),
                                              deadline, 2**30, lambda: _timed_out(600)), daemon=True).start()
    print("started", flush=True)
    time.sleep(600)
""")


def test_a_query_process_dies_with_the_server() -> None:
    """A server killed with SIGKILL cannot kill its queries' processes: they die with it (Linux's
    parent-death signal), rather than keep its port and store open until their deadline."""
    import os

    server = subprocess.Popen([sys.executable, "-c", SERVER_WITH_A_LONG_SORT], cwd=REPO, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert server.stdout.readline().strip() == "started"

        def children() -> set[str]:
            return {child for task in os.listdir(f"/proc/{server.pid}/task")
                    for child in open(f"/proc/{server.pid}/task/{task}/children").read().split()}

        _wait_until(lambda: bool(children()), 60)
        [query_process] = children()
    finally:
        server.kill()
        server.wait()

    def dead() -> bool:  # gone, or a zombie waiting for init to reap it
        try:
            return open(f"/proc/{query_process}/status").read().split("State:")[1].split()[0] in ("Z", "X")
        except FileNotFoundError:
            return True

    _wait_until(dead, 60)


# -- the threads that answer reads ----------------------------------------------------------------------
def test_reads_run_in_the_configured_threads_and_never_wait_for_a_write() -> None:
    """Reads run in a small set of threads (AI4KG_READ_THREADS; one per CPU by default), since each
    extra runnable thread delays the event loop that answers /health (bench/hardening_bench.py): eight
    searches at once never run more than two at a time here. Writes have threads of their own: with
    writes stuck behind the write lock, searches, listings and GraphQL are still answered."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from ai4kg.api.app import create_app
    from ai4kg.config import Settings
    from ai4kg.credentials import KeyStore
    from ai4kg.graph.store import KnowledgeGraph
    from conftest import serving

    keys = KeyStore(None)
    _, admin = keys.create("admin", frozenset({"default"}), admin=True)
    files = [p for p in valid_module_files() if p.suffix == ".yml"][:4]
    with KnowledgeGraph(Settings(data_dir=None, read_threads=2)) as graph, \
            serving(create_app(graph, keys)) as url, httpx.Client(timeout=60) as client:
        search, lock = graph.search, threading.Lock()
        running, most = 0, 0

        def watched_search(*args, **kwargs):
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
            try:
                time.sleep(0.1)  # long enough for the others to arrive
                return search(*args, **kwargs)
            finally:
                with lock:
                    running -= 1

        graph.search = watched_search  # type: ignore[method-assign]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: client.get(f"{url}/search", params={"q": "model"}), range(8)))
        assert [a.status_code for a in answers] == [200] * 8
        assert most == 2

        put = {"content-type": "application/yaml", "authorization": f"Bearer {admin}"}
        with ThreadPoolExecutor(len(files)) as pool:
            with graph.write_guard:  # every write now waits
                writes = [pool.submit(client.put, f"{url}/v1/catalog/modules/waiting-{i}/metadata",
                                      content=path.read_bytes(), headers=put) for i, path in enumerate(files)]
                time.sleep(0.5)
                assert not any(w.done() for w in writes)
                assert client.get(f"{url}/search", params={"q": "model"}).status_code == 200
                assert client.get(f"{url}/v1/catalog/modules").status_code == 200
                page = client.post(f"{url}/graphql", json={"query": "{ modules(first: 5) { edges { node { name } } } }"})
                assert page.status_code == 200 and "errors" not in page.json()
            assert [w.result().status_code for w in writes] == [201] * len(files)


def test_reader_threads_default_to_the_cpus_and_refuse_a_bad_setting(monkeypatch) -> None:
    import os

    import pytest

    from ai4kg.config import Settings

    cpus = len(os.sched_getaffinity(0))
    assert Settings(data_dir=None).reader_threads == max(2, cpus)
    monkeypatch.setenv("AI4KG_READ_THREADS", "3")
    assert Settings.from_env("/tmp/unused").reader_threads == 3
    monkeypatch.setenv("AI4KG_READ_THREADS", "-1")
    with pytest.raises(ValueError, match="AI4KG_READ_THREADS='-1'"):
        Settings.from_env("/tmp/unused")
