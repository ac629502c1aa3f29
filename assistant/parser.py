"""The embedded generator: a question in English -> an `Interpretation`, built from the question's words.

A schema-driven semantic parser, not a table of questions. It finds in the question, in this order:
quoted values; asset names (assistant/lexicon.Names); dates and periods; then the graph's terms
(classes, properties, concepts; assistant/lexicon.Vocabulary). Around them, a few words of English
structure decide the form of the query: "how many" (a count), "per"/"each"/"by" (a group), "most",
"oldest", "more" (a superlative or a comparison), "not"/"without" (negation), "is there" (yes or no).
Each part becomes a condition, and conditions combine: the compiler (assistant/compiler.py) turns the
interpretation into one SPARQL query. A question whose focus maps to nothing in the graph (a
property no asset has, a count of something the graph does not hold) is refused, never guessed.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass, field

from .lexicon import (AI4KG, PROV, STOPWORDS, NameMatch, Named, Names, Term, Vocabulary, correct,
                      tokens)
from .schema import Schema

MODULE = AI4KG + "Module"
TAG = AI4KG + "tag"
MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
NEGATIONS = frozenset({"not", "no", "without", "except", "excluding", "never", "non", "nor", "neither"})
COUNTING = (("how", "many"), ("number", "of"), ("count", "of"), ("count",), ("total", "number"))
GROUPING = frozenset({"per", "each", "by", "every", "breakdown", "break", "across", "distributed", "distribution",
                      "split"})
MOST = {"most": "max", "latest": "max", "newest": "max", "highest": "max", "largest": "max", "biggest": "max",
        "more": "max", "greatest": "max", "recently": "max", "recent": "max", "last": "max",
        "least": "min", "oldest": "min", "earliest": "min", "lowest": "min", "smallest": "min", "fewest": "min",
        "fewer": "min", "less": "min", "first": "min"}
ASKING = (("is", "there"), ("are", "there"), ("is", "any"), ("are", "any"), ("do", "any"), ("does", "any"),
          ("do", "you", "have"), ("does", "the", "catalogue", "have"), ("does", "the", "catalog", "have"))
FILLERS = frozenset("""
i me need want looking look search searching option options own data something anything like would know
catalogue catalog platform available used use using uses run runs work works also just only really
please thanks hi hello one ones kind kinds sort type types thing things stuff them it able help wondering
latest version versions currently existing exist exists registered known whole entire total different distinct
find show list give tell display module modules model models app apps application applications asset assets
can could would should contact like to d ll ve re s t m""".split())
"""Words that carry no condition: never turned into a search for text."""
YES_NO = frozenset({"is", "are", "does", "do", "can", "has", "have", "was", "were"})
HAVING = frozenset({"have", "has", "having", "with", "without", "any", "no", "declare", "declares", "state",
                    "states", "record", "records", "lack", "lacks", "lacking", "missing", "provide", "provides"})
"""Words before a property that ask for it to have a value ("have a DOI"), or none ("without any task")."""
AGENT_PROPERTIES = (AI4KG + "launchedBy", AI4KG + "creator", PROV + "wasAttributedTo", PROV + "wasAssociatedWith")
"""What "who" asks for, in order of preference: the agent who started, made or ran it."""
POPULAR = frozenset({"common", "popular", "frequent", "frequently", "used", "widespread"})
"""With "most": a question for the values most assets have ("the most common tags")."""
TAG_WORDS = frozenset({"tag", "tags", "tagged", "keyword", "keywords", "labelled", "labeled"})


@dataclass
class Condition:
    path: tuple[str, ...]
    """Properties from the asset to the value."""
    value: object = None
    """A concept or asset IRI (str), a literal text (Text), or None: the path has some value."""
    negated: bool = False
    words: str = ""


@dataclass(frozen=True)
class Text:
    text: str
    how: str = "equals"
    """exact (the value as the catalogue holds it), equals (case-insensitively), contains, startswith."""


@dataclass
class DateRange:
    path: tuple[str, ...]
    start: dt.date | None
    end: dt.date | None
    """exclusive"""
    words: str = ""


@dataclass
class Step:
    """One hop of a provenance path: from the variable `source` along `property` (backwards when
    `inverse`) to the variable `target` of class `cls`."""
    source: str
    property: str
    target: str
    cls: str | None
    inverse: bool


@dataclass
class Interpretation:
    form: str
    """list, ask, count, count-values, group, lookup, superlative, compare, threshold, path"""
    cls: str = MODULE
    conditions: list[Condition] = field(default_factory=list)
    dates: list[DateRange] = field(default_factory=list)
    entities: list[Named] = field(default_factory=list)
    attribute: tuple[str, ...] = ()
    """lookup / count-values / group / superlative: the property path asked for, counted or ranked."""
    order: str = "max"
    """superlative and compare: max or min; threshold: the SPARQL operator (>, <, >=, <=)."""
    figure: int = 0
    """threshold: the figure compared with."""
    rank_by_count: bool = False
    steps: list[Step] = field(default_factory=list)
    answer_label: bool = False
    """path: answer with the label of what was found (a person's name), not its IRI."""
    understood: list[str] = field(default_factory=list)


@dataclass
class Refusal:
    reason: str


@dataclass
class Ambiguity:
    words: str
    candidates: list[Named]


@dataclass
class _Mention:
    start: int
    end: int
    terms: list[Term]


class _Question:
    def __init__(self, text: str, vocab: Vocabulary, names: Names, today: dt.date):
        self.text, self.vocab, self.names, self.today = text, vocab, names, today
        raw = tokens(text)
        known = set(vocab.words) | set(names.words) | STOPWORDS | FILLERS | NEGATIONS | set(MOST) | set(MONTHS)
        self.words = [w if w in known else correct(w, vocab.words, names.words) for w in raw]
        self.taken: set[int] = set()
        self.edges: dict[str, list[tuple[str, str, bool]]] = {}
        self.shape = Schema()

    def catalogue_word(self, word: str) -> bool:
        """Whether `word` occurs in the titles, identifiers or tags of what the reader may see."""
        return word in self.names.postings or word in self.names.tag_words

    def span(self, start: int, end: int) -> str:
        return " ".join(self.words[start:end])

    def has(self, *phrase: str) -> int:
        """The position of `phrase` among the words, or -1."""
        n = len(phrase)
        for i in range(len(self.words) - n + 1):
            if tuple(self.words[i:i + n]) == phrase:
                return i
        return -1

    def take(self, start: int, end: int) -> None:
        self.taken.update(range(start, end))

    def free(self, start: int, end: int) -> bool:
        return not any(i in self.taken for i in range(start, end))

    def negated(self, position: int) -> bool:
        """Whether a negation governs the word at `position`: one of the four words before it, in the
        same clause."""
        for i in range(position - 1, max(position - 5, -1), -1):
            if self.words[i] in NEGATIONS:
                return True
            if self.words[i] in ("and", "but", "that", "which", "who") and i < position - 1:
                return False
        return False


def parse(text: str, vocab: Vocabulary, names: Names, shape: Schema, today: dt.date | None = None
          ) -> Interpretation | Refusal | Ambiguity:
    """`shape`: the graph's classes, their properties and connections (assistant/schema.py)."""
    q = _Question(text, vocab, names, today or dt.date.today())
    q.edges, q.shape = shape.edges, shape
    if not q.words:
        return Refusal("the question has no words")
    tags = _quoted(q)
    entities, ambiguity = _entities(q)
    if ambiguity is not None:
        return ambiguity
    dates = _dates(q)
    mentions = _mentions(q)
    return _build(q, tags, entities, dates, mentions)


# -- quoted values -------------------------------------------------------------------------------------
_QUOTED = re.compile(r"""(?:(?<=[\s(])|^)['"\u201c\u2018]([^'"\u201d\u2019]{1,100})['"\u201d\u2019](?=[\s?.,!;:)]|$)""")


def _quoted(q: _Question) -> list[Condition]:
    found = []
    for match in _QUOTED.finditer(q.text):
        value = match.group(1).strip()
        words = tokens(value)
        start = q.has(*words) if words else -1
        if start < 0:
            continue
        q.take(start, start + len(words))
        spellings = [t for t in q.names.tags if t.lower() == value.lower()]
        tag = spellings[0] if spellings else value
        negated = q.negated(start)
        # the catalogue's one spelling of the tag: matched as it is (an index lookup, not a scan)
        found.append(Condition((TAG,), Text(tag, "exact" if len(spellings) == 1 else "equals"), negated,
                               f"{'not ' if negated else ''}tagged '{tag}'"))
    # A tag named without quotes: "tagged vo.imagine-ai.eu", "with the tag deep learning"
    for i, word in enumerate(q.words):
        if word in TAG_WORDS and i + 1 < len(q.words) and q.free(i + 1, i + 2):
            for n in range(min(q.names.longest_tag, len(q.words) - i - 1), 0, -1):  # the longest tag first
                tag = q.names.tag_phrases.get(tuple(q.words[i + 1:i + 1 + n]))
                if tag is not None:
                    q.take(i, i + 1 + n)
                    negated = q.negated(i)
                    spellings = sum(t.lower() == tag.lower() for t in q.names.tags)
                    found.append(Condition((TAG,), Text(tag, "exact" if spellings == 1 else "equals"), negated,
                                           f"{'not ' if negated else ''}tagged '{tag}'"))
                    break
    for i, word in enumerate(q.words):
        if word in TAG_WORDS and found:
            q.take(i, i + 1)
    return found


# -- names of assets ------------------------------------------------------------------------------------
def _entities(q: _Question) -> tuple[list[Named], Ambiguity | None]:
    chosen: list[NameMatch] = []
    matches = q.names.match(q.words, q.taken)
    for match in matches:
        if not q.free(match.start, match.end):
            continue
        rivals = [m for m in matches if m is not match and m.start < match.end and match.start < m.end
                  and abs(m.score - match.score) < 1e-9 and m.named.kind == match.named.kind]
        if rivals:
            return [], Ambiguity(q.span(match.start, match.end), [match.named, *(m.named for m in rivals)])
        chosen.append(match)
        q.take(match.start, match.end)
    return [m.named for m in sorted(chosen, key=lambda m: m.start)], None


# -- dates ---------------------------------------------------------------------------------------------
def _period(q: _Question, i: int) -> tuple[dt.date, dt.date, int] | None:
    """The period the words at `i` name (a year, a month and year, an ISO date, "last month"):
    (first day, the day after the last, words used)."""
    words = q.words
    if i >= len(words):
        return None
    word = words[i]
    if re.fullmatch(r"(19|20)\d\d", word):
        if i + 2 < len(words) and re.fullmatch(r"\d\d?", words[i + 1]) and re.fullmatch(r"\d\d?", words[i + 2]):
            day = dt.date(int(word), int(words[i + 1]), int(words[i + 2]))
            return day, day + dt.timedelta(days=1), 3
        year = int(word)
        return dt.date(year, 1, 1), dt.date(year + 1, 1, 1), 1
    if word in MONTHS:
        year, used = q.today.year, 1
        if i + 1 < len(words) and re.fullmatch(r"(19|20)\d\d", words[i + 1]):
            year, used = int(words[i + 1]), 2
        else:  # "between September and November 2024": the year comes after the second month
            later = next((w for w in words[i + 1:i + 5] if re.fullmatch(r"(19|20)\d\d", w)), None)
            year = int(later) if later else year
        start = dt.date(year, MONTHS[word], 1)
        end = dt.date(year + (MONTHS[word] == 12), MONTHS[word] % 12 + 1, 1)
        return start, end, used
    if word in ("last", "this", "past") and i + 1 < len(words) and words[i + 1] in ("month", "year", "week"):
        unit, today = words[i + 1], q.today
        if unit == "year":
            year = today.year - (word == "last")
            return dt.date(year, 1, 1), dt.date(year + 1, 1, 1), 2
        if unit == "month":
            first = today.replace(day=1)
            if word == "last":
                first = (first - dt.timedelta(days=1)).replace(day=1)
            end = dt.date(first.year + (first.month == 12), first.month % 12 + 1, 1)
            return first, end, 2
        return today - dt.timedelta(days=7), today + dt.timedelta(days=1), 2
    return None


def _dates(q: _Question) -> list[tuple[int, int, dt.date | None, dt.date | None]]:
    """(start, end, from, until) of each date condition; the property is chosen with the terms."""
    found = []
    i = 0
    while i < len(q.words):
        word = q.words[i]
        if word == "between" or word == "from":
            first = _period(q, i + 1)
            if first and i + 1 + first[2] < len(q.words) and q.words[i + 1 + first[2]] in ("and", "to", "until", "till"):
                second = _period(q, i + 2 + first[2])
                if second:
                    end = i + 2 + first[2] + second[2]
                    found.append((i, end, first[0], second[1]))
                    q.take(i, end)
                    i = end
                    continue
        if word in ("since", "after", "from", "before", "until", "till", "in", "during", "on", "prior") or _period(q, i):
            offset = 0 if _period(q, i) else 1 + (word == "prior" and i + 1 < len(q.words) and q.words[i + 1] == "to")
            period = _period(q, i + offset)
            if period:
                start, end, used = period
                bounds = {"since": (start, None), "from": (start, None), "after": (end, None),
                          "before": (None, start), "prior": (None, start), "until": (None, end), "till": (None, end)}
                low, high = bounds.get(word, (start, end)) if offset else (start, end)
                found.append((i, i + offset + used, low, high))
                q.take(i, i + offset + used)
                i += offset + used
                continue
        i += 1
    return found


# -- terms of the vocabulary ---------------------------------------------------------------------------
def _mentions(q: _Question) -> list[_Mention]:
    found = []
    i = 0
    while i < len(q.words):
        for n in range(min(q.vocab.longest, len(q.words) - i), 0, -1):
            phrase = tuple(q.words[i:i + n])
            terms = q.vocab.phrases.get(phrase)
            if terms and q.free(i, i + n):
                found.append(_Mention(i, i + n, list(terms)))
                q.take(i, i + n)
                i += n - 1
                break
        i += 1
    return found


def _build(q: _Question, tags: list[Condition], entities: list[Named],
           dates: list[tuple[int, int, dt.date | None, dt.date | None]], mentions: list[_Mention]
           ) -> Interpretation | Refusal | Ambiguity:
    """The question's parts put together: mentions sorted into values, properties and classes, then
    the form (assistant/parser's docstring) for named assets or for the catalogue."""
    vocab = q.vocab
    words = q.words
    counting = any(q.has(*phrase) >= 0 for phrase in COUNTING)
    asking = any(tuple(words[:len(p)]) == p for p in ASKING) or (words[:1] in (["is"], ["are"], ["does"], ["do"])
                                                                   and not entities)
    superlative = next(((i, MOST[w]) for i, w in enumerate(words) if w in MOST and i not in q.taken), None)
    who = words[0] == "who" or q.has("who") >= 0

    concepts: list[tuple[_Mention, Term]] = []
    properties: list[tuple[_Mention, Term]] = []
    classes: list[tuple[_Mention, Term]] = []
    for mention in mentions:
        kinds = {t.kind for t in mention.terms}
        if "concept" in kinds and not (superlative and any(t.kind == "property" for t in mention.terms)):
            concept_terms = [t for t in mention.terms if t.kind == "concept"]
            concepts.append((mention, concept_terms[0]))
            # a concept also named as a property ("inference" as a category and as resources) is
            # kept as a property too, to be chosen by what else the question asks
            for term in mention.terms:
                if term.kind == "property":
                    properties.append((mention, term))
        elif "class" in kinds and any(t.kind == "class" and t.iri in q.shape.properties for t in mention.terms):
            # a class no asset has (the graph's connections name none) is read as the property it also names
            classes.append((mention, next(t for t in mention.terms if t.kind == "class" and t.iri in q.shape.properties)))
            properties += [(mention, t) for t in mention.terms if t.kind == "property"]
        else:
            properties += [(mention, t) for t in mention.terms if t.kind == "property"]

    interpretation = Interpretation("list")
    interpretation.conditions += tags
    interpretation.understood += [c.words for c in tags]

    # Resource requirements: "memory for inference" is a path through inferenceResources
    resource_properties = [(m, t) for m, t in properties if vocab.properties[t.iri].domain == AI4KG + "ResourceRequirements"]
    resource_path: tuple[str, ...] = ()
    if resource_properties:
        mention, term = resource_properties[0]
        holder = next((t for m, t in properties if vocab.properties[t.iri].range == AI4KG + "ResourceRequirements"),
                      None)
        holder_iri = holder.iri if holder else AI4KG + "inferenceResources"
        resource_path = (holder_iri, term.iri)
        used = {id(mention)} | {id(m) for m, t in properties if holder and t.iri == holder_iri}
        classes = [(m, t) for m, t in classes if id(m) not in used]
        concepts = [(m, t) for m, t in concepts if id(m) not in used]
        properties = [(m, t) for m, t in properties if id(m) not in used or t.iri == term.iri]

    # Concepts named as values, and the properties that merely introduce them ("the PyTorch framework")
    valued_properties = {t.property for _, t in concepts}
    for mention, term in concepts:
        negated = q.negated(mention.start)
        interpretation.conditions.append(Condition((term.property,), term.iri, negated,
                                                   ("not " if negated else "") + f"{_short(term.property)} {term.label}"))
    concept_mentions = {id(m) for m, _ in concepts}
    properties = [(m, t) for m, t in properties
                  if id(m) not in concept_mentions and not (t.iri in valued_properties and t.kind == "property")]

    # Dates: the date property named nearest to each date condition (created when none is named)
    date_props = [(m, t) for m, t in properties if vocab.properties[t.iri].is_date]
    for start, end, low, high in dates:
        nearest = min(date_props, key=lambda mt: abs(mt[0].start - start), default=None)
        prop = nearest[1].iri if nearest else AI4KG + "created"
        words_ = f"{_short(prop)} {q.span(start, end)}"
        nearest_word = nearest[0].start if nearest else start
        if q.negated(min(start, nearest_word)) and (low is None) != (high is None):
            low, high = high, low  # "not updated since 2023": updated before 2023
            words_ = "not " + words_
        interpretation.dates.append(DateRange((prop,), low, high, words_))
        interpretation.understood.append(words_)
    if dates:
        properties = [(m, t) for m, t in properties if not vocab.properties[t.iri].is_date]

    # Provenance: classes other than the asked one, named with an asset -> a path
    other_classes = [(m, t) for m, t in classes if t.iri != MODULE]
    if entities and (other_classes or (who and not resource_path)):
        return _path(q, interpretation, entities, other_classes, properties, who)

    if other_classes and not entities and not any(t.iri == MODULE for _, t in classes):
        # "how many deployments", "which training runs exist": the class asked for, unless modules are
        interpretation.cls = other_classes[0][1].iri
        interpretation.understood.insert(0, vocab.classes.get(interpretation.cls, _short(interpretation.cls)))

    if entities:
        return _about_named(q, interpretation, entities, properties, resource_path, superlative, counting)
    return _about_many(q, interpretation, properties, classes, resource_path, superlative, counting, asking, tags)


def _about_named(q: _Question, interpretation: Interpretation, entities: list[Named],
                 properties: list[tuple[_Mention, Term]], resource_path: tuple[str, ...],
                 superlative: tuple[int, str] | None, counting: bool) -> Interpretation | Refusal:
    """A question about named assets: a comparison, a yes or no, a hop backwards, or a lookup."""
    vocab, words = q.vocab, q.words
    interpretation.entities = entities
    interpretation.understood.insert(0, " / ".join(e.title for e in entities))
    if superlative and len(entities) > 1:
        asked = resource_path or next(((t.iri,) for _, t in properties), ())
        if not asked:
            return Refusal("the question compares assets, but names nothing the graph records to compare them by")
        interpretation.form, interpretation.attribute = "compare", asked
        interpretation.order = superlative[1]
        interpretation.rank_by_count = not vocab.properties[asked[-1]].is_number
        return interpretation
    asked = resource_path or next(((t.iri,) for _, t in properties
                                   if t.iri not in (AI4KG + "title",) or len(properties) == 1), ())
    if not asked and not counting and words[0] in ("what", "tell", "describe") and (
            q.has("do") >= 0 or q.has("about") >= 0 or words[0] == "describe"):
        asked = (AI4KG + "summary",)  # "what does X do", "tell me about X": what its summary says
    if not asked and interpretation.conditions and words[0] in YES_NO:
        interpretation.form = "ask"  # "is YOLO models trainable?"
        interpretation.understood += [c.words for c in interpretation.conditions]
        return interpretation
    inverse = _inverse_hop(q, entities[0], asked)
    if inverse is not None:  # "where is X deployed": what points at the asset along the property
        interpretation.form, interpretation.steps, interpretation.entities = "path", [inverse], entities[:1]
        interpretation.conditions = []
        interpretation.understood.append(f"← {vocab.properties[inverse.property].label}")
        return interpretation
    if counting and not asked:
        return Refusal(f"the catalogue holds no figure that answers '{_unmapped(q) or q.text}'")
    if not asked:
        leftover = _unmapped(q)
        return Refusal(f"the catalogue holds nothing about '{leftover}' for {entities[0].title}" if leftover
                       else "the question names an asset but nothing to look up about it")
    interpretation.form, interpretation.attribute = "lookup", asked
    interpretation.conditions = []  # "the TUFSeg tool": words that describe the named asset do not filter it
    interpretation.understood.append(" / ".join(vocab.properties[p].label for p in asked))
    return interpretation


def _about_many(q: _Question, interpretation: Interpretation, properties: list[tuple[_Mention, Term]],
                classes: list[tuple[_Mention, Term]], resource_path: tuple[str, ...],
                superlative: tuple[int, str] | None, counting: bool, asking: bool, tags: list[Condition]
                ) -> Interpretation | Refusal | Ambiguity:
    """A question about the catalogue: the values of a property, a group, a superlative, a count, a yes
    or no, or a list, under the conditions found so far."""
    vocab, words = q.vocab, q.words
    focus = _focus(q)
    if focus is not None and not counting and not superlative:
        asked = next(((t.iri,) for m, t in properties if m.start == focus), None)
        named = _weak_name(q) if asked is not None else None
        if isinstance(named, Ambiguity):
            return named
        if named is not None:  # "what is the docker image of unet": the asset a rare word names
            interpretation.form, interpretation.attribute, interpretation.entities = "lookup", asked, [named]
            interpretation.understood = [named.title, vocab.properties[asked[0]].label]
            return interpretation
        if asked is not None:
            interpretation.form, interpretation.attribute = "lookup", asked
            interpretation.understood.append(f"values of {vocab.properties[asked[0]].label}")
            properties = [(m, t) for m, t in properties if m.start != focus]
        elif focus not in q.taken and words[focus] not in FILLERS and not q.catalogue_word(words[focus]):
            return Refusal(f"the catalogue records no '{words[focus]}'")

    threshold = _threshold(q)
    if threshold is not None:
        counted = resource_path or next(((t.iri,) for _, t in _in_order(properties)
                                         if not vocab.properties[t.iri].is_date), ())
        if not counted:
            return Refusal("the question compares a figure with nothing the graph records")
        interpretation.form, interpretation.attribute = "threshold", counted
        interpretation.order, interpretation.figure = threshold
        interpretation.rank_by_count = not vocab.properties[counted[-1]].is_number
        label = " / ".join(vocab.properties[p].label for p in counted)
        interpretation.understood.append(f"{'number of ' if interpretation.rank_by_count else ''}{label} "
                                         f"{threshold[0]} {threshold[1]}")
        properties = [(m, t) for m, t in properties if t.iri != counted[-1]]
        resource_path, superlative = (), None
    if superlative and any(w in POPULAR for w in words):
        # "the most common tags": the values of the property, most used first
        grouped_property = next(iter(_in_order(properties)), None)
        if grouped_property is not None:
            interpretation.form, interpretation.attribute = "group", (grouped_property[1].iri,)
            interpretation.understood.append(f"per {vocab.properties[grouped_property[1].iri].label}, most first")
            properties = [(m, t) for m, t in properties if m is not grouped_property[0]]
            superlative = None

    # Property mentions left: what is counted, grouped, ranked or required
    # "the oldest module, by creation date": with a superlative, "by" names what to rank by
    group_at = None if superlative else next((i for i, w in enumerate(words) if w in GROUPING), None)
    grouped = None
    if group_at is not None:
        after = [(m, t) for m, t in _in_order(properties) if m.start > group_at]
        if after:
            grouped = after[0]
    if grouped is None and counting and any(w in ("breakdown", "break", "down") for w in words):
        grouped = next(iter(_in_order(properties)), None)
    if grouped is not None:
        interpretation.form, interpretation.attribute = "group", (grouped[1].iri,)
        interpretation.understood.append(f"per {vocab.properties[grouped[1].iri].label}")
        properties = [(m, t) for m, t in properties if m is not grouped[0]]

    if superlative and interpretation.form == "list":
        ranked = resource_path or next(((t.iri,) for _, t in properties
                                        if vocab.properties[t.iri].is_date or vocab.properties[t.iri].is_number), ())
        if not ranked and superlative[1] == "min" and words[superlative[0]] in ("oldest", "earliest", "first"):
            ranked = (AI4KG + "created",)
        if not ranked and words[superlative[0]] in ("latest", "newest", "recently", "recent"):
            ranked = (AI4KG + "updated",) if words[superlative[0]] in ("recently", "recent") else (AI4KG + "created",)
        counted = next(((t.iri,) for _, t in properties if not vocab.properties[t.iri].is_literal or t.iri == TAG), ())
        if ranked:
            interpretation.form, interpretation.attribute, interpretation.order = "superlative", ranked, superlative[1]
        elif counted:
            interpretation.form, interpretation.attribute, interpretation.order = "superlative", counted, superlative[1]
            interpretation.rank_by_count = True
        if interpretation.form == "superlative":
            interpretation.understood.append(f"{superlative[1]} {' / '.join(vocab.properties[p].label for p in interpretation.attribute)}")
            properties = [(m, t) for m, t in properties if t.iri not in interpretation.attribute]
            resource_path = ()

    if counting and interpretation.form == "list":
        counted_at = next(i for i in range(len(words)) if any(tuple(words[i:i + len(p)]) == p for p in COUNTING))
        noun = next((w for w in words[counted_at + 1:] if w not in STOPWORDS and w not in ("many", "of", "different",
                                                                                            "distinct", "unique")), "")
        counted_property = next((t for m, t in properties if m.start > counted_at and m.start <= counted_at + 4
                                 and not any(m.start > c.start for c, _ in classes if c.start > counted_at)), None)
        is_class = any(c.start > counted_at and c.start <= counted_at + 4 for c, _ in classes)
        if counted_property is not None and not is_class:
            interpretation.form, interpretation.attribute = "count-values", (counted_property.iri,)
            interpretation.understood.append(f"distinct {vocab.properties[counted_property.iri].label} values")
            properties = [(m, t) for m, t in properties if t is not counted_property]
        elif is_class or noun in ("modules", "module", "models", "model") or not noun:
            interpretation.form = "count"
        else:
            return Refusal(f"the catalogue records no '{noun}' to count")
    elif asking and interpretation.form == "list":
        interpretation.form = "ask"

    # Properties still named: the asset must have (or, negated, lack) a value
    for mention, term in properties:
        if term.iri in (AI4KG + "title", AI4KG + "summary") or vocab.properties[term.iri].is_date:
            continue
        info = vocab.properties[term.iri]
        version = _version(q, mention) if info.is_literal else None
        if version is not None:
            interpretation.conditions.append(Condition((term.iri,), Text(version, "startswith"), q.negated(mention.start),
                                                       f"{info.label} {version}x"))
            continue
        value = _value_after(q, mention) if info.is_literal and not info.is_number else None
        if value is not None:
            negated = q.negated(mention.start)
            interpretation.conditions.append(Condition((term.iri,), Text(value, "contains"), negated,
                                                       f"{'not ' if negated else ''}{info.label} '{value}'"))
            continue
        if not any(w in HAVING for w in q.words[max(mention.start - 3, 0):mention.start]):
            continue  # a property named in passing ("built on", "used") asks for nothing to be there
        negated = q.negated(mention.start)
        interpretation.conditions.append(Condition((term.iri,), None, negated,
                                                   ("without " if negated else "with ") + info.label))
    if resource_path and interpretation.form not in ("superlative",):
        interpretation.conditions.append(Condition(resource_path, None, False, "with stated resources"))

    # Words of the catalogue's text that nothing else took: a search in titles, tags and summaries
    for position in _content_words(q):
        word = q.words[position]
        q.take(position, position + 1)
        negated = q.negated(position)
        interpretation.conditions.append(Condition((), Text(word, "contains"), negated,
                                                   ("not " if negated else "") + f"mentions '{word}'"))
    interpretation.understood += [c.words for c in interpretation.conditions if c.words and c not in tags]
    ignored = _unmapped(q)
    if ignored and not interpretation.conditions and not interpretation.dates and interpretation.form in (
            "list", "count", "ask"):
        return Refusal(f"the catalogue holds nothing about '{ignored}'")  # not every module, for words not understood
    if ignored:
        interpretation.understood.append(f"not understood: {ignored}")
    return interpretation


def _weak_name(q: _Question) -> Named | Ambiguity | None:
    """An asset named by one rare word of its name ("unet") when the question asks for a fact of one:
    that asset, or the candidates when several names have the word."""
    for i, word in enumerate(q.words):
        if i in q.taken or word in STOPWORDS or word in FILLERS or word in q.vocab.words:
            continue
        owners = {q.names.owner[n] for n in q.names.postings.get(word, set())}
        if not 0 < len(owners) <= 5:
            continue
        by_title: dict[str, list[int]] = {}
        for owner in sorted(owners):
            by_title.setdefault(" ".join(tokens(q.names.assets[owner][2])), []).append(owner)
        named = [Named(q.names.assets[found[0]][2], tuple(sorted(q.names.assets[o][0] for o in found)),
                       q.names.assets[found[0]][1]) for found in by_title.values()]
        q.take(i, i + 1)
        return named[0] if len(named) == 1 else Ambiguity(word, named)
    return None


def _inverse_hop(q: _Question, entity: Named, asked: tuple[str, ...]) -> Step | None:
    """A property asked of an asset that belongs to another class and points at the asset's ("the
    deployments of X": ai4kg:deploys, from ModuleDeployment to Module): one hop backwards."""
    if len(asked) != 1:
        return None
    info = q.vocab.properties[asked[0]]
    cls = AI4KG + entity.kind
    if info.domain is None or q.vocab.is_a(cls, info.domain) or info.is_literal:
        return None
    if info.range is not None and not q.vocab.is_a(cls, info.range):
        return None
    holder = next((source for prop, source, inverse in q.edges.get(cls, []) if inverse and prop == info.iri), info.domain)
    return Step("asset", info.iri, "node1", holder, True)


def _focus(q: _Question) -> int | None:
    """The position of what a wh-question asks for: "what licence ...", "which datasets ...", "what
    is the price of ..." (None for other questions)."""
    words = q.words
    if not words or words[0] not in ("what", "which", "list", "show", "give"):
        return None
    i = 1
    while i < len(words) and words[i] in ("is", "are", "was", "were", "the", "a", "an", "kind", "of", "sort", "type",
                                          "me", "us", "all", "every"):
        i += 1
    return i if i < len(words) else None


def _value_after(q: _Question, mention: _Mention) -> str | None:
    """A value written after a property ("licensed under MIT", "with the docker image ai4oshub/x"):
    the first word after it that nothing else took, within three words."""
    for i in range(mention.end, min(mention.end + 3, len(q.words))):
        if i in q.taken:
            return None
        word = q.words[i]
        if word not in STOPWORDS and word not in FILLERS and word not in STRUCTURE:
            q.take(i, i + 1)
            return word
    return None


def _version(q: _Question, mention: _Mention) -> str | None:
    """A version named beside a property ("the V1 metadata format", "version 2"): the prefix of its
    values ("1.")."""
    for i in range(max(mention.start - 3, 0), min(mention.end + 2, len(q.words))):
        match = re.fullmatch(r"v(\d+)", q.words[i])
        if match is None and q.words[i] == "version" and i + 1 < len(q.words) and q.words[i + 1].isdigit():
            match = re.fullmatch(r"(\d+)", q.words[i + 1])
        if match is not None:
            q.take(i, i + 1)
            return match.group(1) + "."
    return None


def _in_order(properties: list[tuple[_Mention, Term]]) -> list[tuple[_Mention, Term]]:
    return sorted(properties, key=lambda mt: mt[0].start)


def _content_words(q: _Question) -> list[int]:
    """The positions of untaken words that occur in the catalogue's titles or tags and are no filler."""
    found = []
    for i, word in enumerate(q.words):
        if i in q.taken or word in STOPWORDS or word in FILLERS or word in STRUCTURE or word.isdigit():
            continue
        if (word,) in q.vocab.phrases:
            continue
        if q.catalogue_word(word):
            found.append(i)
    return found


STRUCTURE = frozenset({w for phrase in COUNTING + ASKING for w in phrase} | GROUPING | set(MOST) | NEGATIONS | HAVING
                      | POPULAR | {"many", "much", "times", "down", "mention", "mentions", "mentioning", "about"})
"""The words that shape a query rather than name something in it."""


def _unmapped(q: _Question) -> str:
    words = [w for i, w in enumerate(q.words) if i not in q.taken and w not in STOPWORDS and w not in FILLERS
             and w not in STRUCTURE]
    return " ".join(words)


def _threshold(q: _Question) -> tuple[str, int] | None:
    """A count or a number compared with a figure ("more than 5", "at least 3", "over 8000"):
    (SPARQL operator, figure), its words taken."""
    words = q.words
    two = {("more", "than"): ">", ("greater", "than"): ">", ("less", "than"): "<", ("fewer", "than"): "<",
           ("at", "least"): ">=", ("at", "most"): "<="}
    one = {"over": ">", "above": ">", "under": "<", "below": "<"}
    for i, word in enumerate(words[:-1]):
        op, at = (two[(word, words[i + 1])], i + 2) if (word, words[i + 1]) in two else (one.get(word), i + 1)
        if op is not None and at < len(words) and words[at].isdigit():
            q.take(i, at + 1)
            return op, int(words[at])
    return None


def _short(iri: str) -> str:
    return iri.rsplit("#", 1)[-1].rsplit("/", 1)[-1]


# -- provenance paths ----------------------------------------------------------------------------------
def _path(q: _Question, interpretation: Interpretation, entities: list[Named],
          classes: list[tuple[_Mention, Term]], properties: list[tuple[_Mention, Term]], who: bool
          ) -> Interpretation | Refusal:
    """A walk from the named asset through the classes the question names, along the properties that
    connect them (the ontology's domains and ranges; PROV's used / derived from / generated by),
    preferring the properties the question names. The last class named with "which"/"what" (or,
    for "who", the agent) is the answer."""
    vocab = q.vocab
    entity = entities[0]
    start_cls = AI4KG + entity.kind
    wanted = [t.iri for _, t in sorted(classes, key=lambda mt: mt[0].start)]
    named_props = {t.iri for _, t in properties}
    edges = q.edges
    # order the classes to visit: nearest to the asset first (by breadth-first distance)
    steps: list[Step] = []
    current, current_var = start_cls, "asset"
    remaining = list(dict.fromkeys(wanted))
    counter = 0
    while remaining:
        best = None
        for target in remaining:
            route = _route(edges, current, target, named_props)
            if route is not None and (best is None or len(route) < len(best[1])):
                best = (target, route)
        if best is None:
            return Refusal(f"the graph connects no {vocab.classes.get(remaining[0], _short(remaining[0]))} "
                           f"to {entity.title}")
        target, route = best
        for prop, cls, inverse in route:
            counter += 1
            var = f"node{counter}"
            steps.append(Step(current_var, prop, var, cls, inverse))
            current_var = var
        current = target
        remaining.remove(target)
    answer_label = False
    agent_props = [t.iri for _, t in properties if vocab.properties[t.iri].range in (AI4KG + "Agent", PROV + "Agent")]
    if who or agent_props:
        # who: the agent property the class at the end of the walk has (launched by, associated with)
        has = q.shape.properties.get(current, set())
        prop = agent_props[0] if agent_props else next((p for p in AGENT_PROPERTIES if p in has), None)
        if prop is None or prop not in has:
            label = vocab.properties[prop].label if prop in vocab.properties else "person or agent"
            return Refusal(f"the catalogue records no {label} of {vocab.classes.get(current, _short(current))}s")
        counter += 1
        steps.append(Step(current_var, prop, f"node{counter}", None, False))
        current_var, answer_label = f"node{counter}", True
    literal_props = [t.iri for _, t in properties
                     if vocab.properties[t.iri].is_literal and t.iri not in (AI4KG + "title",)]
    interpretation.form, interpretation.entities, interpretation.steps = "path", [entity], steps
    interpretation.answer_label = answer_label
    interpretation.attribute = (literal_props[0],) if literal_props and not answer_label else ()
    interpretation.understood.insert(0, entity.title)
    interpretation.understood += [f"{'←' if s.inverse else '→'} {vocab.properties.get(s.property).label if s.property in vocab.properties else _short(s.property)}"
                                  for s in steps]
    return interpretation


def _route(edges: dict[str, list[tuple[str, str, bool]]], start: str, goal: str, preferred: set[str]
           ) -> list[tuple[str, str, bool]] | None:
    """The shortest walk over class-to-class edges from `start` to `goal` (at most 3 hops), the one
    using most of the `preferred` properties among equally short ones."""
    frontier: list[tuple[str, list[tuple[str, str, bool]]]] = [(start, [])]
    for _ in range(3):
        found = []
        next_frontier = []
        for cls, route in frontier:
            for prop, other, inverse in edges.get(cls, []):
                step = route + [(prop, other, inverse)]
                if other == goal:
                    found.append(step)
                next_frontier.append((other, step))
        if found:
            return max(found, key=lambda r: sum(p in preferred for p, _, _ in r))
        frontier = next_frontier[:500]
    return None


__all__ = ["Ambiguity", "Condition", "DateRange", "Interpretation", "Refusal", "Step", "Text", "parse"]
