"""Publishing and withdrawing modules: the one write path behind REST's PUT / DELETE and GraphQL's
mutations, so both check the same rights and run the same validated import.

Rights: publishing needs a signed-in agent; a member of a VO publishes for that VO (the
platform administrator for any); an existing module of another VO can be neither replaced nor
withdrawn. A module the agent may not see is reported as absent, never as forbidden.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..catalog import PUBLIC, ImportOptions, InlineFile, import_files
from ..graph.namespaces import asset_iri
from ..graph.store import KnowledgeGraph, search_document
from ..metadata import loader
from ..metadata.records import is_valid_identifier
from .auth import Identity
from .problems import Problem


@dataclass(frozen=True)
class Published:
    name: str
    iri: str
    vo: str
    visibility: str
    created: bool
    """True when the module is new, False when it replaced an existing one."""
    warnings: list[dict[str, Any]] = field(default_factory=list)


def writer(identity: Identity | None, action: str = "publish") -> Identity:
    """The signed-in agent, or 401 (saying what signing in is needed for)."""
    if identity is None:
        raise Problem(401, "Unauthorized", f"sign in (a bearer token or an API key) to {action}", "Authorization",
                      headers={"WWW-Authenticate": "Bearer"})
    return identity


def owning_vo(identity: Identity, vo: str | None) -> str:
    if vo is None:
        if len(identity.vos) != 1:
            raise Problem(400, "VO needed", "you belong to several VOs or none: say which owns the module",
                          "vo", None)
        return next(iter(identity.vos))
    if not identity.admin and vo not in identity.vos:
        raise Problem(403, "Forbidden", f"you are not a member of {vo!r}", "vo", vo)
    return vo


def publish_module(graph: KnowledgeGraph, identity: Identity | None, name: str, body: bytes, is_json: bool,
                   vo: str | None = None, visibility: str = PUBLIC) -> Published:
    """Validate and write one ai4-metadata document (YAML, or JSON when `is_json`) as module `name`.

    The same checks as `ai4kg import` (schema, mapping, SHACL): any error writes nothing and
    raises a 422 Problem naming each field. Blocking: call it from a worker thread."""
    identity = writer(identity)
    owner = owning_vo(identity, vo)
    if not is_valid_identifier(name):
        raise Problem(422, "Invalid name", "a name is 1-128 letters, digits, '.', '_' or '-'", "name", name)
    iri = asset_iri(graph.settings.base_url, "Module", name)
    existing = search_document(iri, graph.asset_quads(iri))
    if existing is not None and not identity.admin and existing.vo not in identity.vos:
        raise Problem(403, "Forbidden", f"{name!r} belongs to another VO", "name", name)
    if len(body) > loader.MAX_FILE_BYTES:
        raise Problem(413, "Body too large", f"metadata documents are limited to {loader.MAX_FILE_BYTES:,} bytes")
    source = InlineFile(f"{name}.json" if is_json else f"{name}.yml", body)
    [report] = import_files(graph, [source], ImportOptions(identifier=name, vo=owner, visibility=visibility))
    if report.status != "imported":
        raise Problem.of_issues(422, "Invalid metadata", report.errors)
    return Published(name, iri, owner, visibility, existing is None,
                     [issue.as_dict() for issue in report.warnings])


def withdraw_module(graph: KnowledgeGraph, identity: Identity | None, name: str) -> str:
    """Remove module `name`; returns its IRI. 404 when the agent cannot see it, 403 when it can
    but it belongs to another VO."""
    identity = writer(identity)
    iri = asset_iri(graph.settings.base_url, "Module", name) if is_valid_identifier(name) else ""
    existing = search_document(iri, graph.asset_quads(iri)) if iri else None
    if existing is None or (not identity.admin and existing.vo not in identity.vos
                            and existing.visibility != PUBLIC):
        raise Problem(404, "Not found", f"no module named {name!r}", "name", name)
    if not identity.admin and existing.vo not in identity.vos:
        raise Problem(403, "Forbidden", f"{name!r} belongs to another VO", "name", name)
    graph.delete(iri)
    return iri
