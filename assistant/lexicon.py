"""What the embedded parser recognises in a question: the graph's terms and the names of its assets.

Two parts, both read from the graph's own artefacts, never from a list of questions:
- `Vocabulary`, static: the ontology's classes and properties (rdfs:label, rdfs:domain,
  rdfs:range), the SKOS vocabularies' concepts (skos:prefLabel, skos:altLabel, skos:notation),
  and ontology/lexicon.ttl, which adds skos:hiddenLabel synonyms (the words researchers use).
- `Names`, live: the titles and identifiers of the assets a reader may see (from the search index),
  and the tags in use; rebuilt when the index changes.
Both are matched token by token; a misspelt word ("vison", "creatd") is corrected to the nearest
known word (rapidfuzz) before matching.
"""

from __future__ import annotations

import math
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import resources

import pyoxigraph as ox
from rapidfuzz import fuzz, process

from ..graph.hierarchy import superclasses
from ..graph.namespaces import AI4KG
from ..graph.search import Readers
from ..graph.store import KnowledgeGraph
from ..threads import once

RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
OWL = "http://www.w3.org/2002/07/owl#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
PROV = "http://www.w3.org/ns/prov#"
XSD = "http://www.w3.org/2001/XMLSchema#"

_CONTRACTIONS = [(re.compile(p), r) for p, r in [
    (r"\bcan't\b", "can not"), (r"\bcannot\b", "can not"), (r"\bwon't\b", "will not"), (r"n't\b", " not"),
    (r"'s\b", " is"), (r"'re\b", " are"), (r"'d\b", " would"), (r"'ll\b", " will"), (r"'ve\b", " have"),
    (r"'m\b", " am")]]
_WORD = re.compile(r"[a-z0-9]+")

STOPWORDS = frozenset("""
a an the of in on at to for by with and or is are was were be been being do does did has have had
that which who whom whose what where when why how this these those there their its it i me my we our
you your they them can could would should will shall may might must am any some all each every
please show list give tell find me get display still currently available as than from into
about over under between after before since per""".split())
"""Words that name nothing in the graph; they never start or make a match on their own."""


def tokens(text: str) -> list[str]:
    """The words of `text`: lower case, contractions spelt out, runs of letters and digits."""
    text = text.lower().replace("\u2019", "'")
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    return _WORD.findall(text)


def plural(word: str) -> str:
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and len(word) > 2 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def inflections(word: str) -> set[str]:
    """`word` and the forms a question may use instead: a plural, a past tense, the bare verb of a
    past participle ("produced" <- "produce", "produces")."""
    forms = {word, plural(word)}
    if len(word) > 4:
        forms |= {word + "ed", word + "d"} if word.endswith("e") else {word + "ed"}
        if word.endswith("ed"):
            forms |= {word[:-1], word[:-2], word[:-1] + "s", word[:-2] + "s"}
    return forms


@dataclass(frozen=True)
class Term:
    kind: str
    """class, property or concept."""
    iri: str
    label: str
    property: str | None = None
    """A concept: the property whose values it is (ai4kg:task for a task)."""


@dataclass(frozen=True)
class PropertyInfo:
    iri: str
    label: str
    domain: str | None
    range: str | None

    @property
    def is_date(self) -> bool:
        return self.range in (XSD + "date", XSD + "dateTime")

    @property
    def is_number(self) -> bool:
        return self.range in (XSD + "integer", XSD + "decimal", XSD + "double", XSD + "nonNegativeInteger")

    @property
    def is_literal(self) -> bool:
        return self.range is not None and self.range.startswith(XSD)


@dataclass
class Vocabulary:
    phrases: dict[tuple[str, ...], list[Term]] = field(default_factory=lambda: defaultdict(list))
    properties: dict[str, PropertyInfo] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)
    """class IRI -> label"""
    concepts: dict[str, Term] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)
    longest: int = 1

    def add(self, text: str, term: Term) -> None:
        words = tuple(tokens(text))
        if not words or (len(words) == 1 and words[0] in STOPWORDS):
            return
        forms = {words[:-1] + (form,) for form in inflections(words[-1])} if words[-1].isalpha() else {words}
        for form in forms:
            if term not in self.phrases[form]:
                self.phrases[form].append(term)
        self.longest = max(self.longest, len(words))

    def terms(self) -> set[str]:
        """Every class and property IRI the vocabulary knows: what a query may use (assistant/checks.py)."""
        return {*self.classes, *self.properties}

    def is_a(self, cls: str, ancestor: str) -> bool:
        return cls == ancestor or ancestor in superclasses().get(cls, frozenset())


def _literal(term: ox.Term) -> str | None:
    if isinstance(term, ox.Literal) and term.language in (None, "", "en"):
        return term.value
    return None


