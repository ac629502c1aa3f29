"""OAI-PMH 2.0 at /oai: harvesters (EOSC, OpenAIRE, data.europa.eu) collect the catalogue's records.

    GET /oai?verb=...   POST /oai (application/x-www-form-urlencoded)   the six verbs

Records are assets (every kind the search index holds). An asset's OAI identifier is
`oai:<repository id>:<its IRI after the base URL>` (`oai:w3id.org:module/yolo` for
https://w3id.org/ai4kg/id/module/yolo with the default base); the repository id is
AI4KG_OAI_REPOSITORY_ID, by default the host of the base URL. Metadata formats: `oai_dc` (Dublin
Core, every kind), `dcat` (the DCAT-AP view, RDF/XML) and `mldcat_ap` (the MLDCAT-AP view, RDF/XML)
for the kinds those views describe. Sets: `kind:<Kind>`, `vo:<vo>`, `category:`, `task:`,
`library:` and `dataType:<concept>`, each under its parent (`task` holds every `task:...`).

What a harvester sees comes from the record log that the search index keeps in the same SQLite
transaction as its own rows (graph/search.py): per asset a sequence number that grows with every
change, a datestamp (UTC seconds, never going backwards), set memberships, and a tombstone when the
asset is removed (deletedRecord: persistent), and the record's Dublin Core fields, taken from the
asset's quads when it was written (graph/store.py `dublin_core`), so GetRecord and ListRecords in
oai_dc read SQLite only, never the store: a harvest's memory does not grow with the catalogue.
(`dcat` and `mldcat_ap` records are views of the store.) Lists run in sequence order and page by keyset:
the resumption token is the signed, stateless position (last sequence number, filters, cursor,
list size, expiry), so it survives a restart, and a record added during a harvest gets a higher
sequence number, so it comes at the end: nothing is lost or repeated. Readers see what
api/access.readers_of allows: anonymous harvesters public records (and public tombstones) only.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import hmac
import json
import os
import re
import time
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Callable
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import pyoxigraph as ox
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..config import positive_number
from ..graph.namespaces import AI4KG, ONTOLOGY_GRAPH, PLATFORM_GRAPH, SKOS, VOCAB, VOCABULARY_GRAPH
from ..graph.search import PUBLIC, SET_FACETS, LogRecord, Readers
from ..graph.store import KnowledgeGraph, dcmi_type, search_document
from ..graph.views import VIEWS, serialize
from .access import read, readers_of

OAI = "http://www.openarchives.org/OAI/2.0/"
OAI_DC = "http://www.openarchives.org/OAI/2.0/oai_dc/"
DC = "http://purl.org/dc/elements/1.1/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
GRANULARITY = "YYYY-MM-DDThh:mm:ssZ"
MEDIA_TYPE = "text/xml; charset=utf-8"
MAX_BODY = 64 * 1024
"""Bytes a POST body may have (the arguments of one request are a few hundred)."""

DEFAULT_PAGE_SIZE = 200
DEFAULT_TOKEN_LIFETIME = 24 * 3600


# -- settings --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OaiSettings:
    """The endpoint's settings, from the environment (unset: the defaults described here)."""

    repository_id: str | None = None
    """AI4KG_OAI_REPOSITORY_ID: the namespace part of OAI identifiers; None: the base URL's host."""
    repository_name: str | None = None
    """AI4KG_OAI_REPOSITORY_NAME; None: the platform catalogue's title (AI4KG_CATALOG_FILE)."""
    admin_email: str | None = None
    """AI4KG_OAI_ADMIN_EMAIL; None: the catalogue's contact point e-mail, else oai-admin@<repository id>."""
    page_size: int = DEFAULT_PAGE_SIZE
    """AI4KG_OAI_PAGE_SIZE: records or headers per list response."""
    token_lifetime: int = DEFAULT_TOKEN_LIFETIME
    """AI4KG_OAI_TOKEN_LIFETIME: seconds a resumption token stays valid."""

    @classmethod
    def from_env(cls) -> "OaiSettings":
        def number(name: str, default: int) -> int:
            return int(positive_number(name, int, default))

        return cls(repository_id=os.environ.get("AI4KG_OAI_REPOSITORY_ID") or None,
                   repository_name=os.environ.get("AI4KG_OAI_REPOSITORY_NAME") or None,
                   admin_email=os.environ.get("AI4KG_OAI_ADMIN_EMAIL") or None,
                   page_size=number("AI4KG_OAI_PAGE_SIZE", DEFAULT_PAGE_SIZE),
                   token_lifetime=number("AI4KG_OAI_TOKEN_LIFETIME", DEFAULT_TOKEN_LIFETIME))


