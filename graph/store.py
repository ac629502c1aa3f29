"""The knowledge graph: an Oxigraph store (one named graph per asset) and its search index.

Every asset has a stable IRI that is also the name of its graph; `write` swaps that graph for a
new one in a single Oxigraph transaction, so readers see the old asset or the new one, never a
mix, and a crash leaves either. The search index follows the protocol described in search.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from dataclasses import dataclass
from importlib import resources
from typing import Any, Iterable, Mapping

import pyoxigraph as ox

from ..config import Settings, private_directory
from ..provenance.fragments import FragmentStore
from ..threads import once
from .namespaces import AI4KG, ONTOLOGY_GRAPH, PLATFORM_AGENTS_GRAPH, PLATFORM_GRAPH, RDF_TYPE, VOCABULARY_GRAPH
from .datasets import ANY_GRAPH, graphs_written, has_dataset_clause
from .search import EVERY_ASSET, PUBLIC, Readers, SearchDocument, SearchHit, SearchIndex

_STAGING_PREFIX = "urn:ai4kg:staging:"
"""Earlier releases wrote new content to a scratch graph of this name, then moved it over the
asset's graph; a crash could leave one behind, and `_recover_index` still drops them."""

_EVERY_ASSET = EVERY_ASSET
"""A pending mark that stands for every asset: set while a SPARQL Update that may write any
graph runs, so a crash in between re-indexes the whole store on the next open."""

SYSTEM_GRAPHS = {ONTOLOGY_GRAPH: "ontology/ai4kg.ttl", VOCABULARY_GRAPH: "ontology/vocabularies.ttl",
                 PLATFORM_GRAPH: "mappings/views/platform-catalog.ttl",
                 PLATFORM_AGENTS_GRAPH: "mappings/platform-agents.ttl"}
"""Graphs the store keeps for itself (ontology, vocabularies, the platform's catalogue, the platform's
agents), readable by everyone. They are rewritten from their files (the platform's:
Settings.catalog_file) on open. What they say is said once: asset graphs name these nodes but do
not describe them again, since the union of all graphs repeats a triple once per graph holding it."""


FLUSH_AFTER_QUADS = 10_000
"""Quads inserted or deleted after which a write flushes the store. Each one adds its keys in every
Oxigraph index to RocksDB's memtables (about 0.75 kB a quad), which RocksDB flushes on its own only
at its write-buffer limit, some 1.5 GB of RSS: a server rewriting modules grew 6-7 MB per 100 writes
until then (issue 14). Flushing every 10,000 keeps them under ~8 MB; a flush then takes tens of ms,
in the writing thread (readers go on), and RocksDB's compactions keep the files it leaves few."""


class StoreLocked(Exception):
    """Another process (usually `ai4kg serve`) has the on-disk store open."""


@dataclass(frozen=True)
class AssetWrite:
    """The complete new content of one asset: every quad must be in the graph named `iri`."""

    iri: str
    quads: list[ox.Quad]


@once
def query_text(name: str) -> str:
    """A SPARQL query from graph/queries/NAME.rq."""
    return resources.files("ai4kg").joinpath(f"graph/queries/{name}.rq").read_text("utf-8")


_TEXT_FIELDS = ("title", "summary", "description", "tag", "identifier", "created", "updated")
_CONCEPT_FACETS = ("task", "category", "library", "dataType")


def search_document(iri: str, quads: Iterable[ox.Quad]) -> SearchDocument | None:
    """What the search index holds for an asset, read from its quads (None if it has no type).

    Facets: tags in lower case; tasks, categories, libraries and data types as concept slugs.
    """
    fields: dict[str, list[str]] = {name: [] for name in _TEXT_FIELDS}
    facets: set[tuple[str, str]] = set()
    kind = None
    vo, visibility = "", PUBLIC
    for quad in quads:
        if quad.subject.value != iri:
            continue
        predicate = quad.predicate.value
        name = predicate[len(AI4KG):] if predicate.startswith(AI4KG) else None
        if predicate == RDF_TYPE and quad.object.value.startswith(AI4KG):
            kind = quad.object.value[len(AI4KG):]
        elif name == "belongsToVO":
            vo = quad.object.value.rsplit("/", 1)[-1]
        elif name == "visibility":
            visibility = quad.object.value.rsplit("/", 1)[-1]
        elif name in _CONCEPT_FACETS:
            facets.add((name, quad.object.value.rsplit("/", 1)[-1]))
        elif name in fields:
            fields[name].append(quad.object.value)
            if name == "tag":
                facets.add(("tag", quad.object.value.strip().lower()))
    if kind is None:
        return None

    def one(name: str) -> str:
        return " ".join(fields[name])

    return SearchDocument(iri, kind, one("title"), one("summary"), one("description"), " | ".join(sorted(fields["tag"])),
                          one("identifier"), one("created"), one("updated"), tuple(sorted(facets)), vo, visibility)


