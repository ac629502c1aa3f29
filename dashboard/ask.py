"""The Ask page (`/ask`): a question in English, answered by the assistant with the SPARQL it ran.

    /ask                        the question box and some example questions
    /ask?q=how+many+modules...  the answer (a URL to share): its text, its rows as a table, how the
                                question was understood, the candidates of an ambiguous name, the
                                reason of a refusal, and the SPARQL it ran with a link to /query

The question goes through `assistant.ask` as POST /v1/assistant/ask sends it (api/assistant.py): in
the threads that answer reads, with the viewer's rights (dashboard/session.py), the same timeout
and row limit; a question that is not one (empty, too long, control characters) is shown next to
the field. The page only reads.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ..api.access import read
from ..assistant import MAX_QUESTION_CHARACTERS, Answer, QuestionRejected, ask
from ..assistant.lexicon import vocabulary
from ..graph.store import KnowledgeGraph
from .query import compact, link
from .session import readers
from .templating import render

EXAMPLES = ["How many modules use PyTorch?", "Which modules are trainable?", "How many modules per library?",
            "Most recently created module", "Which modules have the tag flood?", "How many training runs are there?"]


def ask_url(question: str) -> str:
    return "/ask?" + urlencode({"q": question})


def query_url(sparql: str) -> str:
    return "/query?" + urlencode({"query": sparql})


def asked_again(question: str, words: str | None, name: str) -> str:
    """The question with the ambiguous `words` replaced by one candidate's `name` (appended to it when
    the words cannot be found as written: the assistant reads lower case, corrected spelling)."""
    if words:
        pattern = r"(?<!\w)" + r"\W+".join(re.escape(w) for w in words.split()) + r"(?!\w)"
        found = re.search(pattern, question, re.IGNORECASE)
        if found:
            return question[:found.start()] + name + question[found.end():]
    return f"{question.rstrip(' ?')} ({name})?"


def _candidates(answer: Answer, base_url: str) -> list[dict[str, Any]]:
    """Each candidate of an ambiguous name: its title, kind, page, and the question asked with it.
    A title several assets share names each of them by its identifier (the IRI's last segment)."""
    words = answer.ambiguous
    shown = []
    for candidate in answer.candidates:
        for iri in candidate["iris"]:
            name = candidate["title"] if len(candidate["iris"]) == 1 else iri.rstrip("/").rsplit("/", 1)[-1]
            shown.append({"title": candidate["title"], "name": name, "kind": candidate.get("kind") or "",
                          "href": link(base_url, iri), "ask": ask_url(asked_again(answer.question, words, name))})
    return shown


def _table(answer: Answer, titles: dict[str, str], base_url: str) -> tuple[list[str], list[list[dict[str, Any] | None]]]:
    """The answer's rows as table cells: IRIs linked to their pages, named by title or label."""
    columns = answer.columns or list(dict.fromkeys(name for row in answer.rows for name in row))
    concepts = vocabulary().concepts
    rows = []
    for row in answer.rows:
        cells: list[dict[str, Any] | None] = []
        for column in columns:
            term = row.get(column)
            if term is None:
                cells.append(None)
            elif term["type"] == "uri":
                iri = term["value"]
                concept = concepts.get(iri)
                label = titles.get(iri) or (concept.label if concept else None) or compact(iri)
                cells.append({"text": label, "href": link(base_url, iri), "title": iri})
            else:
                cells.append({"text": term["value"]})
        rows.append(cells)
    return columns, rows


def router(graph: KnowledgeGraph) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    base_url = graph.settings.base_url

    @routes.get("/ask", response_class=HTMLResponse)
    async def ask_page(request: Request) -> HTMLResponse:
        question = request.query_params.get("q")
        context: dict[str, Any] = {"question": question or "", "error": None, "answer": None,
                                   "examples": [(text, ask_url(text)) for text in EXAMPLES],
                                   "most": MAX_QUESTION_CHARACTERS}
        if question is None:
            return render(request, "ask.html", **context)
        who = readers(request)

        def work() -> tuple[Answer, dict[str, str]]:
            answer = ask(graph, question, who)
            iris = list(dict.fromkeys(term["value"] for row in answer.rows for term in row.values()
                                      if term["type"] == "uri"))
            cards = graph.index.cards(iris) if iris else {}
            return answer, {iri: card["title"] for iri, card in cards.items() if card.get("title")}

        try:
            answer, titles = await read(graph, work)
        except QuestionRejected as exc:
            context["error"] = str(exc)
            return render(request, "ask.html", status=422, **context)
        columns, rows = _table(answer, titles, base_url)
        text = answer.text
        if answer.status == "ambiguous":  # the candidates are listed below, with links
            text = f"'{answer.ambiguous}' fits {len(answer.candidates)} assets. Which one do you mean?"
        context["answer"] = {"status": answer.status, "text": text, "interpretation": answer.interpretation,
                             "reason": answer.reason, "cut": answer.cut, "sparql": answer.sparql,
                             "run": query_url(answer.sparql) if answer.sparql else None,
                             "columns": columns, "rows": rows, "candidates": _candidates(answer, base_url),
                             "generator": answer.generator, "seconds": answer.seconds}
        return render(request, "ask.html", **context)

    return routes
