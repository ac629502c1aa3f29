"""ORDER BY at /sparql: Oxigraph 0.5 compares terms of different kinds inconsistently and its sort
then aborts the process; /sparql sorts by kind of term first (graph/datasets.total_order)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from conftest import REPO


MIXED_ORDER = textwrap.dedent("""
    import json, random
    from fastapi.testclient import TestClient
    from ai4kg.__main__ import without_script_directory
    without_script_directory()
    from ai4kg.api.app import create_app
    from ai4kg.config import Settings
    from ai4kg.graph.store import KnowledgeGraph

    random.seed(1)  # 50 numbers and strings whose order Oxigraph 0.5.13's sort found inconsistent, and aborted
    values = [str(n) if random.random() < 0.5 else f'"{n}"' for n in (random.randint(0, 1000) for _ in range(50))]
    query = "SELECT ?x WHERE { VALUES ?x { " + " ".join(values) + " } } ORDER BY ?x"
    with KnowledgeGraph(Settings.in_memory()) as graph:
        response = TestClient(create_app(graph)).get("/sparql", params={"query": query},
                                                     headers={"accept": "application/sparql-results+json"})
        rows = [b["x"] for b in response.json()["results"]["bindings"]]
        print(json.dumps({"status": response.status_code, "rows": rows}))
""")


def test_an_order_by_over_mixed_values_answers_instead_of_aborting_the_server() -> None:
    """Oxigraph compares a number and a string inconsistently (10 < "11" < 2 < 10), and Rust's sort
    aborts the process when it notices: one anonymous query killed the server (SIGABRT). /sparql now
    sorts by kind of term first, so numbers come in numeric order, then strings in text order."""
    done = subprocess.run([sys.executable, "-c", MIXED_ORDER], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["status"] == 200
    numbers = [row for row in answer["rows"] if row.get("datatype", "").endswith("#integer")]
    strings = [row for row in answer["rows"] if row not in numbers]
    assert answer["rows"] == numbers + strings and len(answer["rows"]) == 50
    assert [int(row["value"]) for row in numbers] == sorted(int(row["value"]) for row in numbers)
    assert [row["value"] for row in strings] == sorted(row["value"] for row in strings)


def test_order_by_conditions_get_kind_and_datatype_keys_first() -> None:
    """graph/datasets.total_order: every ORDER BY condition (variable, ASC/DESC, bracketed
    expression, built-in or function call, in a subquery too) gets two keys before it; ORDER BY in
    a string or a comment is no clause; a query keeps its LIMIT, OFFSET and VALUES."""
    from ai4kg.graph.datasets import total_order

    query = ('SELECT * { { SELECT ?s { ?s ?p "ORDER BY ?x" } ORDER BY DESC(?s) LIMIT 1 } ?s ?q ?o } '
             "ORDER BY ?o (STR(?q)) STRLEN(?o) <http://f/n>(?o) OFFSET 2 VALUES ?s { <a> } # ORDER BY ?y")
    rewritten = total_order(query)
    for direction, expression in (("DESC", "?s"), ("ASC", "?o"), ("ASC", "STR(?q)"), ("ASC", "STRLEN(?o)"),
                                  ("ASC", "<http://f/n>(?o)")):
        assert f"{direction}(COALESCE(IF(isBLANK({expression}), 1," in rewritten, expression
        assert f"{direction}({expression}) " in rewritten, expression
    assert '"ORDER BY ?x"' in rewritten and rewritten.endswith("OFFSET 2 VALUES ?s { <a> } # ORDER BY ?y")
    assert "isBLANK(?x)" not in rewritten and "isBLANK(?y)" not in rewritten
    assert total_order("SELECT * { ?s ?p ?o }") == "SELECT * { ?s ?p ?o }"

    import pyoxigraph as ox  # the rewritten query is SPARQL Oxigraph runs, in SPARQL's order of kinds
    store = ox.Store()
    rows = store.query(total_order('SELECT ?x { VALUES ?x { "b" 2 <http://i> UNDEF 10 "a"@en "11" } } ORDER BY ?x'))
    assert [str(row["x"]) if row["x"] is not None else None for row in rows][:1] == [None]
    ordered = [row["x"] for row in store.query(total_order(
        'SELECT ?x { VALUES ?x { "b" 2 <http://i> 10 "11" } } ORDER BY ?x'))]
    assert [str(x) for x in ordered] == ["<http://i>", '"2"^^<http://www.w3.org/2001/XMLSchema#integer>',
                                          '"10"^^<http://www.w3.org/2001/XMLSchema#integer>', '"11"', '"b"']
