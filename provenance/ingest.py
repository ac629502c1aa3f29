"""The provenance write path: fragment -> schema -> records -> RML (compiled) -> SHACL -> one
atomic commit of the activity's provenance graph, with the fragment kept verbatim.

    fragment (JSON) -> origin, its JSON Schema (mappings/provenance/ORIGIN.schema.json)
        -> the module it is about (from the catalogue: VO, visibility, the run and job its
           metadata names) -> records (provenance/records.py)
        -> mappings/provenance/provenance.rml.ttl -> PROV-O quads in the activity's graph
        -> SHACL (shapes/) on those quads -> fragment stored, graph replaced, mark cleared

The same fragment (its key: the build, the run, the job) with the same content changes nothing;
with new content (a build that finished) it replaces the activity's graph. A fragment with any
error writes nothing and says which field broke which rule. `remap` runs stored fragments through
the mapping again: after the mapping changes (`ai4kg provenance remap`), and for the fragments
of a module whose catalogue entry changed (their VO, visibility and links follow the module).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import pyoxigraph as ox

from ..graph.namespaces import AI4KG, RDF_TYPE, asset_iri
from ..graph.store import AssetWrite, KnowledgeGraph, search_document
from ..graph.validation import validate
from ..metadata.issues import Issue
from ..metadata.loader import ParseError, parse_json
from ..metadata.rml import RmlMapping, mapping_path
from .fragments import FragmentStore, StoredFragment, canonical, digest_of, now
from ..threads import once
from .records import (BUILDERS, FIELD, MAX_FRAGMENT_DEPTH, Application, FragmentError, Iris, Mapped, Origin, application_field,
                      application_name, check, fragment_key, origin_of, value_at)

BATCH_SIZE = 200
"""Fragments mapped and validated together: pyshacl costs a fixed amount per call."""


@once
def provenance_mapping() -> RmlMapping:
    return RmlMapping(mapping_path("provenance/provenance"))


@dataclass
class Outcome:
    """What became of one fragment."""

    key: str | None
    status: str
    """created, updated, unchanged, invalid, forbidden"""
    activity: str | None = None
    origin: str | None = None
    issues: list[Issue] = field(default_factory=list)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "status": self.status, "activity": self.activity, "origin": self.origin,
                "errors": [i.as_dict() for i in self.errors],
                "warnings": [i.as_dict() for i in self.issues if i.severity == "warning"]}


Gate = Callable[[Application], str | None]
"""Says whether a writer may record provenance of a module: None if so, else `unknown` (the
writer may not see it: reported as no such module) or `forbidden`."""


@dataclass
class _Prepared:
    outcome: Outcome
    mapped: Mapped | None = None
    stored: StoredFragment | None = None
    application: Application | None = None


class Provenance:
    """The fragments of one knowledge graph and the write path from them to its provenance graphs."""

    def __init__(self, graph: KnowledgeGraph):
        self.graph = graph
        self.fragments: FragmentStore = graph.fragments
        self.iris = Iris(graph.settings.base_url)

    # -- the catalogue's side --------------------------------------------------------------------
    def application(self, name: str | None) -> Application | None:
        """The module of that identifier, as the catalogue describes it now; None if there is none."""
        if not name:
            return None
        return self._application_at(asset_iri(self.graph.settings.base_url, "Module", name))

    def _application_at(self, iri: str) -> Application | None:
        quads = self.graph.asset_quads(iri)
        document = search_document(iri, quads)
        if document is None or document.kind != "Module":
            return None
        values: dict[str, list[str]] = {}
        for quad in quads:
            if quad.subject.value == iri and quad.predicate.value.startswith(AI4KG):
                values.setdefault(quad.predicate.value[len(AI4KG):], []).append(quad.object.value)
        return Application(iri, document.identifier, document.vo, document.visibility,
                           (values.get("dockerImage") or [None])[0], (values.get("sourceCode") or [None])[0],
                           frozenset(values.get("mlflowRun", [])), frozenset(values.get("nomadJob", [])))

    def application_of_repository(self, full_name: str) -> Application | None:
        """The module whose source code is the GitHub repository `owner/name`."""
        for url in (f"https://github.com/{full_name}", f"https://github.com/{full_name}.git"):
            rows = list(self.graph.named_query("module-by-source", source=ox.NamedNode(url)))
            if rows:
                return self._application_at(rows[0]["module"].value)
        return None

    # -- writes --------------------------------------------------------------------------------------
    def ingest(self, fragments: Iterable[tuple[Any, str]], gate: Gate | None = None) -> list[Outcome]:
        """Map, check and write each (fragment, where it came from); one outcome per fragment, in order.
        A fragment is a JSON object, or JSON text or bytes (kept verbatim as the stored fragment).

        Fragments are handled BATCH_SIZE at a time; each is committed on its own (its activity's
        graph replaced in one transaction), and a fragment with any error writes nothing."""
        outcomes: list[Outcome] = []
        batch: list[tuple[Any, str]] = []
        for item in fragments:
            batch.append(item)
            if len(batch) == BATCH_SIZE:
                outcomes += self._ingest_batch(batch, gate)
                batch = []
        if batch:
            outcomes += self._ingest_batch(batch, gate)
        return outcomes

    def _ingest_batch(self, batch: list[tuple[Any, str]], gate: Gate | None) -> list[Outcome]:
        with self.fragments.writing:
            return self._ingest_locked(batch, gate)

    def _ingest_locked(self, batch: list[tuple[Any, str]], gate: Gate | None) -> list[Outcome]:
        prepared = [self._prepare(fragment, source, gate) for fragment, source in batch]
        # The same event twice in one batch: the last one counts, the earlier ones are unchanged.
        last = {p.outcome.key: p for p in prepared if p.mapped}
        stored = self.fragments.digests(last)
        for item in prepared:
            if item.mapped is None:
                continue
            if last[item.outcome.key] is not item or stored.get(item.outcome.key) == item.stored.digest:
                item.outcome.status = "unchanged"
                item.mapped = None
            else:
                item.outcome.status = "updated" if item.outcome.key in stored else "created"
        self._map_and_commit([p for p in prepared if p.mapped])
        return [p.outcome for p in prepared]

    def _prepare(self, fragment: Any, source: str, gate: Gate | None, received: str | None = None) -> _Prepared:
        outcome = Outcome(None, "invalid")
        try:
            text, fragment = _parsed(fragment)
            origin = origin_of(fragment)
            outcome.origin = origin
            check(origin, fragment)
            outcome.key = fragment_key(origin, fragment)
            application = self._application_for(origin, fragment)
            refusal = gate(application) if gate and application else None
            if application is None or refusal == "unknown":
                name = (fragment["repository"]["full_name"] if origin == "github-actions"
                        else application_name(origin, fragment))
                raise FragmentError([Issue(application_field(origin, fragment), "unknown-module",
                                           "names no module in the catalogue: publish the module first", name)])
            if refusal == "forbidden":
                outcome.status = "forbidden"
                outcome.issues.append(Issue(application_field(origin, fragment), "forbidden",
                                            f"the module belongs to the VO {application.vo!r}, which you are not a member of",
                                            application.identifier))
                return _Prepared(outcome)
            mapped = BUILDERS[origin](fragment, application, self.iris)
            if origin == "nomad" and self._managed_deployment(mapped.activity):
                raise FragmentError([Issue("job_ID", "managed", "the platform ran this job itself: its deployment "
                                           "is recorded by the deployments service, not from fragments",
                                           fragment["job_ID"])])
        except FragmentError as exc:
            outcome.issues = exc.issues
            return _Prepared(outcome)
        outcome.activity, outcome.issues = mapped.activity, list(mapped.warnings)
        # Kept as it came (the bytes posted, the file read); the same content in another layout or
        # key order is the same fragment, so the digest is of its canonical form.
        stored = StoredFragment(mapped.key, origin, application.iri, mapped.activity, source, received or now(),
                                digest_of(canonical(fragment)), text)
        return _Prepared(outcome, mapped, stored, application)

    def _managed_deployment(self, iri: str) -> bool:
        """Whether the deployments service (workloads/) keeps this deployment: its graph has a status
        history. A fragment must not replace that graph."""
        return any(True for _ in self.graph.store.quads_for_pattern(
            ox.NamedNode(iri), ox.NamedNode(AI4KG + "statusChange"), None, ox.NamedNode(iri)))

    def _application_for(self, origin: Origin, fragment: dict[str, Any]) -> Application | None:
        if origin == "github-actions":
            return self.application_of_repository(fragment["repository"]["full_name"])
        return self.application(application_name(origin, fragment))

    def _map_and_commit(self, items: list[_Prepared]) -> None:
        """Map the fragments together, check them together, then commit each on its own."""
        if not items:
            return
        records: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            for source, rows in item.mapped.records.items():  # type: ignore[union-attr]
                records.setdefault(source, []).extend(rows)
        by_graph: dict[str, list[ox.Quad]] = {}
        for quad in provenance_mapping().materialize(records):
            by_graph.setdefault(quad.graph_name.value, []).append(quad)
        context = self._context(items)
        owner = {(q.subject.value, q.predicate.value): graph for graph, quads in by_graph.items() for q in quads}
        subjects = {subject: graph for (subject, _), graph in owner.items()}
        for violation in validate([q for quads in by_graph.values() for q in quads] + context):
            graph = owner.get((violation.focus, violation.path or ""), subjects.get(violation.focus))
            if violation.severity != "violation" or graph is None:
                continue  # a warning, or a node of the context (validated when it was written)
            for item in items:
                if item.outcome.activity == graph:
                    item.outcome.status = "invalid"
                    item.outcome.issues.append(_issue_of(violation, item))
        valid = [i for i in items if i.outcome.status != "invalid"]
        if not valid:
            return
        self.fragments.put(i.stored for i in valid)  # type: ignore[misc]
        self.graph.write(AssetWrite(i.outcome.activity, by_graph.get(i.outcome.activity, []))  # type: ignore[arg-type]
                         for i in valid)
        self.fragments.mapped(i.outcome.key for i in valid)  # type: ignore[misc]

    def _context(self, items: list[_Prepared]) -> list[ox.Quad]:
        """What the shapes need to know of the nodes the new graphs name, from graphs that
        validation otherwise never reads (so its cost stays flat): the module as stored, and
        that the VO is one. Violations on these nodes themselves are not the fragment's."""
        scratch = ox.NamedNode("urn:ai4kg:validation-context")
        modules = {i.application.iri for i in items}  # type: ignore[union-attr]
        vos = {self.iris.vo(i.application.vo) for i in items}  # type: ignore[union-attr]
        context = [ox.Quad(q.subject, q.predicate, q.object, scratch)
                   for iri in sorted(modules) for q in self.graph.asset_quads(iri)]
        return context + [ox.Quad(ox.NamedNode(vo), ox.NamedNode(RDF_TYPE),
                                  ox.NamedNode(AI4KG + "VirtualOrganisation"), scratch) for vo in sorted(vos)]

    def remap(self, fragments: Iterable[StoredFragment]) -> list[Outcome]:
        """Derive the provenance graphs of stored fragments again (their content unchanged)."""
        outcomes: list[Outcome] = []
        chunk: list[_Prepared] = []

        def flush() -> None:
            with self.fragments.writing:
                self._map_and_commit([p for p in chunk if p.mapped])
            outcomes.extend(p.outcome for p in chunk)
            chunk.clear()

        for stored in fragments:
            item = self._prepare(stored.fragment, stored.source, None, stored.received)
            if item.mapped is not None:
                item.outcome.status = "remapped"
            chunk.append(item)
            if len(chunk) == BATCH_SIZE:
                flush()
        flush()
        return outcomes

    def remap_all(self) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for batch in self.fragments.all(BATCH_SIZE):
            outcomes += self.remap(batch)
        return outcomes

    def refresh_applications(self, iris: Iterable[str]) -> None:
        """Remap the fragments of modules just written: their activities follow the module's VO,
        visibility, image and the run and job its metadata names."""
        for iri in iris:
            stored = self.fragments.of_application(iri)
            if stored:
                self.remap(stored)


