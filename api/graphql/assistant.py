"""The assistant (ai4kg.assistant, issue 15) as the query field `ask`: a question in English, answered
from what the caller may see, with the SPARQL it ran."""

from __future__ import annotations

from typing import Optional

import strawberry
from strawberry.scalars import JSON

from ...assistant import Answer, QuestionRejected, ask
from .. import access
from .context import Info
from .errors import InputError


@strawberry.type(description="An asset a name in the question may mean (an ambiguous answer lists them).")
class AssistantCandidate:
    title: str
    iris: list[str] = strawberry.field(description="The IRIs of the assets with this title.")
    kind: str = strawberry.field(description="Module, Tool, Dataset ... (the ai4kg class).")


@strawberry.type(description=(
    "The assistant's answer to a question in English (REST's POST /v1/assistant/ask answers the same): the "
    "answer in words and as values, the result rows and the SPARQL that gave them (run it again at /sparql)."))
class AssistantAnswer:
    status: str = strawberry.field(description="answered, refused or ambiguous.")
    text: str = strawberry.field(description="The answer in words.")
    sparql: Optional[str] = strawberry.field(description="The query as it ran; null when none ran.")
    interpretation: str = strawberry.field(description="How the question was read.")
    columns: list[str] = strawberry.field(description="The result's columns.")
    rows: JSON = strawberry.field(description=(
        "The result rows, SPARQL JSON results bindings: a list of {column: {type, value, datatype?}}."))
    values: Optional[JSON] = strawberry.field(description=(
        "The answer itself: a list of assets or values (for group-by questions, [key, count] pairs), a number, "
        "or true / false; null when there is none."))
    candidates: list[AssistantCandidate] = strawberry.field(description="What an ambiguous name may mean.")
    reason: Optional[str] = strawberry.field(description="Why a question was refused.")
    generator: str = strawberry.field(description="Who wrote the query: embedded (the parser) or model.")
    cut: Optional[str] = strawberry.field(description=(
        "Why the rows stop early (the result limit, the timeout); null when they are all there."))


def _answer(answer: Answer) -> AssistantAnswer:
    return AssistantAnswer(
        status=answer.status, text=answer.text, sparql=answer.sparql, interpretation=answer.interpretation,
        columns=list(answer.columns), rows=answer.rows, values=answer.values,
        candidates=[AssistantCandidate(title=c["title"], iris=list(c["iris"]), kind=c["kind"])
                    for c in answer.candidates],
        reason=answer.reason, generator=answer.generator, cut=answer.cut)


async def _ask(info: Info, question: str) -> AssistantAnswer:
    """`ask` with the caller's rights (the context's readers), in the threads that answer reads, as
    REST's /v1/assistant/ask runs it; a question that is not one is an error naming `question`."""
    context = info.context
    try:
        answer = await access.read(context.graph, lambda: ask(context.graph, question, context.readers))
    except QuestionRejected as exc:
        raise InputError(str(exc), "question", question[:200]) from None
    return _answer(answer)