# -- metadata formats ------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetadataFormat:
    prefix: str
    schema: str
    namespace: str
    view: str | None = None
    """The graph view (graph/views.py) serialised as RDF/XML; None: Dublin Core from the record log."""

    def kinds(self) -> frozenset[str] | None:
        """The asset kinds this format describes (None: every kind)."""
        return None if self.view is None else VIEWS[self.view].kinds

    def describes(self, kind: str) -> bool:
        kinds = self.kinds()
        return kinds is None or kind in kinds


FORMATS: dict[str, MetadataFormat] = {f.prefix: f for f in (
    MetadataFormat("oai_dc", "http://www.openarchives.org/OAI/2.0/oai_dc.xsd", OAI_DC),
    # RDF/XML has no XML schema: the schema named is the application profile the payload follows.
    MetadataFormat("dcat", VIEWS["dcat-ap"].profile, "http://www.w3.org/ns/dcat#", "dcat-ap"),
    MetadataFormat("mldcat_ap", VIEWS["mldcat-ap"].profile, "http://data.europa.eu/it6/", "mldcat-ap"),
)}


# -- arguments -------------------------------------------------------------------------------------
VERBS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # verb: (required arguments, optional arguments); resumptionToken is exclusive where it is allowed
    "Identify": ((), ()),
    "ListMetadataFormats": ((), ("identifier",)),
    "ListSets": ((), ("resumptionToken",)),
    "GetRecord": (("identifier", "metadataPrefix"), ()),
    "ListIdentifiers": (("metadataPrefix",), ("from", "until", "set", "resumptionToken")),
    "ListRecords": (("metadataPrefix",), ("from", "until", "set", "resumptionToken")),
}
ARGUMENTS = ("verb", "identifier", "metadataPrefix", "from", "until", "set", "resumptionToken")

