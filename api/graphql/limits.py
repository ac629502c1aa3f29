"""The bounds of the GraphQL endpoint: page sizes, query limits and filter limits (the package
docstring's "Limits")."""

DEFAULT_FIRST = 20
MAX_FIRST = 100
MAX_DEPTH = 10
MAX_TOKENS = 2000
MAX_ALIASES = 20
MAX_BRANCHES = 16
"""AND branches a filter may expand to (each is one index query)."""
MAX_FILTER_DEPTH = 8
"""Nesting of and / or / not (variables are not bound by the token limit)."""
MAX_CONDITIONS = 64
"""Conditions (value lists, date ranges, texts) in one filter."""
MAX_VALUES = 100
"""Values in one `in` or `all` list."""
LINK_BATCH = 20
"""Assets per SPARQL query that looks up the links pointing at them."""
SCAN_PAGE = 500
"""Index rows read at a time by a branch that also filters on dates."""