def _parsed(fragment: Any) -> tuple[str, Any]:
    """The fragment's text as it will be stored, and the fragment: JSON text or bytes are kept as
    they are (a webhook's body, a file), an object is written as canonical JSON."""
    if isinstance(fragment, (bytes, str)):
        try:
            text = fragment.decode("utf-8") if isinstance(fragment, bytes) else fragment
            return text, parse_json(text, MAX_FRAGMENT_DEPTH)  # bounded nesting and digits, no duplicate keys
        except UnicodeDecodeError as exc:
            raise FragmentError([Issue("", "json", f"not a JSON document: {exc}", None)]) from None
        except ParseError as exc:
            raise FragmentError([Issue(f"line {exc.line}" if exc.line else "", exc.rule,
                                       f"not a JSON document: {exc.message}", None)]) from None
    return canonical(fragment), fragment


def _issue_of(violation: Any, item: _Prepared) -> Issue:
    """A SHACL violation on a fragment's graph, named by the fragment field behind the triple, with
    the value as the fragment gives it."""
    found = provenance_mapping().field_of(item.mapped.records, violation.focus, violation.path or "") \
        if item.mapped and violation.path else None
    if found is None:
        return Issue(violation.path or violation.focus, violation.rule, violation.message, violation.value)
    key, record = found
    field = record.get(FIELD + key, key)
    value = value_at(item.stored.fragment, field) if item.stored else None  # type: ignore[union-attr]
    return Issue(field, violation.rule, violation.message, value if value is not None else violation.value)


def recover(graph: KnowledgeGraph) -> None:
    """Map again the fragments a crash left stored but unmapped (called when the store opens)."""
    unmapped = graph.fragments.unmapped()
    if unmapped:
        Provenance(graph).remap(unmapped)