_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_PREFIX = re.compile(r"[A-Za-z0-9\-_.!~*'()]+")
_SET_SPEC = re.compile(r"[A-Za-z0-9\-_.!~*'()]+(:[A-Za-z0-9\-_.!~*'()]+)*")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:(?:[A-Za-z0-9\-_.!~*'();/?:@&=+$,]|%[0-9A-Fa-f]{2})+")
"""What an identifier may look like (a URI without fragment or brackets); others are bad arguments."""
_LOCAL_SAFE = "-_.!~*'();/?:@&=+$,"
_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_SECOND = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z")
_REPOSITORY_ID = re.compile(r"[a-zA-Z][a-zA-Z0-9\-]*(\.[a-zA-Z][a-zA-Z0-9\-]*)+")
_EMAIL = re.compile(r"\S+@(\S+\.)+\S+")


class OaiError(Exception):
    """An OAI-PMH error: `code` is one of the protocol's error codes."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def parse_arguments(pairs: list[tuple[str, str]]) -> tuple[str, dict[str, str]]:
    """The verb and the other arguments of a request, checked as the protocol says; OaiError otherwise."""
    verbs = [value for key, value in pairs if key == "verb"]
    if not verbs:
        raise OaiError("badVerb", "the verb argument is missing")
    if len(verbs) > 1:
        raise OaiError("badVerb", "the verb argument is repeated")
    verb = verbs[0]
    if verb not in VERBS:
        raise OaiError("badVerb", f"{_shown(verb)} is not an OAI-PMH verb; verbs: {', '.join(VERBS)}")
    required, optional = VERBS[verb]
    arguments: dict[str, str] = {}
    problems: list[str] = []
    for key, value in pairs:
        if key == "verb":
            continue
        if key not in required and key not in optional:
            problems.append(f"{_shown(key)} is not an argument of {verb}")
        elif key in arguments:
            problems.append(f"{key} is repeated")
        elif not value:
            problems.append(f"{key} is empty")
        elif _XML_ILLEGAL.search(value):
            problems.append(f"{key} holds characters that are not allowed (control characters or bad UTF-8)")
        arguments.setdefault(key, value)
    if problems:
        raise OaiError("badArgument", "; ".join(problems))
    if "resumptionToken" in arguments:
        if len(arguments) > 1:
            others = ", ".join(sorted(set(arguments) - {"resumptionToken"}))
            raise OaiError("badArgument", f"resumptionToken is an exclusive argument: drop {others}")
        return verb, arguments
    missing = [key for key in required if key not in arguments]
    if missing:
        raise OaiError("badArgument", f"{verb} needs {' and '.join(missing)}")
    if "metadataPrefix" in arguments and not _PREFIX.fullmatch(arguments["metadataPrefix"]):
        raise OaiError("badArgument", "metadataPrefix is not a metadata prefix ([A-Za-z0-9-_.!~*'()]+)")
    if "set" in arguments and not _SET_SPEC.fullmatch(arguments["set"]):
        raise OaiError("badArgument", "set is not a set spec (parts of [A-Za-z0-9-_.!~*'()] joined by ':')")
    if "identifier" in arguments and not _URI.fullmatch(arguments["identifier"]):
        raise OaiError("badArgument", "identifier is not a URI")
    start, end = (parse_datestamp(arguments[key], key, key == "until") if key in arguments else None
                  for key in ("from", "until"))
    if start is not None and end is not None:
        if len(arguments["from"]) != len(arguments["until"]):
            raise OaiError("badArgument", "from and until have different granularities")
        if start > end:
            raise OaiError("badArgument", "from is later than until")
    return verb, arguments


def parse_datestamp(text: str, name: str, end_of_day: bool = False) -> int:
    """UTC seconds of a from/until argument (YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ); a day as an
    `until` means its last second."""
    match = _SECOND.fullmatch(text) or _DAY.fullmatch(text)
    try:
        if match is None:
            raise ValueError
        parts = [int(p) for p in match.groups()]
        if parts[0] < 1:
            raise ValueError
        seconds = calendar.timegm(time.strptime(text[:10], "%Y-%m-%d"))
        if len(parts) == 6:
            hour, minute, second = parts[3:]
            if hour > 23 or minute > 59 or second > 59:
                raise ValueError
            return seconds + hour * 3600 + minute * 60 + second
        return seconds + (86_399 if end_of_day else 0)
    except ValueError:
        raise OaiError("badArgument", f"{name} is not a UTC date (YYYY-MM-DD) or time ({GRANULARITY})") from None


def datestamp(seconds: int | float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _shown(text: str, limit: int = 60) -> str:
    """User text quoted in an error message: printable and short."""
    text = _XML_ILLEGAL.sub("\ufffd", text)
    return repr(text if len(text) <= limit else text[:limit] + "...")


# -- resumption tokens -----------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class ListState:
    """Where a list request stands: everything a resumption token carries."""

    verb: str
    prefix: str
    set: str | None
    start: int | None
    end: int | None
    after: int
    """The sequence number of the last entry sent (the keyset)."""
    high: int | None
    """The sequence number no entry of the list goes past (an `until` before the latest datestamp)."""
    cursor: int
    """Entries sent before this response."""
    total: int
    """Entries the list had when it started (up to `first_max`)."""
    first_max: int
    """The highest sequence number when the list started: later ones are counted on each page."""

    _FIELDS = ("verb", "prefix", "set", "start", "end", "after", "high", "cursor", "total", "first_max")


class Tokens:
    """Resumption tokens: base64url JSON of a ListState and its expiry, with an HMAC-SHA256 tag
    (key kept in the index's database, so tokens outlive a restart). Nothing is stored per token."""

    def __init__(self, secret: bytes, lifetime: int):
        self.secret, self.lifetime = secret, lifetime

    def _tag(self, data: str) -> str:
        return _b64(hmac.new(self.secret, data.encode("ascii"), hashlib.sha256).digest()[:18])

    def issue(self, state: ListState, now: float) -> tuple[str, int]:
        expires = int(now) + self.lifetime
        payload = [getattr(state, name) for name in ListState._FIELDS] + [expires]
        data = _b64(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
        return f"{data}.{self._tag(data)}", expires

    def read(self, token: str, verb: str, now: float) -> ListState:
        data, _, tag = token.partition(".")
        if not data or not tag or not hmac.compare_digest(tag.encode("ascii", "replace"),
                                                          self._tag(data).encode("ascii")):
            raise OaiError("badResumptionToken", "the resumption token is not one this repository gave out")
        try:
            payload = json.loads(_unb64(data))
            *values, expires = payload
            state = ListState(*values)
            ints = (state.after, state.cursor, state.total, state.first_max, expires)
            if not all(isinstance(x, int) for x in ints) or not all(
                    x is None or isinstance(x, int) for x in (state.start, state.end, state.high)):
                raise TypeError
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise OaiError("badResumptionToken", "the resumption token is not one this repository gave out") from None
        if expires < now:
            raise OaiError("badResumptionToken", f"the resumption token expired at {datestamp(expires)}")
        if state.verb != verb:
            raise OaiError("badResumptionToken", f"the resumption token continues {state.verb}, not {verb}")
        return state


# -- XML -------------------------------------------------------------------------------------------
def text(value: str) -> str:
    """Character data, escaped; characters XML 1.0 cannot hold are dropped."""
    return _XML_ILLEGAL.sub("", value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def attribute(value: str) -> str:
    return text(value).replace('"', "&quot;").replace("\t", "&#9;").replace("\n", "&#10;").replace("\r", "&#13;")


def element(name: str, value: str) -> str:
    return f"<{name}>{text(value)}</{name}>"


_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>\s*")


# -- the repository --------------------------------------------------------------------------------
class Repository:
    """Answers OAI-PMH requests over one KnowledgeGraph (blocking: call it from a worker thread)."""

    def __init__(self, graph: KnowledgeGraph, settings: OaiSettings | None = None):
        self.graph = graph
        self.settings = settings or OaiSettings.from_env()
        self.base = graph.settings.base_url
        self.repository_id = self.settings.repository_id or urlsplit(self.base).hostname or "localhost"
        self.prefix = f"oai:{self.repository_id}:"

    @cached_property
    def tokens(self) -> Tokens:
        return Tokens(self.graph.index.log_secret(), self.settings.token_lifetime)

    # identifiers
    def identifier(self, iri: str) -> str:
        local = iri[len(self.base):] if iri.startswith(self.base) else iri
        return self.prefix + quote(local, safe=_LOCAL_SAFE)

    def iri_of(self, identifier: str) -> str | None:
        if not identifier.startswith(self.prefix) or len(identifier) == len(self.prefix):
            return None
        local = unquote(identifier[len(self.prefix):])
        iri = local if re.match(r"[A-Za-z][A-Za-z0-9+.\-]*://", local) else self.base + local
        try:
            ox.NamedNode(iri)
        except ValueError:
            return None
        return iri if self.identifier(iri) == identifier else None  # only the form this repository gives out

    # what the system graphs say about the platform and its vocabularies (read once: they change on open only)
    @cached_property
    def _platform(self) -> dict[str, str]:
        quads = list(self.graph.store.quads_for_pattern(None, None, None, ox.NamedNode(PLATFORM_GRAPH)))
        catalog = next((q.subject for q in quads if q.predicate.value == "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
                        and q.object.value == "http://www.w3.org/ns/dcat#Catalog"), None)

        def value(subject: Any, predicate: str) -> Any:
            return next((q.object for q in quads if q.subject == subject and q.predicate.value == predicate), None)

        found: dict[str, str] = {}
        if catalog is not None:
            if (title := value(catalog, "http://purl.org/dc/terms/title")) is not None:
                found["title"] = title.value
            if (publisher := value(catalog, "http://purl.org/dc/terms/publisher")) is not None:
                if (name := value(publisher, "http://xmlns.com/foaf/0.1/name")) is not None:
                    found["publisher"] = name.value
            if (contact := value(catalog, "http://www.w3.org/ns/dcat#contactPoint")) is not None:
                if (email := value(contact, "http://www.w3.org/2006/vcard/ns#hasEmail")) is not None:
                    found["email"] = email.value.removeprefix("mailto:")
        return found

    @cached_property
    def _labels(self) -> dict[str, str]:
        """Labels of concepts, schemes and classes (English first) by IRI."""
        labels: dict[str, tuple[int, str]] = {}
        predicates = {SKOS + "prefLabel": 0, "http://purl.org/dc/terms/title": 1,
                      "http://www.w3.org/2000/01/rdf-schema#label": 2}
        for graph in (VOCABULARY_GRAPH, ONTOLOGY_GRAPH):
            for quad in self.graph.store.quads_for_pattern(None, None, None, ox.NamedNode(graph)):
                rank = predicates.get(quad.predicate.value)
                if rank is None or not isinstance(quad.object, ox.Literal):
                    continue
                rank = rank * 2 + (0 if quad.object.language in ("en", None) else 1)
                if quad.subject.value not in labels or rank < labels[quad.subject.value][0]:
                    labels[quad.subject.value] = (rank, quad.object.value)
        return {iri: label for iri, (_, label) in labels.items()}

    @cached_property
    def _schemes(self) -> dict[str, str]:
        """Set facet -> the IRI path segment of its concept scheme (dataType -> data-type)."""
        segments = {iri[len(VOCAB):].strip("/") for iri in self._labels if iri.startswith(VOCAB)}
        found = {}
        for facet in SET_FACETS:
            found[facet] = next((s for s in segments if "/" not in s and s.replace("-", "").lower() == facet.lower()),
                                facet)
        return found

    def repository_name(self) -> str:
        return self.settings.repository_name or self._platform.get("title") or "ai4kg"

    def admin_email(self) -> str:
        email = self.settings.admin_email or self._platform.get("email")
        if email and _EMAIL.fullmatch(email):
            return email
        host = self.repository_id if "." in self.repository_id else "example.org"
        return f"oai-admin@{host}"

    def set_name(self, spec: str) -> str:
        field, _, value = spec.partition(":")
        value = unquote(value.replace("~", "%"))
        parents = {"kind": "Asset kinds", "vo": "Virtual organisations"}
        if not value:
            if field in parents:
                return parents[field]
            return self._labels.get(f"{VOCAB}{self._schemes.get(field, field)}", field)
        if field == "kind":
            return f"{self._labels.get(AI4KG + value, value)} ({value})"
        if field == "vo":
            return f"Virtual organisation {value}"
        label = self._labels.get(f"{VOCAB}{self._schemes.get(field, field)}/{value}")
        scheme = self._labels.get(f"{VOCAB}{self._schemes.get(field, field)}", field)
        return f"{label or value} ({scheme})"

    # -- answering
    def answer(self, pairs: list[tuple[str, str]], readers: Readers, base_url: str, refusal: str | None = None) -> bytes:
        """The response document to a request with these arguments (`refusal`: a badArgument found
        before the arguments could be read)."""
        now = time.time()
        echo: dict[str, str] = {}
        try:
            if refusal is not None:
                raise OaiError("badArgument", refusal)
            verb, arguments = parse_arguments(pairs)
            echo = {"verb": verb, **arguments}
            body = getattr(self, f"_{verb}")(arguments, readers, base_url, now)
        except OaiError as error:
            body = [f'<error code="{error.code}">{text(error.message)}</error>']
        head = [f'<?xml version="1.0" encoding="UTF-8"?>\n<OAI-PMH xmlns="{OAI}" xmlns:xsi="{XSI}" '
                f'xsi:schemaLocation="{OAI} http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd">',
                f"<responseDate>{datestamp(now)}</responseDate>",
                "<request" + "".join(f' {key}="{attribute(echo[key])}"' for key in ARGUMENTS if key in echo)
                + f">{text(base_url)}</request>"]
        return "".join([*head, *body, "</OAI-PMH>"]).encode("utf-8")

    def _Identify(self, arguments: dict[str, str], readers: Readers, base_url: str, now: float) -> list[str]:
        parts = ["<Identify>", element("repositoryName", self.repository_name()), element("baseURL", base_url),
                 "<protocolVersion>2.0</protocolVersion>", element("adminEmail", self.admin_email()),
                 f"<earliestDatestamp>{datestamp(self.graph.index.log_earliest())}</earliestDatestamp>",
                 "<deletedRecord>persistent</deletedRecord>", f"<granularity>{GRANULARITY}</granularity>"]
        if _REPOSITORY_ID.fullmatch(self.repository_id):
            namespace = "http://www.openarchives.org/OAI/2.0/oai-identifier"
            parts += [f'<description><oai-identifier xmlns="{namespace}" xmlns:xsi="{XSI}" xsi:schemaLocation="'
                      f'{namespace} http://www.openarchives.org/OAI/2.0/oai-identifier.xsd">',
                      "<scheme>oai</scheme>", element("repositoryIdentifier", self.repository_id),
                      "<delimiter>:</delimiter>",
                      element("sampleIdentifier", self.identifier(self.base + "module/ai4os-demo-app")),
                      "</oai-identifier></description>"]
        return [*parts, "</Identify>"]

    def _visible_record(self, identifier: str, readers: Readers, metadata: bool = False) -> LogRecord:
        iri = self.iri_of(identifier)
        record = self.graph.index.log_record(iri, metadata) if iri else None
        if record is None or not _may_see(readers, record.vo, record.visibility):
            raise OaiError("idDoesNotExist", f"no record {_shown(identifier, 200)} in this repository")
        return record

    def _ListMetadataFormats(self, arguments: dict[str, str], readers: Readers, base_url: str, now: float) -> list[str]:
        formats = list(FORMATS.values())
        if "identifier" in arguments:
            record = self._visible_record(arguments["identifier"], readers)
            formats = [f for f in formats if f.describes(record.kind)]
            if not formats:
                raise OaiError("noMetadataFormats", "no metadata format describes this record")
        return ["<ListMetadataFormats>",
                *(f"<metadataFormat>{element('metadataPrefix', f.prefix)}{element('schema', f.schema)}"
                  f"{element('metadataNamespace', f.namespace)}</metadataFormat>" for f in formats),
                "</ListMetadataFormats>"]

    def _ListSets(self, arguments: dict[str, str], readers: Readers, base_url: str, now: float) -> list[str]:
        if "resumptionToken" in arguments:
            raise OaiError("badResumptionToken", "the list of sets comes in one response: it has no resumption tokens")
        specs = sorted({"kind", "vo", *SET_FACETS, *self.graph.index.log_sets(readers)})
        if not specs:
            raise OaiError("noSetHierarchy", "this repository has no sets")
        return ["<ListSets>", *(f"<set>{element('setSpec', s)}{element('setName', self.set_name(s))}</set>"
                                for s in specs), "</ListSets>"]

    def _format(self, prefix: str) -> MetadataFormat:
        if prefix not in FORMATS:
            raise OaiError("cannotDisseminateFormat", f"no metadata format {_shown(prefix)}; formats: {', '.join(FORMATS)}")
        return FORMATS[prefix]

    def _GetRecord(self, arguments: dict[str, str], readers: Readers, base_url: str, now: float) -> list[str]:
        metadata_format = self._format(arguments["metadataPrefix"])
        record = self._visible_record(arguments["identifier"], readers, metadata_format.view is None)
        if not metadata_format.describes(record.kind):
            raise OaiError("cannotDisseminateFormat",
                           f"{metadata_format.prefix} does not describe this record (a {record.kind})")
        parts = self._record(record, metadata_format, readers, self._creator_names([record]))
        if parts is None:  # changed visibility a moment ago: its log entry is being rewritten
            raise OaiError("idDoesNotExist", f"no record {_shown(arguments['identifier'], 200)} in this repository")
        return ["<GetRecord>", *parts, "</GetRecord>"]

    def _ListIdentifiers(self, arguments: dict[str, str], readers: Readers, base_url: str, now: float) -> list[str]:
        return self._list("ListIdentifiers", arguments, readers, now)

    def _ListRecords(self, arguments: dict[str, str], readers: Readers, base_url: str, now: float) -> list[str]:
        return self._list("ListRecords", arguments, readers, now)

    def _list(self, verb: str, arguments: dict[str, str], readers: Readers, now: float) -> list[str]:
        index = self.graph.index
        if "resumptionToken" in arguments:
            state = self.tokens.read(arguments["resumptionToken"], verb, now)
            metadata_format = FORMATS.get(state.prefix)
            if metadata_format is None:
                raise OaiError("badResumptionToken", "the resumption token names a format this repository lost")
        else:
            metadata_format = self._format(arguments["metadataPrefix"])
            start = parse_datestamp(arguments["from"], "from") if "from" in arguments else None
            end = parse_datestamp(arguments["until"], "until", True) if "until" in arguments else None
            first_max = index.log_position()[0]
            bounds = index.log_bounds(start, end)
            if bounds is None:
                raise OaiError("noRecordsMatch", "no record has a datestamp in that range")
            after, high = bounds
            state = ListState(verb, metadata_format.prefix, arguments.get("set"), start, end, after, high, 0, 0, first_max)
        options: dict[str, Any] = {"high": state.high, "kinds": metadata_format.kinds(), "spec": state.set,
                                   "start": state.start, "end": state.end}
        if "resumptionToken" not in arguments:  # the list's size as it starts; additions are counted per page
            state = replace(state, total=index.log_count(
                readers, state.after, **{**options, "high": state.first_max if state.high is None else state.high}))
        limit = self.settings.page_size
        dublin_core = verb == "ListRecords" and metadata_format.view is None
        entries = index.log_page(readers, state.after, limit + 1, metadata=dublin_core, **options)
        more, entries = len(entries) > limit, entries[:limit]
        if not entries:
            raise OaiError("noRecordsMatch", "no records match the request" if "resumptionToken" not in arguments
                           else "no records are left in this list")
        parts = [f"<{verb}>"]
        names = self._creator_names(entries) if dublin_core else {}
        for record in entries:
            if verb == "ListIdentifiers":
                parts.append(self._header(record))
            else:
                parts += self._record(record, metadata_format, readers, names) or []
        complete = state.total + (index.log_count(readers, state.first_max, **options) if state.high is None else 0)
        complete = max(complete, state.cursor + len(entries), 1)
        if more:
            following = replace(state, after=entries[-1].seq, cursor=state.cursor + len(entries))
            token, expires = self.tokens.issue(following, now)
            parts.append(f'<resumptionToken expirationDate="{datestamp(expires)}" completeListSize="{complete}" '
                         f'cursor="{state.cursor}">{token}</resumptionToken>')
        elif "resumptionToken" in arguments:
            parts.append(f'<resumptionToken completeListSize="{complete}" cursor="{state.cursor}"/>')
        return [*parts, f"</{verb}>"]

    # -- records
    def _header(self, record: LogRecord, deleted: bool = False) -> str:
        status = ' status="deleted"' if deleted or record.deleted else ""
        return (f"<header{status}>{element('identifier', self.identifier(record.iri))}"
                f"<datestamp>{datestamp(record.datestamp)}</datestamp>"
                + "".join(element("setSpec", spec) for spec in record.sets) + "</header>")

    def _record(self, record: LogRecord, metadata_format: MetadataFormat, readers: Readers,
                names: dict[str, str]) -> list[str] | None:
        """A record element; None when the reader may not see what the store holds now (views only:
        oai_dc comes from the log entry, which the caller already checked)."""
        if record.deleted:
            return ["<record>", self._header(record), "</record>"]
        if metadata_format.view is None:
            payload = self._dublin_core(record, names)
        else:
            quads = self.graph.asset_quads(record.iri)
            document = search_document(record.iri, quads)
            if document is None:  # removed a moment ago: its tombstone is being written
                return ["<record>", self._header(record, deleted=True), "</record>"]
            if not _may_see(readers, document.vo, document.visibility):
                return None
            triples = VIEWS[metadata_format.view].describe(self.graph, record.iri, readers)
            payload = _XML_ILLEGAL.sub("", _XML_DECLARATION.sub("", serialize(triples, ox.RdfFormat.RDF_XML).decode("utf-8")))
        return ["<record>", self._header(record), "<metadata>", payload, "</metadata>", "</record>"]

    def _creator_names(self, records: list[LogRecord]) -> dict[str, str]:
        """The names of the creators of these records, from their own log entries (one query)."""
        creators = {iri for record in records if record.dublin_core
                    for iri in json.loads(record.dublin_core).get("creator", ())}
        return self.graph.index.log_names(creators) if creators else {}

    def _dublin_core(self, record: LogRecord, names: dict[str, str]) -> str:
        """The oai_dc record of a live log entry: its Dublin Core fields (graph/store.py `dublin_core`),
        with what they name resolved here: concept labels and the publisher from the system graphs
        (read once), creators by `names`."""
        dc: dict[str, list[str]] = json.loads(record.dublin_core) if record.dublin_core else {}

        def each(*keys: str) -> list[str]:
            return [value for key in keys for value in dc.get(key, ())]

        def labelled(key: str) -> list[str]:  # concepts by label
            return sorted(self._labels.get(v, v.rsplit("/", 1)[-1]) for v in each(key))

        fields: list[tuple[str, str]] = []
        fields += [("title", v) for v in each("title")]
        fields += [("creator", names.get(v, v)) for v in each("creator")]
        fields += [("subject", v) for v in each("subject")]
        fields += [("subject", v) for v in labelled("task")]
        fields += [("description", v) for v in each("description")]
        fields += [("publisher", self._platform["publisher"])] if "publisher" in self._platform else []
        fields += [("date", v) for v in each("date")]
        fields += [("type", dcmi_type(record.kind)), ("type", AI4KG + record.kind)]
        fields += [("format", v) for v in each("format")]
        fields += [("identifier", record.iri)]
        fields += [("identifier", v) for v in each("identifier")]
        fields += [("relation", v) for v in each("relation")]
        fields += [("rights", v) for v in each("rights")]
        fields += [("coverage", f"data type: {v}") for v in labelled("dataType")]
        return (f'<oai_dc:dc xmlns:oai_dc="{OAI_DC}" xmlns:dc="{DC}" xmlns:xsi="{XSI}" '
                f'xsi:schemaLocation="{OAI_DC} http://www.openarchives.org/OAI/2.0/oai_dc.xsd">'
                + "".join(element(f"dc:{name}", value) for name, value in fields) + "</oai_dc:dc>")


def _may_see(readers: Readers, vo: str, visibility: str) -> bool:
    return readers is None or visibility == PUBLIC or vo in readers


# -- HTTP ------------------------------------------------------------------------------------------
class XMLResponse(Response):
    media_type = MEDIA_TYPE


_PARAMETERS = [{"name": name, "in": "query", "required": name == "verb", "schema": {"type": "string"},
                "description": description} for name, description in (
    ("verb", "Identify, ListMetadataFormats, ListSets, GetRecord, ListIdentifiers or ListRecords"),
    ("identifier", "An OAI identifier: oai:<repository id>:<kind>/<name>"),
    ("metadataPrefix", f"One of {', '.join(FORMATS)}"),
    ("from", f"UTC date (YYYY-MM-DD) or time ({GRANULARITY}), inclusive"),
    ("until", f"UTC date (YYYY-MM-DD) or time ({GRANULARITY}), inclusive"),
    ("set", "A set spec (see ListSets)"),
    ("resumptionToken", "The token of the previous response of a list (exclusive)"))]
_OPENAPI_GET = {"parameters": _PARAMETERS}
_OPENAPI_POST = {"requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {
    "type": "object", "properties": {p["name"]: {"type": "string"} for p in _PARAMETERS}}}}}}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "An OAI-PMH response document (protocol errors are 200 responses too, with <error>)",
          "content": {"text/xml": {"schema": {"type": "string"}}}}}