@once
def vocabulary() -> Vocabulary:
    """The static part, from the packaged ontology, vocabularies and lexicon (the same files the
    store loads into its system graphs)."""
    files = ("ontology/ai4kg.ttl", "ontology/vocabularies.ttl", "ontology/lexicon.ttl")
    store = ox.Store()
    for path in files:
        store.load(resources.files("ai4kg").joinpath(path).read_bytes(), format=ox.RdfFormat.TURTLE)
    vocab = Vocabulary()

    def values(subject: ox.NamedNode, predicate: str) -> list[ox.Term]:
        return [q.object for q in store.quads_for_pattern(subject, ox.NamedNode(predicate), None)]

    def first_label(subject: ox.NamedNode) -> str:
        for predicate in (RDFS + "label", SKOS + "prefLabel"):
            for value in values(subject, predicate):
                if (text := _literal(value)) is not None:
                    return text
        return subject.value.rsplit("#", 1)[-1].rsplit("/", 1)[-1]

    def labels(subject: ox.NamedNode) -> list[str]:
        found = []
        for predicate in (RDFS + "label", SKOS + "prefLabel", SKOS + "altLabel", SKOS + "hiddenLabel", SKOS + "notation"):
            found += [text for value in values(subject, predicate) if (text := _literal(value)) is not None]
        return found

    for kind in ("Class",):
        for quad in store.quads_for_pattern(None, ox.NamedNode(RDF_TYPE), ox.NamedNode(OWL + kind)):
            cls = quad.subject
            if isinstance(cls, ox.NamedNode):
                vocab.classes[cls.value] = first_label(cls)
    for cls, label in vocab.classes.items():
        for text in labels(ox.NamedNode(cls)):
            vocab.add(text, Term("class", cls, label))

    described = {q.subject.value for q in store.quads_for_pattern(None, None, None)
                 if isinstance(q.subject, ox.NamedNode) and q.subject.value.startswith((AI4KG, PROV, RDFS))}
    for iri in described:
        node = ox.NamedNode(iri)
        types = {t.value for t in values(node, RDF_TYPE)}
        is_property = types & {OWL + "ObjectProperty", OWL + "DatatypeProperty", OWL + "AnnotationProperty"} or (
            iri.startswith((PROV, RDFS)) and iri not in vocab.classes)
        if not is_property or iri in vocab.classes:
            continue
        domain = next((d.value for d in values(node, RDFS + "domain") if isinstance(d, ox.NamedNode)), None)
        range_ = next((r.value for r in values(node, RDFS + "range") if isinstance(r, ox.NamedNode)), None)
        info = PropertyInfo(iri, first_label(node), domain, range_)
        vocab.properties[iri] = info
        for text in labels(node):
            vocab.add(text, Term("property", iri, info.label))

    # A scheme's concepts are the values of the property of the same name (the vocabularies' rule:
    # one scheme per enumerated field, e.g. .../vocab/data-type for ai4kg:dataType).
    by_slug = {re.sub(r"(?<!^)(?=[A-Z])", "-", iri[len(AI4KG):]).lower(): iri
               for iri in vocab.properties if iri.startswith(AI4KG)}
    for quad in store.quads_for_pattern(None, ox.NamedNode(SKOS + "inScheme"), None):
        concept, scheme = quad.subject, quad.object
        prop = by_slug.get(scheme.value.rstrip("/").rsplit("/", 1)[-1])
        if prop is None or not isinstance(concept, ox.NamedNode):
            continue
        term = Term("concept", concept.value, first_label(concept), prop)
        vocab.concepts[concept.value] = term
        for text in labels(concept):
            if text.lower() == "other":
                continue  # "other" is a word of every question, not a wish for the concept Other
            vocab.add(text, term)
    vocab.words = sorted({word for phrase in vocab.phrases for word in phrase if word not in STOPWORDS})
    return vocab


# -- the live part: names of assets, tags ----------------------------------------------------------------
@dataclass(frozen=True)
class Named:
    """Assets that share one name (several modules may have the same title)."""
    title: str
    iris: tuple[str, ...]
    kind: str


@dataclass(frozen=True)
class NameMatch:
    start: int
    end: int
    score: float
    named: Named


