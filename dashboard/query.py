"""The SPARQL page (`/query`): an editor with the usual prefixes, results as a table, yes/no or Turtle.

    /query                          the editor, with the prefixes and an example query filled in
    /query?query=SELECT...          the query run, its results under the editor (a URL to share)
    /query/download?query=...&format=csv   the results as a file (formats: FORMATS)

A query runs exactly as at /sparql (api/sparql.py `Queries`, the app's one, so the two share the
limits on heavy queries): the viewer's rights (another VO's private assets are not in the dataset),
SERVICE checks, the timeout and the result limit, and the endpoint's error messages. The page only
reads: an update is refused before anything runs (Oxigraph's query parser would refuse it too).
Relative IRIs resolve against /sparql, so a query gives here what it gives there.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

import pyoxigraph as ox
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from ..api.problems import Problem
from ..api.sparql import caller_of, queries_of
from ..graph.namespaces import AI4KG
from ..graph.store import KnowledgeGraph
from .links import href, page_path
from .session import readers, viewer
from .templating import page_headers, render

PREFIXES = {
    "ai4kg": AI4KG,
    "prov": "http://www.w3.org/ns/prov#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dcterms": "http://purl.org/dc/terms/",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "dcat": "http://www.w3.org/ns/dcat#",
}
PROLOGUE = "".join(f"PREFIX {name}: <{iri}>\n" for name, iri in PREFIXES.items())
EXAMPLES = [
    ("Modules and their titles", "SELECT ?module ?title WHERE {\n  ?module a ai4kg:Module ;\n          ai4kg:title ?title .\n}\n"
                                 "ORDER BY ?title\nLIMIT 50"),
    ("Modules per library", "SELECT ?library (COUNT(DISTINCT ?module) AS ?modules) WHERE {\n"
                            "  ?module ai4kg:library ?library .\n}\nGROUP BY ?library\nORDER BY DESC(?modules)"),
    ("Is any module trainable? (ASK)", "ASK {\n  ?module ai4kg:category <https://w3id.org/ai4kg/vocab/category/ai4-trainable> .\n}"),
    ("Modules' titles and summaries as RDF (CONSTRUCT)", "CONSTRUCT {\n  ?module ai4kg:title ?title ;\n"
                                                          "          ai4kg:summary ?summary .\n} WHERE {\n"
                                                          "  ?module a ai4kg:Module ;\n          ai4kg:title ?title ;\n"
                                                          "          ai4kg:summary ?summary .\n}"),
]
ACCEPT = "application/sparql-results+json, text/turtle"
"""What the page asks the query for: rows and yes/no as SPARQL JSON, graphs as Turtle."""
FORMATS = {
    "json": ("application/sparql-results+json", "srj", "SPARQL JSON"),
    "xml": ("application/sparql-results+xml", "srx", "SPARQL XML"),
    "csv": ("text/csv", "csv", "CSV"),
    "tsv": ("text/tab-separated-values", "tsv", "TSV"),
    "turtle": ("text/turtle", "ttl", "Turtle"),
    "ntriples": ("application/n-triples", "nt", "N-Triples"),
    "jsonld": ("application/ld+json", "jsonld", "JSON-LD"),
    "rdfxml": ("application/rdf+xml", "rdf", "RDF/XML"),
}
"""Download formats: (media type, file extension, name)."""
_FORMATS_OF = {"select": ("json", "csv", "tsv", "xml"), "ask": ("json", "xml"),
               "graph": ("turtle", "ntriples", "jsonld", "rdfxml")}
SHOWN_ROWS = 1000
"""Rows the page shows of a result (the download has them all, up to the result limit)."""
UPDATE_REFUSED = ("This page only reads: SPARQL Update (INSERT, DELETE, LOAD, CLEAR, DROP, …) is not run here, "
                  "and nothing was changed. The platform administrator sends updates as a POST to /sparql.")

# Comments, strings and IRIs blanked out before looking for the query's first keyword
_NOT_KEYWORDS = re.compile(r"""<[^<>"{}|^`\\\x00-\x20]*>|\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"|'''(?:[^'\\]|\\.|'(?!''))*'''"""
                           r"""|"(?:[^"\\\n\r]|\\.)*"|'(?:[^'\\\n\r]|\\.)*'|\#[^\n\r]*""")
_FORM = re.compile(r"(?<![\w?$:.@-])(SELECT|ASK|CONSTRUCT|DESCRIBE|INSERT|DELETE|LOAD|CLEAR|CREATE|DROP|COPY|MOVE|ADD|WITH)"
                   r"(?![\w:.-])", re.IGNORECASE)


def is_update(text: str) -> bool:
    """Whether the text's first operation keyword (after the prologue) is an update's."""
    found = _FORM.search(_NOT_KEYWORDS.sub(" ", text))
    return found is not None and found.group(1).upper() not in ("SELECT", "ASK", "CONSTRUCT", "DESCRIBE")


def compact(iri: str) -> str:
    """`iri` as a prefixed name when one of PREFIXES fits."""
    for name, namespace in PREFIXES.items():
        if iri.startswith(namespace) and re.fullmatch(r"[\w.-]*", iri[len(namespace):]):
            return f"{name}:{iri[len(namespace):]}"
    return iri