def content_digest(quads: Iterable[ox.Quad]) -> str:
    """A digest of an asset's content (its triples, in any order; blank node labels ignored), so that
    the record log can tell a real change from a write or re-index of the same content."""
    def text(term: Any) -> str:
        return "_:" if isinstance(term, ox.BlankNode) else str(term)

    lines = sorted(f"{text(q.subject)} {q.predicate} {text(q.object)}" for q in quads)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:32]


# -- Dublin Core (the OAI-PMH oai_dc records of api/oai.py) -------------------------------------------
FOAF_NAME = "http://xmlns.com/foaf/0.1/name"
_DC_DATES = ("created", "updated", "startedAt", "endedAt")
_DC_RELATIONS = ("sourceCode", "documentation", "citation", "weights", "trainingDataset", "baseModel", "deploys",
                 "trainedModule")
_SOFTWARE = {"Module", "Tool", "Application"}
_DCMI_TYPES = {"Dataset": "Dataset", "DriftReport": "Text", "Provider": "Service", "Datacenter": "Service",
               "Deployment": "Event", "ModuleDeployment": "Event", "BatchTrainingDeployment": "Event",
               "TryMeDeployment": "Event", "ToolDeployment": "Event", "FederatedServerDeployment": "Event", "TrainingRun": "Event",
               "FederatedSession": "Event", "FederatedRound": "Event", "Build": "Event"}
"""DCMI Type Vocabulary terms of the asset kinds (software for modules and tools)."""


def dcmi_type(kind: str) -> str:
    """The DCMI Type Vocabulary term of an asset kind."""
    return _DCMI_TYPES.get(kind, "Software" if kind in _SOFTWARE else "Collection")


def doi_url(doi: str) -> str:
    """A DOI (bare, doi:..., or any doi.org URL) as its https://doi.org/ URL."""
    doi = doi.strip()
    for prefix in ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "http://dx.doi.org/", "doi:"):
        if doi.lower().startswith(prefix):
            doi = doi[len(prefix):]
            break
    return "https://doi.org/" + doi


def dublin_core(iri: str, quads: Iterable[ox.Quad]) -> dict[str, list[str]]:
    """The Dublin Core fields of an asset that its own quads give (the record log keeps them, so an
    oai_dc record is built without reading the store): element name -> values, in the order they
    are written, empty ones left out. What depends on other graphs is kept as IRIs, resolved when
    the record is written out (api/oai.py): `creator` (agents, named from their own log entries),
    `task` and `dataType` (concepts, by their vocabulary labels; "other" says nothing). `name`:
    what the asset is called when it is another asset's creator, where it has no title (foaf:name).
    The identifier and type that follow from the IRI and kind are not repeated here."""
    values: dict[str, list[str]] = {}
    names: list[str] = []
    for quad in quads:
        if quad.subject.value != iri:
            continue
        predicate = quad.predicate.value
        if predicate.startswith(AI4KG):
            values.setdefault(predicate[len(AI4KG):], []).append(quad.object.value)
        elif predicate == FOAF_NAME:
            names.append(quad.object.value)

    def each(*names: str) -> list[str]:  # sorted per property: the same quads in any order give the same fields
        return [value for name in names for value in sorted(values.get(name, []))]

    dois = [doi_url(v) for v in each("doi")]
    fields = {
        "title": each("title"),
        "creator": each("creator"),
        "subject": each("tag"),
        "task": [v for v in each("task") if not v.endswith("/other")],
        "description": each("summary", "description"),
        "date": each(*_DC_DATES),
        "format": ["application/vnd.oci.image.manifest.v1+json"] if values.get("dockerImage") else [],
        "identifier": dois + [v for v in each("zenodoDoi") if doi_url(v) not in set(dois)],
        "relation": each(*_DC_RELATIONS),
        "rights": each("license", "licenseDocument"),
        "dataType": [v for v in each("dataType") if not v.endswith("/other")],
        "name": [] if values.get("title") else sorted(names)[:1],
    }
    return {name: found for name, found in fields.items() if found}


