"""POST /v1/assistant/ask: a question in English, answered from the graph with the SPARQL shown.

JSON in, JSON out (`Answer.as_dict()`); with `Accept: text/event-stream` the same answer as
Server-Sent Events for chat clients: `token` events while a model writes the query (when one is
configured), then `interpretation`, `sparql`, one `row` per result row, and `answer` (the whole JSON),
then `done`. The question runs with the caller's rights exactly as /sparql does (readers_of), in
the threads that answer reads, and never writes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from ..assistant import MAX_QUESTION_CHARACTERS, Answer, QuestionRejected, ask
from ..graph.store import KnowledgeGraph
from .access import read, readers_of
from .limits import loads_json
from .problems import Problem

EVENT_STREAM = "text/event-stream"


def _question(body: Any) -> str:
    if not isinstance(body, dict) or not isinstance(body.get("question"), str):
        raise Problem(422, "Invalid question", "the body must be a JSON object with a string 'question'",
                      "question", None if not isinstance(body, dict) else body.get("question"))
    return body["question"]


_QUESTION_TEXT = "[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]"
QUESTION_SCHEMA = {
    "type": "object", "required": ["question"],
    "properties": {"question": {
        "type": "string", "maxLength": MAX_QUESTION_CHARACTERS,
        # some text that is not only white space, and no control character but tab and line ends
        "pattern": f"^{_QUESTION_TEXT}*[^\\s\\x00-\\x1f\\x7f]{_QUESTION_TEXT}*$",
        "examples": ["how many modules use pytorch?"]}}}
"""The body /v1/assistant/ask takes, as its OpenAPI document says (assistant.check_question's rules)."""


def router(graph: KnowledgeGraph) -> APIRouter:
    routes = APIRouter(tags=["assistant"])

    @routes.post("/v1/assistant/ask", summary="Ask a question in English; the answer shows the SPARQL it ran",
                 responses={200: {"content": {"application/json": {}, EVENT_STREAM: {}}},
                            422: {"description": "no question, or one too long or with control characters"}},
                 openapi_extra={"requestBody": {"required": True,
                                                "content": {"application/json": {"schema": QUESTION_SCHEMA}}}})
    async def ask_route(request: Request) -> Response:
        """Body: `{"question": "how many modules use pytorch?"}`. Answer: `status` (answered, refused,
        ambiguous), `text`, `values`, `rows` (SPARQL JSON terms), `sparql` (run it again at /sparql),
        `interpretation`, `candidates` (an ambiguous name), `reason` (a refusal)."""
        question = _question(loads_json(await request.body(), "body"))
        readers = readers_of(request)
        if EVENT_STREAM in request.headers.get("accept", ""):
            return StreamingResponse(_events(graph, question, readers), media_type=EVENT_STREAM,
                                     headers={"cache-control": "no-cache"})
        try:
            answer = await read(graph, lambda: ask(graph, question, readers))
        except QuestionRejected as exc:
            raise Problem(422, "Invalid question", str(exc), "question", question[:200]) from None
        return JSONResponse(answer.as_dict())

    return routes


def _event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def _events(graph: KnowledgeGraph, question: str, readers: Any) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    tokens: asyncio.Queue[str | None] = asyncio.Queue()

    def heard(token: str) -> None:
        loop.call_soon_threadsafe(tokens.put_nowait, token)

    work = asyncio.ensure_future(read(graph, lambda: ask(graph, question, readers,
                                                          on_token=heard if graph.settings.assistant_url else None)))
    work.add_done_callback(lambda _: tokens.put_nowait(None))
    while (token := await tokens.get()) is not None:
        yield _event("token", token)
    try:
        answer: Answer = await work
    except QuestionRejected as exc:
        yield _event("error", {"status": 422, "detail": str(exc), "parameter": "question"})
        return
    yield _event("interpretation", answer.interpretation)
    if answer.sparql:
        yield _event("sparql", answer.sparql)
    for row in answer.rows:
        yield _event("row", row)
    yield _event("answer", answer.as_dict())
    yield _event("done", {})
