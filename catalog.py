"""The catalog's write path for ai4-metadata files: read, check, map, validate, commit.

    file -> loader (safe parse) -> JSON Schema (structure, formats) -> records -> RML (compiled: metadata/rml.py)
         -> SHACL on the new graph only -> one atomic commit per asset + search index

Nothing is written for a file with any error; every issue names the field as the user wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Literal

import pyoxigraph as ox

from .config import DEFAULT_BASE_URL, DEFAULT_VO, VISIBILITIES
from .graph.namespaces import AI4KG, RDF_TYPE, asset_iri
from .graph.validation import Violation, validate
from .metadata import loader, vocabulary
from .metadata.issues import Issue
from .metadata.records import VOCABULARY_FIELDS, Records, derive_identifier, from_records, is_valid_identifier, to_records
from .metadata.rml import RmlMapping, mapping_for, owner_of
from .metadata.schema import Generation, check_document, detect_generation
from .metadata.values import value_issues

if TYPE_CHECKING:  # the store is opened by an import, not by a validation
    from .graph.store import AssetWrite, KnowledgeGraph

Status = Literal["imported", "valid", "invalid", "unreadable", "skipped"]
METADATA_SUFFIXES = (".yml", ".yaml", ".json")
BATCH_SIZE = 200
"""Files mapped and validated together: pyshacl has a fixed cost per call."""


@dataclass
class FileReport:
    path: str
    status: Status
    issues: list[Issue] = field(default_factory=list)
    identifier: str | None = None
    iri: str | None = None
    generation: Generation | None = None

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "status": self.status, "identifier": self.identifier, "iri": self.iri,
                "metadata_generation": self.generation, "errors": [i.as_dict() for i in self.errors],
                "warnings": [i.as_dict() for i in self.warnings]}


PUBLIC = "public"


@dataclass(frozen=True)
class ImportOptions:
    """What an import adds to every document: its identifier (one file only), license, the VO that
    owns the asset and who may see it (public: everyone; otherwise members of its VO)."""

    identifier: str | None = None
    license: str | None = None
    vo: str = DEFAULT_VO
    visibility: str = PUBLIC

    def issues(self) -> list[Issue]:
        found = []
        if self.identifier is not None and not is_valid_identifier(self.identifier):
            found.append(Issue("identifier", "format", "an identifier is 1-128 letters, digits, '.', '_' or '-'",
                               self.identifier))
        if not is_valid_identifier(self.vo):
            found.append(Issue("vo", "format", "a VO name is 1-128 letters, digits, '.', '_' or '-'", self.vo))
        if self.license is not None:  # free text that goes into the graph as it is
            found.extend(value_issues(self.license, ("license",)))
        if self.visibility not in VISIBILITIES:
            found.append(Issue("visibility", "allowed-values", f"must be one of: {', '.join(VISIBILITIES)}",
                               self.visibility))
        return found


@dataclass
class _Prepared:
    report: FileReport
    document: dict[str, Any] | None = None
    records: Records | None = None
    quads: list[ox.Quad] = field(default_factory=list)


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and the metadata files (.yml, .yaml, .json) below each folder, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in METADATA_SUFFIXES))
        else:
            found.append(path)
    return found


@dataclass(frozen=True)
class InlineFile:
    """A metadata document that arrived as bytes (an API request body) rather than as a file."""

    name: str
    data: bytes


Source = Path | InlineFile


def _read_and_check(source: Source, base_url: str, options: ImportOptions) -> _Prepared:
    report = FileReport(source.name if isinstance(source, InlineFile) else str(source), "invalid")
    try:
        document = (loader.parse_bytes(source.data, source.name) if isinstance(source, InlineFile)
                    else loader.read_file(source))
    except loader.UnreadableFile as exc:
        report.status = "unreadable"
        report.issues.append(Issue("", "unreadable", str(exc)))
        return _Prepared(report)
    except loader.ParseError as exc:
        report.issues.append(Issue(f"line {exc.line}" if exc.line else "", exc.rule, exc.message))
        return _Prepared(report)
    generation = detect_generation(document)
    report.generation = generation
    report.issues.extend(check_document(document, generation))
    report.issues.extend(options.issues())
    if report.errors:
        return _Prepared(report, document)
    report.identifier = options.identifier or derive_identifier(document, generation, Path(source.name).stem)
    report.iri = asset_iri(base_url, "Module", report.identifier)
    records = to_records(document, generation, report.iri, report.identifier, options.license,
                         asset_iri(base_url, "VirtualOrganisation", options.vo), options.visibility)
    return _Prepared(report, document, records)


def _map_and_validate(batch: list[_Prepared]) -> None:
    """Map a batch of checked documents (one mapping call per generation) and SHACL-validate them."""
    for generation in ("v1", "v2"):
        members = [p for p in batch if p.records is not None and p.report.generation == generation]
        if not members:
            continue
        mapping = mapping_for(generation)
        by_asset = _materialize(mapping, members)
        members = [p for p in members if p.records is not None]
        all_quads = [q for quads in by_asset.values() for q in quads]
        violations: dict[str, list[Violation]] = {}
        for violation in validate(all_quads):
            violations.setdefault(owner_of(violation.focus), []).append(violation)
        for prepared in members:
            iri = prepared.report.iri or ""
            prepared.quads = by_asset.get(iri, [])
            for violation in violations.get(iri, []):
                prepared.report.issues.append(_issue_of(violation, mapping, prepared))
            prepared.report.issues.sort(key=lambda i: (i.severity != "error", i.field))


def _materialize(mapping: RmlMapping, members: list[_Prepared]) -> dict[str, list[ox.Quad]]:
    """The quads of each member's asset, from one mapping call for the batch.

    Should the batch fail (the schema lets nothing through that the engine rejects, but a mapping
    error must not take good files down with one bad one), each file is mapped on its own and the
    failing ones are reported.
    """
    def merged(group: list[_Prepared]) -> Records:
        records: Records = {}
        for prepared in group:
            for source, rows in (prepared.records or {}).items():
                records.setdefault(source, []).extend(rows)
        return records

    try:
        quads = mapping.materialize(merged(members))
    except Exception:  # noqa: BLE001 - narrowed below, file by file
        quads = []
        for prepared in members:
            try:
                quads.extend(mapping.materialize(merged([prepared])))
            except Exception as exc:  # noqa: BLE001 - reported to the user as this file's error
                prepared.report.issues.append(Issue("", "mapping", f"could not be mapped to RDF: {exc}"))
                prepared.records = None
    by_asset: dict[str, list[ox.Quad]] = {}
    for quad in quads:
        by_asset.setdefault(quad.graph_name.value, []).append(quad)
    return by_asset


_RULES = {"MinCount": "required", "MaxCount": "single-value", "Pattern": "format", "Datatype": "datatype",
          "Node": "format", "LessThanOrEquals": "date-order", "In": "allowed-values", "MinInclusive": "minimum",
          "MaxLength": "max-length", "MinLength": "non-empty", "Class": "type", "NodeKind": "format"}


def _issue_of(violation: Violation, mapping: RmlMapping, prepared: _Prepared) -> Issue:
    """A SHACL result said in the user's terms: the document field, the rule, the value they wrote."""
    records = prepared.records or {}
    found = mapping.field_of(records, violation.focus, violation.path) if violation.path else None
    field_path, record = found if found else (_local(violation.path), {})
    if "position" in record and field_path.startswith("tosca."):
        field_path = f"tosca[{record['position']}].{field_path[len('tosca.'):]}"
    value: Any = violation.value
    rule = _RULES.get(violation.rule, violation.rule.lower())
    if field_path in VOCABULARY_FIELDS:
        rule = "vocabulary"
        scheme = VOCABULARY_FIELDS[field_path]
        wanted = value.rsplit("/", 1)[-1] if value else None
        value = next((v for v in (prepared.document or {}).get(field_path, [])
                      if vocabulary.concept_slug(scheme, v) == wanted), value)
    message = violation.message
    if rule == "vocabulary":
        message += "; allowed values: " + ", ".join(sorted(vocabulary.labels().get(VOCABULARY_FIELDS[field_path], {}).values()))
    elif rule == "required":
        message = "this field is required"
    severity = "warning" if violation.severity in ("warning", "info") else "error"
    return Issue(field_path, rule, message, value, severity)  # type: ignore[arg-type]


