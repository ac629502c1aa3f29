"""Memory of a long-running server under writes (issue 14: the server grew by ~10 MB per 100 module
PUTs, without levelling off).

The growth was native, not Python objects: every asset write (a DROP of the asset's graph and an
INSERT DATA of its new quads) adds the deleted and the inserted keys of every Oxigraph index to
RocksDB's memtables, about 1.5 kB per quad replaced, and RocksDB only flushed them to disk at its
own write-buffer limit (about 1.5 GB of RSS, some 15,000 writes of one module). Python's heap
stays flat over the same writes. So the test writes one real module over and over in a fresh
interpreter (nothing else allocating beside it) and bounds the RSS it gains between write 300
and write 1,500: the unbounded memtables gained ~65 MB there; flushed by the store, a few MB.

It counts writes, not seconds, so a slow machine gives the same figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import MODULES

MODULE = MODULES / "ai4os-demo-app__ai4-metadata.yml"
WARM, WRITES = 300, 1500
RSS_BOUND_MB = 20
"""The memtables flushed as they fill leave a few MB of buffers; unflushed they grew ~65 MB here."""
HEAP_BOUND_MB = 1.0

CHILD = """
import gc, json, sys, tracemalloc
from pathlib import Path
from ai4kg.__main__ import without_script_directory
without_script_directory()
from ai4kg.catalog import import_files
from ai4kg.config import Settings
from ai4kg.graph.store import AssetWrite, KnowledgeGraph

module, data, warm, writes = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

def rss_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024

with KnowledgeGraph(Settings(data_dir=data)) as graph:
    [report] = import_files(graph, [module])
    assert report.status == "imported", report.issues
    quads = graph.asset_quads(report.iri)
    for _ in range(warm):
        graph.write([AssetWrite(report.iri, quads)])
    gc.collect()
    tracemalloc.start()
    rss_before, heap_before = rss_mb(), tracemalloc.get_traced_memory()[0]
    for _ in range(writes - warm):
        graph.write([AssetWrite(report.iri, quads)])
    gc.collect()
    rss_after, heap_after = rss_mb(), tracemalloc.get_traced_memory()[0]
    print(json.dumps({"quads": len(quads), "rss_mb": rss_after - rss_before,
                      "heap_mb": (heap_after - heap_before) / 2**20}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the RSS from /proc")
def test_rewriting_an_asset_does_not_grow_the_process(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AI4KG_")}
    done = subprocess.run([sys.executable, "-c", CHILD, str(MODULE), str(tmp_path / "data"), str(WARM), str(WRITES)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    grown = json.loads(done.stdout.strip().splitlines()[-1])
    writes = WRITES - WARM
    assert grown["heap_mb"] < HEAP_BOUND_MB, (
        f"Python's heap grew {grown['heap_mb']:.2f} MB over {writes} rewrites of one asset "
        f"({grown['quads']} quads): bound {HEAP_BOUND_MB} MB")
    assert grown["rss_mb"] < RSS_BOUND_MB, (
        f"the process grew {grown['rss_mb']:.1f} MB (RSS) over {writes} rewrites of one asset "
        f"({grown['quads']} quads), Python's heap {grown['heap_mb']:.2f} MB of it: bound {RSS_BOUND_MB} MB. "
        "Native growth like this is the store's unflushed write buffers (KnowledgeGraph flushes them)")
