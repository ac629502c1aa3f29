"""Publishing and withdrawing modules: the one write path behind REST's PUT / DELETE and GraphQL's
mutations, so both check the same rights and run the same validated import.

Rights: publishing needs a signed-in agent; a member of a VO publishes for that VO (the
platform administrator for any); an existing module of another VO can be neither replaced nor
withdrawn. Publishing under another VO's module name gets the same 403 whether the agent may see
that module or not, and only once the document was found valid (an invalid one gets the 422 a
free name gets); withdrawing a module the agent may not see answers as if it were absent. So a
private module's existence is never told.

Who owns a name is decided under a lock per name (`NAMES`), held from the check of the existing
owner to the end of the write: of two VOs creating one new name at once exactly one gets it, and
the other its 403, never an acknowledged write that the other then overwrites. The lock is this
process's: the server is the only writer of its store (one process per store directory).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..catalog import PUBLIC, ImportOptions, InlineFile, import_files, validate_files
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


class NameLocks:
    """A lock per name, made when first wanted and dropped when nobody holds or waits for it."""

    @dataclass
    class _Entry:
        lock: threading.Lock = field(default_factory=threading.Lock)
        users: int = 0

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._entries: dict[str, NameLocks._Entry] = {}

    @contextmanager
    def hold(self, name: str) -> Iterator[None]:
        with self._guard:
            entry = self._entries.setdefault(name, NameLocks._Entry())
            entry.users += 1
        try:
            with entry.lock:
                yield
        finally:
            with self._guard:
                entry.users -= 1
                if entry.users == 0:
                    del self._entries[name]

    def users(self, name: str) -> int:
        """How many writers hold or wait for the lock of `name` (for monitoring, and tests that
        need a writer to be inside)."""
        with self._guard:
            entry = self._entries.get(name)
            return entry.users if entry else 0


NAMES = NameLocks()
"""The locks of module names (keyed by the module's IRI), shared by REST and GraphQL."""


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


def name_taken(name: str) -> Problem:
    """The one answer to a write under another VO's module name, whether the writer may see that
    module or not."""
    return Problem(403, "Forbidden", f"the name {name!r} is taken by a module of another VO", "name", name)


def publish_module(graph: KnowledgeGraph, identity: Identity | None, name: str, body: bytes, is_json: bool,
                   vo: str | None = None, visibility: str = PUBLIC) -> Published:
    """Validate and write one ai4-metadata document (YAML, or JSON when `is_json`) as module `name`.

    The same checks as `ai4kg import` (schema, mapping, SHACL): any error writes nothing and
    raises a 422 Problem naming each field. A valid document under another VO's module name gets
    403, the same whether the agent may see that module or not. Blocking: call it from a worker thread."""
    identity = writer(identity)
    owner = owning_vo(identity, vo)
    if not is_valid_identifier(name):
        raise Problem(422, "Invalid name", "a name is 1-128 letters, digits, '.', '_' or '-'", "name", name)
    if len(body) > loader.MAX_FILE_BYTES:
        raise Problem(413, "Body too large", f"metadata documents are limited to {loader.MAX_FILE_BYTES:,} bytes")
    iri = asset_iri(graph.settings.base_url, "Module", name)
    source = InlineFile(f"{name}.json" if is_json else f"{name}.yml", body)
    options = ImportOptions(identifier=name, vo=owner, visibility=visibility)
    with NAMES.hold(iri):
        existing = search_document(iri, graph.asset_quads(iri))
        if existing is not None and not identity.admin and existing.vo not in identity.vos:
            # the document is judged first, as under a free name: an invalid one gets the same 422
            [report] = validate_files([source], graph.settings.base_url, options)
            if report.errors:
                raise Problem.of_issues(422, "Invalid metadata", report.errors)
            raise name_taken(name)
        [report] = import_files(graph, [source], options)
    if report.status != "imported":
        raise Problem.of_issues(422, "Invalid metadata", report.errors)
    return Published(name, iri, owner, visibility, existing is None,
                     [issue.as_dict() for issue in report.warnings])


def withdraw_module(graph: KnowledgeGraph, identity: Identity | None, name: str) -> str:
    """Remove module `name`; returns its IRI. 404 when the agent cannot see it, 403 when it can
    but it belongs to another VO."""
    identity = writer(identity)
    if not is_valid_identifier(name):
        raise Problem(404, "Not found", f"no module named {name!r}", "name", name)
    iri = asset_iri(graph.settings.base_url, "Module", name)
    with NAMES.hold(iri):  # the module checked is the module deleted, not one published in between
        existing = search_document(iri, graph.asset_quads(iri))
        if existing is None or (not identity.admin and existing.vo not in identity.vos
                                and existing.visibility != PUBLIC):
            raise Problem(404, "Not found", f"no module named {name!r}", "name", name)
        if not identity.admin and existing.vo not in identity.vos:
            raise Problem(403, "Forbidden", f"{name!r} belongs to another VO", "name", name)
        graph.delete(iri)
    return iri
