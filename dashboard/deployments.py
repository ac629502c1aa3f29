"""(being written)"""

from fastapi import APIRouter

from ..graph.store import KnowledgeGraph


def router(graph: KnowledgeGraph) -> APIRouter:
    return APIRouter(include_in_schema=False)
