"""The knowledge graph: the store, its search index, validation, views and the queries they share."""