def _local(iri: str | None) -> str:
    return (iri or "").rsplit("#", 1)[-1].rsplit("/", 1)[-1]


def _batches(paths: list[Source], base_url: str, options: ImportOptions) -> Iterator[list[_Prepared]]:
    batch: list[_Prepared] = []
    iris: set[str] = set()
    for path in paths:
        prepared = _read_and_check(path, base_url, options)
        if prepared.report.iri in iris:  # the same asset twice: map it in the next batch
            yield batch
            batch, iris = [], set()
        batch.append(prepared)
        if prepared.report.iri:
            iris.add(prepared.report.iri)
        if len(batch) >= BATCH_SIZE:
            yield batch
            batch, iris = [], set()
    if batch:
        yield batch


def validate_files(paths: list[Source], base_url: str, options: ImportOptions = ImportOptions(),
                   on_file: Callable[[FileReport], None] | None = None) -> list[FileReport]:
    """Check files fully (schema, mapping, SHACL) without touching any store."""
    reports = []
    for batch in _batches(paths, base_url, options):
        _map_and_validate(batch)
        for prepared in batch:
            if prepared.report.status == "invalid" and not prepared.report.errors and prepared.document is not None:
                prepared.report.status = "valid"
            reports.append(prepared.report)
            if on_file:
                on_file(prepared.report)
    return reports