def router(graph: KnowledgeGraph, settings: OaiSettings | None = None) -> APIRouter:
    repository = Repository(graph, settings)
    routes = APIRouter(tags=["OAI-PMH"])

    async def respond(request: Request, pairs: list[tuple[str, str]], refusal: str | None = None) -> Response:
        readers = readers_of(request)
        base_url = str(request.url.replace(query="", fragment=""))
        answer: Callable[[], bytes] = lambda: repository.answer(pairs, readers, base_url, refusal)  # noqa: E731
        return XMLResponse(await read(graph, answer))

    @routes.get("/oai", summary="OAI-PMH 2.0 (arguments in the query string)", response_class=XMLResponse,
                responses=_RESPONSES, openapi_extra=_OPENAPI_GET)
    async def oai_get(request: Request) -> Response:
        return await respond(request, _pairs(request.url.query))

    @routes.post("/oai", summary="OAI-PMH 2.0 (arguments as application/x-www-form-urlencoded)",
                 response_class=XMLResponse, responses=_RESPONSES, openapi_extra=_OPENAPI_POST)
    async def oai_post(request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                break
        pairs = _pairs(request.url.query)
        if body and content_type not in ("application/x-www-form-urlencoded", ""):
            return await respond(request, pairs, "the arguments of a POST request are "
                                 f"application/x-www-form-urlencoded, not {_shown(content_type)}")
        if len(body) > MAX_BODY:
            return await respond(request, pairs, f"the request body is over {MAX_BODY} bytes")
        # the body is ASCII (percent-encoded UTF-8); other bytes fail as bad UTF-8 would
        return await respond(request, pairs + _pairs(body.decode("ascii", "surrogateescape")))

    return routes


def _pairs(query: str) -> list[tuple[str, str]]:
    """Arguments in order, repeats kept; bytes that are not UTF-8 become lone surrogates (rejected later)."""
    return parse_qsl(query, keep_blank_values=True, errors="surrogateescape")
