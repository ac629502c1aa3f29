"""How answers are completed: graphql-core's execution, with a short way for plain fields."""

from __future__ import annotations

import functools
import operator
from typing import Any, Callable

from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLString, Undefined, is_leaf_type
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

_PlainFields = dict[str, tuple[Callable[[Any], Any], Any]]
_USUAL = object()
"""What a short-way completion answers when graphql-core's usual way must see to the field."""


class _ExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's execution, with a short way for the bulk of an answer.

    Most fields of a listing are "plain": strawberry reads them as an attribute or property of the
    object (no resolver of its own, no arguments, no Info). An object whose selected fields are all
    plain, and whose plain fields hold scalars, enums, lists or such objects again (a connection:
    its edges, their cursors and nodes, the page info), is completed here in one recursive pass,
    without the response paths, resolve infos and completion steps graphql-core spends on every
    field (about 400 in a page of 50 modules, most of its time). Anything out of the ordinary (a
    null where the schema says non-null, an exception, a value a scalar refuses, a list that is not
    a list, an interface or union, field middleware, @defer) abandons the short way for that object,
    and graphql-core completes it as ever (plain fields are side-effect free, so reading them again
    changes nothing): answers, errors and their paths are exactly graphql-core's."""

    _plain: dict[GraphQLObjectType, _PlainFields] = {}
    """Per object type: its plain fields (how to read each, its GraphQL type). Built on first use."""

    def _plain_of(self, parent_type: GraphQLObjectType) -> _PlainFields | None:
        if self.middleware_manager is not None and self.middleware_manager.middlewares:
            return None  # resolvers are wrapped: every field the usual way
        plain = self._plain.get(parent_type)
        if plain is None:
            plain = self._plain[parent_type] = _plain_fields(parent_type)
        return plain

    def _plain_object(self, parent_type: GraphQLObjectType, grouped_field_set: Any, source: Any) -> Any:
        """The object's answer when every selected field is plain, else _USUAL."""
        plain = self._plain_of(parent_type)
        if not plain:
            return _USUAL
        fields = []
        for response_name, field_details_list in grouped_field_set.items():
            found = plain.get(field_details_list[0].node.name.value)
            if found is None:
                return _USUAL
            fields.append((response_name, field_details_list, found))
        results: dict[str, Any] = {}
        for response_name, field_details_list, (read, type_) in fields:
            try:
                value = read(source)
            except Exception:  # noqa: BLE001 - the usual way reports it, located
                return _USUAL
            value = self._plain_value(type_, field_details_list, value)
            if value is _USUAL:
                return _USUAL
            results[response_name] = value
        return results

    def _plain_value(self, type_: Any, field_details_list: Any, value: Any) -> Any:
        """`value` completed as `type_`, or _USUAL."""
        if isinstance(type_, GraphQLNonNull):
            if value is None:
                return _USUAL
            type_ = type_.of_type
        elif value is None:
            return None
        if isinstance(value, Exception) or self.is_awaitable(value):
            return _USUAL
        if type_ is GraphQLString and type(value) is str:  # what GraphQLString's serialiser returns
            return value
        if isinstance(type_, GraphQLList):
            if not isinstance(value, (list, tuple)):
                return _USUAL
            completed = []
            for item in value:
                item = self._plain_value(type_.of_type, field_details_list, item)
                if item is _USUAL:
                    return _USUAL
                completed.append(item)
            return completed
        if isinstance(type_, GraphQLObjectType):
            if type_.is_type_of is not None and not type_.is_type_of(value, None):
                return _USUAL
            grouped_field_set, new_defer_usages, _ = self.collect_subfields(type_, field_details_list)
            return _USUAL if new_defer_usages else self._plain_object(type_, grouped_field_set, value)
        if is_leaf_type(type_):
            try:
                coerced = type_.coerce_output_value(value)
            except Exception:  # noqa: BLE001 - the usual way reports it, located
                return _USUAL
            return _USUAL if coerced is None or coerced is Undefined else coerced
        return _USUAL  # an interface or a union: the usual way resolves the type

    def execute_fields(self, parent_type: GraphQLObjectType, source_value: Any, path: Any,
                       grouped_field_set: Any, position_context: Any) -> Any:
        if position_context is None:
            results = self._plain_object(parent_type, grouped_field_set, source_value)
            if results is not _USUAL:
                return results
        return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)

    def execute_field(self, parent_type: GraphQLObjectType, source: Any, field_details_list: Any, path: Any,
                      position_context: Any) -> Any:
        plain = self._plain_of(parent_type) if position_context is None else None
        found = plain.get(field_details_list[0].node.name.value) if plain else None
        if found is not None:  # a plain field of an object that has others
            read, type_ = found
            try:
                value = self._plain_value(type_, field_details_list, read(source))
            except Exception:  # noqa: BLE001 - the usual way reports it, located
                value = _USUAL
            if value is not _USUAL:
                return value
        return super().execute_field(parent_type, source, field_details_list, path, position_context)


def _plain_fields(parent_type: GraphQLObjectType) -> _PlainFields:
    """The fields of `parent_type` that strawberry resolves as plain attributes (no resolver, no
    arguments), each with how to read it (operator.attrgetter when strawberry would read it with
    getattr; else strawberry's own resolver, which needs no Info for these) and its GraphQL type."""
    found: _PlainFields = {}
    for name, definition in parent_type.fields.items():
        resolve = definition.resolve
        if resolve is None or not getattr(resolve, "_is_default", False) or definition.args:
            continue
        strawberry_field = (definition.extensions or {}).get("strawberry-definition")
        if strawberry_field is not None and strawberry_field.default_resolver is getattr \
                and strawberry_field.base_resolver is None:
            read: Callable[[Any], Any] = operator.attrgetter(strawberry_field.python_name)
        else:
            read = functools.partial(_with_no_info, resolve)
        found[name] = (read, definition.type)
    return found


def _with_no_info(resolve: Callable[..., Any], source: Any) -> Any:
    return resolve(source, None)