@dataclass
class Names:
    assets: list[tuple[str, str, str, str]]
    tags: dict[str, int]
    postings: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    weights: dict[str, float] = field(default_factory=dict)
    name_tokens: list[list[str]] = field(default_factory=list)
    owner: list[int] = field(default_factory=list)
    """name -> the asset it names"""
    words: list[str] = field(default_factory=list)
    tag_words: set[str] = field(default_factory=set)
    tag_phrases: dict[tuple[str, ...], str] = field(default_factory=dict)
    """a tag's words -> the tag"""
    longest_tag: int = 0
    titles: dict[str, str] = field(default_factory=dict)
    """asset IRI -> title"""

    def __post_init__(self) -> None:
        self.titles = {iri: title for iri, _, title, _ in self.assets if title}
        for tag in self.tags:
            words = tuple(tokens(tag))
            if words:
                self.tag_phrases.setdefault(words, tag)
                self.tag_words.update(words)
                self.longest_tag = max(self.longest_tag, len(words))
        for i, (_, _, title, identifier) in enumerate(self.assets):
            # an asset is named by its title or by its identifier: two names, matched apart
            for text in (title, identifier):
                words = list(dict.fromkeys(w for w in tokens(text) if w not in STOPWORDS))
                self.name_tokens.append(words)
                self.owner.append(i)
                for word in words:
                    self.postings[word].add(len(self.name_tokens) - 1)
        count = max(len(self.name_tokens), 1)
        self.weights = {word: math.log(1 + count / len(found)) for word, found in self.postings.items()}
        self.words = sorted(self.postings)

    def match(self, words: list[str], taken: set[int]) -> list[NameMatch]:
        """Asset names the question's words spell out, best first: a name matches when the words it
        shares with the question carry at least 60 % of its weight (rare words weigh more), within
        a span not much longer than the name. Names matched by the same span and with the same
        score are candidates of one mention (an ambiguous name)."""
        where: dict[str, list[int]] = defaultdict(list)
        for position, word in enumerate(words):
            if position not in taken and word not in STOPWORDS:
                where[word].append(position)
        # Candidates come from the question's rarer words: a name whose only shared words are common
        # ones cannot reach the 60 % of its weight, and a common word's postings are thousands long.
        candidates: set[int] = set()
        common = max(50, len(self.name_tokens) // 100)
        by_rarity = sorted((w for w in where if w in self.postings), key=lambda w: len(self.postings[w]))
        for word in by_rarity:
            if len(self.postings[word]) <= common:
                candidates |= self.postings[word]
        if len(by_rarity) >= 2:  # a name of common words only: the names that have its two rarest
            candidates |= self.postings[by_rarity[0]] & self.postings[by_rarity[1]]
        found: list[NameMatch] = []
        groups: dict[tuple[str, str], list[str]] = defaultdict(list)
        best: dict[tuple[str, str], tuple[float, int, int]] = {}
        for i in candidates:
            name = self.name_tokens[i]
            total = sum(self.weights[w] for w in name) or 1.0
            hits = [(w, where[w][0]) for w in name if w in where]
            positions = sorted(p for _, p in hits)
            if not positions or positions[-1] - positions[0] + 1 > len(name) + 2:
                continue
            score = sum(self.weights[w] for w, _ in hits) / total
            if score < 0.6:
                continue
            iri, kind, title, _ = self.assets[self.owner[i]]
            key = (kind, " ".join(tokens(title)) or iri)
            if iri not in groups[key]:
                groups[key].append(iri)
            best[key] = max(best.get(key, (0.0, 0, 0)), (score, positions[0], positions[-1] + 1))
        for key, iris in groups.items():
            score, start, end = best[key]
            title = next(t for iri, _, t, _ in self.assets if iri == iris[0])
            found.append(NameMatch(start, end, score, Named(title, tuple(sorted(iris)), key[0])))
        return sorted(found, key=lambda m: (-m.score, -(m.end - m.start), m.named.title))


_names_cache: dict[tuple[int, Readers], Names] = {}
_names_lock = threading.Lock()


def names(graph: KnowledgeGraph, readers: Readers) -> Names:
    """The names and tags of what `readers` may see; rebuilt when the search index has changed."""
    generation = graph.index.log_position()[0], id(graph)
    key = (hash(generation), readers)
    with _names_lock:
        cached = _names_cache.get(key)
    if cached is not None:
        return cached
    built = Names(graph.index.names(readers), dict(graph.index.facet_values("tag", readers)))
    with _names_lock:
        if len(_names_cache) > 16:
            _names_cache.clear()
        _names_cache[key] = built
    return built


def correct(word: str, known: list[str], also: list[str] = ()) -> str:
    """`word`, or the known word it is a misspelling of (one or two letters off, for words of 5 or more)."""
    if len(word) < 5 or word.isdigit():
        return word
    best = process.extractOne(word, known, scorer=fuzz.ratio, score_cutoff=84)
    other = process.extractOne(word, also, scorer=fuzz.ratio, score_cutoff=84) if also else None
    choice = max((c for c in (best, other) if c is not None), key=lambda c: c[1], default=None)
    return choice[0] if choice is not None else word