def indexed_document(iri: str, quads: Iterable[ox.Quad]) -> SearchDocument | None:
    """`search_document` with the content digest and the Dublin Core fields (compact JSON): what
    writes and re-indexing hand to the index (its record log keeps both)."""
    quads = list(quads)
    document = search_document(iri, quads)
    if document is None:
        return None
    fields = json.dumps(dublin_core(iri, quads), ensure_ascii=False, separators=(",", ":"))
    return dataclasses.replace(document, digest=content_digest(quads), dublin_core=fields)


class KnowledgeGraph:
    """The store and search index of one data directory (or of memory)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._unflushed = 0
        """Quads written (inserted or deleted) since the store's last flush (see FLUSH_AFTER_QUADS)."""
        self._flush_lock = threading.Lock()
        self.write_guard = threading.RLock()
        """Held by every write to the store, and by api/query_process.py while it forks a query's
        process, so that no write is half-way in the child's copy of the store."""
        store_path = search_path = None
        if settings.data_dir is not None:
            private_directory(settings.data_dir)
            store_path, search_path = settings.data_dir / "oxigraph", settings.data_dir / "search.sqlite"
        try:
            if settings.sparql_store_url:
                from .remote import RemoteStore  # httpx: only for a remote store

                self.store = RemoteStore(settings.sparql_store_url)
            else:
                self.store = ox.Store(str(store_path)) if store_path else ox.Store()
        except OSError as exc:
            if "lock" in str(exc).lower():
                raise StoreLocked(
                    f"the store in {settings.data_dir} is open in another process (is `ai4kg serve` running?). "
                    "Stop that process first, or use another --data directory."
                ) from None
            raise
        self.index = SearchIndex(search_path)
        self.fragments = FragmentStore(settings.data_dir)
        """Provenance fragments, kept verbatim (provenance/fragments.py)."""
        self._load_system_graphs()
        # An index rebuilt (another version) or a record log upgraded on open holds the pending mark
        # of every asset, committed with the change: it is refilled here, and again after a crash.
        self._recover_index()
        self._drop_agent_copies()
        if self.fragments.unmapped():  # a crash between storing a fragment and writing its graph
            from ..provenance.ingest import recover

            recover(self)

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        self.index.close()
        self.fragments.close()
        self.store.flush()
        del self.store

    def __enter__(self) -> "KnowledgeGraph":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _load_system_graphs(self) -> None:
        """Keep the ontology, vocabularies, the platform's catalogue and its agents in their own graphs,
        so SPARQL users can join on labels and the views find the catalogue. Relative IRIs in the
        files resolve against the base URL (the catalogue is `<catalog>`: {base}catalog)."""
        for graph, path in SYSTEM_GRAPHS.items():
            if graph == PLATFORM_GRAPH and self.settings.catalog_file is not None:
                data = self.settings.catalog_file.read_bytes()
            else:
                data = resources.files("ai4kg").joinpath(path).read_bytes()
            wanted = {ox.Quad(t.subject, t.predicate, t.object, ox.NamedNode(graph))
                      for t in ox.parse(input=data, format=ox.RdfFormat.TURTLE, base_iri=self.settings.base_url)}
            if set(self.store.quads_for_pattern(None, None, None, ox.NamedNode(graph))) != wanted:
                self._replace_graph(graph, list(wanted))

    def _drop_agent_copies(self) -> None:
        """Drop what other graphs say about the agents of PLATFORM_AGENTS_GRAPH: earlier mappings
        copied the platform's and its software agent's description into every activity's graph, and
        a store they wrote keeps those copies until this runs (on every open: one index lookup per
        agent, where nothing is found once a store is clean). The graphs changed are re-indexed
        under the crash protocol: marked pending first, their content digests change."""
        agents = {q.subject for q in self.store.quads_for_pattern(None, None, None, ox.NamedNode(PLATFORM_AGENTS_GRAPH))}
        copies = [ox.Quad(agent, row["p"], row["o"], row["g"]) for agent in sorted(agents, key=str)
                  for row in self.store.query("SELECT ?s ?g ?p ?o WHERE { GRAPH ?g { ?s ?p ?o } }",
                                              substitutions={ox.Variable("s"): agent})
                  if row["g"].value not in SYSTEM_GRAPHS and not row["g"].value.startswith(_STAGING_PREFIX)
                  and not isinstance(row["o"], ox.BlankNode)]  # no description of theirs holds one
        if not copies:
            return
        graphs = sorted({q.graph_name.value for q in copies})
        self.index.mark_pending(graphs)
        # N-Triples forms (pyoxigraph escapes them), as in _replace_graph: no data breaks out of the block
        body = "\n".join(f"GRAPH {q.graph_name} {{ {q.subject} {q.predicate} {q.object} }}" for q in copies)
        with self.write_guard:
            self.store.update(f"DELETE DATA {{\n{body}\n}}")
        self._written(len(copies))
        self._reindex(graphs)

    def _recover_index(self) -> None:
        """Finish what a crashed write left: drop its scratch graphs and re-index its assets.

        A scratch graph only exists between `mark_pending` and `apply`, so with nothing pending
        there is nothing to drop and the named graphs need not be scanned.
        """
        pending = set(self.index.pending())
        if not pending:
            return
        for graph in list(self.store.named_graphs()):
            if graph.value.startswith(_STAGING_PREFIX):
                self.store.remove_graph(graph)
        if _EVERY_ASSET in pending:
            self.reindex()
        self._reindex(sorted(pending - {_EVERY_ASSET}))  # what reindex() left: marks of graphs gone from both
        self.index.apply([], [_EVERY_ASSET])

    def _asset_graphs(self) -> set[str]:
        return {g.value for g in self.store.named_graphs()
                if g.value not in SYSTEM_GRAPHS and not g.value.startswith(_STAGING_PREFIX)}

    def _reindex(self, iris: list[str]) -> int:
        """Index entries of these assets from what the store holds now (removed where it holds none)."""
        documents, removed = [], []
        for iri in iris:
            document = indexed_document(iri, self.asset_quads(iri))
            (documents.append(document) if document else removed.append(iri))
        self.index.apply(documents, removed)
        return len(iris)

    def reindex(self) -> int:
        """Refill the search index from the store (after an index format change); returns the count."""
        self._reindex(sorted({*self._asset_graphs(), *self.index.iris()}))
        return self.index.count()

    # -- writes --------------------------------------------------------------------------------
    def _replace_graph(self, iri: str, quads: list[ox.Quad]) -> None:
        """Replace the graph `iri` by `quads` in one SPARQL Update, which Oxigraph (embedded or
        server) runs as one transaction: a reader's snapshot holds the old graph or the new one.

        Queries take no lock: a query never waits for a write nor a write for a query, however long
        that query runs (issue 14: an abandoned query used to hold a lock that a write waited for, and
        every later reader queued behind that write). Writes hold `write_guard`, which only a fork
        of a query's process also takes (api/query_process.py). The quads go into the
        text in their N-Triples form, which pyoxigraph writes with every character escaped that
        could end a term early, so no data can break out of the INSERT DATA block."""
        graph = ox.NamedNode(iri)  # validates the IRI; its N-Triples form below cannot break out
        body = "\n".join(f"{q.subject} {q.predicate} {q.object} ." for q in quads)
        with self.write_guard:
            if not quads:
                self.store.update(f"DROP SILENT GRAPH {graph}")
            else:
                self.store.update(f"DROP SILENT GRAPH {graph} ;\nINSERT DATA {{ GRAPH {graph} {{\n{body}\n}} }}")
        # The quads dropped are not counted (that would take a read): a rewrite usually drops about
        # as many as it inserts, so the new ones count twice; a withdrawal counts a module's ~100.
        self._written(2 * len(quads) if quads else 100)

    def _written(self, quads: int) -> None:
        """Flush the store's write buffers once FLUSH_AFTER_QUADS quads were written since the last
        flush. Writers on several threads count under a lock; one of them flushes."""
        with self._flush_lock:
            self._unflushed += quads
            if self._unflushed < FLUSH_AFTER_QUADS:
                return
            self._unflushed = 0
        with self.write_guard:
            self.store.flush()

    def write(self, writes: Iterable[AssetWrite]) -> None:
        """Replace each asset's graph (its quads only), one atomic commit per asset."""
        writes = list(writes)
        for write in writes:
            stray = [q for q in write.quads if q.graph_name != ox.NamedNode(write.iri)]
            if stray:
                raise ValueError(f"quad outside the graph of {write.iri}: {stray[0]}")
        self.index.mark_pending(w.iri for w in writes)
        for write in writes:
            self._replace_graph(write.iri, write.quads)
        documents = [(w.iri, indexed_document(w.iri, w.quads)) for w in writes]
        self.index.apply([d for _, d in documents if d], [iri for iri, d in documents if d is None])

    def delete(self, iri: str) -> bool:
        """Remove an asset's graph and its index entry; False if there was no such asset."""
        if not self.store.contains_named_graph(ox.NamedNode(iri)):
            return False
        self.write([AssetWrite(iri, [])])
        return True

    def update(self, sparql: str, base_iri: str | None = None) -> int:
        """Run a SPARQL 1.1 Update (the administrator's raw access); returns how many assets were re-indexed.

        Oxigraph applies the whole request in one transaction. Unlike `write`, it bypasses the
        SHACL shapes: what it writes is the administrator's responsibility. The search index is
        kept in step with the crash protocol: the graphs the update may write (read from its
        text; every asset when that cannot be told) are marked pending first and re-indexed
        from the store after it, failed or not. Raises SyntaxError for an invalid update."""
        written = graphs_written(sparql, base_iri)
        marks = [_EVERY_ASSET] if written is ANY_GRAPH else \
            sorted(g for g in written if g not in SYSTEM_GRAPHS and not g.startswith(_STAGING_PREFIX))
        self.index.mark_pending(marks)
        try:
            with self.write_guard:
                self.store.update(sparql, base_iri=base_iri)
        finally:
            # How much an update wrote is not known (DELETE WHERE, CLEAR): it flushes what it left.
            self._written(FLUSH_AFTER_QUADS)
            count = self.reindex() if written is ANY_GRAPH else self._reindex(marks)
            self.index.apply([], [_EVERY_ASSET])
        return count

    # -- reads ---------------------------------------------------------------------------------
    def asset_quads(self, iri: str) -> list[ox.Quad]:
        return list(self.store.quads_for_pattern(None, None, None, ox.NamedNode(iri)))

    def contains(self, iri: str) -> bool:
        return self.store.contains_named_graph(ox.NamedNode(iri))

    def query(self, sparql: str, bindings: Mapping[str, ox.NamedNode | ox.Literal] | None = None,
              default_graph: list[ox.NamedNode] | None = None, named_graphs: list[ox.NamedNode] | None = None,
              base_iri: str | None = None) -> Any:
        """Run SPARQL; `bindings` substitute variables (values are never pasted into the text).

        The default graph is the union of all graphs unless the query has FROM / FROM NAMED or
        `default_graph` is given. `default_graph` and `named_graphs` replace the query's FROM and
        FROM NAMED, even when empty (an empty list: no graph). `base_iri` resolves relative IRIs.
        """
        substitutions = {ox.Variable(name): value for name, value in (bindings or {}).items()}
        options: dict[str, Any] = {"substitutions": substitutions or None, "base_iri": base_iri}
        if default_graph is not None:
            options["default_graph"] = default_graph
        if named_graphs is not None:
            options["named_graphs"] = named_graphs
        union = default_graph is None and not has_dataset_clause(sparql)
        try:  # Oxigraph snapshots the store when the query starts: no lock against writes is needed
            return self.store.query(sparql, use_default_graph_as_union=union, **options)
        except RuntimeError as exc:
            if "SELECT projection" in str(exc):
                raise ValueError(f"{exc}: Oxigraph binds only variables the query selects "
                                 "(SEP-0007); add them to the SELECT clause") from None
            raise

    def named_query(self, name: str, **bindings: ox.NamedNode | ox.Literal) -> Any:
        return self.query(query_text(name), bindings)

    def visible_graphs(self, readers: Readers) -> list[str] | None:
        """The graphs `readers` may query (their assets' and the system graphs), or None when nothing
        needs hiding from them (an administrator, or a store whose assets are all public)."""
        if readers is None or not self.index.has_restricted():
            return None
        return sorted({*self.index.visible_iris(readers), *SYSTEM_GRAPHS})

    def search(self, text: str, readers: Readers = None, limit: int = 20, kind: str | None = None) -> list[SearchHit]:
        """Free-text search; `readers` (the VOs of whoever asks) hides other VOs' non-public assets."""
        return self.index.search(text, readers, limit, kind)

    def export(self, format: ox.RdfFormat, assets_only: bool = False) -> bytes:
        """The store serialised; formats without named graphs (Turtle) get the merge of all graphs."""
        quads = (q for q in self.store if not (assets_only and q.graph_name.value in SYSTEM_GRAPHS))
        if not format.supports_datasets:
            return ox.serialize({ox.Triple(q.subject, q.predicate, q.object) for q in quads}, format=format)
        return ox.serialize(quads, format=format)

    def stats(self) -> dict[str, Any]:
        counts = {str(row["kind"].value)[len(AI4KG):]: int(row["assets"].value)
                  for row in self.named_query("asset-counts")}
        return {"assets": sum(counts.values()), "assets_by_kind": counts, "triples": len(self.store),
                "search_entries": self.index.count(), "data_dir": str(self.settings.data_dir or "(memory)"),
                "base_url": self.settings.base_url}


