"""GraphQL errors: bad arguments (InputError), and the Problems of REST's modules (api/publishing.py,
api/deployments.py) as GraphQL errors with REST's status, the argument at fault and invalidParams."""

from __future__ import annotations

import re
from typing import Any

from graphql import GraphQLError

from ...workloads.service import DeploymentRejected
from ..problems import Problem, jsonable


# -- errors ------------------------------------------------------------------------------------

class InputError(GraphQLError):
    """A bad argument: the message says what to change, extensions name the argument and value."""

    def __init__(self, message: str, argument: str, value: Any = None):
        super().__init__(message, extensions={"code": "BAD_USER_INPUT", "argument": argument, "value": value})


def _unexpected(error: GraphQLError) -> bool:
    """Errors that are not ours to explain (a bug, a store failure) lose their message."""
    return error.original_error is not None and not isinstance(error.original_error, GraphQLError)


_CODES = {400: "BAD_USER_INPUT", 401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND", 409: "CONFLICT",
          413: "BAD_USER_INPUT", 422: "BAD_USER_INPUT"}
_RULE = re.compile(r"(?s)(?P<reason>.*) \[(?P<rule>[^\[\]]+)\]")
_MUTATION_ARGUMENTS = ("name", "vo", "visibility", "request", "identifier")


def _problem_error(problem: Problem, document: str = "metadata") -> GraphQLError:
    """A Problem of api/publishing.py (or api/deployments.py) as a GraphQL error: its detail as the
    message; in extensions the code, the HTTP status REST answers with, and the argument (or each
    field of the document, the argument `document`) at fault."""
    extensions: dict[str, Any] = {"code": _CODES.get(problem.status, "BAD_REQUEST"), "status": problem.status}
    if problem.invalid_params is not None:
        extensions["argument"] = document
        extensions["invalidParams"] = [_invalid_param(param) for param in problem.invalid_params]
    elif problem.parameter in _MUTATION_ARGUMENTS:
        extensions["argument"] = problem.parameter
        extensions["value"] = jsonable(problem.value)
    elif problem.status == 413:
        extensions["argument"] = document
    return GraphQLError(problem.detail, extensions=extensions)


def _rejected_error(rejected: DeploymentRejected, argument: str) -> GraphQLError:
    """A request the deployments service refused, as REST's problem says it: each issue (field, rule,
    reason, value) in extensions.invalidParams."""
    return _problem_error(Problem.of_issues(rejected.status, rejected.title, rejected.issues), argument)


def _invalid_param(param: dict[str, Any]) -> dict[str, Any]:
    """{name, rule, reason, value}: REST's invalid-params entry, with the rule apart."""
    reason, rule = str(param.get("reason", "")), param.get("rule")
    if (match := _RULE.fullmatch(reason)) and rule in (None, match["rule"]):  # the rule, not in the reason too
        reason, rule = match["reason"], match["rule"]
    return {"name": param.get("name"), "rule": rule, "reason": reason, "value": jsonable(param.get("value"))}