def link(base_url: str, iri: str) -> str | None:
    """Where an IRI in a result links to: its page here, or the IRI itself when it is a web address
    (http or https); None for any other scheme (javascript:, data:, urn:...), shown as text."""
    if page_path(base_url, iri) is not None or re.match(r"https?://", iri, re.IGNORECASE):
        return href(base_url, iri)
    return None


def _endpoint(request: Request) -> str:
    """The base of relative IRIs: /sparql's URL, as the query would be run there."""
    return str(request.url.replace(path="/sparql", query="", fragment=""))


def _cell(term: dict[str, Any] | None, base_url: str) -> dict[str, Any] | None:
    """A SPARQL JSON term as the table shows it: text, a link for an IRI, a note for a datatype or language."""
    if term is None:
        return None
    kind = term["type"]
    if kind == "uri":
        return {"text": compact(term["value"]), "href": link(base_url, term["value"]), "title": term["value"]}
    if kind == "bnode":
        return {"text": f"_:{term['value']}"}
    if kind == "triple":
        parts = [_cell(term["value"][p], base_url) or {"text": ""} for p in ("subject", "predicate", "object")]
        return {"text": "<< " + " ".join(p["text"] for p in parts) + " >>"}
    note = f"@{term['xml:lang']}" if "xml:lang" in term else compact(term["datatype"]) if "datatype" in term else None
    return {"text": term["value"], "note": note}


def _results(media: str, body: bytes, base_url: str) -> dict[str, Any]:
    """The page's view of a result: a table (SELECT), yes/no (ASK) or Turtle (CONSTRUCT, DESCRIBE)."""
    if media == "text/turtle":
        triples = list(ox.parse(body, format=ox.RdfFormat.TURTLE))
        text = ox.serialize(triples, format=ox.RdfFormat.TURTLE, prefixes=PREFIXES).decode("utf-8") if triples else ""
        return {"form": "graph", "count": len(triples), "turtle": text}
    document = json.loads(body)
    if "boolean" in document:
        return {"form": "ask", "boolean": bool(document["boolean"])}
    columns = document["head"]["vars"]
    bindings = document["results"]["bindings"]
    rows = [[_cell(binding.get(column), base_url) for column in columns] for binding in bindings[:SHOWN_ROWS]]
    return {"form": "select", "columns": columns, "rows": rows, "count": len(bindings)}


def links_for(text: str, form: str | None) -> dict[str, Any]:
    """Where the query can go from the page: the endpoint, and a download per format of its result."""
    formats = _FORMATS_OF.get(form or "", ())
    return {"endpoint": "/sparql?" + urlencode({"query": text}),
            "downloads": [(FORMATS[name][2], "/query/download?" + urlencode({"query": text, "format": name}))
                          for name in formats]}


def router(graph: KnowledgeGraph) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    base_url = graph.settings.base_url

    async def run(request: Request, text: str, accept: str) -> tuple[str, bytes]:
        identity = viewer(request)
        return await queries_of(request, graph).run(text, [], readers(request), caller_of(request, identity),
                                                    _endpoint(request), accept)

    @routes.get("/query", response_class=HTMLResponse)
    async def query_page(request: Request) -> HTMLResponse:
        given = request.query_params.get("query")
        text = given if given is not None else PROLOGUE + "\n" + EXAMPLES[0][1]
        error, status, results = None, 200, None
        if given is not None:
            if not given.strip():
                error, status = "No query given: write a SPARQL query (SELECT, ASK, CONSTRUCT or DESCRIBE).", 400
            elif is_update(given):
                error, status = UPDATE_REFUSED, 400
            else:
                try:
                    media, body = await run(request, given, ACCEPT)
                    results = _results(media, body, base_url)
                except Problem as problem:
                    error, status = f"{problem.title}: {problem.detail}", problem.status
        settings = graph.settings
        return render(request, "query.html", status=status, text=text, error=error, results=results,
                      rows=min(max(text.count("\n") + 2, 8), 30),
                      examples=[(title, "/query?" + urlencode({"query": PROLOGUE + "\n" + body}))
                                for title, body in EXAMPLES],
                      links=links_for(given, results["form"]) if results and given else None,
                      shown_rows=SHOWN_ROWS, timeout=settings.sparql_timeout, limit=settings.sparql_result_limit)

    @routes.get("/query/download")
    async def download(request: Request) -> Response:
        text = request.query_params.get("query") or ""
        name = request.query_params.get("format") or "json"
        if name not in FORMATS:
            return render(request, "message.html", status=400, heading="Unknown format",
                          message=f"format is one of {', '.join(FORMATS)}, not {name!r}", back="/query")
        if not text.strip() or is_update(text):
            return render(request, "message.html", status=400, heading="No query to run",
                          message=UPDATE_REFUSED if text.strip() else "No query given.",
                          back="/query?" + urlencode({"query": text}))
        media_type, extension, _ = FORMATS[name]
        try:
            media, body = await run(request, text, media_type)
        except Problem as problem:
            return render(request, "message.html", status=problem.status, heading=problem.title, message=problem.detail,
                          back="/query?" + urlencode({"query": text}))
        return Response(body, media_type=media, headers={
            **page_headers(), "Content-Disposition": f'attachment; filename="results.{extension}"'})

    return routes