def import_files(graph: KnowledgeGraph, paths: list[Source], options: ImportOptions = ImportOptions(),
                 on_file: Callable[[FileReport], None] | None = None) -> list[FileReport]:
    """Import files into the store; each valid file's asset is committed atomically, bad files write nothing.

    A legacy V1 file does not replace a module the store already holds in ai4-metadata 2.x form
    (folders often hold both metadata.json and ai4-metadata.yml of one module): it is skipped.
    """
    from .graph.store import AssetWrite

    reports = []
    for batch in _batches(paths, graph.settings.base_url, options):
        _map_and_validate(batch)
        writes = []
        for prepared in batch:
            report = prepared.report
            if report.errors or prepared.document is None:
                continue
            if report.generation == "v1" and _holds_v2(graph, report.iri or "", writes):
                report.status = "skipped"
                report.issues.append(Issue("", "superseded", f"{report.iri} is already described by an ai4-metadata "
                                           "2.x file; this legacy V1 file was not imported", None, "warning"))
                continue
            writes.append(AssetWrite(report.iri or "", prepared.quads))
            report.status = "imported"
        graph.write(writes)
        _refresh_provenance(graph, [w.iri for w in writes])
        for prepared in batch:
            reports.append(prepared.report)
            if on_file:
                on_file(prepared.report)
    return reports


def _refresh_provenance(graph: KnowledgeGraph, iris: list[str]) -> None:
    """The provenance graphs of a module follow its catalogue entry (VO, visibility, the run and
    job its metadata names): map its stored fragments again when it changes."""
    if any(graph.fragments.of_application(iri) for iri in iris):
        from .provenance.ingest import Provenance  # the provenance write path imports this module's peers

        Provenance(graph).refresh_applications(iris)


def _holds_v2(graph: KnowledgeGraph, iri: str, pending: list[AssetWrite]) -> bool:
    version = ox.NamedNode(AI4KG + "metadataVersion")
    for write in pending:
        if write.iri == iri:
            return any(q.predicate == version and q.object.value != "1.0.0" for q in write.quads)
    return any(q.object.value != "1.0.0"
               for q in graph.store.quads_for_pattern(ox.NamedNode(iri), version, None, ox.NamedNode(iri)))


def document_of(quads: list[ox.Quad], generation: Generation | None = None) -> dict[str, Any]:
    """The ai4-metadata document an asset graph describes, in the generation it came in unless asked.

    Both mappings write the same ontology terms, so reading a graph with the 2.x mapping is the
    migration of a V1 module: fields with no 2.x place are left out (see `migrate_file`).
    """
    version = next((q.object.value for q in quads if q.predicate.value == AI4KG + "metadataVersion"), None)
    origin: Generation = "v1" if version == "1.0.0" else "v2"
    target = generation or origin
    document = from_records(mapping_for(target).records_from_graph(quads), target, vocabulary.labels())
    if origin == "v1" and target == "v2":
        document["metadata_version"] = LATEST_VERSION
        dates = document.setdefault("dates", {})
        if "created" in dates:
            dates.setdefault("updated", dates["created"])
        for required in ("tags", "tasks", "categories", "libraries"):
            document.setdefault(required, [])
    return document


LATEST_VERSION = "2.3.0"
_V2_ORDER = ["metadata_version", "title", "summary", "description", "doi", "dates", "links", "tags", "tasks",
             "categories", "libraries", "data-type", "resources", "provenance"]


def _document_field(record_key: str) -> str:
    """The document field a record key stands for (template node keys stand for 'tosca')."""
    return "tosca" if record_key.startswith("tosca") or record_key == "position" else record_key


def migrate_file(path: Path) -> tuple[dict[str, Any] | None, FileReport]:
    """The ai4-metadata 2.x form of a legacy V1 file, and a report naming what has no 2.x field."""
    prepared = _read_and_check(path, DEFAULT_BASE_URL, ImportOptions())
    report = prepared.report
    if report.generation == "v2" and not report.errors:
        report.issues.append(Issue("", "already-v2", "the file is already ai4-metadata 2.x", None, "warning"))
    if report.errors or prepared.records is None:
        return None, report
    _map_and_validate([prepared])
    if report.errors:
        return None, report
    document = document_of(prepared.quads, "v2")
    v2_predicates = {o.predicate for rule in mapping_for("v2").rules for o in rule.objects}
    v1 = mapping_for("v1")
    dropped = sorted({_document_field(found[0]) for q in prepared.quads if q.predicate.value not in v2_predicates
                      and q.predicate.value != RDF_TYPE
                      and (found := v1.field_of(prepared.records, q.subject.value, q.predicate.value))})
    for name in dropped:
        report.issues.append(Issue(name, "no-v2-field", "ai4-metadata 2.x has no field for this; it is left out",
                                   None, "warning"))
    if (prepared.document or {}).get("license"):
        report.issues.append(Issue("license", "no-v2-field", "ai4-metadata 2.x has no license field: give it with "
                                   "`ai4kg import --license`", prepared.document["license"], "warning"))
    report.issues.append(Issue("", "review", "V1 has no tasks, categories or libraries: fill them in", None, "warning"))
    report.status = "valid"
    ordered = {key: document[key] for key in _V2_ORDER if key in document}
    return ordered, report
